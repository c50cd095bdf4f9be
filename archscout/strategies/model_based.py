"""Model-based single-objective strategies: SMBO (Gaussian process or random forest), BANANAS and
predictor-guided evolution.

All three learn a surrogate of the score from the results told so far and propose the candidate with the
best acquisition value. Candidates come from the whole space when it is finite and small enough
(``pool_limit``; one representative per functional class, enumerated once per process), else from a pool
of mutations of the best architectures plus random samples. Targets are rank-based normal scores, so a
long lower tail of bad or failed architectures does not distort the model. The first ``n_init``
proposals are random.

Asynchronous search: several candidates may be pending (asked here, or evaluated elsewhere and given to
:meth:`~archscout.strategies.Strategy.note_pending`). They are never proposed again, and the model
accounts for them while it chooses the next candidate, so that a batch spreads out instead of crowding
around the current optimum. Each pending outcome is fantasised as the model's mean prediction (a kriging
believer) and added to the model only for that choice:

* Gaussian process (``smbo``, ``pge``): the mean is unchanged and the variance around the pending
  candidates shrinks (a cheap rank-``k`` update, GP-BUCB; nothing is refitted or stored);
* random forest (``smbo``) and ensembles (``bananas``): a temporary model is fitted on the results plus
  the pending candidates at the current mean prediction (the forest with the same seed, the ensemble on
  fresh bootstrap draws), so that the members agree around them and their spread, the exploration bonus,
  falls there.

With one candidate pending at a time (ask, tell, ask...) nothing is fantasised and the proposals are
exactly those of a sequential run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import check_choice, check_int, check_number
from ..errors import ConfigError
from ..results import Candidate, Result
from ..space import Architecture
from .base import Capabilities, Strategy, score_from_json, score_to_json
from .surrogate import (
    CandidatePool,
    Columns,
    IncrementalGP,
    RollingPool,
    candidate_pool,
    encoder,
    features,
    normal_scores,
    one_blas_thread,
)

__all__ = ["SMBO", "STRATEGY_CLASSES", "AnyPool", "Bananas", "GPModelMixin", "PredictorGuidedEvolution",
           "SurrogateStrategy"]

AnyPool = CandidatePool | RollingPool


class SurrogateStrategy(Strategy):
    """Base of the model-based strategies: observations, candidate pools and the propose loop (subclasses
    implement :meth:`_acquire_pool`).

    Candidates: a space of at most ``pool_limit`` architectures is enumerated once (one representative per
    functional class). A larger space gets a :class:`~archscout.strategies.surrogate.RollingPool` of
    ``pool_size`` candidates, filled at the first model-based proposal with mutations of the best results
    and random samples; each later proposal drops the candidates taken since (proposed, pending or
    evaluated), adds ``pool_refresh`` fresh ones (half mutations of the best results, parents drawn with
    weight ``1 / rank`` among the ten best, half random samples) and drops the oldest beyond ``pool_size``.
    A candidate's features are computed once, when it joins the pool (into a free slot, or the oldest
    candidate's), so a proposal costs
    ``O(pool_refresh)`` samples and encodings plus the model's update, not ``O(pool_size)``.
    """

    capabilities = Capabilities()

    def __init__(self, space, objectives=None, constraints=(), seed=None, dedup=True,
                 n_init: int = 10, pool_limit: int = 100_000, pool_size: int = 500, pool_refresh: int = 32) -> None:
        super().__init__(space, objectives, constraints, seed, dedup)
        self.n_init = check_int("n_init", n_init, 1)
        self.pool_limit = check_int("pool_limit", pool_limit, 0)
        self.pool_size = check_int("pool_size", pool_size, 10)
        self.pool_refresh = check_int("pool_refresh", pool_refresh, 1)
        self._obs: list[tuple[Architecture, float]] = []
        self._pool: CandidatePool | bool | None = False  # False: not looked up yet
        self._rolling: RollingPool | None = None
        self._restore: dict[str, Any] | None = None  # rolling pool snapshot of a loaded state

    # --- candidates --------------------------------------------------------------------------------
    def _get_pool(self) -> CandidatePool | None:
        if self._pool is False:
            self._pool = candidate_pool(self.space, self.pool_limit)
        return self._pool  # type: ignore[return-value]

    def _pending_archs(self) -> list[Architecture]:
        """Architectures of the pending candidates (asked here or noted as evaluated elsewhere)."""
        return [c.arch for c in self._pending.values()]

    def _taken(self) -> set[str]:
        """Functional hashes (without fidelity) of everything seen or pending."""
        return {h.split("@")[0] for h in self._seen} | {c.arch.functional_hash() for c in self._pending.values()}

    def _pool_columns(self) -> dict[str, Columns] | None:
        """Per-candidate columns of the rolling pool (``None``: its default, ``"features"``)."""
        return None

    def _fresh_candidates(self, n: int) -> list[Architecture]:
        """``n`` new candidates: half mutations of the best results (parent of rank ``r`` among the ten best
        drawn with weight ``1 / r``), half random samples (all random before any result)."""
        ranked = sorted(range(len(self._obs)), key=lambda i: -self._obs[i][1])[:10]
        out: list[Architecture] = []
        if ranked:
            w = 1.0 / np.arange(1, len(ranked) + 1)
            for r in self.rng.choice(len(ranked), size=n // 2, p=w / w.sum()):
                out.append(self.space.mutate(self._obs[ranked[int(r)]][0], self.rng))
        out.extend(self.space.sample(self.rng) for _ in range(n - len(out)))
        return out

    def _rolling_pool(self) -> RollingPool:
        """The rolling pool, refreshed for the next proposal (see the class docstring)."""
        taken = self._taken()
        pool = self._rolling
        n_new = self.pool_refresh
        if pool is None:
            pool = self._rolling = RollingPool(self.space, self.pool_size, self._pool_columns())
            if self._restore is not None:
                pool.load(self._restore)
            if not pool.n_alive:
                n_new = self.pool_size
            self._restore = None
        pool.discard(taken.__contains__)
        pool.add([a for a in self._fresh_candidates(n_new) if a.functional_hash() not in taken])
        return pool

    def _propose(self) -> Architecture:
        if len(self._obs) < self.n_init:
            return self._initial()
        with one_blas_thread():
            pool = self._get_pool()
            if pool is not None:
                avail = np.ones(len(pool), dtype=bool)
                for h in self._taken():
                    i = pool.index.get(h)
                    if i is not None:
                        avail[i] = False
                if not avail.any():
                    return self.space.sample(self.rng)
                acq = self._acquire_pool(pool)
                acq = np.where(avail, acq, -np.inf)
                return pool.archs[int(np.argmax(acq))]
            rolling = self._rolling_pool()
            if not rolling.n_alive:
                return self.space.sample(self.rng)
            acq = np.where(rolling.alive, self._acquire_pool(rolling), -np.inf)
            return rolling.archs[int(np.argmax(acq))]  # type: ignore[return-value]

    def _initial(self) -> Architecture:
        """A random architecture; uniform over functional classes when the pool is enumerated (uniform
        cells over-sample the large classes of degenerate cells, which teach the model little)."""
        pool = self._get_pool()
        if pool is None:
            return self.space.sample(self.rng)
        return pool.archs[int(self.rng.integers(len(pool)))]

    def _scores(self) -> np.ndarray:
        return np.array([s for _, s in self._obs], dtype=float)

    # --- to implement ------------------------------------------------------------------------------
    def _acquire_pool(self, pool: AnyPool) -> np.ndarray:
        """Acquisition value of every pool member, shape ``(len(pool),)`` (larger is better)."""
        raise NotImplementedError

    # --- observations and state --------------------------------------------------------------------
    def _observe(self, candidate: Candidate, result: Result) -> None:
        self._obs.append((candidate.arch, self.score(result)))

    def _params(self) -> dict[str, Any]:
        return {"n_init": self.n_init, "pool_limit": self.pool_limit, "pool_size": self.pool_size,
                "pool_refresh": self.pool_refresh}

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"obs": [[str(a), score_to_json(s)] for a, s in self._obs]}
        snapshot = self._rolling.snapshot() if self._rolling is not None else self._restore
        if snapshot is not None:
            state["pool"] = snapshot
        return state

    def _load_state(self, state: dict[str, Any]) -> None:
        self._obs = [(self.space.parse(a), score_from_json(s)) for a, s in state["obs"]]
        self._reset_model()
        self._rolling = None
        self._restore = state.get("pool")

    def _reset_model(self) -> None:
        """Forget the model (and the rolling pool, whose columns may depend on the attached costs; its
        members are kept and their columns computed again)."""
        if self._rolling is not None:
            self._restore = self._rolling.snapshot()
            self._rolling = None


class GPModelMixin:
    """For a :class:`SurrogateStrategy`: an :class:`IncrementalGP` over the pool (enumerated or rolling, whose
    columns it follows), synchronised with the observations."""

    degree: int
    noise: float
    _gp: IncrementalGP | None
    _gp_ids: np.ndarray | None = None  # rolling pool ids mirrored by the GP's pool columns

    def _pool_features(self, pool: AnyPool) -> np.ndarray:
        return pool.features

    def _arch_features(self, archs: list[Architecture]) -> np.ndarray:
        return features(self.space, archs)  # type: ignore[attr-defined]

    def _features_of(self, archs: list[Architecture], pool: AnyPool | None) -> np.ndarray:
        """Model inputs of ``archs``, shape ``(len(archs), d)``: the pool's rows where it has them."""
        if pool is None:
            return self._arch_features(archs)
        if isinstance(pool, RollingPool):
            rows = [pool.row(a) for a in archs]
            missing = [a for a, r in zip(archs, rows) if r is None]
            if missing:
                extra = iter(self._arch_features(missing))
                rows = [r if r is not None else next(extra) for r in rows]
            return np.array(rows).reshape(len(archs), -1)
        pf = self._pool_features(pool)
        idx = [pool.index.get(a.functional_hash()) for a in archs]
        return np.array([pf[i] if i is not None else self._arch_features([a])[0] for i, a in zip(idx, archs)])

    def _sync_gp(self, pool: AnyPool | None) -> IncrementalGP:
        rolling = pool if isinstance(pool, RollingPool) else None
        if self._gp is None:
            if rolling is not None:
                self._gp = IncrementalGP(self.degree, self.noise, np.zeros((0, rolling.features.shape[1])))
                self._gp_ids = np.zeros(0, dtype=np.int64)
            else:
                self._gp = IncrementalGP(self.degree, self.noise, None if pool is None else self._pool_features(pool))
        gp = self._gp
        new = self._obs[len(gp):]  # type: ignore[attr-defined]
        if new:
            for x in self._features_of([a for a, _ in new], pool):
                gp.add(x)
        if rolling is not None:  # follow the pool: recompute the columns of the slots whose occupant changed
            assert self._gp_ids is not None
            ids = rolling.ids
            old = np.full(len(ids), -1, dtype=np.int64)
            old[:len(self._gp_ids)] = self._gp_ids[:len(ids)]
            changed = np.flatnonzero((ids != old) & (ids >= 0))
            if len(changed):
                gp.pool_set(changed, self._pool_features(rolling)[changed])
            self._gp_ids = ids.copy()
        return gp

    def _pending_features(self, pool: AnyPool | None) -> np.ndarray | None:
        """Model inputs of the pending candidates ``(k, d)``, fantasised by the GP (``None`` when none)."""
        archs = self._pending_archs()  # type: ignore[attr-defined]
        return self._features_of(archs, pool) if archs else None


