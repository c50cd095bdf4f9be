"""Optuna's samplers (TPE, NSGA-II) driven through archscout's ask/tell contract, for comparisons.

Each decision of the space becomes one Optuna parameter: a categorical per cell edge (over the op names),
per choice / ordinal / small integer parameter (over its formatted values), per stage depth and per
layer decision of :class:`~archscout.space.Stages` (layers beyond a stage's depth are not asked), the
link pattern and each node's op of a :class:`~archscout.space.LinkOps` (a combination the space excludes,
such as all-identity ops, is told to Optuna as failed and asked again), a float
for a :class:`~archscout.space.Float` and an integer range for a large :class:`~archscout.space.Int`.
Any other finite parameter whose ``values()`` can be enumerated becomes one categorical over them.
Conditional parameters are asked only when active (define-by-run).

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

from ..errors import ConfigError, InvalidArchitectureError, require
from ..results import Candidate, Proposal, Result, TrialState
from ..space import Architecture, Cell, Choice, Float, Int, LinkOps, Ordinal, Space, Stages
from .._validate import check_int, check_number
from .base import Capabilities, Strategy

__all__ = ["OptunaTPE", "OptunaNSGA2", "STRATEGY_CLASSES"]

_MAX_OPTUNA_TRIES = 20  # duplicate proposals in a row before falling back to a random unseen architecture
_MAX_CATEGORIES = 10_000  # a parameter with more enumerable values than this is not mapped to a categorical
_FAIL = {"state": "fail"}


def _optuna():
    optuna = require("optuna", "compare")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


# --- mapping the space onto Optuna parameters -------------------------------------------------------
class _Categorical:
    """One categorical decision over the tokens of ``options`` (formatted by ``fmt``)."""

    def __init__(self, name: str, options: list, fmt) -> None:
        self.name = name
        self.tokens = [fmt(o) for o in options]
        if len(set(self.tokens)) != len(self.tokens):
            raise ConfigError(f"cannot map parameter {name!r} to Optuna: its values do not format distinctly")
        self.by_token = dict(zip(self.tokens, options))
        self.token_of = {_key(o): t for o, t in zip(options, self.tokens)}

    def distribution(self, optuna):
        return optuna.distributions.CategoricalDistribution(self.tokens)

    def suggest(self, trial) -> Any:
        return self.by_token[trial.suggest_categorical(self.name, self.tokens)]

    def external(self, value: Any) -> str:
        return self.token_of[_key(value)]


def _key(v: Any) -> tuple:
    return (type(v).__name__, v)


class _Codec:
    """Maps one space parameter to Optuna parameters and back."""

    def distributions(self, optuna) -> dict[str, Any]:
        """Decisions asked for every trial (the parameter's unconditional part)."""
        raise NotImplementedError

    def suggest(self, trial) -> Any:
        """The parameter's value, asked from an Optuna trial."""
        raise NotImplementedError

    def params(self, value: Any, optuna) -> dict[str, tuple[Any, Any]]:
        """``{optuna name: (value, distribution)}`` of the decisions that ``value`` makes."""
        raise NotImplementedError


class _ScalarCodec(_Codec):
    def __init__(self, name: str, param) -> None:
        self.cat = _Categorical(name, list(param.values()), param.format)

    def distributions(self, optuna):
        return {self.cat.name: self.cat.distribution(optuna)}

    def suggest(self, trial):
        return self.cat.suggest(trial)

    def params(self, value, optuna):
        return {self.cat.name: (self.cat.external(value), self.cat.distribution(optuna))}


class _RangeCodec(_Codec):
    """A numeric parameter as one Optuna range distribution (``_dist``), values cast by ``cast``."""

    cast: Any = float

    def __init__(self, name: str, param: Float | Int) -> None:
        self.name, self.p = name, param

    def _dist(self, optuna):
        raise NotImplementedError

    def distributions(self, optuna):
        return {self.name: self._dist(optuna)}

    def params(self, value, optuna):
        return {self.name: (self.cast(value), self._dist(optuna))}


class _FloatCodec(_RangeCodec):
    def _dist(self, optuna):
        return optuna.distributions.FloatDistribution(self.p.low, self.p.high, log=self.p.log)

    def suggest(self, trial):
        return self.p.validate(trial.suggest_float(self.name, self.p.low, self.p.high, log=self.p.log))


class _IntRangeCodec(_RangeCodec):
    cast = int

    def _dist(self, optuna):
        return optuna.distributions.IntDistribution(self.p.low, self.p.high, step=self.p.step)

    def suggest(self, trial):
        return self.p.validate(trial.suggest_int(self.name, self.p.low, self.p.high, step=self.p.step))


class _CellCodec(_Codec):
    def __init__(self, name: str, cell: Cell) -> None:
        self.edges = [_Categorical(f"{name}[{i}~{j}]", list(cell.ops), str) for i, j in cell.edges]

    def distributions(self, optuna):
        return {e.name: e.distribution(optuna) for e in self.edges}

    def suggest(self, trial):
        return tuple(e.suggest(trial) for e in self.edges)

    def params(self, value, optuna):
        return {e.name: (e.external(v), e.distribution(optuna)) for e, v in zip(self.edges, value)}


class _StagesCodec(_Codec):
    def __init__(self, name: str, st: Stages) -> None:
        self.depths = [_Categorical(f"{name}[{s}].depth", list(st.depth.options), st.depth.format)
                       for s in range(st.n)]
        self.layers = [[[_Categorical(f"{name}[{s}][{k}].{key}", list(p.options), p.format)
                         for key, p in st.layer.items()] for k in range(st.max_depth)] for s in range(st.n)]

    def distributions(self, optuna):
        return {d.name: d.distribution(optuna) for d in self.depths}

    def suggest(self, trial):
        out = []
        for d, layers in zip(self.depths, self.layers):
            depth = d.suggest(trial)
            out.append(tuple(tuple(c.suggest(trial) for c in layers[k]) for k in range(depth)))
        return tuple(out)

    def params(self, value, optuna):
        out = {}
        for d, layers, stage in zip(self.depths, self.layers, value):
            out[d.name] = (d.external(len(stage)), d.distribution(optuna))
            for k, layer in enumerate(stage):
                for c, v in zip(layers[k], layer):
                    out[c.name] = (c.external(v), c.distribution(optuna))
        return out


class _LinkOpsCodec(_Codec):
    def __init__(self, name: str, p: LinkOps) -> None:
        self.p = p
        self.link = _Categorical(f"{name}.link", list(p.links), str)
        self.ops = [_Categorical(f"{name}[{k}]", list(p.ops), str) for k in range(p.n)]

    def distributions(self, optuna):
        return {c.name: c.distribution(optuna) for c in [self.link, *self.ops]}

    def suggest(self, trial):
        link = self.link.suggest(trial)
        return self.p.validate((link, tuple(c.suggest(trial) for c in self.ops)))  # may be invalid (all skip)

    def params(self, value, optuna):
        link, ops = value
        out = {self.link.name: (self.link.external(link), self.link.distribution(optuna))}
        out.update({c.name: (c.external(o), c.distribution(optuna)) for c, o in zip(self.ops, ops)})
        return out


def _codec(name: str, param) -> _Codec:
    if isinstance(param, LinkOps):
        return _LinkOpsCodec(name, param)
    if isinstance(param, Cell):
        return _CellCodec(name, param)
    if isinstance(param, Stages):
        return _StagesCodec(name, param)
    if isinstance(param, Float):
        return _FloatCodec(name, param)
    if isinstance(param, Int) and param.size() > _MAX_CATEGORIES:
        return _IntRangeCodec(name, param)
    if isinstance(param, (Choice, Ordinal, Int)) or (param.is_finite() and param.size() <= _MAX_CATEGORIES):
        try:
            return _ScalarCodec(name, param)
        except (NotImplementedError, TypeError) as e:
            raise ConfigError(f"cannot map parameter {name!r} ({param!r}) to Optuna: {e}") from None
    raise ConfigError(
        f"cannot map parameter {name!r} ({param!r}) to Optuna parameters: it is neither a Choice, Ordinal, "
        f"Int, Float, Cell nor Stages, and has no enumeration of at most {_MAX_CATEGORIES} values"
    )


class _SpaceMapping:
    """The whole space as Optuna parameters."""

    def __init__(self, space: Space, optuna) -> None:
        self.space = space
        self.optuna = optuna
        self.codecs = [_codec(n, p) for n, p in space.params.items()]
        self.fixed: dict[str, Any] = {}
        for p, c in zip(space.params.values(), self.codecs):
            if not p.when:
                self.fixed.update(c.distributions(optuna))

    def _active(self, param, values: Mapping[str, Any]) -> bool:
        return all(values.get(parent) is not None and values[parent] in allowed
                   for parent, allowed in param.when.items())

    def decode(self, trial) -> Architecture:
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
            for name, (x, d) in c.params(v, self.optuna).items():
                params[name] = x
                dists[name] = d
        return params, dists


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
        trials = []
        if self._study is not None:
            for t in self._study.get_trials(deepcopy=False):
                trials.append({
                    "state": t.state.name,
                    "params": dict(t.params),
                    "values": None if t.values is None else [float(v) for v in t.values],
                    "system_attrs": _jsonable(t.system_attrs),
                    "user_attrs": _jsonable(t.user_attrs),
                })
        study_attrs = {} if self._study is None else _jsonable(
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
        dists_of = self._all_distributions()
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

    def _all_distributions(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c in self._mapping.codecs:
            if isinstance(c, (_CellCodec, _LinkOpsCodec)):
                out.update(c.distributions(self._optuna))
            elif isinstance(c, _StagesCodec):
                out.update(c.distributions(self._optuna))
                for stage in c.layers:
                    for layer in stage:
                        out.update({x.name: x.distribution(self._optuna) for x in layer})
            else:
                out.update(c.distributions(self._optuna))
        return out


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
