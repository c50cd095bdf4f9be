"""Spaces of architectures and the frozen :class:`Architecture` values they contain."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError, InvalidArchitectureError
from . import registry
from .params import Param, check_token, param_from_config

__all__ = ["ENCODINGS", "Architecture", "Space", "param_from_config"]

ENCODINGS = ("onehot", "path", "functional")


class Architecture:
    """A frozen, hashable point of a :class:`Space`.

    ``str(arch)`` is a readable form that ``space.parse`` turns back into an equal architecture.
    ``arch[name]`` gives a parameter's value (``None`` when the parameter is inactive).
    """

    __slots__ = ("_fhash", "_hash", "_space", "_str", "_values")
    _space: Space
    _values: tuple
    _hash: int
    _fhash: str | None
    _str: str | None

    def __init__(self, space: Space, values: tuple) -> None:
        object.__setattr__(self, "_space", space)
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_hash", hash(values))
        object.__setattr__(self, "_fhash", None)
        object.__setattr__(self, "_str", None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Architecture is frozen; use space.make({...}) to build a new one")

    @property
    def space(self) -> Space:
        return self._space

    @property
    def values(self) -> tuple:
        """Parameter values in the space's declaration order."""
        return self._values

    def __getitem__(self, name: str) -> Any:
        return self._values[self._space._index_of(name)]

    def to_dict(self) -> dict[str, Any]:
        return dict(zip(self._space.names, self._values))

    def functional_hash(self) -> str:
        """A hex digest equal for architectures that compute the same function (isomorphic cells, dead
        paths and zero-only edges collapse); see :meth:`Space.functional_key`."""
        fhash = self._fhash
        if fhash is None:
            key = repr(self._space.functional_key(self))
            fhash = hashlib.blake2b(key.encode(), digest_size=10).hexdigest()
            object.__setattr__(self, "_fhash", fhash)
        return fhash

    def encode(self, kind: str = "onehot") -> np.ndarray:
        return self._space.encode(self, kind)

    def __str__(self) -> str:
        text = self._str
        if text is None:
            text = self._space.format(self)
            object.__setattr__(self, "_str", text)
        return text

    def __repr__(self) -> str:
        return f"Architecture({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Architecture):
            return NotImplemented
        return self._hash == other._hash and self._values == other._values and (
            self._space is other._space or self._space._signature == other._space._signature
        )

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[Architecture], tuple[Space, tuple]]:
        return (Architecture, (self._space, self._values))