class SMBO(GPModelMixin, SurrogateStrategy):
    """Sequential model-based optimisation with a Gaussian-process or random-forest surrogate and UCB.

    The GP (default) uses a degree-``degree`` polynomial kernel on one-hot plus functional path features
    (see :mod:`archscout.strategies.surrogate`), fixed ``noise``, and proposes the candidate maximising
    ``mean + beta * std`` of the rank-normalised score. ``surrogate="rf"`` fits a scikit-learn random forest
    (``n_trees`` trees) instead and uses the spread of its trees as the uncertainty (as DeepArchitect's SMBO).

    Pending candidates are fantasised at the mean prediction (kriging believer): the GP's variance shrinks
    around them (GP-BUCB); the forest is refitted with them added at the first forest's mean prediction,
    which costs a second fit per proposal while candidates are pending.

    Args:
        surrogate: ``"gp"`` or ``"rf"``.
        beta: exploration weight of the upper confidence bound (>= 0).
        degree: kernel degree (GP).
        noise: observation noise variance relative to the prior variance (GP).
        n_trees: trees of the forest (RF).
        n_init / pool_limit / pool_size: random initial proposals; largest space enumerated as the
            candidate pool; size of the mutation pool for larger spaces.
    """

    name = "smbo"

    def __init__(self, space, objectives=None, constraints=(), seed=None, dedup=True,
                 surrogate: str = "gp", beta: float = 2.5, degree: int = 3, noise: float = 0.05,
                 n_trees: int = 100, n_init: int = 10, pool_limit: int = 100_000,
                 pool_size: int = 500, pool_refresh: int = 32) -> None:
        super().__init__(space, objectives, constraints, seed, dedup, n_init, pool_limit, pool_size, pool_refresh)
        self.surrogate = check_choice("surrogate", surrogate, ("gp", "rf"))
        self.beta = check_number("beta", beta, 0.0)
        self.degree = check_int("degree", degree, 1)
        self.noise = check_number("noise", noise, 1e-6)
        self.n_trees = check_int("n_trees", n_trees, 2)
        self._gp = None

    def _reset_model(self) -> None:
        super()._reset_model()
        self._gp = None

    def _acquire_pool(self, pool: AnyPool) -> np.ndarray:
        y = normal_scores(self._scores())
        if self.surrogate == "rf":
            return self._forest_ucb(pool.features, y)
        gp = self._sync_gp(pool)
        mu, sd = gp.predict_pool(y, self._pending_features(pool))
        return mu + self.beta * sd

    def _forest_ucb(self, xc: np.ndarray, y: np.ndarray) -> np.ndarray:
        from sklearn.ensemble import RandomForestRegressor

        x = features(self.space, [a for a, _ in self._obs])
        seed = int(self.rng.integers(2**31))

        def fit(x: np.ndarray, y: np.ndarray) -> Any:
            return RandomForestRegressor(n_estimators=self.n_trees, min_samples_leaf=2, max_features=0.5,
                                         random_state=seed, n_jobs=1).fit(x, y)

        forest = fit(x, y)
        pending = self._pending_archs()
        if pending:  # kriging believer: refit with the pending candidates at the forest's mean prediction
            xp = features(self.space, pending)
            forest = fit(np.vstack([x, xp]), np.concatenate([y, forest.predict(xp)]))
        per_tree = np.array([t.predict(xc) for t in forest.estimators_])
        return per_tree.mean(axis=0) + self.beta * per_tree.std(axis=0)

    def _params(self) -> dict[str, Any]:
        return {"surrogate": self.surrogate, "beta": self.beta,
                "degree": self.degree, "noise": self.noise,
                "n_trees": self.n_trees, **super()._params()}


