"""The model sampler of the multi-fidelity strategies: Thompson sampling from a rolling ensemble of
extremely randomised trees, rung-aware, over a candidate pool (see :mod:`archscout.strategies.multifidelity`
for what it does and why; this module holds how)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ..results import Candidate
from ..space import Architecture, Space
from .surrogate import candidate_pool

__all__ = ["ENUMERATE_POOL", "ModelSampler", "SamplerHost", "enumerated_pool"]

ENUMERATE_POOL = 50_000
"""Spaces up to this size are enumerated (and cached) for the model's candidate pool."""
_MODEL_MIN_DATA = 12  # results before the model replaces random sampling
_MODEL_TREES = 24  # trees in the ensemble
_TREES_PER_REFIT = 6  # new trees per refit (the oldest retire)
_THOMPSON_TREES = 3  # trees averaged per proposal (1: plain Thompson sampling; more: greedier)
_EXPLORE = 0.2  # fraction of model proposals drawn uniformly from the unstarted candidates instead
_REFIT_GROWTH = 0.1  # refit once the records grew by this fraction (at least one result)
# rolling candidate pool of a space too large to enumerate: per refit, mutants of the best configurations
# and random architectures; at most _POOL_MAX members
_POOL_PARENTS, _POOL_MUTANTS, _POOL_RANDOM, _POOL_MAX = 10, 100, 50, 600


def enumerated_pool(space: Space) -> tuple[list[Architecture], list[str], np.ndarray]:
    """One architecture per function of a finite space, their hashes and one-hot codes (cached per space)."""
    pool = candidate_pool(space, ENUMERATE_POOL)
    assert pool is not None, "only called for spaces of at most ENUMERATE_POOL architectures"
    return pool.archs, pool.hashes, pool.encoding("onehot").astype(np.float32)


class SamplerHost(Protocol):
    """What the model sampler reads from the multi-fidelity strategy that owns it (all read-only)."""

    space: Space
    rng: np.random.Generator
    rungs: tuple[float | None, ...]  # the fidelities configurations are evaluated at, lowest first
    records: list[tuple[Architecture, float | None, float]]  # (arch, fidelity, score) in the order told
    started: set[str]  # functions started at any rung (or told)

    @property
    def pending(self) -> Sequence[Candidate]: ...


