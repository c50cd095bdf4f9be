"""Model-based multi-objective search: a Gaussian process per unknown objective, exact costs where a
cheap cost model knows them, and expected-front growth by hypervolume improvement.

For every candidate, each objective gets an optimistic value: the exact value when a cheap cost model
attached to the study gives it (e.g. latency from a table or a predictor), else ``mean + beta * std`` of a
Gaussian process fitted to the results (the same kernel and features as :class:`~archscout.strategies.SMBO`).
With two objectives the candidate whose optimistic point adds the most hypervolume to the front of the
feasible results is proposed (exact, vectorised); with three or more, a random Chebyshev scalarisation of
the normalised optimistic values is maximised (ParEGO). Candidates whose known costs break a constraint are
never proposed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..objectives import Candidate, Result, pareto_mask
from ..pareto import hypervolume_improvement
from ..space import Architecture
from .base import Capabilities
from .model_based import _check_float, _GPMixin, _SurrogateStrategy
from .simple import _check_int
from .surrogate import CandidatePool, features, normal_scores, one_blas_thread

__all__ = ["MultiObjectiveSMBO", "STRATEGY_CLASSES"]


class MultiObjectiveSMBO(_GPMixin, _SurrogateStrategy):
    """Multi-objective SMBO: GP surrogates, exact cheap costs, hypervolume-improvement acquisition.

    Args:
        beta: optimism of the modelled objectives (``mean + beta * std``, >= 0).
        degree / noise: GP kernel degree and noise (see :class:`~archscout.strategies.SMBO`).
        n_init / pool_limit / pool_size: random initial proposals (chosen among unseen architectures that
            meet the constraints on known costs); candidate pool settings.
    """

    name = "mobo"
    capabilities = Capabilities(multi_objective=True)

    def __init__(self, space, objectives=None, constraints=(), seed=None, dedup=True,
                 beta: float = 1.0, degree: int = 3, noise: float = 0.05, n_init: int = 10,
                 pool_limit: int = 100_000, pool_size: int = 1000) -> None:
        super().__init__(space, objectives, constraints, seed, dedup, n_init, pool_limit, pool_size)
        self.beta = _check_float("beta", beta, 0.0)
        self.degree = _check_int("degree", degree, 1)
        self.noise = _check_float("noise", noise, 1e-6)
        self._gp = None
        self._pool_cache: tuple[np.ndarray, np.ndarray] | None = None
        self._vals: list[np.ndarray] = []  # signed objective values (larger is better) per observation
        self._ok: list[bool] = []  # complete and feasible

    def _reset_model(self) -> None:
        self._gp = None
        self._pool_cache = None

    def attach(self, cost_models=None, fidelities=None) -> None:
        super().attach(cost_models, fidelities)
        self._pool_cache = None

    # --- observations --------------------------------------------------------------------------------
    def _observe(self, candidate: Candidate, result: Result) -> None:
        super()._observe(candidate, result)
        self._vals.append(result.values(self.objectives))
        self._ok.append(bool(result.feasible(self.constraints)))

    def _state(self) -> dict[str, Any]:
        return {**super()._state(),
                "vals": [[None if not math.isfinite(v) else float(v) for v in row] for row in self._vals],
                "ok": list(self._ok)}

    def _load_state(self, state: dict[str, Any]) -> None:
        super()._load_state(state)
        self._vals = [np.array([-math.inf if v is None else v for v in row]) for row in state["vals"]]
        self._ok = [bool(x) for x in state["ok"]]

    # --- helpers ---------------------------------------------------------------------------------------
    def _known(self, archs: list[Architecture]) -> np.ndarray:
        """Signed known values, shape ``(len(archs), m)``, NaN where no cheap cost model gives one."""
        out = np.full((len(archs), len(self.objectives)), np.nan)
        if not self.cost_models:
            return out
        for i, a in enumerate(archs):
            costs = self.known_costs(a)
            for j, o in enumerate(self.objectives):
                if o.name in costs:
                    out[i, j] = o.sign * costs[o.name]
        return out

    def _violates(self, archs: list[Architecture]) -> np.ndarray:
        bad = np.zeros(len(archs), dtype=bool)
        if not self.cost_models or not self.constraints:
            return bad
        for i, a in enumerate(archs):
            costs = self.known_costs(a)
            bad[i] = any(not c.satisfied(costs[c.name]) for c in self.constraints if c.name in costs)
        return bad

    def _initial(self) -> Architecture:
        for _ in range(50):
            a = self.space.sample(self.rng)
            if not self._violates([a])[0]:
                return a
        return a

    def _targets(self) -> np.ndarray:
        """Observed signed values with failures set to the worst observed value, shape ``(n, m)``."""
        vals = np.array(self._vals, dtype=float).reshape(len(self._vals), len(self.objectives))
        for j in range(vals.shape[1]):
            col = vals[:, j]
            finite = np.isfinite(col)
            col[~finite] = col[finite].min() if finite.any() else 0.0
        return vals

    def _axes(self, gp_predict, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per objective, the observed points and the candidates' optimistic points in one consistent
        unit per axis: raw signed values where every candidate's value is known (cheap cost), rank-based
        normal scores of the results (and GP predictions in those units) elsewhere. Returns
        ``(observed (n, m), optimistic (k, m))``, larger is better."""
        targets = self._targets()
        obs = targets.copy()
        opt = known.copy()
        for j in range(len(self.objectives)):
            if not np.isnan(known[:, j]).any():
                continue
            y = normal_scores(targets[:, j])
            mu, sd = gp_predict(y)
            obs[:, j] = y
            opt[:, j] = mu + self.beta * sd
        return obs, opt

    def _acquisition(self, obs: np.ndarray, opt: np.ndarray) -> np.ndarray:
        """Larger is better; ``obs`` (n, m) and ``opt`` (k, m) are signed, in the units of :meth:`_axes`."""
        ok = np.array(self._ok, dtype=bool)
        lo = np.minimum(obs.min(axis=0), opt.min(axis=0))
        hi = np.maximum(obs.max(axis=0), opt.max(axis=0))
        span = np.where(hi > lo, hi - lo, 1.0)
        front = obs[ok]
        if len(front):
            front = front[pareto_mask(front)]
        if len(self.objectives) == 2:
            ref = -(lo - 0.1 * span)  # minimisation convention of archscout.pareto
            hvi = hypervolume_improvement(-front, -opt, ref) if len(front) else np.prod(np.maximum(ref + opt, 0), axis=1)
            if np.any(hvi > 0):
                return hvi
        w = self.rng.dirichlet(np.ones(len(self.objectives)))
        z = (opt - lo) / span
        return np.min(w * z, axis=1) + 1e-3 * np.sum(w * z, axis=1)

    # --- acquisition over candidates -----------------------------------------------------------------
    def _acquire_pool(self, pool: CandidatePool) -> np.ndarray:
        gp = self._sync_gp(pool)
        if self._pool_cache is None:  # cheap costs are fixed once attached: compute them once per pool
            self._pool_cache = (self._known(pool.archs), self._violates(pool.archs))
        known, violates = self._pool_cache
        obs, opt = self._axes(gp.predict_pool, known)
        return np.where(violates, -np.inf, self._acquisition(obs, opt))

    def _acquire(self, cands: list[Architecture]) -> np.ndarray:
        gp = self._sync_gp(None)
        xc = features(self.space, cands)
        obs, opt = self._axes(lambda y: gp.predict(xc, y), self._known(cands))
        return np.where(self._violates(cands), -np.inf, self._acquisition(obs, opt))

    def _propose(self) -> Architecture:
        with one_blas_thread():
            return super()._propose()

    def _params(self) -> dict[str, Any]:
        return {"beta": self.beta, "degree": self.degree, "noise": self.noise, **super()._params()}


STRATEGY_CLASSES = [MultiObjectiveSMBO]