class Space:
    """A search space: an ordered mapping of named parameters.

    Args:
        params: ``{name: Param}``; conditions (``when=``) may only refer to parameters declared earlier.
        name: optional name (built-in spaces carry their registry name).

    Raises:
        ConfigError: on an empty space, a bad name, or a condition on an unknown or later parameter.
    """

    def __init__(self, params: Mapping[str, Param], name: str | None = None) -> None:
        if not isinstance(params, Mapping) or not params:
            raise ConfigError("a Space needs a non-empty mapping of {name: parameter}")
        self.params: dict[str, Param] = {}
        for pname, p in params.items():
            if not isinstance(pname, str):
                raise ConfigError(f"parameter names must be strings, got {pname!r}")
            check_token(pname, "parameter name")
            if not isinstance(p, Param):
                raise ConfigError(f"parameter {pname!r} must be a Choice, Ordinal, Int, Float, Cell, Stages or another "
                                  f"Param, got {p!r}")
            for parent, allowed in p.when.items():
                if parent not in self.params:
                    raise ConfigError(
                        f"parameter {pname!r} is conditioned on {parent!r}, which is not declared before it"
                    )
                for a in allowed:
                    try:
                        self.params[parent].validate(a)
                    except InvalidArchitectureError as e:
                        raise ConfigError(f"condition of {pname!r} on {parent!r}: {e}") from None
            self.params[pname] = p
        self.name = name
        self.names: tuple[str, ...] = tuple(self.params)
        self._plist: tuple[Param, ...] = tuple(self.params.values())
        self._idx = {n: i for i, n in enumerate(self.names)}
        self._conditional = any(p.when for p in self._plist)
        self._signature = json.dumps(self._params_config(), sort_keys=True, default=str)
        self._weights = np.array([p.n_dims() for p in self._plist], dtype=float)

    # --- construction ----------------------------------------------------------------------------
    def _index_of(self, name: str) -> int:
        try:
            return self._idx[name]
        except KeyError:
            raise KeyError(f"the space has no parameter {name!r} (it has {list(self.names)})") from None

    def _active(self, p: Param, values: list | tuple) -> bool:
        for parent, allowed in p.when.items():
            v = values[self._idx[parent]]
            if v is None or v not in allowed:
                return False
        return True

    def _new(self, values: tuple) -> Architecture:
        return Architecture(self, values)

    def make(self, values: Mapping[str, Any]) -> Architecture:
        """Build an architecture from ``{name: value}`` (inactive parameters may be omitted).

        Raises:
            InvalidArchitectureError: unknown names, missing or invalid values.
        """
        if not isinstance(values, Mapping):
            raise InvalidArchitectureError(f"expected a mapping of parameter values, got {values!r}")
        extra = set(values) - set(self.names)
        if extra:
            raise InvalidArchitectureError(f"unknown parameters {sorted(extra)}; the space has {list(self.names)}")
        out: list[Any] = []
        for n, p in self.params.items():
            if not self._active(p, out):
                if values.get(n) is not None:
                    raise InvalidArchitectureError(f"parameter {n!r} is inactive here (needs {p.when}) but has a value")
                out.append(None)
                continue
            if n not in values or values[n] is None:
                raise InvalidArchitectureError(f"missing value for parameter {n!r}")
            try:
                out.append(p.validate(values[n]))
            except InvalidArchitectureError as e:
                raise InvalidArchitectureError(f"parameter {n!r}: {e}") from None
        return self._new(tuple(out))

    def validate(self, arch: Architecture | Mapping[str, Any] | str) -> Architecture:
        """Return ``arch`` as a valid architecture of this space, or raise InvalidArchitectureError."""
        if isinstance(arch, str):
            return self.parse(arch)
        if isinstance(arch, Architecture):
            if arch.space is self:
                return arch
            return self.make(arch.to_dict())
        return self.make(arch)

    # --- string form -----------------------------------------------------------------------------
    def format(self, arch: Architecture) -> str:
        if len(self._plist) == 1:
            return self._plist[0].format(arch.values[0])
        return "; ".join(
            f"{n}={p.format(v)}" for n, p, v in zip(self.names, self._plist, arch.values) if v is not None
        )

    def parse(self, text: str) -> Architecture:
        """Parse the string form of an architecture.

        Raises:
            InvalidArchitectureError: the string is malformed or names values outside the space.
        """
        if not isinstance(text, str):
            raise InvalidArchitectureError(f"expected an architecture string, got {text!r}")
        if len(self._plist) == 1 and not text.strip().startswith(self.names[0] + "="):
            try:
                return self._new((self._plist[0].parse(text),))
            except InvalidArchitectureError as e:
                raise InvalidArchitectureError(f"cannot parse architecture {text!r}: {e}") from None
        values: dict[str, Any] = {}
        for part in text.split(";"):
            if not part.strip():
                continue
            key, sep, val = part.partition("=")
            key = key.strip()
            if not sep or key not in self.params:
                raise InvalidArchitectureError(
                    f"cannot parse architecture {text!r}: {part.strip()!r} should read 'name=value' with a name "
                    f"from {list(self.names)}"
                )
            if key in values:
                raise InvalidArchitectureError(f"cannot parse architecture {text!r}: {key!r} given twice")
            try:
                values[key] = self.params[key].parse(val)
            except InvalidArchitectureError as e:
                raise InvalidArchitectureError(f"cannot parse architecture {text!r}: {key}: {e}") from None
        try:
            return self.make(values)
        except InvalidArchitectureError as e:
            raise InvalidArchitectureError(f"cannot parse architecture {text!r}: {e}") from None

    # --- random and local moves ----------------------------------------------------------------------
    def _fill(self, values: list, rng: np.random.Generator, start: int = 0) -> None:
        """Sample newly active parameters and blank inactive ones, from position ``start`` on."""
        for i in range(start, len(self._plist)):
            p = self._plist[i]
            if not self._active(p, values):
                values[i] = None
            elif values[i] is None:
                values[i] = p.sample(rng)

    def sample(self, rng: np.random.Generator) -> Architecture:
        """Draw an architecture uniformly per parameter (conditional children after their parents)."""
        if not self._conditional:
            return self._new(tuple(p.sample(rng) for p in self._plist))
        values: list[Any] = [None] * len(self._plist)
        self._fill(values, rng)
        return self._new(tuple(values))

    def _active_indices(self, arch: Architecture) -> list[int]:
        return [i for i, v in enumerate(arch.values) if v is not None and self._plist[i].size() != 1]

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """Change one decision of ``arch`` (a parameter picked with weight = its number of decisions).
        Returns ``arch`` itself only when the space has a single point."""
        idx = self._active_indices(arch)
        if not idx:
            return arch
        w = self._weights[idx]
        for _ in range(100):
            i = idx[int(rng.choice(len(idx), p=w / w.sum()))] if len(idx) > 1 else idx[0]
            new_v = self._plist[i].mutate(arch.values[i], rng)
            if new_v != arch.values[i]:
                break
        else:
            return arch
        values = list(arch.values)
        values[i] = new_v
        if self._conditional:
            self._fill(values, rng, i + 1)
        return self._new(tuple(values))

    def neighbors(self, arch: Architecture) -> list[Architecture]:
        """Every architecture one decision away from ``arch`` (distinct, valid, excluding ``arch``).
        Newly active conditional parameters take their first value (or a midpoint for floats)."""
        out: list[Architecture] = []
        seen = {arch}
        for i in self._active_indices(arch):
            for v in self._plist[i].neighbors(arch.values[i]):
                values = list(arch.values)
                values[i] = v
                if self._conditional:
                    for j in range(i + 1, len(self._plist)):
                        p = self._plist[j]
                        if not self._active(p, values):
                            values[j] = None
                        elif values[j] is None:
                            values[j] = p.initial_value()
                a = self._new(tuple(values))
                if a not in seen:
                    seen.add(a)
                    out.append(a)
        return out

    def crossover(self, a: Architecture, b: Architecture, rng: np.random.Generator) -> Architecture:
        """Mix two parents parameter by parameter (cells edge by edge, stages stage by stage)."""
        values: list[Any] = []
        for p, x, y in zip(self._plist, a.values, b.values):
            if x is None or y is None:
                values.append(x if y is None else y)
            else:
                values.append(p.crossover(x, y, rng))
        if self._conditional:
            self._fill(values, rng)
        return self._new(tuple(values))

    # --- size and enumeration --------------------------------------------------------------------
    def size(self) -> float:
        """Number of architectures (an ``int``; ``math.inf`` when a Float parameter is active somewhere)."""
        if not self._conditional:
            return math.prod(p.size() for p in self._plist)
        return self._count(0, [None] * len(self._plist))

    def _count(self, i: int, values: list) -> float:
        if i == len(self._plist):
            return 1
        p = self._plist[i]
        if not self._active(p, values):
            return self._count(i + 1, values)
        is_parent = any(self.names[i] in q.when for q in self._plist[i + 1:])
        if not is_parent:
            return p.size() * self._count(i + 1, values)
        total: float = 0
        for v in p.values():
            values[i] = v
            total += self._count(i + 1, values)
        values[i] = None
        return total

    def is_finite(self) -> bool:
        return math.isfinite(self.size())

    def enumerate(self) -> Iterator[Architecture]:
        """Every architecture of a finite space, in a fixed order.

        Raises:
            InvalidArchitectureError: if the space is infinite.
        """
        if not self.is_finite():
            raise InvalidArchitectureError("this space has a Float parameter, so it cannot be enumerated")
        if not self._conditional:
            for values in itertools.product(*(p.values() for p in self._plist)):
                yield self._new(tuple(values))
            return
        yield from self._enum(0, [None] * len(self._plist))

    def _enum(self, i: int, values: list) -> Iterator[Architecture]:
        if i == len(self._plist):
            yield self._new(tuple(values))
            return
        p = self._plist[i]
        if not self._active(p, values):
            values[i] = None
            yield from self._enum(i + 1, values)
            return
        for v in p.values():
            values[i] = v
            yield from self._enum(i + 1, values)
        values[i] = None

    # --- functional form and encodings -------------------------------------------------------------
    def functional_key(self, arch: Architecture) -> tuple:
        """Canonical form of ``arch``: equal for architectures computing the same function."""
        return tuple(None if v is None else p.canonical(v) for p, v in zip(self._plist, arch.values))

    def encoding_size(self, kind: str = "onehot") -> int:
        self._check_kind(kind)
        return sum(p.encoding_size(p.encoding_kind(kind)) for p in self._plist)

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in ENCODINGS:
            raise ConfigError(f"unknown encoding {kind!r}; use one of {ENCODINGS}")

    def encode(self, arch: Architecture, kind: str = "onehot") -> np.ndarray:
        """Vector of shape ``(encoding_size(kind),)``: one-hot for choices and cell edges, thermometer for
        ordinals, [0, 1] for numbers; ``kind="path"`` uses the path encoding for cells, ``"functional"``
        the functional path encoding for cells (see :meth:`Cell.encode`) and the path encoding elsewhere."""
        self._check_kind(kind)
        return np.concatenate([p.encode(v, p.encoding_kind(kind)) for p, v in zip(self._plist, arch.values)])

    # --- config ----------------------------------------------------------------------------------
    def _params_config(self) -> dict:
        return {n: p.to_config() for n, p in self.params.items()}

    def to_config(self) -> dict:
        """A plain dict (JSON-safe) from which :meth:`from_config` rebuilds an equal space."""
        if self.name is not None and registry.default_signature(self.name) == self._signature:
            return {"name": self.name}
        return {"name": self.name, "params": self._params_config()}

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Space:
        """Rebuild a space from :meth:`to_config` output (``{"name": ...}`` for a registered space).

        Raises:
            ConfigError, UnknownNameError: a malformed config or an unknown space name.
        """
        if not isinstance(cfg, Mapping):
            raise ConfigError(f"a space config must be a mapping such as {{'name': 'nb201'}}, got {cfg!r}")
        if "params" in cfg and not isinstance(cfg["params"], Mapping):
            raise ConfigError(f"a space config's 'params' must map names to parameter configs, got {cfg['params']!r}")
        if "params" not in cfg:
            if not isinstance(cfg.get("name"), str):
                raise ConfigError(f"a space config needs a registered space 'name' or 'params', got {dict(cfg)!r}")
            return registry.create_space(cfg["name"])
        return cls({n: param_from_config(c) for n, c in cfg["params"].items()}, name=cfg.get("name"))

    @property
    def signature(self) -> str:
        """The space's settings as a canonical string: equal spaces have equal signatures."""
        return self._signature

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and other._signature == self._signature

    def __hash__(self) -> int:
        return hash(self._signature)

    def __repr__(self) -> str:
        label = f"{self.name!r}, " if self.name else ""
        return f"Space({label}{', '.join(f'{n}={p!r}' for n, p in self.params.items())})"