class Bananas(SurrogateStrategy):
    """BANANAS (White et al., 2021): an ensemble of predictors on the path encoding, with independent
    Thompson sampling over the candidate pool.

    Each of ``n_models`` members is trained on a bootstrap resample of the results. ``acquisition="its"``
    scores every candidate with a draw from a normal distribution with the ensemble's mean and spread
    there; ``"ucb"`` uses ``mean + beta * spread``.

    While candidates are pending, each proposal scores the candidates with a temporary ensemble trained on
    the results plus the pending candidates at the ensemble's mean prediction (kriging believer), so that
    the spread, and with it the chance of a near-copy, falls around them. This costs one ensemble fit per
    proposal while candidates are pending (cheap for ``"ridge"``, as much as a refit for ``"mlp"``).

    Args:
        model: ``"mlp"`` (scikit-learn ``MLPRegressor``, the original neural predictor) or ``"ridge"``.
        encoding: ``"path"`` (the paper's), ``"onehot"`` or ``"functional"``.
        n_models: ensemble size (>= 2).
        acquisition: ``"its"`` or ``"ucb"``; ``beta``: UCB exploration weight.
        refit_every: retrain the ensemble after this many new results (predictions are cached between).
    """

    name = "bananas"

    def __init__(self, space, objectives=None, constraints=(), seed=None, dedup=True,
                 model: str = "ridge", encoding: str = "path", n_models: int = 5, acquisition: str = "its",
                 beta: float = 1.0, refit_every: int = 1, n_init: int = 10, pool_limit: int = 100_000,
                 pool_size: int = 500, pool_refresh: int = 32) -> None:
        super().__init__(space, objectives, constraints, seed, dedup, n_init, pool_limit, pool_size, pool_refresh)
        self.model = check_choice("model", model, ("mlp", "ridge"))
        self.encoding = check_choice("encoding", encoding, ("path", "onehot", "functional"))
        self.n_models = check_int("n_models", n_models, 2)
        self.acquisition = check_choice("acquisition", acquisition, ("its", "ucb"))
        self.beta = check_number("beta", beta, 0.0)
        self.refit_every = check_int("refit_every", refit_every, 1)
        self._members: list[Any] = []
        self._fitted_at = -1
        self._obs_x: list[np.ndarray] = []

    def _reset_model(self) -> None:
        super()._reset_model()
        self._members = []
        self._fitted_at = -1
        self._obs_x = []

    def _encode(self, archs: list[Architecture]) -> np.ndarray:
        return encoder(self.space, self.encoding)(archs)

    def _obs_encoding(self) -> np.ndarray:
        """Encodings of the observations, shape ``(n, d)`` (each computed once)."""
        if len(self._obs_x) < len(self._obs):
            self._obs_x.extend(self._encode([a for a, _ in self._obs[len(self._obs_x):]]))
        return np.array(self._obs_x[:len(self._obs)]).reshape(len(self._obs), -1)

    def _fit(self) -> None:
        n = len(self._obs)
        if self._members and n - self._fitted_at < self.refit_every:
            return
        self._members = self._ensemble(self._obs_encoding(), normal_scores(self._scores()))
        self._fitted_at = n

    def _ensemble(self, x: np.ndarray, y: np.ndarray) -> list[Any]:
        """``n_models`` members, each fitted on a bootstrap resample of ``x`` ``(n, d)`` and ``y`` ``(n,)``."""
        n = len(y)
        members = []
        for _ in range(self.n_models):
            idx = self.rng.integers(n, size=n)
            members.append(self._new_model().fit(x[idx], y[idx]))
        return members

    def _believer(self) -> list[Any]:
        """A temporary ensemble that also knows the pending candidates, at the current mean prediction."""
        xp = self._encode(self._pending_archs())
        yp = np.mean([m.predict(xp) for m in self._members], axis=0)
        x = np.vstack([self._obs_encoding(), xp])
        return self._ensemble(x, np.concatenate([normal_scores(self._scores()), yp]))

    def _new_model(self) -> Any:
        if self.model == "ridge":
            from sklearn.linear_model import Ridge

            return Ridge(alpha=1.0)
        from sklearn.neural_network import MLPRegressor

        return MLPRegressor(hidden_layer_sizes=(32, 32), alpha=1e-3, max_iter=300, solver="lbfgs",
                            random_state=int(self.rng.integers(2**31)))

    def _score(self, x: np.ndarray) -> np.ndarray:
        self._fit()
        members = self._believer() if self._pending else self._members
        preds = np.array([m.predict(x) for m in members])
        mu, sd = preds.mean(axis=0), preds.std(axis=0)
        if self.acquisition == "its":
            return mu + sd * self.rng.standard_normal(len(mu))
        return mu + self.beta * sd

    def _pool_columns(self) -> dict[str, Columns] | None:
        return {f"encoding:{self.encoding}": encoder(self.space, self.encoding)}

    def _acquire_pool(self, pool: AnyPool) -> np.ndarray:
        return self._score(pool.encoding(self.encoding))

    def _params(self) -> dict[str, Any]:
        return {"model": self.model, "encoding": self.encoding, "n_models": self.n_models,
                "acquisition": self.acquisition, "beta": self.beta, "refit_every": self.refit_every,
                **super()._params()}