class ModelSampler:
    """Thompson sampling from a rolling ensemble of extremely randomised trees (see the docstring of
    :mod:`archscout.strategies.multifidelity`).

    Each refit (once the records grew by ``_REFIT_GROWTH``) fits ``_TREES_PER_REFIT`` new trees on
    bootstrap samples of the current data and retires the oldest beyond ``_MODEL_TREES``, so a refit costs a
    few trees whatever the ensemble size. Fitted trees are not stored: the state keeps, per tree, how many
    records it was fitted on and its seed, and the trees are refitted from the records after a restore,
    identically.
    """

    def __init__(self, strategy: SamplerHost) -> None:
        self.s = strategy
        self.specs: list[tuple[int, int]] = []  # (records used, seed) per tree, oldest first
        self.pool_archs: list[str] = []  # the rolling pool of a space too large to enumerate
        self._trees: list[Any] = []  # fitted trees matching ``specs`` (empty after a restore, until rebuilt)
        self._rows: dict[str, tuple[float, np.ndarray, float]] = {}  # hash -> (fidelity feature, x, score)
        self._folded = 0  # records folded into ``_rows``
        self._pool: tuple[list[Architecture], list[str], np.ndarray] | None = None
        self._pool_index: dict[str, int] = {}
        self._avail = np.zeros(0, dtype=bool)  # pool members not started yet
        self._preds: dict[float, np.ndarray] = {}  # fidelity feature -> predictions, shape (trees, pool)

    # data ------------------------------------------------------------------------------------------
    def _z(self, fidelity: float | None) -> float:
        """Fidelity feature: log fidelity scaled to [0, 1] over the rungs (1: full)."""
        rungs = self.s.rungs
        if fidelity is None or rungs[0] is None or len(rungs) == 1:
            return 1.0
        lo, hi = math.log(rungs[0]), math.log(rungs[-1])  # type: ignore[arg-type]
        return min(1.0, max(0.0, (math.log(fidelity) - lo) / (hi - lo)))

    def _fold(self, n: int) -> None:
        """Keep each architecture's highest-fidelity result among the first ``n`` records."""
        space = self.s.space
        for arch, fid, score in self.s.records[self._folded:n]:
            h = arch.functional_hash()
            z = self._z(fid)
            old = self._rows.get(h)
            if old is None or z >= old[0]:
                x = np.append(space.encode(arch, "onehot"), z).astype(np.float32)
                self._rows[h] = (z, x, score)
        self._folded = max(self._folded, n)

    def _data(self, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Training inputs ``(rows, features)`` and targets ``(rows,)`` from the first ``n`` records;
        ``None`` while fewer than ``_MODEL_MIN_DATA`` results are finite."""
        self._fold(n)
        rows = list(self._rows.values())
        y = np.array([r[2] for r in rows], dtype=float)
        finite = np.isfinite(y)
        if finite.sum() < _MODEL_MIN_DATA:
            return None
        y[~finite] = y[finite].min()  # failed or infeasible: as bad as the worst result seen
        return np.stack([r[1] for r in rows]), y

    # fitting ---------------------------------------------------------------------------------------
    @staticmethod
    def _fit_tree(x: np.ndarray, y: np.ndarray, seed: int) -> Any:
        from sklearn.tree import ExtraTreeRegressor

        rng = np.random.default_rng(seed)
        idx = rng.integers(len(y), size=len(y))
        tree = ExtraTreeRegressor(min_samples_leaf=2, max_features=0.5, random_state=int(rng.integers(2**31)))
        return tree.fit(x[idx], y[idx])

    def _due(self) -> bool:
        n = len(self.s.records)
        if not self.specs:
            return n >= _MODEL_MIN_DATA
        last = self.specs[-1][0]
        return n - last >= max(1, math.ceil(_REFIT_GROWTH * last))

    def _refit(self) -> None:
        n = len(self.s.records)
        data = self._data(n)
        if data is None:
            return
        base = int(self.s.rng.integers(2**31))
        k = _TREES_PER_REFIT if self.specs else _MODEL_TREES
        new = [(n, (base + j) % 2**31) for j in range(k)]
        trees = [self._fit_tree(*data, seed) for _, seed in new]
        drop = max(0, len(self.specs) + k - _MODEL_TREES)
        self.specs = self.specs[drop:] + new
        self._trees = self._trees[drop:] + trees
        if self._set_pool(base):
            self._preds = {}
        else:
            for z, p in list(self._preds.items()):
                self._preds[z] = np.concatenate([p[drop:], self._predict(trees, z)])

    def _rebuild(self) -> None:
        """Refit the trees of a restored state from the records, as they were fitted."""
        self._rows, self._folded = {}, 0
        trees: dict[int, Any] = {}
        for n in sorted({n for n, _ in self.specs}):
            data = self._data(n)
            assert data is not None, "a restored model refers to records that were not restored"
            for i, (m, seed) in enumerate(self.specs):
                if m == n:
                    trees[i] = self._fit_tree(*data, seed)
        self._trees = [trees[i] for i in range(len(self.specs))]
        self._pool = None
        self._set_pool(None)
        self._preds = {}

    def _set_pool(self, seed: int | None) -> bool:
        """Make the candidate pool current; returns whether it changed. A space of at most
        ``ENUMERATE_POOL`` points uses one architecture per function, built once. A larger one keeps a
        rolling pool: each refit adds mutations (one or two steps) of the best configurations of each
        fidelity and random architectures, drawn with ``seed``, and drops started and the oldest members."""
        space = self.s.space
        size = space.size()
        if math.isfinite(size) and size <= ENUMERATE_POOL:
            if self._pool is not None:
                return False
            self._install(enumerated_pool(space))
            return True
        if seed is None:  # restored: the pool as it was
            archs = [space.parse(a) for a in self.pool_archs]
        else:
            old = self._pool[0] if self._pool is not None else []
            archs = [a for a in old if a.functional_hash() not in self.s.started]
            archs = (archs + self._new_candidates(np.random.default_rng(seed)))[-_POOL_MAX:]
        reps: dict[str, Architecture] = {}
        for a in archs:
            reps.setdefault(a.functional_hash(), a)
        lst = list(reps.values())
        self.pool_archs = [str(a) for a in lst]
        x = np.zeros((len(lst), space.encoding_size("onehot")), dtype=np.float32)
        for i, a in enumerate(lst):
            x[i] = space.encode(a, "onehot")
        self._install((lst, list(reps), x))
        return True

    def _install(self, pool: tuple[list[Architecture], list[str], np.ndarray]) -> None:
        self._pool = pool
        started = self.s.started
        self._avail = np.fromiter((h not in started for h in pool[1]), dtype=bool, count=len(pool[1]))
        self._pool_index = {h: i for i, h in enumerate(pool[1])}

    def _new_candidates(self, rng: np.random.Generator) -> list[Architecture]:
        space = self.s.space
        by_fid: dict[Any, list[tuple[float, int]]] = {}
        for i, (_, fid, sc) in enumerate(self.s.records):
            if sc > -math.inf:
                by_fid.setdefault(fid, []).append((sc, i))
        parents: list[Architecture] = []
        for group in by_fid.values():
            parents += [self.s.records[i][0] for _, i in sorted(group, reverse=True)[:_POOL_PARENTS]]
        out = []
        for k in range(_POOL_MUTANTS + _POOL_RANDOM):
            if parents and k < _POOL_MUTANTS:
                a = space.mutate(parents[k % len(parents)], rng)
                if rng.random() < 0.5:
                    a = space.mutate(a, rng)
            else:
                a = space.sample(rng)
            if a.functional_hash() not in self.s.started:
                out.append(a)
        return out

    def _predict(self, trees: list[Any], z: float) -> np.ndarray:
        assert self._pool is not None
        x = self._pool[2]
        xz = np.hstack([x, np.full((len(x), 1), z, dtype=np.float32)])
        return np.stack([t.predict(xz) for t in trees]) if trees else np.zeros((0, len(x)))

    def mark_started(self, h: str) -> None:
        """Take a function out of the candidate pool."""
        i = self._pool_index.get(h)
        if i is not None:
            self._avail[i] = False

    # proposing -------------------------------------------------------------------------------------
    def propose(self, fidelity: float | None) -> Architecture | None:
        """An unstarted architecture to start at ``fidelity`` (Thompson sampling: the best candidate of
        one tree drawn at random); ``None`` while the model has too little data or the pool is used up."""
        if self.specs and not self._trees:
            self._rebuild()
        if self._due():
            self._refit()
        if not self._trees or not self._avail.any():
            return None
        z = self._z(fidelity)
        p = self._preds.get(z)
        if p is None:
            p = self._preds[z] = self._predict(self._trees, z)
        assert self._pool is not None
        rng = self.s.rng
        if rng.random() < _EXPLORE:  # keeps the model from settling on one region
            idx = np.flatnonzero(self._avail)
            return self._pool[0][int(idx[rng.integers(len(idx))])]
        drawn = rng.choice(len(p), size=min(_THOMPSON_TREES, len(p)), replace=False)
        rows = p[drawn]
        if self.s.pending:
            rows = self._believe(drawn, rows, z)
        row = rows.mean(0)
        return self._pool[0][int(np.argmax(np.where(self._avail, row, -np.inf)))]

    def _believe(self, drawn: np.ndarray, rows: np.ndarray, z: float) -> np.ndarray:
        """Predictions ``rows`` ``(len(drawn), pool)`` of the trees ``drawn`` at fidelity feature ``z``, once
        each pending candidate has joined its leaf at the ensemble's mean prediction for it: a leaf of
        weight ``w`` and mean ``m`` that receives pending values ``v_i`` predicts
        ``(w m + sum v_i) / (w + count)``. Returns a new array of the same shape."""
        assert self._pool is not None
        space = self.s.space
        pend = self.s.pending
        xp = np.stack([np.append(space.encode(c.arch, "onehot"), self._z(c.fidelity)) for c in pend])
        xp = xp.astype(np.float32)
        believed = np.mean([t.predict(xp) for t in self._trees], axis=0)  # (k,)
        x = self._pool[2]
        xz = np.hstack([x, np.full((len(x), 1), z, dtype=np.float32)])
        out = rows.copy()
        for r, t in enumerate(drawn):
            tree = self._trees[int(t)]
            leaves, inv = np.unique(tree.apply(xp), return_inverse=True)
            add = np.bincount(inv, weights=believed, minlength=len(leaves))
            count = np.bincount(inv, minlength=len(leaves))
            weight = tree.tree_.weighted_n_node_samples[leaves]
            where = tree.apply(xz)
            pos = np.searchsorted(leaves, where)
            hit = (pos < len(leaves)) & (leaves[np.minimum(pos, len(leaves) - 1)] == where)
            j = pos[hit]
            out[r, hit] = (weight[j] * out[r, hit] + add[j]) / (weight[j] + count[j])
        return out

    def state(self) -> dict[str, Any]:
        return {"specs": [list(t) for t in self.specs], "pool": list(self.pool_archs)}

    def load(self, state: dict[str, Any]) -> None:
        self.specs = [(int(n), int(seed)) for n, seed in state["specs"]]
        self.pool_archs = list(state["pool"])
        self._trees, self._rows, self._folded = [], {}, 0
        self._pool, self._pool_index, self._avail, self._preds = None, {}, np.zeros(0, dtype=bool), {}
