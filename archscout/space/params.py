"""Parameters of a search space: the base class, and the scalar ones (categorical, ordinal, integer, float).

Every parameter is an immutable declaration. Each parameter knows how to sample, mutate, list neighbours of,
validate, format, parse and encode its values, how they are decided one discrete decision at a time
(:meth:`Param.decisions`) and, for numbers, their range (:meth:`Param.numeric_range`), so a
:class:`~archscout.space.Space` is only a composition of parameters, and strategies and the Optuna adapter
work through the parameters. A new parameter type is one subclass of :class:`Param` with its own ``kind``:
it is registered for :func:`param_from_config` when the class is defined.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, InvalidArchitectureError
from .decisions import Decisions, SequenceDecisions, enumerated_decisions

__all__ = [
    "PARAM_TYPES", "RESERVED_CHARS", "Choice", "Discrete", "Float", "Int", "NumericRange", "Ordinal", "Param",
    "check_token", "param_from_config",
]

# Characters that structure architecture strings; formatted option values may not contain them.
RESERVED_CHARS = set(";=()/,|~+")
_MAX_INT_VALUES = 2**62  # numpy's integer sampling is limited to int64


PARAM_TYPES: dict[str, type[Param]] = {}
"""Parameter classes by ``kind`` (filled as the classes are defined)."""

_GRID_SIZE = 32  # the decisions of a number parameter with more values range over this many grid points


@dataclass(frozen=True)
class NumericRange:
    """The range of a number parameter, for strategies that search numbers directly (e.g. Optuna's range
    distributions): ``[low, high]``, on a log scale or not, integers on a grid of ``step`` or reals."""

    low: float
    high: float
    log: bool = False
    integer: bool = False
    step: int = 1


def check_token(text: str, what: str) -> None:
    """Raise ConfigError unless ``text`` can appear in an architecture string (non-empty, no surrounding
    spaces, none of :data:`RESERVED_CHARS`); ``what`` names it in the message."""
    bad = sorted(set(text) & RESERVED_CHARS)
    if bad or text != text.strip() or not text:
        raise ConfigError(
            f"{what} {text!r} cannot appear in an architecture string "
            f"(it is empty, has surrounding spaces, or contains {''.join(bad)!r}); rename it"
        )


class Param:
    """Base class of every parameter.

    Args:
        when: optional condition ``{parent_name: allowed_values}``; the parameter is active only when every
            named parent (declared earlier in the space) takes one of the allowed values. An inactive
            parameter has the value ``None``.
    """

    kind: str = "param"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if kind is not None:
            if kind in PARAM_TYPES and PARAM_TYPES[kind].__qualname__ != cls.__qualname__:
                raise ConfigError(f"a parameter kind {kind!r} is already defined by {PARAM_TYPES[kind].__name__}; "
                                  "give the new class another kind")
            PARAM_TYPES[kind] = cls

    def __init__(self, when: Mapping[str, Any] | None = None) -> None:
        self.when: dict[str, tuple] = {}
        if when is not None and not isinstance(when, Mapping):
            raise ConfigError(f"when= must be a mapping {{parent name: allowed values}}, got {when!r}")
        for parent, allowed in (when or {}).items():
            if isinstance(allowed, (list, tuple, set, frozenset)):
                allowed = tuple(allowed)
            else:
                allowed = (allowed,)
            if not allowed:
                raise ConfigError(f"condition on {parent!r} lists no allowed values; give at least one")
            self.when[str(parent)] = allowed

    # --- to be provided by subclasses -------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def neighbors(self, value: Any) -> list[Any]:
        raise NotImplementedError

    def validate(self, value: Any) -> Any:
        """Return the canonical form of ``value`` or raise :class:`InvalidArchitectureError`."""
        raise NotImplementedError

    def size(self) -> float:
        """Number of distinct values (``math.inf`` for continuous parameters)."""
        raise NotImplementedError

    def values(self) -> Iterator[Any]:
        raise NotImplementedError

    def format(self, value: Any) -> str:
        raise NotImplementedError

    def parse(self, text: str) -> Any:
        raise NotImplementedError

    def encode(self, value: Any, kind: str = "onehot") -> np.ndarray:
        raise NotImplementedError

    def encoding_size(self, kind: str = "onehot") -> int:
        raise NotImplementedError

    def _config(self) -> dict:
        raise NotImplementedError

    # --- shared behaviour -------------------------------------------------------------------------
    def mutate(self, value: Any, rng: np.random.Generator) -> Any:
        """Return a random neighbour of ``value`` (a different value)."""
        options = self.neighbors(value)
        if not options:
            return value
        return options[int(rng.integers(len(options)))]

    def crossover(self, a: Any, b: Any, rng: np.random.Generator) -> Any:
        return a if rng.random() < 0.5 else b

    def canonical(self, value: Any) -> Any:
        """Functional form of ``value``: equal for values that compute the same function."""
        return value

    def n_dims(self) -> int:
        """How many independent decisions the parameter holds (weights the choice of what to mutate)."""
        return 1

    def initial_value(self) -> Any:
        """The value a parameter takes when a neighbouring move makes it active: its first value."""
        return next(iter(self.values()))

    def decisions(self) -> Decisions:
        """How a value is decided one discrete decision at a time (used by sequential strategies and the Optuna
        adapter). Default: the values decided position by position (enumerated when there are at most
        100,000, else a fixed sample of them); parameters with structure (cells, stages) override it."""
        return enumerated_decisions(self)

    def numeric_range(self) -> NumericRange | None:
        """The range of a number parameter (``None`` for the others)."""
        return None

    def encoding_kind(self, kind: str) -> str:
        """Which of the parameter's encodings serves a space-level encoding ``kind`` (``"onehot"``, ``"path"``,
        ``"functional"``): parameters without a functional encoding use their path encoding for it."""
        return "path" if kind == "functional" else kind

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Param:
        """Build the parameter from its :meth:`to_config` settings (without ``type``).

        Raises:
            ConfigError: bad settings.
        """
        try:
            return cls(**cfg)
        except TypeError as e:
            raise ConfigError(f"bad settings for a {cls.kind} parameter: {e}") from None

    def is_finite(self) -> bool:
        return math.isfinite(self.size())

    def to_config(self) -> dict:
        cfg = {"type": self.kind, **self._config()}
        if self.when:
            cfg["when"] = {k: list(v) for k, v in self.when.items()}
        return cfg

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_config() == self.to_config()

    def __hash__(self) -> int:
        return hash(repr(self.to_config()))

    def __repr__(self) -> str:
        cfg = self.to_config()
        cfg.pop("type")
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in cfg.items())})"


class Discrete(Param):
    """Base of the parameters that take one of a finite list of options, each formatted to a distinct token
    (:class:`Choice`, :class:`Ordinal`)."""

    def __init__(self, options: Sequence[Any], when: Mapping[str, Any] | None = None) -> None:
        super().__init__(when)
        if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):
            raise ConfigError(f"{type(self).__name__} needs a list of options, got {options!r}")
        # numpy scalars become Python ones (np.float64's repr would leak into the string form)
        self.options: tuple = tuple(o.item() if isinstance(o, np.generic) else o for o in options)
        if not self.options:
            raise ConfigError(f"{type(self).__name__} needs at least one option")
        for o in self.options:
            if o is None or (isinstance(o, float) and math.isnan(o)):
                raise ConfigError(
                    f"{type(self).__name__} option {o!r} is not allowed (None marks an inactive parameter and NaN "
                    "equals nothing); use a name such as 'off'"
                )
            try:
                hash(o)
            except TypeError:
                raise ConfigError(
                    f"{type(self).__name__} options must be scalars (names or numbers), got {o!r}"
                ) from None
        tokens = [self._fmt(o) for o in self.options]
        for t in tokens:
            check_token(t, "option")
        if len(set(tokens)) != len(tokens) or len(set(self.options)) != len(self.options):
            # equal values (1 and 1.0, 0.0 and -0.0, 1 and True) would give architectures that compare equal
            raise ConfigError(f"{type(self).__name__} options {list(self.options)!r} are not distinct")
        self._by_token = dict(zip(tokens, self.options))
        self._index = {self._key(o): i for i, o in enumerate(self.options)}

    @staticmethod
    def _fmt(option: Any) -> str:
        return repr(option) if isinstance(option, float) else str(option)

    @staticmethod
    def _key(option: Any) -> tuple:
        # 1 == 1.0 == True in Python; keep types apart so that True does not pass for the option 1.
        return (type(option).__name__, option)

    def index(self, value: Any) -> int:
        try:
            return self._index[(type(value).__name__, value)]  # the common case: an exact option
        except (KeyError, TypeError):
            pass
        if isinstance(value, np.generic):  # e.g. np.int64(3) from an array
            value = value.item()
        try:
            i = self._index.get(self._key(value))
        except TypeError:  # unhashable, e.g. a list
            raise InvalidArchitectureError(f"{value!r} is not one of {list(self.options)!r}") from None
        if i is None:
            # accept an int for an equal float option and vice versa (e.g. from TOML), never bool
            for j, o in enumerate(self.options):
                if not isinstance(value, bool) and not isinstance(o, bool) and isinstance(value, (int, float)) \
                        and isinstance(o, (int, float)) and value == o:
                    return j
            raise InvalidArchitectureError(f"{value!r} is not one of {list(self.options)!r}")
        return i

    def sample(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.integers(len(self.options)))]

    def validate(self, value: Any) -> Any:
        return self.options[self.index(value)]

    def size(self) -> float:
        return len(self.options)

    def values(self) -> Iterator[Any]:
        return iter(self.options)

    def format(self, value: Any) -> str:
        return self._fmt(value)

    def parse(self, text: str) -> Any:
        try:
            return self._by_token[text.strip()]
        except KeyError:
            raise InvalidArchitectureError(
                f"{text!r} is not one of {[self._fmt(o) for o in self.options]}"
            ) from None

    def encode(self, value: Any, kind: str = "onehot") -> np.ndarray:
        out = np.zeros(len(self.options))
        if value is not None:
            out[self.index(value)] = 1.0
        return out

    def encoding_size(self, kind: str = "onehot") -> int:
        return len(self.options)

    def _config(self) -> dict:
        return {"options": list(self.options)}

    def decisions(self) -> Decisions:
        """One decision over the options."""
        return SequenceDecisions(self.options, self.format, ordered=isinstance(self, Ordinal))


class Choice(Discrete):
    """An unordered categorical choice; a mutation jumps to any other option."""

    kind = "choice"

    def neighbors(self, value: Any) -> list[Any]:
        i = self.index(value)
        return [o for j, o in enumerate(self.options) if j != i]


class Ordinal(Discrete):
    """An ordered choice (e.g. depths 2 < 3 < 4); a mutation moves to an adjacent option."""

    kind = "ordinal"

    def neighbors(self, value: Any) -> list[Any]:
        i = self.index(value)
        return [self.options[j] for j in (i - 1, i + 1) if 0 <= j < len(self.options)]

    def encode(self, value: Any, kind: str = "onehot") -> np.ndarray:
        # thermometer code keeps the order visible to linear and tree models
        out = np.zeros(len(self.options))
        if value is not None:
            out[: self.index(value) + 1] = 1.0
        return out


class Int(Param):
    """An integer in ``[low, high]`` (inclusive) on a grid of ``step``."""

    kind = "int"

    def __init__(self, low: int, high: int, step: int = 1, when: Mapping[str, Any] | None = None) -> None:
        super().__init__(when)
        for name, v in (("low", low), ("high", high), ("step", step)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ConfigError(f"Int {name} must be an integer, got {v!r}")
        if step < 1:
            raise ConfigError(f"Int step must be >= 1, got {step}")
        if high < low:
            raise ConfigError(f"Int needs low <= high, got low={low}, high={high}")
        self.low, self.high, self.step = int(low), int(high), int(step)
        self._n = (self.high - self.low) // self.step + 1
        if self._n > _MAX_INT_VALUES:
            raise ConfigError(
                f"Int [{low}, {high}] with step {step} has {self._n} values, more than 2**62; use a coarser step or "
                "a Float(..., log=True)"
            )

    def sample(self, rng: np.random.Generator) -> int:
        return self.low + self.step * int(rng.integers(self._n))

    def neighbors(self, value: Any) -> list[int]:
        v = self.validate(value)
        return [x for x in (v - self.step, v + self.step) if self.low <= x <= self.high]

    def validate(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)) or (
            isinstance(value, (float, np.floating)) and (not math.isfinite(value) or value != int(value))
        ):
            raise InvalidArchitectureError(f"{value!r} is not an integer")
        v = int(value)
        if not (self.low <= v <= self.high) or (v - self.low) % self.step:
            raise InvalidArchitectureError(f"{v} is not in [{self.low}, {self.high}] with step {self.step}")
        return v

    def size(self) -> float:
        return self._n

    def values(self) -> Iterator[int]:
        return iter(range(self.low, self.high + 1, self.step))

    def format(self, value: Any) -> str:
        return str(int(value))

    def parse(self, text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise InvalidArchitectureError(f"{text!r} is not an integer") from None
        return self.validate(value)

    def encode(self, value: Any, kind: str = "onehot") -> np.ndarray:
        if value is None:
            return np.zeros(1)
        return np.array([(int(value) - self.low) / max(self.high - self.low, 1)])

    def encoding_size(self, kind: str = "onehot") -> int:
        return 1

    def _config(self) -> dict:
        return {"low": self.low, "high": self.high, "step": self.step}

    def decisions(self) -> Decisions:
        """One ordered decision over the values, or over 32 evenly spaced ones when there are more."""
        if self._n <= _GRID_SIZE:
            return SequenceDecisions(list(self.values()), self.format, ordered=True)
        ks = sorted({round(k * (self._n - 1) / (_GRID_SIZE - 1)) for k in range(_GRID_SIZE)})
        return SequenceDecisions([self.low + self.step * k for k in ks], self.format, ordered=True, exact=False)

    def numeric_range(self) -> NumericRange:
        return NumericRange(self.low, self.high, integer=True, step=self.step)


class Float(Param):
    """A real number in ``[low, high]``, optionally on a log scale."""

    kind = "float"

    def __init__(self, low: float, high: float, log: bool = False, when: Mapping[str, Any] | None = None) -> None:
        super().__init__(when)
        try:
            low, high = float(low), float(high)
        except (TypeError, ValueError):
            raise ConfigError(f"Float bounds must be numbers, got low={low!r}, high={high!r}") from None
        if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
            raise ConfigError(f"Float needs finite low < high, got low={low}, high={high}")
        if log and low <= 0:
            raise ConfigError(f"a log-scale Float needs low > 0, got {low}")
        self.low, self.high, self.log = low, high, bool(log)

    def _to_unit(self, v: float) -> float:
        if self.log:
            return (math.log(v) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (v - self.low) / (self.high - self.low)

    def _from_unit(self, u: float) -> float:
        u = min(max(u, 0.0), 1.0)
        if self.log:
            v = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            v = self.low + u * (self.high - self.low)
        return float(min(max(v, self.low), self.high))  # rounding must not leave the bounds

    def sample(self, rng: np.random.Generator) -> float:
        return self._from_unit(float(rng.random()))

    def initial_value(self) -> float:
        """The midpoint (geometric for a log scale)."""
        return self._from_unit(0.5)

    def mutate(self, value: Any, rng: np.random.Generator) -> float:
        u = self._to_unit(self.validate(value))
        for _ in range(100):
            new = self._from_unit(u + float(rng.normal(0.0, 0.1)))
            if new != value:
                return new
        return self._from_unit(1.0 - u)

    def neighbors(self, value: Any) -> list[float]:
        u = self._to_unit(self.validate(value))
        out = []
        for du in (-0.1, 0.1):
            new = self._from_unit(u + du)
            if new != value and new not in out:
                out.append(new)
        return out

    def crossover(self, a: Any, b: Any, rng: np.random.Generator) -> float:
        if a == b:  # the blend below would round to a neighbouring float
            return a
        w = float(rng.random())
        return self._from_unit(w * self._to_unit(a) + (1 - w) * self._to_unit(b))

    def validate(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise InvalidArchitectureError(f"{value!r} is not a number")
        try:
            v = float(value)
        except OverflowError:  # an int beyond the float range
            raise InvalidArchitectureError(f"{value!r} is not in [{self.low}, {self.high}]") from None
        if not (self.low <= v <= self.high):
            raise InvalidArchitectureError(f"{v} is not in [{self.low}, {self.high}]")
        return v

    def size(self) -> float:
        return math.inf

    def values(self) -> Iterator[float]:
        raise InvalidArchitectureError("a Float parameter has infinitely many values; it cannot be enumerated")

    def format(self, value: Any) -> str:
        return repr(float(value))

    def parse(self, text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise InvalidArchitectureError(f"{text!r} is not a number") from None
        return self.validate(value)

    def encode(self, value: Any, kind: str = "onehot") -> np.ndarray:
        return np.array([0.0 if value is None else self._to_unit(value)])

    def encoding_size(self, kind: str = "onehot") -> int:
        return 1

    def _config(self) -> dict:
        return {"low": self.low, "high": self.high, "log": self.log}

    def decisions(self) -> Decisions:
        """One ordered decision over 32 grid points (log-spaced on a log scale)."""
        u = np.linspace(0.0, 1.0, _GRID_SIZE)
        if self.log:
            pts = np.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            pts = self.low + u * (self.high - self.low)
        grid = sorted({float(min(max(x, self.low), self.high)) for x in pts})
        return SequenceDecisions(grid, self.format, ordered=True, exact=False)

    def numeric_range(self) -> NumericRange:
        return NumericRange(self.low, self.high, log=self.log)


def param_from_config(cfg: Mapping[str, Any]) -> Param:
    """Rebuild a parameter from :meth:`Param.to_config` output (its ``type`` names the class's ``kind``).

    Raises:
        ConfigError: not a mapping, an unknown type, or bad settings.
    """
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"a parameter's config must be a mapping such as {{'type': 'int', 'low': 0, 'high': 3}}, "
                          f"got {cfg!r}")
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    if not isinstance(kind, str) or kind not in PARAM_TYPES:
        raise ConfigError(f"unknown parameter type {kind!r}; use one of {sorted(PARAM_TYPES)}")
    return PARAM_TYPES[kind].from_config(cfg)
