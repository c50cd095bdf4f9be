"""Surrogate models and candidate pools shared by the model-based strategies.

* :class:`CandidatePool`: the functionally distinct architectures of a finite space, enumerated once per
  space and process (one representative per functional hash), with their feature matrices.
* :func:`features`: the model input of an architecture: its one-hot encoding and its functional path
  encoding, each scaled to unit length, concatenated and scaled to unit length again. Cells that compute
  the same compositions of operations along their paths get close features even when their edges differ.
* :class:`IncrementalGP`: a Gaussian process with the normalised polynomial kernel
  ``k(a, b) = ((1 + a.b) / 2) ** degree`` on unit feature vectors and fixed noise, updated by one Cholesky
  row per observation. Over a fixed pool it also keeps ``V = L^-1 K(seen, pool)`` up to date, so a
  posterior over every candidate costs ``O(n * N)`` per step instead of ``O(n^2 * N)``.
* :func:`normal_scores`: rank-based targets (van der Waerden scores), robust to the long lower tail of
  accuracy tables and to failed trials (``-inf``, ranked lowest).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..space import Architecture, Space

__all__ = ["CandidatePool", "candidate_pool", "features", "IncrementalGP", "normal_scores", "one_blas_thread"]

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
    one = np.array([space.encode(a, "onehot") for a in archs], dtype=float).reshape(len(archs), -1)
    fun = np.array([space.encode(a, "functional") for a in archs], dtype=float).reshape(len(archs), -1)
    x = np.hstack([_unit(one), _unit(fun)])
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
            x = np.array([self.space.encode(a, kind) for a in self.archs], dtype=float).reshape(len(self), -1)
            self._encodings[kind] = x
        return x


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
