"""Optuna's samplers (TPE, NSGA-II) driven through archscout's ask/tell contract, for comparisons.

The space is mapped through its parameters: each slot of a parameter's
:meth:`~archscout.space.Param.decisions` becomes one categorical Optuna parameter over the slot's option names
(a cell edge over the op names, a choice or ordinal over its formatted values, a stage depth and each present
layer's choices of :class:`~archscout.space.Stages`, the link pattern and each node's op of a
:class:`~archscout.space.LinkOps`, the modules of a skeleton position by position), asked define-by-run, so
layers beyond a stage's depth and inactive conditional parameters are not asked; a combination the parameter
excludes (such as all-identity ops) is told to Optuna as failed and Optuna is asked again. A number parameter
whose decisions do not cover every value (:class:`~archscout.space.Float`, an :class:`~archscout.space.Int` of
more than 32 values) becomes an Optuna range distribution (:meth:`~archscout.space.Param.numeric_range`). A new
parameter type needs nothing here: its own ``decisions()`` (or the default, its enumerated values) maps it.

Functional duplicates. Optuna may propose an architecture whose function was already proposed; the
adapter never returns it. When its result is known, Optuna's trial is told that result at once (as if it
had been evaluated again, for free) and Optuna is asked again. When the earlier proposal is still pending,
Optuna's trial stays running and is told the same result when it arrives. After ``_MAX_OPTUNA_TRIES``
duplicate proposals in a row the adapter falls back as the base strategy does (a random unseen
architecture, then the unseen pool), and enqueues that architecture in Optuna so that its result is still
told to the sampler.

Pending candidates. Every pending candidate is a running Optuna trial with its parameters: those the
adapter proposed, and those evaluated elsewhere (:meth:`~archscout.strategies.Strategy.note_pending`), which
become a trial of their own (enqueued with their parameters, so that no sampling happens) and are told
their result, or fail, as the adapter's own. Optuna's samplers see running trials: TPE runs with
``constant_liar=True`` (a running trial counts as one of the worst, so the next proposal moves away from it)
and NSGA-II counts running trials in their generation.

Results: a complete result is told with its objective values (and, with constraints, each constraint's
violation as an Optuna constraint value: ``<= 0`` is feasible); failed and infeasible results (rejected
before evaluation, so without objective values) are told as ``TrialState.FAIL``.

State: Optuna's study is not JSON. ``state_dict`` stores every Optuna trial (parameters, state, values,
attributes), the study's system attributes and the sampler's random states; ``load_state_dict`` rebuilds
the study by replaying the trials (``study.add_trial``) and restores the random states, so a restored
strategy continues exactly as the original would have.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._validate import check_int, check_number
from ..errors import ConfigError, InvalidArchitectureError, require
from ..results import Candidate, Proposal, Result, TrialState
from ..space import Architecture, Param, Space
from ..space.decisions import decisions_of
from .base import Capabilities, Strategy

__all__ = ["STRATEGY_CLASSES", "OptunaNSGA2", "OptunaTPE"]

_MAX_OPTUNA_TRIES = 20  # duplicate proposals in a row before falling back to a random unseen architecture
_FAIL = {"state": "fail"}


def _optuna():
    optuna = require("optuna", "compare")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


# --- mapping the space onto Optuna parameters -------------------------------------------------------
class _ParamCodec:
    """One parameter as Optuna parameters, through the parameter itself: a range distribution when it has a
    numeric range that its decisions do not cover exactly (floats, large integer ranges), else one categorical
    per slot of its :meth:`~archscout.space.Param.decisions` (named ``<parameter><slot label>``, over the slot's
    option names), asked define-by-run; the slots every walk decides are asked with the trial (``fixed``)."""

    def __init__(self, name: str, param: Param, optuna: Any) -> None:
        self.name = name
        self.param = param
        self.optuna = optuna
        try:
            decisions = decisions_of(param)
        except ConfigError as e:
            raise ConfigError(f"cannot map parameter {name!r} to Optuna: {e}") from None
        rng = param.numeric_range()
        self.range = rng if rng is not None and not decisions.exact else None
        self.decisions = decisions
        self._names = [name + decisions.label(k) for k in range(len(decisions.sizes))]
        self._tokens = [decisions.tokens(k) for k in range(len(decisions.sizes))]
        self._index = [{tok: i for i, tok in enumerate(toks)} for toks in self._tokens]
        if any(len(ix) != len(toks) for ix, toks in zip(self._index, self._tokens)):
            raise ConfigError(f"cannot map parameter {name!r} to Optuna: its option names are not distinct")
        self._dists: list[Any] = [None] * len(self._tokens)

    def _dist(self, slot: int) -> Any:
        d = self._dists[slot]
        if d is None:
            d = self._dists[slot] = self.optuna.distributions.CategoricalDistribution(self._tokens[slot])
        return d

    def _range_dist(self) -> Any:
        r = self.range
        assert r is not None
        if r.integer:
            return self.optuna.distributions.IntDistribution(int(r.low), int(r.high), step=r.step)
        return self.optuna.distributions.FloatDistribution(r.low, r.high, log=r.log)

    def distributions(self) -> dict[str, Any]:
        """Decisions asked for every trial (the parameter's unconditional part)."""
        if self.range is not None:
            return {self.name: self._range_dist()}
        return {self._names[k]: self._dist(k) for k in self.decisions.always()}

    def all_distributions(self) -> dict[str, Any]:
        """Every Optuna parameter this parameter may ask."""
        if self.range is not None:
            return {self.name: self._range_dist()}
        return {self._names[k]: self._dist(k) for k in range(len(self._tokens))}

    def suggest(self, trial: Any) -> Any:
        """The parameter's value, asked from an Optuna trial.

        Raises:
            InvalidArchitectureError: Optuna chose a combination the parameter excludes.
        """
        if self.range is not None:
            r = self.range
            if r.integer:
                return self.param.validate(trial.suggest_int(self.name, int(r.low), int(r.high), step=r.step))
            return self.param.validate(trial.suggest_float(self.name, r.low, r.high, log=r.log))
        gen = self.decisions.build()
        try:
            slot, _n, allowed = next(gen)
            while True:
                i = self._index[slot][trial.suggest_categorical(self._names[slot], self._tokens[slot])]
                if allowed is not None and i not in allowed:
                    raise InvalidArchitectureError(
                        f"{self._names[slot]}={self._tokens[slot][i]} is excluded here by parameter {self.name!r}")
                slot, _n, allowed = gen.send(i)
        except StopIteration as stop:
            return stop.value

    def params(self, value: Any) -> dict[str, tuple[Any, Any]]:
        """``{optuna name: (value, distribution)}`` of the decisions that ``value`` makes.

        Raises:
            InvalidArchitectureError: ``value`` has no decision path (a value outside a grid or sample).
        """
        if self.range is not None:
            return {self.name: (int(value) if self.range.integer else float(value), self._range_dist())}
        steps = self.decisions.decode(value)
        if steps is None:
            raise InvalidArchitectureError(f"parameter {self.name!r}: {value!r} cannot be shown to Optuna")
        return {self._names[k]: (self._tokens[k][i], self._dist(k)) for k, i in steps}


class _SpaceMapping:
    """The whole space as Optuna parameters."""

    def __init__(self, space: Space, optuna: Any) -> None:
        self.space = space
        self.optuna = optuna
        self.codecs = [_ParamCodec(n, p, optuna) for n, p in space.params.items()]
        self.fixed: dict[str, Any] = {}
        for p, c in zip(space.params.values(), self.codecs):
            if not p.when:
                self.fixed.update(c.distributions())

    def _active(self, param: Param, values: Mapping[str, Any]) -> bool:
        return all(values.get(parent) is not None and values[parent] in allowed
                   for parent, allowed in param.when.items())

    def decode(self, trial: Any) -> Architecture:
        values: dict[str, Any] = {}
        for (n, p), c in zip(self.space.params.items(), self.codecs):
            values[n] = c.suggest(trial) if self._active(p, values) else None
        return self.space.make(values)

    def encode(self, arch: Architecture) -> tuple[dict[str, Any], dict[str, Any]]:
        params: dict[str, Any] = {}
        dists: dict[str, Any] = {}
        for c, v in zip(self.codecs, arch.values):
            if v is None:
                continue
            for name, (x, d) in c.params(v).items():
                params[name] = x
                dists[name] = d
        return params, dists

    def all_distributions(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c in self.codecs:
            out.update(c.all_distributions())
        return out


# --- the adapter ------------------------------------------------------------------------------------
class _OptunaStrategy(Strategy):
    """Base of the Optuna adapters: subclasses build the sampler in :meth:`_make_sampler`."""

    capabilities = Capabilities(multi_objective=True)

    max_proposals = _MAX_OPTUNA_TRIES

    def __init__(self, space, objectives=None, constraints=(), seed=None, dedup=True) -> None:
        super().__init__(space, objectives, constraints, seed, dedup)
        self._optuna = _optuna()
        if self.constraints and not hasattr(self._optuna.trial.Trial, "set_constraint"):
            raise ConfigError("constraints with the Optuna adapters need optuna >= 5.0 (Trial.set_constraint); "
                              "upgrade optuna or drop the constraints")
        self._mapping = _SpaceMapping(space, self._optuna)
        self._foreign: dict[int, int] = {}  # id of a candidate evaluated elsewhere -> its Optuna trial number
        self._shadows: dict[str, list[int]] = {}  # function hash of a pending candidate -> duplicate trials
        self._known: dict[str, dict[str, Any]] = {}  # function hash -> what Optuna was told for it
        self._live: dict[int, Any] = {}  # Optuna trial number -> live optuna.trial.Trial (running trials)
        self._study = None

    def _make_sampler(self):
        raise NotImplementedError

    def _sampler_seed(self) -> int | None:
        return None if self.seed is None else self.seed % (2**32)

    @property
    def study(self):
        """The underlying in-memory ``optuna.Study`` (created at the first ask)."""
        if self._study is None:
            self._study = self._new_study()
        return self._study

    def _new_study(self):
        directions = ["maximize" if o.direction == "max" else "minimize" for o in self.objectives]
        return self._optuna.create_study(directions=directions, sampler=self._make_sampler())

    # --- ask ------------------------------------------------------------------------------------------
    def _propose(self) -> Proposal:
        """Optuna's next trial as a proposal whose token is the trial number (a combination the space excludes
        is told to Optuna as failed and Optuna is asked again)."""
        study = self.study
        for _ in range(_MAX_OPTUNA_TRIES):
            trial = study.ask(self._mapping.fixed)
            try:
                arch = self._mapping.decode(trial)
            except InvalidArchitectureError:  # e.g. a combination the space excludes: worthless to Optuna
                self._tell_optuna(trial.number, _FAIL, trial)
                continue
            self._live[trial.number] = trial
            return Proposal(arch, token=trial.number)
        return self._fallback()

    def _discard(self, proposal: Proposal) -> None:
        """Optuna proposed a function already proposed: its trial is told that function's result at once (as if
        evaluated again, for free), or the same result when it arrives, or failed when it will never come."""
        number = proposal.token
        h = proposal.arch.functional_hash()
        if h in self._known:
            self._tell_optuna(number, self._known[h])
        elif any(c.arch.functional_hash() == h for c in self._pending.values()):
            self._shadows.setdefault(h, []).append(number)
        else:  # proposed and then given up without a result
            self._tell_optuna(number, _FAIL)

    def _fallback(self) -> Proposal:
        """An unseen architecture, enqueued as Optuna's next trial so that its result is told to the sampler."""
        proposal = super()._fallback()
        return Proposal(proposal.arch, token=self._enqueue(proposal.arch))

    def _enqueue(self, arch: Architecture, every_param: bool = False) -> int:
        """Make ``arch`` Optuna's next trial (so that its result is told to the sampler); with
        ``every_param``, its conditional parameters are recorded at once too (from the enqueued values, so
        the sampler draws nothing), as a running trial's should be for the samplers to see it whole."""
        params, _ = self._mapping.encode(arch)
        self.study.enqueue_trial(params, skip_if_exists=False)
        trial = self.study.ask(self._mapping.fixed)
        if every_param:
            self._mapping.decode(trial)
        self._live[trial.number] = trial
        return trial.number

    def note_pending(self, candidate: Candidate) -> None:
        """Learn that ``candidate`` is evaluated elsewhere (see :meth:`Strategy.note_pending`): it becomes a
        running Optuna trial with its parameters (unless it is one of this adapter's own, or is not an
        architecture of this space), told its result or failure when they arrive."""
        super().note_pending(candidate)
        if candidate.token is not None or candidate.id in self._foreign:
            return
        try:
            arch = self.space.validate(candidate.arch)
        except Exception:  # noqa: BLE001 - an architecture from another space cannot be shown to Optuna
            return
        self._foreign[candidate.id] = self._enqueue(arch, every_param=True)

    def _trial_number(self, candidate: Candidate) -> int | None:
        """The Optuna trial of a pending candidate: its token (own proposals) or the trial made for it."""
        foreign = self._foreign.pop(candidate.id, None)
        return candidate.token if candidate.token is not None else foreign

    # --- tell -----------------------------------------------------------------------------------------
    def _payload(self, result: Result) -> dict[str, Any]:
        if result.state != TrialState.COMPLETE:
            return _FAIL
        try:
            values = [float(result.metrics[o.name]) for o in self.objectives]
        except (KeyError, TypeError, ValueError):
            return _FAIL
        if not all(math.isfinite(v) for v in values):
            return _FAIL
        out: dict[str, Any] = {"state": "complete", "values": values}
        if self.constraints:
            viol = [c.violation(result.metrics.get(c.name, math.nan)) for c in self.constraints]
            if not all(math.isfinite(v) for v in viol):
                return _FAIL
            out["constraints"] = viol
        return out

    def _trial(self, number: int):
        t = self._live.pop(number, None)
        if t is None:
            frozen = self.study.get_trials(deepcopy=False)[number]
            t = self._optuna.trial.Trial(self.study, frozen._trial_id)
        return t

    def _tell_optuna(self, number: int, payload: Mapping[str, Any], trial=None) -> None:
        if trial is None:
            trial = self._trial(number)
        else:
            self._live.pop(number, None)
        if payload["state"] != "complete":
            self.study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
            return
        for k, v in enumerate(payload.get("constraints", ())):
            trial.set_constraint(self.constraints[k].name + f"#{k}", float(v))
        self.study.tell(trial, list(payload["values"]))

    def _observe(self, candidate: Candidate, result: Result) -> None:
        payload = self._payload(result)
        h = candidate.arch.functional_hash()
        number = self._trial_number(candidate)
        if number is not None:
            self._tell_optuna(number, payload)
        else:  # a result for an architecture the adapter did not propose
            self._add_finished(candidate.arch, payload)
        self._known[h] = payload
        for n in self._shadows.pop(h, []):
            self._tell_optuna(n, payload)

    def on_fail(self, candidate: Candidate) -> None:
        own = self._pending.get(candidate.id)
        super().on_fail(candidate)
        number = self._trial_number(own if own is not None else candidate)
        h = candidate.arch.functional_hash()
        if number is not None:
            self._tell_optuna(number, _FAIL)
            self._known.setdefault(h, _FAIL)
        for n in self._shadows.pop(h, []):
            self._tell_optuna(n, _FAIL)

    def _add_finished(self, arch: Architecture, payload: Mapping[str, Any]) -> None:
        ot = self._optuna.trial
        try:
            arch = self.space.validate(arch)
        except Exception:  # noqa: BLE001 - an architecture from another space cannot be told to Optuna
            return
        params, dists = self._mapping.encode(arch)
        if payload["state"] == "complete":
            cons = {self.constraints[k].name + f"#{k}": float(v) for k, v in enumerate(payload.get("constraints", ()))}
            frozen = ot.create_trial(params=params, distributions=dists, values=list(payload["values"]),
                                     constraints=cons or None)
        else:
            frozen = ot.create_trial(params=params, distributions=dists, state=ot.TrialState.FAIL)
        self.study.add_trial(frozen)

    # --- state ----------------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        trials: list[dict[str, Any]] = []
        if self._study is not None:
            for t in self._study.get_trials(deepcopy=False):
                trials.append({
                    "state": t.state.name,
                    "params": dict(t.params),
                    "values": None if t.values is None else [float(v) for v in t.values],
                    "system_attrs": _jsonable(t.system_attrs),
                    "user_attrs": _jsonable(t.user_attrs),
                })
        study_attrs: dict[str, Any] = {} if self._study is None else _jsonable(
            self._study._storage.get_study_system_attrs(self._study._study_id))
        return {
            "trials": trials,
            "study_system_attrs": study_attrs,
            "sampler_rng": None if self._study is None else _rng_states(self._study.sampler),
            "foreign": [[k, v] for k, v in self._foreign.items()],
            "shadows": {h: list(v) for h, v in self._shadows.items()},
            "known": self._known,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        ot = self._optuna.trial
        self._live = {}
        self._foreign = {int(k): int(v) for k, v in state["foreign"]}
        self._shadows = {h: [int(x) for x in v] for h, v in state["shadows"].items()}
        self._known = {h: dict(p) for h, p in state["known"].items()}
        if state["sampler_rng"] is None and not state["trials"]:
            self._study = None
            return
        study = self._new_study()
        dists_of = self._mapping.all_distributions()
        for t in state["trials"]:
            st = ot.TrialState[t["state"]]
            params = dict(t["params"])
            frozen = ot.create_trial(
                state=st, params=params, distributions={n: dists_of[n] for n in params},
                values=t["values"] if st == ot.TrialState.COMPLETE else None,
                system_attrs=t["system_attrs"], user_attrs=t["user_attrs"],
            )
            study.add_trial(frozen)
        for k, v in state["study_system_attrs"].items():
            study._storage.set_study_system_attr(study._study_id, k, v)
        if state["sampler_rng"] is not None:
            _set_rng_states(study.sampler, state["sampler_rng"])
        self._study = study


def _jsonable(d: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna attributes hold JSON values (lists may arrive as tuples)."""
    def conv(x):
        if isinstance(x, (list, tuple)):
            return [conv(y) for y in x]
        if isinstance(x, Mapping):
            return {str(k): conv(v) for k, v in x.items()}
        if isinstance(x, (np.integer,)):
            return int(x)
        if isinstance(x, (np.floating,)):
            return float(x)
        return x

    return {str(k): conv(v) for k, v in d.items()}


def _random_states(obj: Any, path: str, out: dict[str, Any], seen: set[int], depth: int = 0) -> None:
    """Collect every ``numpy.random.RandomState`` reachable from a sampler's attributes, by attribute path."""
    from optuna.samplers._lazy_random_state import LazyRandomState

    if id(obj) in seen or depth > 3:
        return
    seen.add(id(obj))
    if isinstance(obj, LazyRandomState):
        out[path] = obj
        return
    if isinstance(obj, np.random.RandomState):
        out[path] = obj
        return
    attrs = getattr(obj, "__dict__", None)
    if not attrs or isinstance(obj, (type, np.ndarray)):
        return
    for k in sorted(attrs):
        v = attrs[k]
        if isinstance(v, (str, bytes, int, float, bool, type(None), np.ndarray, Mapping, list, tuple)):
            continue
        _random_states(v, f"{path}.{k}" if path else k, out, seen, depth + 1)


def _rng_states(sampler: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    _random_states(sampler, "", found, set())
    out = {}
    for path, r in found.items():
        rs = r.rng if hasattr(r, "rng") else r
        name, keys, pos, has_gauss, cached = rs.get_state()
        out[path] = [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)]
    return out


def _set_rng_states(sampler: Any, states: Mapping[str, Any]) -> None:
    found: dict[str, Any] = {}
    _random_states(sampler, "", found, set())
    for path, st in states.items():
        r = found.get(path)
        if r is None:
            raise ConfigError(f"the Optuna sampler has no random state at {path!r}; was the state saved "
                              "with another Optuna version?")
        rs = r.rng if hasattr(r, "rng") else r
        rs.set_state((st[0], np.array(st[1], dtype=np.uint32), st[2], st[3], st[4]))




class OptunaTPE(_OptunaStrategy):
    """Optuna's TPE sampler (``TPESampler(seed=..., constant_liar=True)``, otherwise Optuna's defaults)
    through archscout's ask/tell; pending candidates are running trials, which the constant liar avoids.

    Needs optuna (``pip install 'archscout[compare]'``).

    Args:
        n_startup_trials: random trials before TPE starts modelling (Optuna's default 10).
        multivariate: ``None`` lets Optuna decide (multivariate TPE for one objective, independent TPE for
            several); ``True`` / ``False`` force it. Independent multi-objective TPE splits the trials once
            per parameter and is several times slower than the multivariate one.
    """

    name = "tpe-optuna"

    def __init__(self, space, objectives=None, constraints=(), seed=None, dedup=True,
                 n_startup_trials: int = 10, multivariate: bool | None = None) -> None:
        self.n_startup_trials = check_int("n_startup_trials", n_startup_trials, 0)
        if multivariate is not None and not isinstance(multivariate, bool):
            raise ConfigError(f"multivariate must be true, false or null, got {multivariate!r}")
        self.multivariate = multivariate
        super().__init__(space, objectives, constraints, seed, dedup)

    def _make_sampler(self):
        return self._optuna.samplers.TPESampler(seed=self._sampler_seed(), n_startup_trials=self.n_startup_trials,
                                                multivariate=self.multivariate, constant_liar=True)

    def _params(self) -> dict[str, Any]:
        return {"n_startup_trials": self.n_startup_trials, "multivariate": self.multivariate}


class OptunaNSGA2(_OptunaStrategy):
    """Optuna's NSGA-II sampler (``NSGAIISampler(population_size=..., seed=...)``) through ask/tell.

    Needs optuna (``pip install 'archscout[compare]'``).

    Args:
        population_size: Optuna's population size (>= 2; default 20 here, Optuna's own default is 50).
        crossover_prob: probability of crossover (Optuna's uniform crossover), in [0, 1].
        mutation_prob: per-parameter mutation probability in [0, 1], or ``None`` for Optuna's
            ``1 / number of parameters``.
    """

    name = "nsga2-optuna"

    def __init__(self, space, objectives=None, constraints=(), seed=None, dedup=True,
                 population_size: int = 20, crossover_prob: float = 0.9,
                 mutation_prob: float | None = None) -> None:
        self.population_size = check_int("population_size", population_size, 2)
        self.crossover_prob = check_number("crossover_prob", crossover_prob, 0.0, 1.0)
        self.mutation_prob = None if mutation_prob is None else check_number("mutation_prob", mutation_prob, 0.0, 1.0)
        super().__init__(space, objectives, constraints, seed, dedup)

    def _make_sampler(self):
        return self._optuna.samplers.NSGAIISampler(
            population_size=self.population_size, crossover_prob=self.crossover_prob,
            mutation_prob=self.mutation_prob, seed=self._sampler_seed(),
        )

    def _params(self) -> dict[str, Any]:
        return {"population_size": self.population_size, "crossover_prob": self.crossover_prob,
                "mutation_prob": self.mutation_prob}


STRATEGY_CLASSES = [OptunaTPE, OptunaNSGA2]
