"""Decision sequences over any space, shared by the sequential strategies (MCTS, REINFORCE).

Every architecture of a space is reached by a sequence of discrete decisions (:class:`DecisionSpace`):
one per edge of a cell, one per stage depth and per layer choice of a stages parameter, one per choice,
and for other parameters one decision over their enumerated values (split position by position when the
values are sequences), over a grid (floats, large integer ranges) or over a fixed sample of values.
Also: rank normalisation of scores and a closed-form ridge fit run on one BLAS thread.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidArchitectureError
from ..space import Architecture, Cell, Float, Int, Ordinal, Space, Stages
from ..space.params import Param, Discrete
from .surrogate import one_blas_thread

__all__ = ["DecisionSpace", "Step", "normalized_scores", "fit_ridge"]

# A parameter without its own decision breakdown is enumerated when it has at most this many values;
# beyond, its decisions range over a grid (numbers) or over _POOL_SIZE values sampled once (fixed seed).
_ENUM_LIMIT = 100_000
_POOL_SIZE = 256
_GRID_SIZE = 32
_POOL_SEED = 20240501

# One decision of a walk: (slot, chosen option index, allowed option indices or None when all are).
Step = tuple[int, int, "tuple[int, ...] | None"]
# What a parameter's decision generator yields: (local slot, number of options, allowed indices or None).
_Ask = tuple[int, int, "tuple[int, ...] | None"]


class _Codec:
    """How one parameter's value is decided: a generator of decisions, and the inverse (value -> choices).

    ``sizes[k]`` is the number of options of local slot ``k``; ``ordered[k]`` says whether they are ordered
    (thermometer-coded for the value model)."""

    sizes: list[int]
    ordered: list[bool]

    def build(self) -> Generator[_Ask, int, Any]:
        raise NotImplementedError

    def decode(self, value: Any) -> list[tuple[int, int]] | None:
        raise NotImplementedError


_END = "\x00end"  # the "sequence stops here" option of a position


class _SequenceCodec(_Codec):
    """A finite list of values decided position by position.

    A value that is a (nested) tuple or list is flattened into its scalar elements, so a variable-length
    sequence (e.g. a macro skeleton) or a pair such as ``(link, ops)`` gets one decision per position,
    with a stop option where sequences may end; a scalar value is one decision. Each position is one slot
    over the elements seen there; at every step only options that continue to some listed value are
    allowed, so every walk ends in a valid value.
    """

    def __init__(self, values: Sequence[Any], fmt: Callable[[Any], str], flatten: bool = True,
                 ordered: bool = False) -> None:
        self._fmt = fmt
        self._flatten = flatten
        seqs = [self._keys(v) for v in values]
        length = max(len(k) for k in seqs)
        self._opts: list[list[str]] = [[] for _ in range(length + 1)]
        self._index: list[dict[str, int]] = [{} for _ in range(length + 1)]
        for keys in seqs:
            for d, key in enumerate(list(keys) + [_END]):
                if key not in self._index[d]:
                    self._index[d][key] = len(self._opts[d])
                    self._opts[d].append(key)
        n = [len(o) for o in self._opts]
        mult = [1] * (length + 1)
        for d in range(length - 1, -1, -1):
            mult[d] = mult[d + 1] * n[d + 1]
        if mult[0] * n[0] >= 2**62:
            raise OverflowError("too many position combinations for int64 codes")
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
            out: list[str] = []
            stack = [iter(value)]
            while stack:
                for e in stack[-1]:
                    if isinstance(e, (tuple, list)):
                        out.append("(")  # nesting is part of the key, so flattened values stay distinct
                        stack.append(iter(e))
                        break
                    out.append(repr(e))
                else:
                    stack.pop()
                    if stack:
                        out.append(")")
            return tuple(out)
        return (self._fmt(value),)

    def _code(self, keys: Sequence[str]) -> int:
        return sum(self._index[d][k] * self._mult[d] for d, k in enumerate(list(keys) + [_END]))

    def _allowed(self, lo: int, d: int) -> tuple[int, ...]:
        """Options at position ``d`` that continue the prefix coded ``lo`` to a listed value (memoised)."""
        out = self._allowed_cache.get((lo, d))
        if out is None:
            bounds = lo + np.arange(len(self._opts[d]) + 1, dtype=np.int64) * self._mult[d]
            pos = np.searchsorted(self._codes, bounds)
            out = self._allowed_cache[(lo, d)] = tuple(int(i) for i in np.flatnonzero(np.diff(pos) > 0))
        return out

    def build(self) -> Generator[_Ask, int, Any]:
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
        keys = list(self._keys(value)) + [_END]
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
                out.append((slot, i))
                slot, _n, _allowed = gen.send(i)
        except StopIteration:
            pass
        except KeyError:  # the path leaves the listed values
            return None
        return out


class _CellCodec(_Codec):
    """One decision per edge over the cell's ops."""

    def __init__(self, cell: Cell) -> None:
        self.ops = cell.ops
        self._index = {o: k for k, o in enumerate(cell.ops)}
        self.sizes = [len(cell.ops)] * len(cell.edges)
        self.ordered = [False] * len(cell.edges)

    def build(self) -> Generator[_Ask, int, Any]:
        n = len(self.ops)
        out = []
        for e in range(len(self.sizes)):
            out.append(self.ops[(yield e, n, None) if n > 1 else 0])
        return tuple(out)

    def decode(self, value: Any) -> list[tuple[int, int]] | None:
        if len(self.ops) < 2:
            return []
        try:
            return [(e, self._index[o]) for e, o in enumerate(value)]
        except KeyError:
            return None