class PredictorGuidedEvolution(GPModelMixin, SurrogateStrategy):
    """Predictor-guided evolution (as FBNetV3 and DyNAS-T LINAS): aging evolution whose children are
    screened by a predictor pre-trained on free statistics before one is evaluated.

    Each step draws parents by tournament from the population (the last ``population_size`` results),
    makes ``n_children`` children by mutation (and crossover with probability ``crossover``), and
    proposes the child with the best predicted ``mean + beta * std``. The predictor is a linear model of the
    free statistic ``prior`` (a cheap cost attached to the study, e.g. ``"params"`` or ``"flops"``; its
    log is used, larger assumed better when ``prior_direction="max"``) plus a Gaussian process on the
    residuals. Before any result the prior alone ranks the candidates, so even the initial population is
    chosen by it (the best of ``n_children`` random samples each). Without a ``prior`` (or when the study
    attaches no such cost) the predictor is the GP alone and the initial population is random.

    Pending candidates are fantasised at the predictor's mean (kriging believer): the linear prior is
    unchanged and the GP's variance shrinks around them, so a batch of children spreads out.
    """

    name = "pge"

    def __init__(self, space, objectives=None, constraints=(), seed=None, dedup=True,
                 prior: str | None = None, prior_direction: str = "max", population_size: int = 30,
                 sample_size: int = 10, n_children: int = 64, crossover: float = 0.25, beta: float = 0.5,
                 degree: int = 3, noise: float = 0.05, n_init: int = 10, pool_size: int = 1000) -> None:
        super().__init__(space, objectives, constraints, seed, dedup, n_init, 0, pool_size)
        if prior is not None and (not isinstance(prior, str) or not prior):
            raise ConfigError(f"prior must be the name of a cheap cost metric (e.g. 'params') or None, got {prior!r}")
        self.prior = prior
        self.prior_direction = check_choice("prior_direction", prior_direction, ("max", "min"))
        self.population_size = check_int("population_size", population_size, 2)
        self.sample_size = check_int("sample_size", sample_size, 1)
        if self.sample_size > self.population_size:
            raise ConfigError(f"sample_size ({sample_size}) cannot exceed population_size ({population_size})")
        self.n_children = check_int("n_children", n_children, 1)
        self.crossover = check_number("crossover", crossover, 0.0, 1.0)
        self.beta = check_number("beta", beta, 0.0)
        self.degree = check_int("degree", degree, 1)
        self.noise = check_number("noise", noise, 1e-6)
        self._gp = None

    def _reset_model(self) -> None:
        super()._reset_model()
        self._gp = None

    def _stat(self, archs: list[Architecture]) -> np.ndarray | None:
        if self.prior is None:
            return None
        vals = [self.known_costs(a).get(self.prior) for a in archs]
        if any(v is None for v in vals):
            return None
        s = np.log(np.maximum(np.array(vals, dtype=float), 1e-12))
        return s if self.prior_direction == "max" else -s

    def _initial(self) -> Architecture:
        cands = [self.space.sample(self.rng) for _ in range(self.n_children)]
        taken = self._taken()
        cands = [a for a in cands if a.functional_hash() not in taken] or cands
        stat = self._stat(cands)
        if stat is None:
            return cands[0]
        return cands[int(np.argmax(stat))]

    def _children(self) -> list[Architecture]:
        pop = self._obs[-self.population_size:]
        taken = self._taken()
        out: dict[str, Architecture] = {}

        def parent() -> Architecture:
            idx = self.rng.choice(len(pop), size=min(self.sample_size, len(pop)), replace=False)
            return max((pop[int(i)] for i in idx), key=lambda m: m[1])[0]

        for _ in range(self.n_children * 3):
            if len(out) >= self.n_children:
                break
            a = parent()
            if self.crossover > 0 and self.rng.random() < self.crossover:
                a = self.space.crossover(a, parent(), self.rng)
            child = self.space.mutate(a, self.rng)
            h = child.functional_hash()
            if h not in taken:
                out.setdefault(h, child)
        return list(out.values())

    def _propose(self) -> Architecture:
        if len(self._obs) < self.n_init:
            return self._initial()
        cands = self._children()
        if not cands:
            return self.space.sample(self.rng)
        with one_blas_thread():
            return cands[int(np.argmax(self._acquire(cands)))]

    def _acquire(self, cands: list[Architecture]) -> np.ndarray:
        y = normal_scores(self._scores())
        obs_stat = self._stat([a for a, _ in self._obs])
        cand_stat = self._stat(cands)
        prior_c = np.zeros(len(cands))
        if obs_stat is not None and cand_stat is not None:
            both = np.concatenate([obs_stat, cand_stat])
            mean, std = both.mean(), both.std() or 1.0
            zo, zc = (obs_stat - mean) / std, (cand_stat - mean) / std
            a = np.vstack([np.ones_like(zo), zo]).T
            coef = np.linalg.lstsq(a, y, rcond=None)[0] if len(y) >= 3 else np.array([0.0, 1.0])
            y = y - a @ coef
            prior_c = coef[0] + coef[1] * zc
        gp = self._sync_gp(None)
        mu, sd = gp.predict(self._arch_features(cands), y, self._pending_features(None))
        return prior_c + mu + self.beta * sd

    def _params(self) -> dict[str, Any]:
        return {"prior": self.prior, "prior_direction": self.prior_direction,
                "population_size": self.population_size, "sample_size": self.sample_size,
                "n_children": self.n_children, "crossover": self.crossover, "beta": self.beta,
                "degree": self.degree, "noise": self.noise, "n_init": self.n_init, "pool_size": self.pool_size}


STRATEGY_CLASSES = [SMBO, Bananas, PredictorGuidedEvolution]
