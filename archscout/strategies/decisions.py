"""Decision sequences over any space, shared by the sequential strategies (MCTS, REINFORCE).

Every architecture of a space is reached by a sequence of discrete decisions (:class:`DecisionSpace`): each
parameter's own decisions (:meth:`~archscout.space.Param.decisions`), in declaration order, skipping inactive
conditional parameters. Also: rank normalisation of scores and a closed-form ridge fit run on one BLAS thread.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np

from ..space import Architecture, Space
from ..space.decisions import Ask, Decisions, decisions_of
from ..space.params import Param
from .surrogate import one_blas_thread

__all__ = ["DecisionSpace", "Step", "fit_ridge", "normalized_scores", "rank_reward", "softmax_of"]

# One decision of a walk: (slot, chosen option index, allowed option indices or None when all are).
Step = tuple[int, int, "tuple[int, ...] | None"]


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
        self._parts: list[tuple[str, Param, Decisions, int]] = []
        sizes: list[int] = []
        ordered: list[bool] = []
        for name, p in space.params.items():
            codec = decisions_of(p)
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

    def walk(self) -> Generator[Ask, int, Architecture]:
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

    def run(self, choose: Callable[[int, int, tuple[int, ...] | None, list[Step]], int]
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


def softmax_of(logits: np.ndarray, cache: list, slot: int, allowed: tuple[int, ...] | None) -> np.ndarray:
    """Softmax probabilities of ``slot``'s allowed options (all when ``allowed`` is None; that case is kept in
    ``cache[slot]`` until the caller resets it to None): the policy of the policy-gradient strategies."""
    if allowed is None:
        p = cache[slot]
        if p is None:
            e = np.exp(logits - logits.max())
            p = cache[slot] = e / e.sum()
        return p
    z = logits[list(allowed)]
    e = np.exp(z - z.max())
    return e / e.sum()


def rank_reward(told: list[float], score: float) -> float:
    """Insert ``score`` into the sorted list ``told`` (all scores told so far) and return its rank among them, in
    ``[0, 1]`` (ties share a rank; 0.5 for the first): the scale-free reward of the policy-gradient strategies."""
    bisect.insort(told, score)
    n = len(told)
    if n == 1:
        return 0.5
    lo = bisect.bisect_left(told, score)
    hi = bisect.bisect_right(told, score)
    return (lo + hi - 1) / (2.0 * (n - 1))


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