class _StagesCodec(_Codec):
    """Per stage: its depth, then each present layer's choices (slots of absent layers stay unused)."""

    def __init__(self, stages: Stages) -> None:
        self.p = stages
        self.keys = list(stages.layer.values())
        self._stride = 1 + stages.max_depth * len(self.keys)
        sizes, ordered = [], []
        for _ in range(stages.n):
            sizes.append(len(stages.depth.options))
            ordered.append(True)
            sizes.extend([len(k.options) for k in self.keys] * stages.max_depth)
            ordered.extend([isinstance(k, Ordinal) for k in self.keys] * stages.max_depth)
        self.sizes = sizes
        self.ordered = ordered

    def _layer_slot(self, s: int, li: int, k: int) -> int:
        return s * self._stride + 1 + li * len(self.keys) + k

    def build(self) -> Generator[_Ask, int, Any]:
        out = []
        n_depth = len(self.p.depth.options)
        for s in range(self.p.n):
            depth = self.p.depth.options[(yield s * self._stride, n_depth, None) if n_depth > 1 else 0]
            layers = []
            for li in range(depth):
                layer = []
                for k, q in enumerate(self.keys):
                    n = len(q.options)
                    layer.append(q.options[(yield self._layer_slot(s, li, k), n, None) if n > 1 else 0])
                layers.append(tuple(layer))
            out.append(tuple(layers))
        return tuple(out)

    def decode(self, value: Any) -> list[tuple[int, int]] | None:
        out: list[tuple[int, int]] = []
        for s, stage in enumerate(value):
            if len(self.p.depth.options) > 1:
                out.append((s * self._stride, self.p.depth.index(len(stage))))
            for li, layer in enumerate(stage):
                for k, (q, v) in enumerate(zip(self.keys, layer)):
                    if len(q.options) > 1:
                        out.append((self._layer_slot(s, li, k), q.index(v)))
        return out


def _grid(p: Int | Float) -> list[Any]:
    """Up to _GRID_SIZE evenly spaced values of a number parameter (log-spaced for a log-scale float)."""
    if isinstance(p, Int):
        n = int(p.size())
        ks = sorted({round(k * (n - 1) / (_GRID_SIZE - 1)) for k in range(_GRID_SIZE)})
        return [p.low + p.step * k for k in ks]
    u = np.linspace(0.0, 1.0, _GRID_SIZE)
    if p.log:
        pts = np.exp(math.log(p.low) + u * (math.log(p.high) - math.log(p.low)))
    else:
        pts = p.low + u * (p.high - p.low)
    return sorted({float(min(max(x, p.low), p.high)) for x in pts})


