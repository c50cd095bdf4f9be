"""Multi-fidelity strategies: successive halving, Hyperband and asynchronous successive halving (ASHA).

Rungs are the fidelities a configuration can be evaluated at, lowest first; the last rung is full
training. They come from, in order of precedence:

* ``fidelities=[...]``: explicit rungs;
* ``min_fidelity=m``: a geometric ladder ``m, m*eta, m*eta^2, ...`` up to the study's full fidelity (the
  largest of the fidelities the study attached), which is always the last rung; a ladder step closer than
  ``sqrt(eta)`` to the full fidelity is dropped, and rungs are rounded to integers when ``m`` and the full
  fidelity are integers (epochs);
* the fidelities the study attached (``create_study(..., fidelities=[12, 200])``), used as they are;
* none of these: a single rung at full fidelity. The strategies then ask with ``fidelity=None`` and reduce
  to their sampler (random or model-based search without repeats), so they run in any study.

A configuration (an architecture's function) starts at the lowest rung of its bracket and is promoted by
proposing the same architecture again at the next rung; a (function, fidelity) pair is never proposed
twice. A result told at ``fidelity=None`` counts at the full-fidelity rung.

New configurations come from a ``sampler``:

* ``"random"``: uniform over the space, never a started function;
* ``"model"``: a rung-aware ensemble of extremely randomised trees (scikit-learn ``ExtraTreeRegressor`` on
  bootstrap samples) on ``space.encode(arch, "onehot")`` plus one fidelity feature (log fidelity scaled
  to [0, 1] over the rungs). Each architecture contributes one row, its highest-fidelity result (failed
  and infeasible results count as the worst score seen). A new configuration is the unstarted candidate
  with the best mean prediction of 3 trees drawn at random, predicted at the rung where it will start (the
  rung its promotion is decided on): Thompson sampling over the ensemble, a little greedier than one
  tree. One proposal in five is instead a uniformly random unstarted candidate, which keeps the search
  from settling on one region. Candidates are every function of a space of at most 50,000 points, else a
  rolling pool of mutations of the best configurations of each rung plus random architectures. The first
  12 results come from random sampling. The ensemble is refreshed as results arrive (6 new trees replace
  the 6 oldest of 24 each time the results grew by 10 %), so a proposal costs about a millisecond.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, SpaceExhaustedError
from ..objectives import Candidate, Result
from ..space import Architecture, Space
from .base import Capabilities, Strategy
from .surrogate import candidate_pool

__all__ = ["SuccessiveHalving", "Hyperband", "ASHA", "SAMPLERS", "STRATEGY_CLASSES"]

SAMPLERS = ("random", "model")
_ENUMERATE_POOL = 50_000  # spaces up to this size are enumerated (and cached) for the model's candidate pool
_ENUMERATE_LIMIT = 2_000_000  # the largest space searched exhaustively once random draws find nothing new
_MODEL_MIN_DATA = 12  # results before the model replaces random sampling
_MODEL_TREES = 24  # trees in the ensemble
_TREES_PER_REFIT = 6  # new trees per refit (the oldest retire)
_THOMPSON_TREES = 3  # trees averaged per proposal (1: plain Thompson sampling; more: greedier)
_EXPLORE = 0.2  # fraction of model proposals drawn uniformly from the unstarted candidates instead
_REFIT_GROWTH = 0.1  # refit once the records grew by this fraction (at least one result)
# rolling candidate pool of a space too large to enumerate: per refit, mutants of the best configurations
# and random architectures; at most _POOL_MAX members
_POOL_PARENTS, _POOL_MUTANTS, _POOL_RANDOM, _POOL_MAX = 10, 100, 50, 600


def _f2j(x: float) -> float | None:
    return None if x == -math.inf else float(x)


def _j2f(x: float | None) -> float:
    return -math.inf if x is None else float(x)


# --- parameters ----------------------------------------------------------------------------------------
def _check_eta(eta: Any) -> float | None:
    if eta is None:
        return None
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not math.isfinite(eta) or eta <= 1:
        raise ConfigError(f"eta must be a number > 1 (the fraction promoted is 1/eta), got {eta!r}")
    return float(eta)


def _check_n(n: Any) -> int | None:
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"n (configurations per bracket at its lowest rung) must be an integer >= 1, got {n!r}")
    return int(n)


def _check_fidelities(fidelities: Any, min_fidelity: Any) -> tuple[tuple[float, ...] | None, float | None]:
    """Validated explicit rungs (sorted) and ``min_fidelity``. Raises ConfigError on bad values or both given."""
    fids = None
    if fidelities is not None:
        if isinstance(fidelities, (str, bytes)) or not isinstance(fidelities, Sequence) or not fidelities:
            raise ConfigError(
                f"fidelities must be a non-empty list of positive numbers such as [12, 200], got {fidelities!r}")
        try:
            vals = [float(f) for f in fidelities]
        except (TypeError, ValueError):
            raise ConfigError(f"fidelities must be positive numbers, got {fidelities!r}") from None
        if any(not math.isfinite(f) or f <= 0 for f in vals) or len(set(vals)) != len(vals):
            raise ConfigError(f"fidelities must be distinct positive numbers, got {fidelities!r}")
        fids = tuple(sorted(vals))
    mf = None
    if min_fidelity is not None:
        if isinstance(min_fidelity, bool) or not isinstance(min_fidelity, (int, float)) or not (
                math.isfinite(min_fidelity) and min_fidelity > 0):
            raise ConfigError(f"min_fidelity must be a positive number, got {min_fidelity!r}")
        if fids is not None:
            raise ConfigError(
                "give either fidelities=[...] (explicit rungs) or min_fidelity (a geometric ladder), not both")
        mf = float(min_fidelity)
    return fids, mf


def _ladder(min_f: float, max_f: float, eta: float) -> tuple[float, ...]:
    """Rungs ``min_f * eta^k`` below ``max_f`` (a step within ``sqrt(eta)`` of it dropped), then ``max_f``."""
    rungs = []
    f = min_f
    while f * math.sqrt(eta) < max_f * (1 - 1e-9):
        rungs.append(f)
        f *= eta
    if float(min_f).is_integer() and float(max_f).is_integer():
        rungs = sorted({float(round(r)) for r in rungs} - {float(max_f)})
    return tuple(rungs) + (float(max_f),)


# --- candidate pools and the model sampler ------------------------------------------------------------
def _enumerated_pool(space: Space) -> tuple[list[Architecture], list[str], np.ndarray]:
    """One architecture per function of a finite space, their hashes and one-hot codes (cached per space)."""
    pool = candidate_pool(space, _ENUMERATE_POOL)
    assert pool is not None, "only called for spaces of at most _ENUMERATE_POOL architectures"
    return pool.archs, pool.hashes, pool.encoding("onehot").astype(np.float32)


class _ModelSampler:
    """Thompson sampling from a rolling ensemble of extremely randomised trees (see the module docstring).

    Each refit (once the records grew by ``_REFIT_GROWTH``) fits ``_TREES_PER_REFIT`` new trees on
    bootstrap samples of the current data and retires the oldest beyond ``_MODEL_TREES``, so a refit costs a
    few trees whatever the ensemble size. Fitted trees are not stored: the state keeps, per tree, how many
    records it was fitted on and its seed, and the trees are refitted from the records after a restore,
    identically.
    """

    def __init__(self, strategy: _MultiFidelity) -> None:
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
        rungs = self.s._rungs
        if fidelity is None or rungs[0] is None or len(rungs) == 1:
            return 1.0
        lo, hi = math.log(rungs[0]), math.log(rungs[-1])  # type: ignore[arg-type]
        return min(1.0, max(0.0, (math.log(fidelity) - lo) / (hi - lo)))

    def _fold(self, n: int) -> None:
        """Keep each architecture's highest-fidelity result among the first ``n`` records."""
        space = self.s.space
        for arch, fid, score in self.s._records[self._folded:n]:
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
        n = len(self.s._records)
        if not self.specs:
            return n >= _MODEL_MIN_DATA
        last = self.specs[-1][0]
        return n - last >= max(1, math.ceil(_REFIT_GROWTH * last))

    def _refit(self) -> None:
        n = len(self.s._records)
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
        ``_ENUMERATE_POOL`` points uses one architecture per function, built once. A larger one keeps a
        rolling pool: each refit adds mutations (one or two steps) of the best configurations of each
        fidelity and random architectures, drawn with ``seed``, and drops started and the oldest members."""
        space = self.s.space
        size = space.size()
        if math.isfinite(size) and size <= _ENUMERATE_POOL:
            if self._pool is not None:
                return False
            self._install(_enumerated_pool(space))
            return True
        if seed is None:  # restored: the pool as it was
            archs = [space.parse(a) for a in self.pool_archs]
        else:
            old = self._pool[0] if self._pool is not None else []
            archs = [a for a in old if a.functional_hash() not in self.s._started]
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
        started = self.s._started
        self._avail = np.fromiter((h not in started for h in pool[1]), dtype=bool, count=len(pool[1]))
        self._pool_index = {h: i for i, h in enumerate(pool[1])}

    def _new_candidates(self, rng: np.random.Generator) -> list[Architecture]:
        space = self.s.space
        by_fid: dict[Any, list[tuple[float, int]]] = {}
        for i, (_, fid, sc) in enumerate(self.s._records):
            if sc > -math.inf:
                by_fid.setdefault(fid, []).append((sc, i))
        parents: list[Architecture] = []
        for group in by_fid.values():
            parents += [self.s._records[i][0] for _, i in sorted(group, reverse=True)[:_POOL_PARENTS]]
        out = []
        for k in range(_POOL_MUTANTS + _POOL_RANDOM):
            if parents and k < _POOL_MUTANTS:
                a = space.mutate(parents[k % len(parents)], rng)
                if rng.random() < 0.5:
                    a = space.mutate(a, rng)
            else:
                a = space.sample(rng)
            if a.functional_hash() not in self.s._started:
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
        row = p[rng.choice(len(p), size=min(_THOMPSON_TREES, len(p)), replace=False)].mean(0)
        return self._pool[0][int(np.argmax(np.where(self._avail, row, -np.inf)))]

    def state(self) -> dict[str, Any]:
        return {"specs": [list(t) for t in self.specs], "pool": list(self.pool_archs)}

    def load(self, state: dict[str, Any]) -> None:
        self.specs = [(int(n), int(seed)) for n, seed in state["specs"]]
        self.pool_archs = list(state["pool"])
        self._trees, self._rows, self._folded = [], {}, 0
        self._pool, self._pool_index, self._avail, self._preds = None, {}, np.zeros(0, dtype=bool), {}


# --- the shared machinery --------------------------------------------------------------------------------
class _MultiFidelity(Strategy):
    """Rungs, per-rung results and the sampler shared by the multi-fidelity strategies."""

    capabilities = Capabilities(fidelities=True)
    _default_sampler = "random"
    _eta_per_ratio = 1.0  # default eta over discrete rungs = this x the mean ratio between successive rungs

    def __init__(self, space, objectives=None, constraints=(), seed=None, dedup=True,
                 eta: float | None = None, fidelities: Sequence[float] | None = None,
                 min_fidelity: float | None = None, sampler: str | None = None) -> None:
        super().__init__(space, objectives, constraints, seed, dedup)
        self.eta_param = _check_eta(eta)
        self.rung_param, self.min_fidelity = _check_fidelities(fidelities, min_fidelity)
        sampler = self._default_sampler if sampler is None else sampler
        if sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler {sampler!r}; use one of {', '.join(map(repr, SAMPLERS))}")
        self.sampler = sampler
        self._records: list[tuple[Architecture, float | None, float]] = []  # (arch, fidelity, score), told order
        self._started: set[str] = set()  # functions started at any rung (or told)
        self._model = _ModelSampler(self) if sampler == "model" else None
        self._set_rungs()

    # rungs -----------------------------------------------------------------------------------------
    def attach(self, cost_models=None, fidelities=None) -> None:
        super().attach(cost_models, fidelities)
        self._set_rungs()

    def _set_rungs(self) -> None:
        """Work out the rungs and ``eta`` from the parameters and the attached fidelities; the per-rung
        tables are rebuilt when the rungs change, which is refused once the run has started.

        Raises:
            ConfigError: ``min_fidelity`` is not below the full fidelity, or the rungs would change mid-run.
        """
        full = self.fidelities[-1] if self.fidelities else None
        if self.rung_param is not None:
            rungs: tuple = self.rung_param
        elif self.min_fidelity is not None:
            if full is None:
                rungs = (None,)  # checked at the first ask: the ladder needs the study's full fidelity
            elif self.min_fidelity >= full:
                raise ConfigError(f"min_fidelity ({self.min_fidelity:g}) must be below the full fidelity ({full:g})")
            else:
                rungs = _ladder(self.min_fidelity, full, self.eta_param or 3.0)
        elif self.fidelities:
            rungs = self.fidelities
        else:
            rungs = (None,)
        if self.eta_param is not None:
            eta = self.eta_param
        elif len(rungs) > 1:  # a multiple of the mean ratio between successive rungs
            eta = self._eta_per_ratio * float((rungs[-1] / rungs[0]) ** (1.0 / (len(rungs) - 1)))
        else:
            eta = 3.0
        old = getattr(self, "_rungs", None)
        if old == rungs and getattr(self, "eta", None) == eta:
            return
        if self._started:
            raise ConfigError(f"strategy {self.name!r} already started configurations at rungs {old}; its "
                              "fidelities cannot change in the middle of a run")
        self._rungs: tuple[float | None, ...] = rungs
        self.eta = eta
        self._init_rungs()

    def _init_rungs(self) -> None:
        """(Re)build per-rung tables for the current rungs; subclasses extend."""
        k = len(self._rungs)
        self._results: list[dict[str, tuple[Architecture, float]]] = [{} for _ in range(k)]
        self._asked: list[set[str]] = [set() for _ in range(k)]

    def _rung_of(self, fidelity: float | None) -> int | None:
        """Rung index of a fidelity (``None`` and the study's full fidelity are the top rung)."""
        top = len(self._rungs) - 1
        if fidelity is None:
            return top
        f = float(fidelity)
        for i, r in enumerate(self._rungs):
            if r is not None and abs(r - f) <= 1e-9 * max(1.0, f):
                return i
        if self.fidelities and f == self.fidelities[-1] and self._rungs[-1] is None:
            return top
        return None

    def _pair_seen(self, arch: Architecture, k: int) -> bool:
        """Whether ``arch``'s function was asked at rung ``k`` (the top rung also counts ``fidelity=None``)."""
        h = arch.functional_hash()
        if h in self._asked[k] or self.is_seen(arch, self._rungs[k]):
            return True
        return k == len(self._rungs) - 1 and self.is_seen(arch, None)

    def _check_ready(self) -> None:
        if self.min_fidelity is not None and self.rung_param is None and not self.fidelities:
            raise ConfigError(
                f"min_fidelity={self.min_fidelity:g} needs the study's fidelities (the largest is full training): "
                "create_study(..., fidelities=[...]) or give explicit fidelities=[...] to the strategy"
            )

    # proposals -------------------------------------------------------------------------------------
    def _start(self, h: str) -> None:
        if h not in self._started:
            self._started.add(h)
            if self._model is not None:
                self._model.mark_started(h)

    def _job(self, arch: Architecture, k: int) -> tuple[Architecture, float | None]:
        h = arch.functional_hash()
        self._asked[k].add(h)
        self._start(h)
        return arch, self._rungs[k]

    def _new_config(self, k: int) -> Architecture | None:
        """An architecture whose function was never started, to start at rung ``k``; ``None`` when the space
        has none left."""
        if self._model is not None:
            a = self._model.propose(self._rungs[k])
            if a is not None:
                return a
        for _ in range(64):
            a = self.space.sample(self.rng)
            if a.functional_hash() not in self._started and not self._pair_seen(a, k):
                return a
        # random draws keep hitting started functions: look through the whole space when it is finite
        size = self.space.size()
        if not math.isfinite(size) or size > _ENUMERATE_LIMIT:
            return None
        archs = _enumerated_pool(self.space)[0] if size <= _ENUMERATE_POOL else self.space.enumerate()
        left = [a for a in archs if a.functional_hash() not in self._started and not self._pair_seen(a, k)]
        return left[int(self.rng.integers(len(left)))] if left else None

    def _exhausted(self) -> SpaceExhaustedError:
        return SpaceExhaustedError(
            f"every function of the space was started and no promotion is due ({len(self._started)} functions)"
        )

    # results ---------------------------------------------------------------------------------------
    def _observe(self, candidate: Candidate, result: Result) -> None:
        arch = candidate.arch
        h = arch.functional_hash()
        s = self.score(result)
        k = self._rung_of(candidate.fidelity)
        fid = self._rungs[k] if k is not None else float(candidate.fidelity)  # type: ignore[arg-type]
        self._records.append((arch, fid, s))
        self._start(h)
        if k is not None:
            self._asked[k].add(h)
            if h not in self._results[k]:
                self._add_result(k, h, arch, s)
        self._on_result(candidate, k, h, s)

    def _add_result(self, k: int, h: str, arch: Architecture, s: float) -> None:
        self._results[k][h] = (arch, s)

    def _on_result(self, candidate: Candidate, k: int | None, h: str, s: float) -> None:
        """Subclass hook after a result was recorded."""

    # state -----------------------------------------------------------------------------------------
    def _params(self) -> dict[str, Any]:
        return {
            "eta": self.eta_param,
            "fidelities": None if self.rung_param is None else list(self.rung_param),
            "min_fidelity": self.min_fidelity,
            "sampler": self.sampler,
        }

    def _state(self) -> dict[str, Any]:
        return {
            "rungs": list(self._rungs),
            "eta": self.eta,
            "records": [[str(a), f, _f2j(s)] for a, f, s in self._records],
            "asked": [sorted(a) for a in self._asked],
            "started": sorted(self._started),
            "model": None if self._model is None else self._model.state(),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._rungs = tuple(state["rungs"])
        self.eta = float(state["eta"])
        self._init_rungs()
        p = self.space.parse
        self._records = [(p(a), f, _j2f(s)) for a, f, s in state["records"]]
        for arch, fid, s in self._records:
            k = self._rung_of(fid)
            h = arch.functional_hash()
            if k is not None and h not in self._results[k]:
                self._add_result(k, h, arch, s)
        self._asked = [set(a) for a in state["asked"]]
        self._started = set(state["started"])
        if self._model is not None:
            self._model.load(state["model"])


# --- successive halving and Hyperband ---------------------------------------------------------------
class SuccessiveHalving(_MultiFidelity):
    """Successive halving (Jamieson & Talwalkar 2016): ``n`` configurations at the lowest rung, the best
    ``1/eta`` of each rung promoted to the next, bracket after bracket.

    Brackets are synchronous (a rung's promotions wait for all of its results), but asks never wait: while
    a bracket waits for pending results, the next bracket starts.

    Args:
        n: configurations per bracket at its lowest rung (default: ``ceil(eta^(rungs-1))``, so that one
            reaches full fidelity).
        eta: promotion ratio > 1 (the best ``floor(count/eta)``, at least one, move up); default: the mean
            ratio between successive rungs (16.7 for epochs 12 and 200), or 3 with ``min_fidelity`` or a
            single rung.
        fidelities: explicit rungs (see the module docstring); default: the study's fidelities.
        min_fidelity: lowest rung of a geometric ladder ``min_fidelity * eta^k`` up to the study's full
            fidelity.
        sampler: where new configurations come from: ``"random"`` or ``"model"``.

    Without fidelities (from the study or the parameters) there is one rung, at full fidelity.
    """

    name = "sh"

    def __init__(self, space, objectives=None, constraints=(), seed=None, dedup=True, n: int | None = None,
                 eta: float | None = None, fidelities: Sequence[float] | None = None,
                 min_fidelity: float | None = None, sampler: str | None = None) -> None:
        self.n_param = _check_n(n)
        super().__init__(space, objectives, constraints, seed, dedup, eta, fidelities, min_fidelity, sampler)

    def _init_rungs(self) -> None:
        super()._init_rungs()
        self._brackets: list[dict[str, Any]] = []  # active brackets, oldest first
        self._owner: dict[str, int] = {}  # "hash@rung" -> bracket id
        self._n_brackets = 0

    @property
    def n(self) -> int:
        """Configurations in a bracket that starts at the lowest rung."""
        if self.n_param is not None:
            return self.n_param
        return max(1, math.ceil(self.eta ** (len(self._rungs) - 1) - 1e-9))

    def _bracket_start(self, index: int) -> int:
        """Lowest rung of the ``index``-th bracket (always 0 for successive halving)."""
        return 0

    def _bracket_size(self, start: int) -> int:
        return self.n

    def _new_bracket(self) -> dict[str, Any]:
        start = self._bracket_start(self._n_brackets)
        quota = [0] * len(self._rungs)
        quota[start] = self._bracket_size(start)
        for k in range(start + 1, len(self._rungs)):
            quota[k] = max(1, int(quota[k - 1] / self.eta + 1e-9))
        br = {"id": self._n_brackets, "start": start, "quota": quota,
              "asked": [[] for _ in self._rungs], "done": [{} for _ in self._rungs], "rung": start}
        self._n_brackets += 1
        self._brackets.append(br)
        return br

    def _propose(self) -> Architecture | tuple[Architecture, float | None]:
        self._check_ready()
        for br in list(self._brackets):
            job = self._next_job(br)
            if job is not None:
                return job
        for _ in range(2):
            br = self._new_bracket()
            job = self._next_job(br)
            if job is not None:
                return job
        raise self._exhausted()

    def _assign(self, br: dict[str, Any], arch: Architecture, k: int) -> tuple[Architecture, float | None]:
        h = arch.functional_hash()
        br["asked"][k].append(h)
        self._owner[f"{h}@{k}"] = br["id"]
        return self._job(arch, k)

    def _next_job(self, br: dict[str, Any]) -> tuple[Architecture, float | None] | None:
        """The bracket's next evaluation, or ``None`` while it waits for results (or is finished)."""
        while True:
            k = br["rung"]
            if k == br["start"] and len(br["asked"][k]) < br["quota"][k]:
                arch = self._new_config(k)
                if arch is not None:
                    return self._assign(br, arch, k)
                br["quota"][k] = len(br["asked"][k])  # the space ran out: the bracket continues with fewer
                if not br["asked"][k]:
                    self._close(br)
                    return None
            if k > br["start"]:
                for h in br["promote"]:
                    if h not in br["asked"][k]:
                        arch = self._results[k - 1][h][0]
                        if not self._pair_seen(arch, k):
                            return self._assign(br, arch, k)
                        br["asked"][k].append(h)  # evaluated there already (told from elsewhere)
                        br["done"][k][h] = self._results[k][h][1] if h in self._results[k] else -math.inf
            if len(br["done"][k]) < len(br["asked"][k]):
                return None  # waiting for results of this rung
            if k == len(self._rungs) - 1:
                self._close(br)
                return None
            ranked = sorted(((s, -i, h) for i, (h, s) in enumerate(br["done"][k].items()) if s > -math.inf),
                            reverse=True)
            br["promote"] = [h for _, _, h in ranked[: br["quota"][k + 1]]]
            if not br["promote"]:
                self._close(br)
                return None
            br["rung"] = k + 1

    def _close(self, br: dict[str, Any]) -> None:
        self._brackets.remove(br)
        for k, hs in enumerate(br["asked"]):
            for h in hs:
                self._owner.pop(f"{h}@{k}", None)

    def _on_result(self, candidate: Candidate, k: int | None, h: str, s: float) -> None:
        if k is None:
            return
        bid = self._owner.get(f"{h}@{k}")
        if bid is None:
            return
        for br in self._brackets:
            if br["id"] == bid:
                br["done"][k].setdefault(h, s)

    def on_fail(self, candidate: Candidate) -> None:
        """A pending candidate that will not be evaluated counts as failed in its bracket."""
        super().on_fail(candidate)
        k = self._rung_of(candidate.fidelity)
        if k is not None:
            self._on_result(candidate, k, candidate.arch.functional_hash(), -math.inf)

    def _params(self) -> dict[str, Any]:
        return {"n": self.n_param, **super()._params()}

    def _state(self) -> dict[str, Any]:
        brackets = [{**br, "done": [[[h, _f2j(s)] for h, s in d.items()] for d in br["done"]]}
                    for br in self._brackets]
        return {**super()._state(), "brackets": brackets, "n_brackets": self._n_brackets}

    def _load_state(self, state: dict[str, Any]) -> None:
        super()._load_state(state)
        self._brackets = []
        for br in state["brackets"]:
            br = dict(br)
            br["done"] = [{h: _j2f(s) for h, s in d} for d in br["done"]]
            self._brackets.append(br)
            for k, hs in enumerate(br["asked"]):
                for h in hs:
                    self._owner[f"{h}@{k}"] = br["id"]
        self._n_brackets = int(state["n_brackets"])


class Hyperband(SuccessiveHalving):
    """Hyperband (Li et al. 2018): successive-halving brackets that start at each rung in turn, the
    lowest first, with fewer configurations the higher they start (``ceil(n * R / (R - b) / eta^b)`` for
    a bracket starting at rung ``b`` of ``R``), cycling.

    Args: as :class:`SuccessiveHalving`; ``n`` sizes the bracket that starts at the lowest rung.
    """

    name = "hyperband"

    def _bracket_start(self, index: int) -> int:
        return index % len(self._rungs)

    def _bracket_size(self, start: int) -> int:
        r = len(self._rungs)
        return max(1, math.ceil(self.n * r / (r - start) / self.eta**start - 1e-9))


# --- asynchronous successive halving ---------------------------------------------------------------
class ASHA(_MultiFidelity):
    """Asynchronous successive halving (Li et al. 2020).

    Each ask promotes, from the highest rung that has one, the best configuration that is in the top
    ``floor(count/eta)`` of its rung's results and was not promoted yet; else it starts a new configuration
    at the lowest rung. It never waits for a batch, so it keeps any number of workers busy.

    Args:
        eta: promotion ratio > 1; default: twice the mean ratio between successive rungs (33.3 for epochs
            12 and 200), or 3 with ``min_fidelity`` or a single rung. ASHA promotes every newcomer that
            enters the top ``1/eta`` of its rung, so with a sampler that keeps improving it promotes more
            than ``1/eta`` of the configurations; on NAS-Bench-201 CIFAR-10 (epochs 12 and 200, model
            sampler) ``eta`` 25 to 40 reached low regret about 2.5 times sooner than 16.7, and 50 starved
            the full rung.
        fidelities, min_fidelity: rungs (see the module docstring); default: the study's fidelities.
        sampler: where new configurations come from: ``"model"`` (default) or ``"random"``.

    Without fidelities (from the study or the parameters) there is one rung, at full fidelity.
    """

    name = "asha"
    _default_sampler = "model"
    _eta_per_ratio = 2.0

    def _init_rungs(self) -> None:
        super()._init_rungs()
        self._ranked: list[list[tuple[float, int, str]]] = [[] for _ in self._rungs]  # (-score, order, hash)
        self._order = 0

    def _add_result(self, k: int, h: str, arch: Architecture, s: float) -> None:
        super()._add_result(k, h, arch, s)
        bisect.insort(self._ranked[k], (-s, self._order, h))
        self._order += 1

    def _promotion(self) -> tuple[Architecture, int] | None:
        """Best promotable configuration of the highest rung that has one (and the rung it moves to)."""
        for k in range(len(self._rungs) - 2, -1, -1):
            ranked = self._ranked[k]
            top = int(len(ranked) / self.eta + 1e-9)
            for neg, _, h in ranked[:top]:
                if neg == math.inf:
                    break
                if h in self._asked[k + 1]:
                    continue
                arch = self._results[k][h][0]
                if not self._pair_seen(arch, k + 1):
                    return arch, k + 1
        return None

    def _propose(self) -> Architecture | tuple[Architecture, float | None]:
        self._check_ready()
        promo = self._promotion()
        if promo is not None:
            return self._job(*promo)
        arch = self._new_config(0)
        if arch is not None:
            return self._job(arch, 0)
        # every function was started: promote the best configuration left, whatever its rank
        for k in range(len(self._rungs) - 2, -1, -1):
            for neg, _, h in self._ranked[k]:
                arch = self._results[k][h][0]
                if neg < math.inf and h not in self._asked[k + 1] and not self._pair_seen(arch, k + 1):
                    return self._job(arch, k + 1)
        raise self._exhausted()


STRATEGY_CLASSES = [SuccessiveHalving, Hyperband, ASHA]
