"""Model-based multi-objective search: a Gaussian process per unknown objective, exact costs where a
cheap cost model knows them, and expected-front growth by hypervolume improvement.

For every candidate, each objective gets an optimistic value: the exact value when a cheap cost model
attached to the study gives it (e.g. latency from a table or a predictor), else ``mean + beta * std`` of a
Gaussian process fitted to the results (the same kernel and features as :class:`~archscout.strategies.SMBO`).
With two objectives the candidate whose optimistic point adds the most hypervolume to the front of the
feasible results is proposed (exact, vectorised); with three or more, a random Chebyshev scalarisation of
the normalised optimistic values is maximised (ParEGO). With two objectives of which one is a known cheap
cost, the default acquisition is instead how far the optimistic value rises above the current front's
staircase at the candidate's cost, and every ``top_every``-th proposal looks for the most accurate end of the
front alone (UCB of the modelled objective, as ``smbo``). Candidates whose known costs break a constraint
are never proposed.

Pending candidates (asynchronous search: asked here, or noted as evaluated elsewhere) are fantasised as
the models' mean predictions (kriging believer) while the next candidate is chosen: each GP's variance
shrinks around them, and they join the front at their believed values (exact known costs, mean predicted
objectives), so a candidate that would fill the same gap of the front gains less. Nothing is stored; with
one candidate pending at a time the proposals are those of a sequential run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validate import check_choice, check_int, check_number
from ..objectives import pareto_mask
from ..pareto import hypervolume_improvement
from ..results import Candidate, Result
from ..space import Architecture
from .base import Capabilities
from .model_based import AnyPool, GPModelMixin, SurrogateStrategy
from .surrogate import RollingPool, features, normal_scores, one_blas_thread

__all__ = ["STRATEGY_CLASSES", "MultiObjectiveSMBO"]


class MultiObjectiveSMBO(GPModelMixin, SurrogateStrategy):
    """Multi-objective SMBO: GP surrogates, exact cheap costs, hypervolume-improvement acquisition.

    Args:
        acquisition: with two objectives of which one is a known cheap cost, ``"staircase-ucb"`` (default:
            how far the optimistic value ``mean + beta * std`` rises above the front's staircase at the
            candidate's cost) or ``"staircase"`` (expected improvement over the staircase); in every other
            case, and with ``"hvi"``, the hypervolume improvement of the optimistic point in rank-normal units.
        beta: optimism of the modelled objectives (``mean + beta * std``, >= 0).
        cost_weight: weight of the known costs (their standardised logs) among the model's inputs: the
            cost of a network says much about its accuracy (0: architecture features only).
        top_every / top_beta: with the staircase acquisitions, every ``top_every``-th proposal (counting
            results and pending candidates; 0: never) maximises ``mean + top_beta * std`` of the modelled
            objective alone, as :class:`~archscout.strategies.SMBO` does, whatever the known cost: the
            staircase gap alone explores the most accurate, most expensive end of the front too little.
        degree / noise: GP kernel degree and noise (see :class:`~archscout.strategies.SMBO`).
        n_init / pool_limit / pool_size: random initial proposals (chosen among unseen architectures that
            meet the constraints on known costs); candidate pool settings.
    """

    name = "mobo"
    capabilities = Capabilities(multi_objective=True)

    def __init__(self, space, objectives=None, constraints=(), seed=None, dedup=True,
                 acquisition: str = "staircase-ucb", beta: float = 1.0, cost_weight: float = 0.25,
                 degree: int = 3, noise: float = 0.05, n_init: int = 10, pool_limit: int = 100_000,
                 pool_size: int = 500, top_every: int = 8, top_beta: float = 2.5, pool_refresh: int = 32) -> None:
        super().__init__(space, objectives, constraints, seed, dedup, n_init, pool_limit, pool_size, pool_refresh)
        self.top_every = check_int("top_every", top_every, 0)
        self.top_beta = check_number("top_beta", top_beta, 0.0)
        self.beta = check_number("beta", beta, 0.0)
        self.cost_weight = check_number("cost_weight", cost_weight, 0.0)
        self.acquisition = check_choice("acquisition", acquisition, ("staircase", "staircase-ucb", "hvi"))
        self.degree = check_int("degree", degree, 1)
        self.noise = check_number("noise", noise, 1e-6)
        self._gp = None
        self._pool_cache: tuple[np.ndarray, np.ndarray] | None = None
        self._pool_x: np.ndarray | None = None
        self._cost_stats: tuple[np.ndarray, np.ndarray] | None = None
        self._vals: list[np.ndarray] = []  # signed objective values (larger is better) per observation
        self._ok: list[bool] = []  # complete and feasible

    def _reset_model(self) -> None:
        super()._reset_model()
        self._gp = None
        self._pool_cache = None
        self._pool_x = None
        self._cost_stats = None

    def attach(self, cost_models=None, fidelities=None) -> None:
        super().attach(cost_models, fidelities)
        self._reset_model()

    # --- observations --------------------------------------------------------------------------------
    def _observe(self, candidate: Candidate, result: Result) -> None:
        super()._observe(candidate, result)
        self._vals.append(result.values(self.objectives))
        self._ok.append(bool(result.feasible(self.constraints)))

    def _state(self) -> dict[str, Any]:
        state = {**super()._state(),
                 "vals": [[None if not math.isfinite(v) else float(v) for v in row] for row in self._vals],
                 "ok": list(self._ok)}
        if self._cost_stats is not None and self._get_pool() is None:  # the rolling pool's cost scaling
            state["cost_stats"] = [self._cost_stats[0].tolist(), self._cost_stats[1].tolist()]
        return state

    def _load_state(self, state: dict[str, Any]) -> None:
        super()._load_state(state)
        self._vals = [np.array([-math.inf if v is None else v for v in row]) for row in state["vals"]]
        self._ok = [bool(x) for x in state["ok"]]
        if "cost_stats" in state:
            self._cost_stats = (np.array(state["cost_stats"][0], dtype=float),
                                np.array(state["cost_stats"][1], dtype=float))

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

    def _pending_fantasy(self, gp, pool: AnyPool | None) -> tuple[np.ndarray | None, Any]:
        """Pending candidates as fantasised results: ``(features (k, d), believed)`` where ``believed`` is
        ``(known (k, m), mean(y) -> (k,))`` (NaN where no cheap cost gives a value; the GP's mean at the
        pending candidates for targets ``y``) for those that do not break a constraint on known costs;
        ``(None, None)`` when nothing is pending."""
        archs = self._pending_archs()
        if not archs:
            return None, None
        xp = self._features_of(archs, pool)
        ok = ~self._violates(archs)
        xb = xp[ok]

        def mean(y: np.ndarray) -> np.ndarray:
            return gp.predict(xb, y)[0] if len(xb) else np.zeros(0)

        return xp, (self._known([a for a, good in zip(archs, ok) if good]), mean)

    def _staircase_ei(self, gp_predict, known: np.ndarray, believed: Any = None) -> np.ndarray | None:
        """Two objectives, one known exactly for every candidate (a cheap cost): improvement (optimistic or
        expected, see ``acquisition``) of the modelled objective over the best result that is at least as
        good on the known one (the current front's staircase), in rank-normal units. Candidates beyond the
        cheapest result come first, cheapest first: they are on the front whatever their other value.
        ``believed``: pending candidates that join the staircase at their believed values (see
        :meth:`_pending_fantasy`)."""
        if len(self.objectives) != 2:
            return None
        kn = [j for j in range(2) if not np.isnan(known[:, j]).any()]
        if len(kn) != 1:
            return None
        k, m = kn[0], 1 - kn[0]
        from scipy.special import ndtr

        targets = self._targets()
        y = normal_scores(targets[:, m])
        mu, sd = gp_predict(y)
        if self.top_every and (len(self._vals) + len(self._pending)) % self.top_every == 0:
            return mu + self.top_beta * sd  # a step for the most accurate end: UCB of the modelled value alone
        ok = np.array(self._ok, dtype=bool)
        obs_k, obs_y = targets[ok, k], y[ok]
        if believed is not None:
            bk, bm = believed[0][:, k], believed[1](y)
            have = ~np.isnan(bk)
            obs_k, obs_y = np.concatenate([obs_k, bk[have]]), np.concatenate([obs_y, bm[have]])
        order = np.argsort(-obs_k, kind="stable")  # best known value first
        ks, best = obs_k[order], np.maximum.accumulate(obs_y[order])
        # best modelled value among results at least as good on the known axis as each candidate
        pos = np.searchsorted(-ks, -known[:, k], side="right")
        thresh = np.where(pos > 0, best[np.maximum(pos - 1, 0)], -np.inf)
        if self.acquisition == "staircase-ucb":
            ucb = mu + self.beta * sd
            ei = np.where(np.isfinite(thresh), np.maximum(ucb - thresh, 0.0) + 1e-6 * ucb, 0.0)
        else:
            z = (mu - thresh) / sd
            ei = np.where(np.isfinite(thresh),
                          (mu - thresh) * ndtr(z) + sd * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi), 0.0)
        open_end = ~np.isfinite(thresh)
        if open_end.any():
            top = ei.max() + 1.0
            ei = np.where(open_end, top + known[:, k] - known[open_end, k].min() + 1.0, ei)
        return ei

    def _axes(self, gp_predict, known: np.ndarray,
              believed: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per objective, the observed points and the candidates' optimistic points in one consistent
        unit per axis: raw signed values where every candidate's value is known (cheap cost), rank-based
        normal scores of the results (and GP predictions in those units) elsewhere. Pending candidates
        (``believed``, see :meth:`_pending_fantasy`) are appended to the observed points at their believed
        values. Returns ``(observed (n, m), optimistic (k, m), feasible (n,))``, larger is better."""
        from scipy.special import ndtri

        targets = self._targets()
        obs = targets.copy()
        opt = known.copy()
        ok = np.array(self._ok, dtype=bool)
        extra = None if believed is None else believed[0].copy()
        for j in range(len(self.objectives)):
            if not np.isnan(known[:, j]).any():
                # known exactly: the same monotone rank transform for candidates and results, so that both
                # axes are in comparable (rank-normal) units; dominance is unchanged
                ref = np.sort(np.concatenate([known[:, j], targets[:, j]]))
                n = len(ref) + 1
                opt[:, j] = ndtri(np.searchsorted(ref, known[:, j], side="right") / n)
                obs[:, j] = ndtri(np.searchsorted(ref, targets[:, j], side="right") / n)
                if extra is not None:
                    col = extra[:, j]
                    pos = np.maximum(np.searchsorted(ref, np.nan_to_num(col), side="right"), 0.5)
                    extra[:, j] = np.where(np.isnan(col), np.nan, ndtri(pos / n))
                continue
            y = normal_scores(targets[:, j])
            mu, sd = gp_predict(y)
            obs[:, j] = y
            opt[:, j] = mu + self.beta * sd
            if extra is not None:
                extra[:, j] = believed[1](y)
        if extra is not None:
            extra = extra[~np.isnan(extra).any(axis=1)]
            obs = np.vstack([obs, extra])
            ok = np.concatenate([ok, np.ones(len(extra), dtype=bool)])
        return obs, opt, ok

    def _acquisition(self, obs: np.ndarray, opt: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Larger is better; ``obs`` (n, m) and ``opt`` (k, m) are signed, in the units of :meth:`_axes`;
        ``ok`` (n,) marks the feasible observed points."""
        lo = np.minimum(obs.min(axis=0), opt.min(axis=0))
        hi = np.maximum(obs.max(axis=0), opt.max(axis=0))
        span = np.where(hi > lo, hi - lo, 1.0)
        front = obs[ok]
        if len(front):
            front = front[pareto_mask(front)]
        if len(self.objectives) == 2:
            ref = -(lo - 0.1 * span)  # minimisation convention of archscout.pareto
            if len(front):
                hvi = hypervolume_improvement(-front, -opt, ref)
            else:
                hvi = np.prod(np.maximum(ref + opt, 0), axis=1)
            if np.any(hvi > 0):
                return hvi
        w = self.rng.dirichlet(np.ones(len(self.objectives)))
        z = (opt - lo) / span
        return np.min(w * z, axis=1) + 1e-3 * np.sum(w * z, axis=1)

    # --- model inputs: architecture features plus the known costs --------------------------------------
    def _cost_columns(self, archs: list[Architecture]) -> np.ndarray:
        """Log of the known (cheap) objective values, one column per such objective, ``(len(archs), c)``."""
        known = self._known(archs)
        cols = [j for j in range(known.shape[1]) if not np.isnan(known[:, j]).any()]
        return np.log(np.maximum(np.abs(known[:, cols]), 1e-12)) if cols else np.zeros((len(archs), 0))

    def _with_costs(self, x: np.ndarray, archs: list[Architecture]) -> np.ndarray:
        c = self._cost_columns(archs)
        if c.shape[1] == 0 or self._cost_stats is None:
            return x
        mean, std = self._cost_stats
        z = (c - mean) / std
        out = np.hstack([x, self.cost_weight * z / max(1, z.shape[1]) ** 0.5])
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def _pool_columns(self) -> dict[str, Any]:
        return {"features": self._arch_features, "known": self._known, "violates": self._violates}

    def _pool_features(self, pool: AnyPool) -> np.ndarray:
        if isinstance(pool, RollingPool):
            return pool.features
        if self._pool_x is None:
            c = self._cost_columns(pool.archs)
            self._cost_stats = (c.mean(axis=0), c.std(axis=0) + 1e-12) if c.shape[1] else None
            self._pool_x = self._with_costs(pool.features, pool.archs)
        return self._pool_x

    def _arch_features(self, archs: list[Architecture]) -> np.ndarray:
        if self._cost_stats is None and self.cost_models and archs and self._get_pool() is None:
            # a large space: the cost columns are scaled by the first candidates (the rolling pool's fill)
            c = self._cost_columns(archs)
            self._cost_stats = (c.mean(axis=0), c.std(axis=0) + 1e-12) if c.shape[1] else None
        return self._with_costs(features(self.space, archs), archs)

    # --- acquisition over candidates -----------------------------------------------------------------
    def _acquire_pool(self, pool: AnyPool) -> np.ndarray:
        gp = self._sync_gp(pool)
        if isinstance(pool, RollingPool):
            known, violates = pool.column("known"), pool.column("violates")
        else:
            if self._pool_cache is None:  # cheap costs are fixed once attached: compute them once per pool
                self._pool_cache = (self._known(pool.archs), self._violates(pool.archs))
            known, violates = self._pool_cache
        xp, believed = self._pending_fantasy(gp, pool)

        def predict(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return gp.predict_pool(y, xp)

        acq = self._staircase_ei(predict, known, believed) if self.acquisition != "hvi" else None
        if acq is None:
            acq = self._acquisition(*self._axes(predict, known, believed))
        return np.where(violates, -np.inf, acq)

    def _propose(self) -> Architecture:
        with one_blas_thread():
            return super()._propose()

    def _params(self) -> dict[str, Any]:
        return {"acquisition": self.acquisition, "beta": self.beta, "cost_weight": self.cost_weight,
                "degree": self.degree, "noise": self.noise, "top_every": self.top_every, "top_beta": self.top_beta,
                **super()._params()}


STRATEGY_CLASSES = [MultiObjectiveSMBO]
