"""Surrogate models and candidate pools shared by the model-based strategies.

* :class:`CandidatePool`: the functionally distinct architectures of a finite space, enumerated once per
  space and process (one representative per functional hash), with their feature matrices.
* :class:`RollingPool`: candidates for a space too large to enumerate, kept from one proposal to the next
  in fixed slots: each proposal frees the slots of the candidates taken and puts a few fresh ones in, so
  features (and any other per-candidate column a strategy asks for) are computed once per candidate, not
  once per proposal.
* :func:`features`: the model input of an architecture: its one-hot encoding and its functional path
  encoding, each scaled to unit length, concatenated and scaled to unit length again. Cells that compute
  the same compositions of operations along their paths get close features even when their edges differ.
* :class:`IncrementalGP`: a Gaussian process with the normalised polynomial kernel
  ``k(a, b) = ((1 + a.b) / 2) ** degree`` on unit feature vectors and fixed noise, updated by one Cholesky
  row per observation. Over a pool it also keeps ``V = L^-1 K(seen, pool)`` up to date (columns can be
  replaced, for a rolling pool), so a posterior over every candidate costs ``O(n * N)`` per step instead
  of ``O(n^2 * N)``.
* :func:`normal_scores`: rank-based targets (van der Waerden scores), robust to the long lower tail of
  accuracy tables and to failed trials (``-inf``, ranked lowest).
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..space import Architecture, Space

__all__ = ["CandidatePool", "Columns", "IncrementalGP", "RollingPool", "candidate_pool", "encoder", "features",
           "normal_scores", "one_blas_thread"]

_POOLS: dict[Space, CandidatePool] = {}  # equal spaces share one pool


def one_blas_thread() -> Any:
    """A context that runs numpy's BLAS on one thread: the matrices of these models are small, and on a
    busy machine a multi-threaded solve of a 100 x 100 system can take a hundred times longer than a single
    thread. A no-op when threadpoolctl (a scikit-learn dependency) is missing."""
    global _THREADPOOLS
    try:
        if _THREADPOOLS is None:
            from threadpoolctl import ThreadpoolController

            _THREADPOOLS = ThreadpoolController()  # inspecting the loaded libraries is the slow part: once
        return _THREADPOOLS.limit(limits=1, user_api="blas")
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()


_THREADPOOLS: Any = None


def features(space: Space, archs: Sequence[Architecture]) -> np.ndarray:
    """Unit-length model inputs of shape ``(len(archs), d)`` (see the module docstring)."""
    archs = list(archs)
    x = np.hstack([_unit(encoder(space, "onehot")(archs)), _unit(encoder(space, "functional")(archs))])
    return _unit(x)


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


class CandidatePool:
    """One representative architecture per functional class of a finite space, with a hash index."""

    def __init__(self, space: Space, archs: list[Architecture]) -> None:
        self.space = space
        self.archs = archs
        self.hashes = [a.functional_hash() for a in archs]
        self.index = {h: i for i, h in enumerate(self.hashes)}
        self._features: np.ndarray | None = None
        self._encodings: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.archs)

    @property
    def features(self) -> np.ndarray:
        """:func:`features` of every member, shape ``(len(self), d)`` (computed once)."""
        if self._features is None:
            self._features = features(self.space, self.archs)
        return self._features

    def encoding(self, kind: str) -> np.ndarray:
        """``space.encode(arch, kind)`` of every member, shape ``(len(self), d)`` (computed once per kind)."""
        x = self._encodings.get(kind)
        if x is None:
            x = self._encodings[kind] = encoder(self.space, kind)(self.archs)
        return x


Columns = Callable[[list[Architecture]], np.ndarray]


def encoder(space: Space, kind: str) -> Columns:
    """A column maker: ``space.encode(arch, kind)`` of each architecture, shape ``(len(archs), d)``."""

    def make(archs: list[Architecture]) -> np.ndarray:
        return np.array([space.encode(a, kind) for a in archs], dtype=float).reshape(len(archs), -1)

    return make


class RollingPool:
    """Candidates for a space too large to enumerate, kept from one proposal to the next in ``size`` slots.

    A candidate is added into a free slot (or, when every slot is taken, the slot of the oldest candidate),
    and dropped (:meth:`discard`) by freeing its slot; nothing else moves, so a model that keeps a column per
    slot (see :meth:`IncrementalGP.pool_set`) follows the pool by :attr:`ids` (a new id per occupant, ``-1``
    for a free slot) and updates only the slots that changed. Each slot carries the candidate's
    columns (by default its :func:`features`; a column is made by a function of a list of architectures
    returning one row per architecture), computed once, when the candidate is added. The rows of the last
    ``memory`` dropped candidates are remembered, so the features of a candidate that was just proposed (and
    dropped as taken) are not computed again when its result arrives. Rows of free slots hold stale values:
    mask them with :attr:`alive`.

    Args:
        space: the space the candidates belong to.
        size: the number of slots.
        columns: the per-candidate columns by name (default: ``"features"``, :func:`features`); others can
            be added later through :meth:`column`.
        memory: how many dropped candidates' rows are remembered.
    """

    def __init__(self, space: Space, size: int, columns: dict[str, Columns] | None = None,
                 memory: int = 256) -> None:
        self.space = space
        self.size = size
        self._makers: dict[str, Columns] = dict(columns) if columns is not None else {
            "features": lambda archs: features(space, archs)}
        self.archs: list[Architecture | None] = []
        self.hashes: list[str | None] = []
        self.ids = np.zeros(0, dtype=np.int64)
        self.index: dict[str, int] = {}
        self._data: dict[str, np.ndarray] = {}
        self._next_id = 0
        self._memory = memory
        self._dropped: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()

    def __len__(self) -> int:
        """The number of slots in use so far (alive or free)."""
        return len(self.archs)

    @property
    def alive(self) -> np.ndarray:
        """Which slots hold a candidate, shape ``(len(self),)``."""
        return self.ids >= 0

    @property
    def n_alive(self) -> int:
        return len(self.index)

    @property
    def features(self) -> np.ndarray:
        """:func:`features` of every slot, shape ``(len(self), d)`` (the ``"features"`` column if one was
        given, else computed on first use and kept up to date)."""
        space = self.space
        return self.column("features", lambda archs: features(space, archs))

    def column(self, name: str, make: Columns | None = None) -> np.ndarray:
        """The column ``name`` of every slot (first axis: slots). A column not given to the constructor needs
        ``make``: it is computed for the members now and for every candidate added later."""
        if name not in self._makers:
            if make is None:
                raise KeyError(f"the rolling pool has no column {name!r}")
            self._makers[name] = make
            alive = [i for i, a in enumerate(self.archs) if a is not None]
            if alive:
                self._fill(name, alive, [self.archs[i] for i in alive])  # type: ignore[misc]
        return self._data[name][:len(self)] if name in self._data else np.zeros((0, 0))

    def encoding(self, kind: str) -> np.ndarray:
        """``space.encode(arch, kind)`` of every slot, shape ``(len(self), d)`` (kept up to date once asked)."""
        return self.column(f"encoding:{kind}", encoder(self.space, kind))

    def row(self, arch: Architecture, name: str = "features") -> np.ndarray | None:
        """The column ``name`` of ``arch``, if it is in the pool or was dropped recently, else ``None``."""
        h = arch.functional_hash()
        i = self.index.get(h)
        if i is not None:
            return self._data[name][i]
        old = self._dropped.get(h)
        return None if old is None else old.get(name)

    def add(self, archs: Sequence[Architecture]) -> int:
        """Add the architectures whose function is not in the pool yet (first of equals wins; at most
        ``size``), into free slots first, then into the oldest candidates' slots; returns how many."""
        new: dict[str, Architecture] = {}
        for a in archs:
            h = a.functional_hash()
            if h not in self.index and h not in new:
                new[h] = a
                if len(new) == self.size:
                    break
        if not new:
            return 0
        fresh = list(new.values())
        free = np.flatnonzero(~self.alive).tolist() + list(range(len(self), self.size))
        if len(free) < len(fresh):
            alive = np.flatnonzero(self.alive)
            oldest = alive[np.argsort(self.ids[alive], kind="stable")[:len(fresh) - len(free)]].tolist()
            self._drop(oldest)
            free += oldest
        slots = sorted(free)[:len(fresh)]
        end = max(len(self), slots[-1] + 1)
        if end > len(self):
            grow = end - len(self)
            self.archs.extend([None] * grow)
            self.hashes.extend([None] * grow)
            self.ids = np.concatenate([self.ids, np.full(grow, -1, dtype=np.int64)])
        for name in self._makers:
            self._fill(name, slots, fresh)
        for i, (h, a) in zip(slots, new.items()):
            self.archs[i], self.hashes[i] = a, h
            self.index[h] = i
        self.ids[slots] = np.arange(self._next_id, self._next_id + len(fresh))
        self._next_id += len(fresh)
        return len(fresh)

    def discard(self, taken: Callable[[str], bool]) -> None:
        """Free the slots of the candidates whose functional hash is ``taken``."""
        self._drop([i for h, i in self.index.items() if taken(h)])

    def _drop(self, slots: list[int]) -> None:
        for i in slots:
            h = self.hashes[i]
            assert h is not None
            self._dropped[h] = {name: col[i].copy() for name, col in self._data.items()}
            self._dropped.move_to_end(h)
            del self.index[h]
            self.archs[i] = self.hashes[i] = None
            self.ids[i] = -1
        while len(self._dropped) > self._memory:
            self._dropped.popitem(last=False)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-safe copy of the occupancy: per slot the architecture string (``None`` when free) and its
        id, and the next id; :meth:`load` restores it exactly (the columns are computed again)."""
        return {"slots": [None if a is None else str(a) for a in self.archs], "ids": self.ids.tolist(),
                "next_id": self._next_id}

    def load(self, snapshot: dict[str, Any]) -> None:
        """Restore a :meth:`snapshot` (of a pool of the same space) into this empty pool."""
        archs = [None if t is None else self.space.parse(t) for t in snapshot["slots"]]
        live = [i for i, a in enumerate(archs) if a is not None]
        self._next_id = int(snapshot["next_id"])
        if not live:
            return
        self.archs = archs
        self.hashes = [None if a is None else a.functional_hash() for a in archs]
        self.ids = np.array(snapshot["ids"], dtype=np.int64)
        self.index = {self.hashes[i]: i for i in live}  # type: ignore[misc]
        for name in self._makers:
            self._fill(name, live, [archs[i] for i in live])  # type: ignore[misc]

    def _fill(self, name: str, slots: list[int], archs: list[Architecture]) -> None:
        """Compute the column ``name`` of ``archs`` into ``slots`` (allocating the column on first use)."""
        rows = np.asarray(self._makers[name](archs))
        if name not in self._data:
            self._data[name] = np.zeros((self.size, *rows.shape[1:]), dtype=rows.dtype)
        self._data[name][slots] = rows


def candidate_pool(space: Space, limit: int) -> CandidatePool | None:
    """The space's functionally distinct architectures when it has at most ``limit`` architectures (cached
    per space in this process), else ``None``."""
    size = space.size()
    if not math.isfinite(size) or size > limit:
        return None
    pool = _POOLS.get(space)
    if pool is None:
        reps: dict[str, Architecture] = {}
        for a in space.enumerate():
            reps.setdefault(a.functional_hash(), a)
        pool = CandidatePool(space, list(reps.values()))
        if len(_POOLS) > 8:
            _POOLS.clear()
        _POOLS[space] = pool
    return pool


def normal_scores(y: np.ndarray) -> np.ndarray:
    """Rank-based normal scores of ``y`` (ties share their mean rank; ``-inf`` ranks lowest)."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n == 0:
        return y
    order = np.argsort(y, kind="stable")
    ranks = np.empty(n)
    ranks[order] = np.arange(1, n + 1)
    _, inv, counts = np.unique(y, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    ranks = sums[inv] / counts[inv]
    from scipy.special import ndtri

    return ndtri(ranks / (n + 1))


class IncrementalGP:
    """Gaussian process on unit feature vectors, grown one observation at a time.

    Args:
        degree: polynomial degree of the kernel (interactions between up to ``degree`` features).
        noise: observation noise variance, relative to the kernel's unit prior variance.
        pool: optional fixed candidate features ``(N, d)`` whose posterior is maintained incrementally.
    """

    def __init__(self, degree: int = 3, noise: float = 0.05, pool: np.ndarray | None = None) -> None:
        self.degree = degree
        self.noise = noise
        self.x = np.zeros((0, 0))
        self._xs: list[np.ndarray] = []
        self.L = np.zeros((0, 0))
        self.pool = pool
        self._v = np.zeros((0, 0 if pool is None else len(pool)))  # rows: L^-1 K(seen, pool), grown by doubling
        self._var = None if pool is None else np.ones(len(pool))

    def kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return ((1.0 + a @ b.T) / 2.0) ** self.degree

    def __len__(self) -> int:
        return len(self._xs)

    def add(self, x: np.ndarray) -> None:
        """Add one observed input (its target is given to :meth:`predict`)."""
        from scipy.linalg import solve_triangular

        x = np.asarray(x, dtype=float)
        n = len(self._xs)
        if n == 0:
            c = np.zeros(0)
            d = math.sqrt(1.0 + self.noise)
        else:
            b = self.kernel(x[None, :], self.x)[0]
            c = solve_triangular(self.L, b, lower=True, check_finite=False)
            d = math.sqrt(max(1.0 + self.noise - float(c @ c), 1e-10))
        L = np.zeros((n + 1, n + 1))
        L[:n, :n] = self.L
        L[n, :n] = c
        L[n, n] = d
        self.L = L
        self._xs.append(x)
        self.x = np.array(self._xs)
        if self.pool is not None:
            kx = self.kernel(x[None, :], self.pool)[0]
            v = (kx - c @ self._v[:n]) / d if n else kx / d
            if n == len(self._v):
                grown = np.zeros((max(16, 2 * n), self._v.shape[1]))
                grown[:n] = self._v[:n]
                self._v = grown
            self._v[n] = v
            self._var = self._var - v * v

    def pool_set(self, slots: np.ndarray, xp: np.ndarray) -> None:
        """Put candidates ``xp`` ``(k, d)`` into the pool's columns ``slots`` (the pool grows to hold them);
        their posterior columns are computed now."""
        from scipy.linalg import solve_triangular

        slots = np.asarray(slots, dtype=np.int64)
        xp = np.atleast_2d(np.asarray(xp, dtype=float))
        if not len(slots):
            return
        end = int(slots.max()) + 1
        if self.pool is None or len(self.pool) < end:
            d = xp.shape[1]
            grown = np.zeros((end, d))
            var = np.ones(end)
            v = np.zeros((len(self._v), end))
            if self.pool is not None and len(self.pool):
                m = len(self.pool)
                grown[:m], var[:m], v[:, :m] = self.pool, self._var, self._v
            self.pool, self._var, self._v = grown, var, v
        assert self._var is not None
        self.pool[slots] = xp
        n = len(self._xs)
        if n:
            v = solve_triangular(self.L, self.kernel(self.x, xp), lower=True, check_finite=False)
            self._v[:n, slots] = v
            self._var[slots] = 1.0 - np.einsum("ij,ij->j", v, v)
        else:
            self._var[slots] = 1.0

    def _alpha(self, y: np.ndarray) -> np.ndarray:
        from scipy.linalg import solve_triangular

        return solve_triangular(self.L, np.asarray(y, dtype=float), lower=True, check_finite=False)

    def predict_pool(self, y: np.ndarray, pending: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation over the fixed pool, shapes ``(N,)``, given the targets
        ``y`` of the observations in the order they were added.

        ``pending``: inputs ``(k, d)`` being evaluated, whose outcomes are fantasised as the posterior mean
        (kriging believer); see :meth:`_believe`. ``None`` or empty: the plain posterior."""
        assert self.pool is not None
        n = len(self._xs)
        if not n and (pending is None or not len(pending)):
            return np.zeros(len(self.pool)), np.ones(len(self.pool))
        mu = self._alpha(y) @ self._v[:n] if n else np.zeros(len(self.pool))
        var = self._var
        assert var is not None
        if pending is not None and len(pending):
            var = self._believe(self.pool, self._v[:n], var, pending)
        return mu, np.sqrt(np.maximum(var, 1e-12))

    def predict(self, xc: np.ndarray, y: np.ndarray,
                pending: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation at new inputs ``xc`` of shape ``(m, d)``; ``pending`` as in
        :meth:`predict_pool`."""
        from scipy.linalg import solve_triangular

        xc = np.asarray(xc, dtype=float)
        has_pending = pending is not None and len(pending) > 0
        if not self._xs:
            if not has_pending:
                return np.zeros(len(xc)), np.ones(len(xc))
            v = np.zeros((0, len(xc)))
            mu = np.zeros(len(xc))
        else:
            v = solve_triangular(self.L, self.kernel(self.x, xc), lower=True, check_finite=False)
            mu = self._alpha(y) @ v
        var = 1.0 - np.einsum("ij,ij->j", v, v)
        if has_pending:
            var = self._believe(xc, v, var, pending)  # type: ignore[arg-type]
        return mu, np.sqrt(np.maximum(var, 1e-12))

    def _believe(self, xc: np.ndarray, v: np.ndarray, var: np.ndarray, pending: np.ndarray) -> np.ndarray:
        """Posterior variance at ``xc`` ``(m, d)`` once the ``pending`` inputs ``(k, d)`` are observed too.

        Kriging believer: each pending outcome is fantasised as the current posterior mean there, which
        leaves the posterior mean unchanged everywhere and only shrinks the variance around the pending
        inputs (a rank-``k`` update, as in GP-BUCB, Desautels et al. 2014): ``var - c C^-1 c^T`` with ``c``
        the posterior covariance between ``xc`` and the pending inputs and ``C`` the pending inputs'
        posterior covariance plus noise. ``v`` is ``L^-1 K(seen, xc)`` ``(n, m)``; nothing is stored, so
        the model is the same afterwards. Costs ``O(k (n + d) m)``.
        """
        from scipy.linalg import cho_factor, cho_solve, solve_triangular

        p = np.asarray(pending, dtype=float)
        if len(self._xs):
            vp = solve_triangular(self.L, self.kernel(self.x, p), lower=True, check_finite=False)
        else:
            vp = np.zeros((0, len(p)))
        cross = self.kernel(xc, p) - v.T @ vp  # (m, k) posterior covariance
        cpp = self.kernel(p, p) - vp.T @ vp + self.noise * np.eye(len(p))
        w = cho_solve(cho_factor(cpp, lower=True, check_finite=False), cross.T, check_finite=False)  # (k, m)
        return var - np.einsum("ik,ki->i", cross, w)
