"""How a parameter's value is decided, one discrete decision at a time.

Every parameter offers :meth:`~archscout.space.Param.decisions`: a :class:`Decisions` object that builds a value
by a sequence of categorical decisions (*slots*), define-by-run (which slots come next may depend on earlier
choices, e.g. a stage's depth), and turns a value back into its choices. Sequential strategies (MCTS,
REINFORCE) walk these decisions; the Optuna adapter asks one Optuna parameter per slot. A new parameter type
brings its own decisions by overriding ``decisions()``; the default enumerates its values.

* :class:`SequenceDecisions`: a finite list of values, decided position by position (a value that is a
  tuple is flattened into its elements), with only the options that continue to a listed value allowed;
* :class:`ProductDecisions`: independent slots, the value being the tuple of their options (cell edges).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, InvalidArchitectureError

if TYPE_CHECKING:
    from .params import Param

__all__ = ["ENUM_LIMIT", "POOL_SIZE", "Ask", "Decisions", "ProductDecisions", "SequenceDecisions", "decisions_of",
           "enumerated_decisions", "sampled_values"]

ENUM_LIMIT = 100_000
"""A parameter without decisions of its own is enumerated when it has at most this many values."""
POOL_SIZE = 256
"""Beyond :data:`ENUM_LIMIT`, its decisions range over this many values sampled once with a fixed seed."""
_POOL_SEED = 20240501

Ask = tuple[int, int, "tuple[int, ...] | None"]
"""What a decision generator yields: (local slot, number of options, allowed option indices or None for all)."""

_END = "\x00end"  # the "sequence stops here" option of a position


class Decisions:
    """Base class: a parameter's values as a sequence of categorical decisions.

    Attributes:
        sizes: ``sizes[k]`` is the number of options of local slot ``k``.
        ordered: ``ordered[k]``: the options of slot ``k`` are ordered (thermometer-coded by value models).
        exact: every value of the parameter has a decision path (False for a grid or a sample of the values).
    """

    sizes: list[int]
    ordered: list[bool]
    exact: bool = True

    def build(self) -> Generator[Ask, int, Any]:
        """A generator that yields ``(slot, n_options, allowed)`` for each decision, receives the chosen option
        index and finally returns the value."""
        raise NotImplementedError

    def decode(self, value: Any) -> list[tuple[int, int]] | None:
        """The ``(slot, option)`` choices that build ``value`` (``None`` when it has no decision path)."""
        raise NotImplementedError

    def label(self, slot: int) -> str:
        """A suffix naming slot ``slot`` after the parameter's name (e.g. ``"[0~1]"``, ``"[2].depth"``; ``""``
        for the single slot of a scalar parameter)."""
        return "" if len(self.sizes) == 1 else f"[{slot}]"

    def tokens(self, slot: int) -> list[str]:
        """Distinct readable names of slot ``slot``'s options, in option order."""
        return [str(i) for i in range(self.sizes[slot])]

    def always(self) -> list[int]:
        """The slots every walk decides (a sampler may decide them up front), in order."""
        return []


class ProductDecisions(Decisions):
    """Independent slots: slot ``k`` chooses among ``options[k]``; the value is the tuple of the choices."""

    def __init__(self, options: Sequence[Sequence[Any]], labels: Sequence[str], fmt: Callable[[Any], str] = str,
                 ordered: bool = False) -> None:
        self.options = [tuple(o) for o in options]
        self._labels = list(labels)
        self._fmt = fmt
        self._index = [{o: i for i, o in enumerate(opts)} for opts in self.options]
        self.sizes = [len(o) for o in self.options]
        self.ordered = [ordered] * len(self.options)

    def build(self) -> Generator[Ask, int, Any]:
        out = []
        for k, opts in enumerate(self.options):
            out.append(opts[(yield k, len(opts), None) if len(opts) > 1 else 0])
        return tuple(out)

    def decode(self, value: Any) -> list[tuple[int, int]] | None:
        try:
            return [(k, self._index[k][v]) for k, v in enumerate(value) if self.sizes[k] > 1]
        except (KeyError, TypeError, IndexError):
            return None

    def label(self, slot: int) -> str:
        return self._labels[slot]

    def tokens(self, slot: int) -> list[str]:
        return [self._fmt(o) for o in self.options[slot]]

    def always(self) -> list[int]:
        return [k for k, n in enumerate(self.sizes) if n > 1]