@functools.lru_cache(maxsize=32)
def _codec_for(p: Param) -> _Codec:
    """The decisions of a parameter (cached: parameters are immutable and compare by their settings)."""
    if isinstance(p, Cell):
        return _CellCodec(p)
    if isinstance(p, Stages):
        return _StagesCodec(p)
    if isinstance(p, Discrete):
        return _SequenceCodec(p.options, p.format, ordered=isinstance(p, Ordinal))
    if isinstance(p, (Int, Float)):
        return _SequenceCodec(list(p.values()) if p.size() <= _GRID_SIZE else _grid(p), p.format, ordered=True)
    values: list[Any] | None = None
    if p.is_finite() and p.size() <= _ENUM_LIMIT:
        try:
            values = list(p.values())
        except (NotImplementedError, InvalidArchitectureError):
            values = None
    if values is None:
        values = _pool(p)
    try:
        return _SequenceCodec(values, p.format)
    except OverflowError:  # positions multiply past int64 codes: decide each value as one whole
        return _SequenceCodec(values, p.format, flatten=False)


def _pool(p: Param) -> list[Any]:
    """Up to _POOL_SIZE distinct values of ``p``, sampled with a fixed seed."""
    rng = np.random.default_rng(_POOL_SEED)
    pool: dict[str, Any] = {}
    for _ in range(4 * _POOL_SIZE):
        v = p.sample(rng)
        pool.setdefault(p.format(v), v)
        if len(pool) >= _POOL_SIZE:
            break
    return list(pool.values())


class DecisionSpace:
    """The architectures of a space as a sequence of discrete decisions (the space's decision tree).

    Each decision has a *slot* (an integer that names it, e.g. "edge 3 of the cell", "kernel of layer 2
    of stage 1" or "module 4 of the skeleton") with ``sizes[slot]`` options, of which a step may allow
    only some (so that every walk ends in a valid architecture). Which slots come next may depend on
    earlier choices (conditions, stage depths, sequence lengths). Decisions with a single option are
    skipped.

    Every architecture of a space built from choices, ordinals, cells, stages, small integer ranges and
    parameters with up to 100,000 values has a decision path; for a float, a large integer range or a
    larger parameter of another kind the decisions range over a grid or a fixed sample of values, and
    :meth:`decode` returns ``None`` for an architecture using a value outside them.
    """

    def __init__(self, space: Space) -> None:
        self.space = space
        self._parts: list[tuple[str, Param, _Codec, int]] = []
        sizes: list[int] = []
        ordered: list[bool] = []
        for name, p in space.params.items():
            codec = _codec_for(p)
            self._parts.append((name, p, codec, len(sizes)))
            sizes.extend(codec.sizes)
            ordered.extend(codec.ordered)
        self.sizes: list[int] = sizes
        self.ordered: list[bool] = ordered
        self.offsets: list[int] = [0]
        for n in sizes:
            self.offsets.append(self.offsets[-1] + n)

    @property
    def n_slots(self) -> int:
        return len(self.sizes)

    def walk(self) -> Generator[_Ask, int, Architecture]:
        """A generator that yields ``(slot, n_options, allowed)`` for each decision (``allowed``: the
        allowed option indices, ``None`` when all are), receives the chosen index and finally returns the
        :class:`Architecture`."""
        values: dict[str, Any] = {}
        for name, p, codec, off in self._parts:
            if not all(values.get(parent) is not None and values[parent] in allowed
                       for parent, allowed in p.when.items()):
                continue
            gen = codec.build()
            try:
                slot, n, allowed = next(gen)
                while True:
                    slot, n, allowed = gen.send((yield off + slot, n, allowed))
            except StopIteration as stop:
                values[name] = stop.value
        # the codecs return canonical values of active parameters only, so no validation is needed
        return Architecture(self.space, tuple(values.get(name) for name in self.space.names))

    def run(self, choose: Callable[[int, int, "tuple[int, ...] | None", list[Step]], int]
            ) -> tuple[Architecture, list[Step]]:
        """Build an architecture, asking ``choose(slot, n_options, allowed, steps_so_far)`` for the index
        of each decision; returns the architecture and its steps."""
        gen = self.walk()
        steps: list[Step] = []
        try:
            slot, n, allowed = next(gen)
            while True:
                i = int(choose(slot, n, allowed, steps))
                steps.append((slot, i, allowed))
                slot, n, allowed = gen.send(i)
        except StopIteration as stop:
            return stop.value, steps

    def decode(self, arch: Architecture) -> list[Step] | None:
        """The decision steps of ``arch`` (``None`` when a value lies outside the decisions' values)."""
        idx: list[int] = []
        for name, _p, codec, _off in self._parts:
            v = arch[name]
            if v is None:
                continue
            sub = codec.decode(v)
            if sub is None:
                return None
            idx.extend(i for _, i in sub)
        if not idx:
            return []
        try:
            _, steps = self.run(lambda slot, n, allowed, steps: idx[len(steps)])
        except IndexError:
            return None
        return steps


    @property
    def n_features(self) -> int:
        return self.offsets[-1]

    def features(self, steps: Sequence[Step]) -> np.ndarray:
        """Encoding of a decision path, shape ``(n_features,)``: per slot a one-hot of the chosen option, or
        a thermometer code (ones up to the choice) when the slot's options are ordered; zeros for slots
        the path does not use. For choices, ordinals and cells this is the space's one-hot encoding."""
        x = np.zeros(self.n_features)
        for slot, i, _ in steps:
            off = self.offsets[slot]
            if self.ordered[slot]:
                x[off:off + i + 1] = 1.0
            else:
                x[off + i] = 1.0
        return x

    def tables(self, coef: np.ndarray) -> list[list[float]]:
        """Per slot, the contribution of each option to ``features(steps) @ coef``, so that a linear model
        scores a path as ``sum(tables[slot][i] for slot, i, _ in steps)`` without building features."""
        out = []
        for slot, n in enumerate(self.sizes):
            w = coef[self.offsets[slot]:self.offsets[slot] + n]
            out.append((np.cumsum(w) if self.ordered[slot] else w).tolist())
        return out


