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

Asynchronous search: pending candidates (asked here, or noted as evaluated elsewhere with
:meth:`~archscout.strategies.Strategy.note_pending`) count as started, so their function never starts
again and a configuration pending at a rung is not promoted to it twice. The model sampler also fantasises
them (kriging believer): in each of the drawn trees, a pending candidate joins the leaf it falls into at
the ensemble's mean prediction for it, so the leaf's mean moves towards the consensus and a tree that was
optimistic there no longer pulls the next proposal next to it (the trees' structure is kept; no refit).
With one candidate pending at a time nothing is fantasised and the proposals are those of a sequential
run.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, SpaceExhaustedError
from ..results import Candidate, Result
from ..space import Architecture
from .base import Capabilities, Strategy, score_from_json, score_to_json
from .tree_sampler import ModelSampler

__all__ = ["ASHA", "SAMPLERS", "STRATEGY_CLASSES", "Hyperband", "SuccessiveHalving"]

SAMPLERS = ("random", "model")




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


# --- the shared machinery --------------------------------------------------------------------------------
class _MultiFidelity(Strategy):
    """Rungs, per-rung results and the sampler shared by the multi-fidelity strategies."""

    capabilities = Capabilities(fidelities=True, needs_fidelities=True)
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
        self.records: list[tuple[Architecture, float | None, float]] = []  # (arch, fidelity, score), told order
        self.started: set[str] = set()  # functions started at any rung (or told)
        self._model = ModelSampler(self) if sampler == "model" else None
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
        old = getattr(self, "rungs", None)
        if old == rungs and getattr(self, "eta", None) == eta:
            return
        if self.started:
            raise ConfigError(f"strategy {self.name!r} already started configurations at rungs {old}; its "
                              "fidelities cannot change in the middle of a run")
        self.rungs: tuple[float | None, ...] = rungs
        self.eta = eta
        self._init_rungs()

    def _init_rungs(self) -> None:
        """(Re)build per-rung tables for the current rungs; subclasses extend."""
        k = len(self.rungs)
        self._results: list[dict[str, tuple[Architecture, float]]] = [{} for _ in range(k)]
        self._asked: list[set[str]] = [set() for _ in range(k)]

    def _rung_of(self, fidelity: float | None) -> int | None:
        """Rung index of a fidelity (``None`` and the study's full fidelity are the top rung)."""
        top = len(self.rungs) - 1
        if fidelity is None:
            return top
        f = float(fidelity)
        for i, r in enumerate(self.rungs):
            if r is not None and abs(r - f) <= 1e-9 * max(1.0, f):
                return i
        if self.fidelities and f == self.fidelities[-1] and self.rungs[-1] is None:
            return top
        return None

    def _pair_seen(self, arch: Architecture, k: int) -> bool:
        """Whether ``arch``'s function was asked at rung ``k`` (the top rung also counts ``fidelity=None``)."""
        h = arch.functional_hash()
        if h in self._asked[k] or self.is_seen(arch, self.rungs[k]):
            return True
        return k == len(self.rungs) - 1 and self.is_seen(arch, None)

    def has_fidelities(self) -> bool:
        """Whether there are several rungs (from the strategy's own ``fidelities``, or the study's)."""
        return len(self.rungs) > 1

    def check_ready(self) -> None:
        if self.min_fidelity is not None and self.rung_param is None and not self.fidelities:
            raise ConfigError(
                f"min_fidelity={self.min_fidelity:g} needs the study's fidelities (the largest is full training): "
                "create_study(..., fidelities=[...]) or give explicit fidelities=[...] to the strategy"
            )
        super().check_ready()

    def note_pending(self, candidate: Candidate) -> None:
        """Learn that ``candidate`` is evaluated elsewhere (see :meth:`Strategy.note_pending`): its function
        counts as started, and as asked at its rung, so it is neither started again nor promoted there."""
        super().note_pending(candidate)
        h = candidate.arch.functional_hash()
        k = self._rung_of(candidate.fidelity)
        if k is not None:
            self._asked[k].add(h)
        self._start(h)

    def _pending_at(self, h: str, k: int) -> bool:
        """Whether a candidate of function ``h`` is pending at rung ``k``."""
        return any(c.arch.functional_hash() == h and self._rung_of(c.fidelity) == k for c in self._pending.values())

    # proposals -------------------------------------------------------------------------------------
    def _start(self, h: str) -> None:
        if h not in self.started:
            self.started.add(h)
            if self._model is not None:
                self._model.mark_started(h)

    def _job(self, arch: Architecture, k: int) -> tuple[Architecture, float | None]:
        h = arch.functional_hash()
        self._asked[k].add(h)
        self._start(h)
        return arch, self.rungs[k]

    def _new_config(self, k: int) -> Architecture | None:
        """An architecture whose function was never started, to start at rung ``k``; ``None`` when the space
        has none left."""
        if self._model is not None:
            a = self._model.propose(self.rungs[k])
            if a is not None:
                return a
        return self.find_unseen(lambda a: a.functional_hash() in self.started or self._pair_seen(a, k), tries=64)

    def _exhausted(self) -> SpaceExhaustedError:
        return SpaceExhaustedError(
            f"every function of the space was started and no promotion is due ({len(self.started)} functions)"
        )

    # results ---------------------------------------------------------------------------------------
    def _observe(self, candidate: Candidate, result: Result) -> None:
        arch = candidate.arch
        h = arch.functional_hash()
        s = self.score(result)
        k = self._rung_of(candidate.fidelity)
        fid = self.rungs[k] if k is not None else float(candidate.fidelity)  # type: ignore[arg-type]
        self.records.append((arch, fid, s))
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
            "rungs": list(self.rungs),
            "eta": self.eta,
            "records": [[str(a), f, score_to_json(s)] for a, f, s in self.records],
            "asked": [sorted(a) for a in self._asked],
            "started": sorted(self.started),
            "model": None if self._model is None else self._model.state(),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self.rungs = tuple(state["rungs"])
        self.eta = float(state["eta"])
        self._init_rungs()
        p = self.space.parse
        self.records = [(p(a), f, score_from_json(s)) for a, f, s in state["records"]]
        for arch, fid, s in self.records:
            k = self._rung_of(fid)
            h = arch.functional_hash()
            if k is not None and h not in self._results[k]:
                self._add_result(k, h, arch, s)
        self._asked = [set(a) for a in state["asked"]]
        self.started = set(state["started"])
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
        return max(1, math.ceil(self.eta ** (len(self.rungs) - 1) - 1e-9))

    def _bracket_start(self, index: int) -> int:
        """Lowest rung of the ``index``-th bracket (always 0 for successive halving)."""
        return 0

    def _bracket_size(self, start: int) -> int:
        return self.n

    def _new_bracket(self) -> dict[str, Any]:
        start = self._bracket_start(self._n_brackets)
        quota = [0] * len(self.rungs)
        quota[start] = self._bracket_size(start)
        for k in range(start + 1, len(self.rungs)):
            quota[k] = max(1, int(quota[k - 1] / self.eta + 1e-9))
        br = {"id": self._n_brackets, "start": start, "quota": quota,
              "asked": [[] for _ in self.rungs], "done": [{} for _ in self.rungs], "rung": start}
        self._n_brackets += 1
        self._brackets.append(br)
        return br

    def _propose(self) -> Architecture | tuple[Architecture, float | None]:
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
                        br["asked"][k].append(h)  # evaluated there already, or being evaluated elsewhere
                        if h in self._results[k]:
                            br["done"][k][h] = self._results[k][h][1]
                        elif self._pending_at(h, k):
                            self._owner[f"{h}@{k}"] = br["id"]  # its result (or failure) will arrive
                        else:
                            br["done"][k][h] = -math.inf
            if len(br["done"][k]) < len(br["asked"][k]):
                return None  # waiting for results of this rung
            if k == len(self.rungs) - 1:
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
        brackets = [{**br, "done": [[[h, score_to_json(s)] for h, s in d.items()] for d in br["done"]]}
                    for br in self._brackets]
        return {**super()._state(), "brackets": brackets, "n_brackets": self._n_brackets}

    def _load_state(self, state: dict[str, Any]) -> None:
        super()._load_state(state)
        self._brackets = []
        for br in state["brackets"]:
            br = dict(br)
            br["done"] = [{h: score_from_json(s) for h, s in d} for d in br["done"]]
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
        return index % len(self.rungs)

    def _bracket_size(self, start: int) -> int:
        r = len(self.rungs)
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
        self._ranked: list[list[tuple[float, int, str]]] = [[] for _ in self.rungs]  # (-score, order, hash)
        self._order = 0

    def _add_result(self, k: int, h: str, arch: Architecture, s: float) -> None:
        super()._add_result(k, h, arch, s)
        bisect.insort(self._ranked[k], (-s, self._order, h))
        self._order += 1

    def _promotion(self) -> tuple[Architecture, int] | None:
        """Best promotable configuration of the highest rung that has one (and the rung it moves to)."""
        for k in range(len(self.rungs) - 2, -1, -1):
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
        promo = self._promotion()
        if promo is not None:
            return self._job(*promo)
        arch = self._new_config(0)
        if arch is not None:
            return self._job(arch, 0)
        # every function was started: promote the best configuration left, whatever its rank
        for k in range(len(self.rungs) - 2, -1, -1):
            for neg, _, h in self._ranked[k]:
                arch = self._results[k][h][0]
                if neg < math.inf and h not in self._asked[k + 1] and not self._pair_seen(arch, k + 1):
                    return self._job(arch, k + 1)
        raise self._exhausted()


STRATEGY_CLASSES = [SuccessiveHalving, Hyperband, ASHA]