class SequenceDecisions(Decisions):
    """A finite list of values decided position by position.

    A value that is a (nested) tuple or list is flattened into its scalar elements, so a variable-length
    sequence (e.g. a macro skeleton) or a pair such as ``(link, ops)`` gets one decision per position, with a
    stop option where sequences may end; a scalar value is one decision (its option names are ``fmt(value)``).
    Each position is one slot over the elements seen there, in order of first appearance; at every step only
    options that continue to some listed value are allowed, so every walk ends in a valid value.

    Args:
        values: the values (distinct).
        fmt: how a scalar value is written (its option name).
        flatten: decide a tuple value element by element (else as one whole).
        ordered: the options are ordered (only meaningful for a single position).
        labels: ``{position: label suffix}`` naming the slots (default ``"[position]"``, or ``""`` for one slot).
        exact: ``values`` are all the parameter's values.
    """

    def __init__(self, values: Sequence[Any], fmt: Callable[[Any], str], flatten: bool = True,
                 ordered: bool = False, labels: Mapping[int, str] | None = None, exact: bool = True) -> None:
        self._fmt = fmt
        self._flatten = flatten
        self._labels = dict(labels or {})
        self.exact = exact
        seqs = [self._keys(v) for v in values]
        length = max(len(k) for k in seqs)
        self._min_len = min(len(k) for k in seqs)
        self._opts: list[list[str]] = [[] for _ in range(length + 1)]
        self._names: list[list[str]] = [[] for _ in range(length + 1)]
        self._index: list[dict[str, int]] = [{} for _ in range(length + 1)]
        for v, keys in zip(values, seqs):
            for d, (key, name) in enumerate(zip([*keys, _END], [*self._display(v, len(keys)), "<end>"])):
                if key not in self._index[d]:
                    self._index[d][key] = len(self._opts[d])
                    self._opts[d].append(key)
                    self._names[d].append(name)
        n = [len(o) for o in self._opts]
        mult = [1] * (length + 1)
        for d in range(length - 1, -1, -1):
            mult[d] = mult[d + 1] * n[d + 1]
        if mult[0] * n[0] >= 2**62:
            raise OverflowError("too many position combinations for int64 codes")
        self._n = n
        self._mult = mult
        self._values: dict[int, Any] = {}
        for keys, v in zip(seqs, values):
            self._values.setdefault(self._code(keys), v)
        self._codes = np.array(sorted(self._values), dtype=np.int64)
        self._masked = len(self._values) < math.prod(n)
        self._slot = [-1] * (length + 1)
        self.sizes = []
        for d in range(length + 1):
            if n[d] > 1:
                self._slot[d] = len(self.sizes)
                self.sizes.append(n[d])
        self.ordered = [ordered and length == 1] * len(self.sizes)
        self._allowed_cache: dict[tuple[int, int], tuple[int, ...]] = {}
        self._pos = {s: d for d, s in enumerate(self._slot) if s >= 0}

    def _keys(self, value: Any) -> tuple[str, ...]:
        if self._flatten and isinstance(value, (tuple, list)):
            return tuple(k for k, _ in self._flat(value))
        return (self._fmt(value),)

    def _display(self, value: Any, n: int) -> list[str]:
        """Readable names of ``value``'s keys (the element's ``str`` for a flattened value)."""
        if self._flatten and isinstance(value, (tuple, list)):
            return [name for _, name in self._flat(value)]
        return [self._fmt(value)]

    @staticmethod
    def _flat(value: Any) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        stack = [iter(value)]
        while stack:
            for e in stack[-1]:
                if isinstance(e, (tuple, list)):
                    out.append(("(", "("))  # nesting is part of the key, so flattened values stay distinct
                    stack.append(iter(e))
                    break
                out.append((repr(e), str(e)))
            else:
                stack.pop()
                if stack:
                    out.append((")", ")"))
        return out

    def _code(self, keys: Sequence[str]) -> int:
        return sum(self._index[d][k] * self._mult[d] for d, k in enumerate([*keys, _END]))

    def _allowed(self, lo: int, d: int) -> tuple[int, ...]:
        """Options at position ``d`` that continue the prefix coded ``lo`` to a listed value (memoised)."""
        out = self._allowed_cache.get((lo, d))
        if out is None:
            bounds = lo + np.arange(len(self._opts[d]) + 1, dtype=np.int64) * self._mult[d]
            pos = np.searchsorted(self._codes, bounds)
            out = self._allowed_cache[(lo, d)] = tuple(int(i) for i in np.flatnonzero(np.diff(pos) > 0))
        return out

    def build(self) -> Generator[Ask, int, Any]:
        lo = 0
        for d, opts in enumerate(self._opts):
            allowed = self._allowed(lo, d) if self._masked else None
            if self._slot[d] < 0:
                i = 0
            elif allowed is not None and len(allowed) == 1:
                i = allowed[0]
            else:
                i = yield self._slot[d], len(opts), allowed
            lo += i * self._mult[d]
            if opts[i] == _END:
                break
        return self._values[lo]

    def decode(self, value: Any) -> list[tuple[int, int]] | None:
        try:
            keys = [*self._keys(value), _END]
        except TypeError:
            return None
        if len(keys) > len(self._opts):
            return None
        idx = [self._index[d].get(k) for d, k in enumerate(keys)]
        if any(i is None for i in idx):
            return None
        gen = self.build()
        out: list[tuple[int, int]] = []
        try:
            slot, _n, _allowed = next(gen)
            while True:
                i = idx[self._pos[slot]]
                out.append((slot, i))  # type: ignore[arg-type]
                slot, _n, _allowed = gen.send(i)  # type: ignore[arg-type]
        except StopIteration:
            pass
        except KeyError:  # the path leaves the listed values
            return None
        return out

    def label(self, slot: int) -> str:
        d = self._pos[slot]
        if d in self._labels:
            return self._labels[d]
        return "" if len(self.sizes) == 1 else f"[{d}]"

    def tokens(self, slot: int) -> list[str]:
        names = self._names[self._pos[slot]]
        return names if len(set(names)) == len(names) else list(self._opts[self._pos[slot]])

    def always(self) -> list[int]:
        """Slots at positions every value reaches, where no earlier choice leaves a single option."""
        out = []
        for d, slot in enumerate(self._slot):
            if slot < 0 or d > self._min_len:
                continue
            if self._masked:
                digits = (self._codes // self._mult[d]) % self._n[d]
                prefix = self._codes // (self._mult[d] * self._n[d])
                pairs = np.unique(prefix * self._n[d] + digits)
                if np.bincount(np.unique(pairs // self._n[d], return_inverse=True)[1]).min() < 2:
                    continue
            out.append(slot)
        return out


def sampled_values(p: Param, n: int = POOL_SIZE) -> list[Any]:
    """Up to ``n`` distinct values of ``p``, sampled with a fixed seed."""
    rng = np.random.default_rng(_POOL_SEED)
    pool: dict[str, Any] = {}
    for _ in range(4 * n):
        v = p.sample(rng)
        pool.setdefault(p.format(v), v)
        if len(pool) >= n:
            break
    return list(pool.values())


def enumerated_decisions(p: Param, labels: Mapping[int, str] | None = None) -> SequenceDecisions:
    """The default decisions of a parameter: its values decided position by position when it has at most
    :data:`ENUM_LIMIT` of them, else :data:`POOL_SIZE` of them sampled once (not exact).

    Raises:
        ConfigError: the parameter can neither enumerate nor sample its values.
    """
    values: list[Any] | None = None
    if p.is_finite() and p.size() <= ENUM_LIMIT:
        try:
            values = list(p.values())
        except (NotImplementedError, InvalidArchitectureError):
            values = None
    exact = values is not None
    if values is None:
        try:
            values = sampled_values(p)
        except NotImplementedError:
            raise ConfigError(f"{p!r} has no decisions: it neither enumerates nor samples its values; give its "
                              "class a decisions() method") from None
    try:
        return SequenceDecisions(values, p.format, labels=labels, exact=exact)
    except OverflowError:  # positions multiply past int64 codes: decide each value as one whole
        return SequenceDecisions(values, p.format, flatten=False, exact=exact)


@functools.lru_cache(maxsize=64)
def decisions_of(p: Param) -> Decisions:
    """``p.decisions()``, cached (parameters are immutable and compare by their settings)."""
    return p.decisions()