def normalized_scores(scores: Sequence[float], kind: str = "rank") -> np.ndarray:
    """Scale-free values in ``[0, 1]`` for signed scores (larger is better; ``-inf`` for failures).

    ``"rank"``: average rank over the scores, ``0`` for the worst and ``1`` for the best (failures share
    the lowest rank). ``"minmax"``: ``(s - min) / (max - min)`` over the finite scores, failures at ``0``.
    A single score (or all equal) gives ``0.5``. Shape ``(n,)``.
    """
    s = np.asarray(scores, dtype=float)
    n = len(s)
    if n == 0:
        return np.zeros(0)
    if kind == "rank":
        if n == 1:
            return np.full(1, 0.5)
        order = np.argsort(s, kind="stable")
        ordered = s[order]
        group = np.cumsum(np.concatenate([[True], ordered[1:] != ordered[:-1]])) - 1  # ties share a group
        counts = np.bincount(group)
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        ranks = np.empty(n)
        ranks[order] = (first + (counts - 1) / 2.0)[group]
        return ranks / (n - 1.0)
    fin = np.isfinite(s)
    if not fin.any():
        return np.zeros(n)
    lo, hi = s[fin].min(), s[fin].max()
    out = np.zeros(n)
    out[fin] = 0.5 if hi <= lo else (s[fin] - lo) / (hi - lo)
    return out


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float = 1.0) -> tuple[np.ndarray, float]:
    """Ridge regression with an unpenalised intercept, in closed form: ``y ~ x @ coef + intercept``.

    A direct numpy solve of the normal equations (primal when ``n >= d``, dual otherwise), which is what
    scikit-learn's ``Ridge(alpha).fit`` computes, without its per-call input validation (several
    milliseconds, too slow to refit after every result).

    Args:
        x: features, shape ``(n, d)``.
        y: targets, shape ``(n,)``.
        alpha: L2 penalty (> 0).

    Returns:
        ``(coef, intercept)``, shapes ``(d,)`` and scalar.
    """
    with one_blas_thread():
        return _fit_ridge(x, y, alpha)


def _fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    xm = x.mean(axis=0)
    ym = float(y.mean())
    xc = x - xm
    yc = y - ym
    n, d = xc.shape
    if n >= d:
        coef = np.linalg.solve(xc.T @ xc + alpha * np.eye(d), xc.T @ yc)
    else:
        coef = xc.T @ np.linalg.solve(xc @ xc.T + alpha * np.eye(n), yc)
    return coef, ym - float(xm @ coef)
