"""Studies: objectives + constraints + a strategy + durable records, driven by ask/tell or ``optimize``.

A :class:`Study` holds a :class:`~archscout.records.TrialLog` (the records as this driver sees them) and
offers the public ask/tell API on it; :meth:`Study.optimize` is a loop over that API
(:func:`~archscout.optimize.run_optimize`), so a hand-written loop gets the same budget, retries and heartbeats.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from ._version import __version__
from .drivers import FAILURE_KINDS, RetryPolicy
from .errors import ConfigError, StorageError, StudyExistsError
from .execution import Executor, run_evaluation
from .objectives import Constraint, Objective, pareto_mask, parse_constraints, parse_objectives
from .records import TrialLog, check_metrics
from .results import Result, Trial, TrialState
from .space import Architecture, Space, create_space
from .storage import Storage, create_storage
from .strategies import Strategy, create_strategy

__all__ = ["Study", "create_study", "load_study"]


class Study:
    """A search: use :func:`create_study` or :func:`load_study` rather than this constructor.

    Several drivers (processes, on one machine or many) may work on one study at once through a shared
    storage: each picks up the others' records before it asks, a budget belongs to the study, and a trial
    whose driver stopped is re-queued or failed (``on_stale``) by another driver.

    Attributes:
        retries: the :class:`~archscout.RetryPolicy` that :meth:`tell` applies to failed trials (default: none);
            ``optimize(retries=...)`` sets it for the duration of the call.
        replay: whether a seeded strategy re-proposes the recorded trajectory (see :func:`load_study`).
        on_stale, heartbeat_s, stale_after_s, driver: how this driver treats trials of stopped drivers, and
            its heartbeat (see :class:`~archscout.records.TrialLog`).
    """

    def __init__(self, storage: Storage, name: str, config: Mapping[str, Any],
                 cost_models: Mapping[str, Any] | None = None, on_stale: str = "requeue", replay: bool = True) -> None:
        self.config = dict(config)
        self.name = name
        self.space: Space = Space.from_config(config["space"])
        self.objectives: tuple[Objective, ...] = parse_objectives(config["objectives"])
        self.constraints: tuple[Constraint, ...] = parse_constraints(config["constraints"])
        self.seed: int | None = config["seed"]
        params = dict(config["strategy"])
        sname = params.pop("name")
        self.strategy: Strategy = create_strategy(
            sname, self.space, objectives=self.objectives, constraints=self.constraints, seed=self.seed, **params
        )
        self.cost_models: dict[str, Any] = dict(cost_models or {})
        self.fidelities: tuple[float, ...] | None = (
            None if config.get("fidelities") is None else tuple(float(f) for f in config["fidelities"])
        )
        self.strategy.attach(
            cost_models={n: m for n, m in self.cost_models.items() if getattr(m, "cheap", True)},
            fidelities=self.fidelities,
        )
        self.retries = RetryPolicy()
        self._log = TrialLog(storage, name, self.space, self.objectives, self.strategy, self.seed, on_stale,
                             reproduce=replay)

    # --- the records ---------------------------------------------------------------------------------
    @property
    def storage(self) -> Storage:
        return self._log.storage

    @property
    def driver(self) -> str:
        """This driver's id (host, process, random part), recorded with every trial it starts."""
        return self._log.driver

    @property
    def on_stale(self) -> str:
        """``"requeue"`` or ``"fail"``: what becomes of a trial whose driver stopped while it ran."""
        return self._log.on_stale

    @property
    def heartbeat_s(self) -> float:
        """Seconds between two heartbeats of this driver (default 5)."""
        return self._log.heartbeat_s

    @heartbeat_s.setter
    def heartbeat_s(self, value: float) -> None:
        self._log.heartbeat_s = float(value)

    @property
    def stale_after_s(self) -> float:
        """A driver whose last heartbeat is older than this is taken as stopped (default 60 s)."""
        return self._log.stale_after_s

    @stale_after_s.setter
    def stale_after_s(self, value: float) -> None:
        self._log.stale_after_s = float(value)

    @property
    def trials(self) -> list[Trial]:
        """All trials, by number."""
        return self._log.trials

    @property
    def interrupted(self) -> list[Trial]:
        """Trials whose driver stopped while they ran; ``ask`` hands them out first."""
        return self._log.interrupted

    @property
    def n_evaluated(self) -> int:
        """Complete or failed trials (what the budget counts), of every driver."""
        return self._log.n_evaluated

    @property
    def n_running(self) -> int:
        """Running trials of every driver."""
        return self._log.n_running

    @property
    def n_running_elsewhere(self) -> int:
        """Running trials held by other drivers."""
        return self._log.n_running_elsewhere

    @property
    def has_queued(self) -> bool:
        """Whether interrupted trials or retries wait for this driver's next ``ask``."""
        return self._log.has_queued

    def refresh(self) -> None:
        """Read what other drivers recorded since this driver last looked, and find their stopped trials
        (re-queued for this driver, or failed, per ``on_stale``). ``ask`` and ``tell`` do it themselves."""
        self._log.sync()
        self._log.find_orphans()

    # --- ask / tell --------------------------------------------------------------------------------
    def ask(self, budget: int | None = None) -> Trial | None:
        """Start a trial: a trial of a stopped driver (or a queued retry) is handed out first, else the
        strategy proposes a new candidate. The start is recorded before this returns.

        Args:
            budget: with a budget, ``None`` is returned instead when the study (every driver) already holds
                ``budget`` evaluated or running trials.

        Raises:
            SpaceExhaustedError: the strategy has nothing new to propose.
            ConfigError: a bad budget, or a strategy that cannot propose in this study.
        """
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, np.integer))
                                   or budget <= 0):
            raise ConfigError(f"budget must be a positive integer, got {budget!r}")
        return self._log.start(None if budget is None else int(budget))

    def tell(
        self,
        trial: Trial | int,
        metrics: Mapping[str, float] | None = None,
        *,
        state: str | None = None,
        error: str | None = None,
        failure: str | None = None,
        started_at: float | None = None,
        finished_at: float | None = None,
    ) -> Trial | None:
        """Finish a running trial with its metrics (complete) or an error (failed).

        Metrics that lack an objective, or hold a non-finite objective value, fail the trial with that
        reason (kind ``invalid``). The result is recorded durably before the strategy learns it. A failed
        trial whose ``failure`` kind the study's :attr:`retries` policy names is run again, as a new trial
        that the next ``ask`` hands out.

        Args:
            state: ``"complete"``, ``"failed"`` or ``"infeasible"``; default: complete with metrics and no error,
                else failed.
            error: why the trial failed (a message or traceback).
            failure: the kind of failure: ``"error"`` (the default), ``"invalid"``, ``"timeout"``,
                ``"worker_died"`` or ``"driver_died"``.
            started_at / finished_at: times in seconds (default: the start recorded by ``ask``, and now).

        Returns:
            the finished trial; ``None`` (with a warning) when this driver held the trial but another driver took
            it over meanwhile (this driver was taken as stopped) and recorded it: a result is never recorded twice.

        Raises:
            ConfigError: the trial is unknown or was already told, or ``state``, ``failure`` or a time is invalid.
        """
        if isinstance(trial, Trial):
            number = trial.number
        elif isinstance(trial, (int, np.integer)) and not isinstance(trial, bool):
            number = int(trial)
        else:
            raise ConfigError(f"tell() needs a Trial or a trial number, got {trial!r}")
        if state is not None and state not in TrialState.FINISHED:
            raise ConfigError(f"state must be one of {TrialState.FINISHED}, got {state!r}")
        if failure is not None and failure not in FAILURE_KINDS:
            raise ConfigError(f"failure must be one of {list(FAILURE_KINDS)}, got {failure!r}")
        for what, t in (("started_at", started_at), ("finished_at", finished_at)):
            if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t)):
                raise ConfigError(f"{what} must be a time in seconds, got {t!r}")
        if metrics is not None and state in (TrialState.FAILED, TrialState.INFEASIBLE):
            metrics, bad = check_metrics(metrics, ())
            if bad is not None:
                raise ConfigError(f"trial {number}: {bad}")
        before = self._log.trial(number)
        if before.state != TrialState.RUNNING:
            raise ConfigError(f"trial {number} is already {before.state}; a trial is told once")
        mine = self._log.owner(number) == self.driver
        out = self._log.finish(number, metrics, state=state, error=error, failure=failure, started_at=started_at,
                               finished_at=finished_at, **({"owner": self.driver} if mine else {}))
        if out is None:
            now = self._log.trial(number)
            if not mine and now.state != TrialState.RUNNING:
                raise ConfigError(f"trial {number} is already {now.state}; a trial is told once")
            warnings.warn(f"trial {number} was taken over by another driver meanwhile (this driver was taken as "
                          "stopped); this result is not recorded twice", stacklevel=2)
            return None
        if out.state == TrialState.FAILED and self.retries.allows(out.failure, self._log.attempt(number)):
            self._log.queue_retry(out)
        return out

    def driving(self) -> AbstractContextManager[None]:
        """A block in which this driver drives the study (as ``optimize`` does): its heartbeat beats for the
        whole block, not only while it holds trials, so that other drivers do not take it for stopped between
        two trials."""
        return self._log.hold_heartbeat()

    def abandon(self, trials: Iterable[Trial | int]) -> None:
        """Give up running trials of this driver (e.g. its executor failed): they are re-queued (this driver's
        next ``ask``, or another driver, runs them again) and the heartbeat stops, so other drivers may take
        them over at once."""
        self._log.abandon([t.number if isinstance(t, Trial) else int(t) for t in trials])

    def detach(self) -> None:
        """Stop this driver's heartbeat without closing the storage: its running trials become orphans at
        once (as when the process is killed). The next ``ask`` beats again."""
        self._log.detach()

    def close(self) -> None:
        """Stop this driver's heartbeat (its unfinished trials become orphans at once) and close the storage."""
        self._log.close()

    # --- the loop ----------------------------------------------------------------------------------
    def optimize(
        self,
        evaluator: Any,
        budget: int,
        executor: str | Executor = "inline",
        workers: int = 1,
        progress: bool = False,
        callbacks: Iterable[Callable[[Study, Trial], None]] = (),
        timeout_s: float | None = None,
        retries: int | RetryPolicy | Mapping[str, Any] | None = None,
    ) -> list[Trial]:
        """Run until the study holds ``budget`` evaluated trials (complete or failed), counting trials
        recorded before this call and those of other drivers working on the same study at once: the budget
        belongs to the study. A loop over :meth:`ask` and :meth:`tell` (:func:`~archscout.optimize.run_optimize`).

        Args:
            evaluator: an object with ``evaluate(arch, fidelity) -> {metric: value}`` or a function of ``arch``.
            budget: total number of evaluated trials the study should hold (>= 1).
            executor: ``"inline"``, ``"process"``, ``"simulated"``, ``"ray"`` or an :class:`Executor`.
            workers: parallel evaluations (executors built by name).
            progress: show a progress bar on stderr with the best value so far.
            callbacks: called as ``cb(study, trial)`` after each finished trial.
            timeout_s: per-trial time limit in seconds (executors built by name); a trial over it is failed
                with reason ``timeout`` and its worker is replaced.
            retries: a :class:`RetryPolicy` (or its ``max_retries``) for this call: failed trials of the kinds it
                names are tried again, each attempt a trial of its own. Default: the study's :attr:`retries`.

        Returns:
            the trials finished by this call, in the order they finished.

        Raises:
            StorageError: a record could not be written; the run stops and everything recorded stays.
        """
        from .optimize import run_optimize

        return run_optimize(self, evaluator, budget, executor, workers, progress, callbacks, timeout_s, retries)

    # --- cost models and constraints -----------------------------------------------------------
    def cheap_costs(self, arch: Architecture) -> tuple[dict[str, float], str | None]:
        """Values of the cheap cost models (run before dispatch) for ``arch``, and the failure reason
        when one of them could not be computed (e.g. the architecture cannot be built)."""
        out: dict[str, float] = {}
        for name, model in self.cost_models.items():
            if not getattr(model, "cheap", True):
                continue
            metrics, error = run_evaluation(_CostAsEvaluator(name, model), arch, None)
            if error is not None:
                return out, f"cost model {name!r} failed: {error.strip().splitlines()[-1]}"
            out.update(metrics or {})
        return out, None

    def meets_constraints(self, values: Mapping[str, float]) -> bool:
        """Whether the constraints on the metrics present in ``values`` hold (absent metrics are not judged)."""
        return all(c.satisfied(values[c.name]) for c in self.constraints if c.name in values)

    def infeasible_message(self, n: int) -> str:
        """Why the last ``n`` candidates were all infeasible: each constraint with the closest value seen."""
        parts = []
        recent = [t for t in self.trials[-n:] if t.state == TrialState.INFEASIBLE]
        for c in self.constraints:
            vals = [t.metrics[c.name] for t in recent if c.name in t.metrics]
            if vals:
                closest = min(vals, key=c.violation)
                parts.append(f"{c.name}{c.op}{c.bound:g} (closest seen: {closest:.4g})")
        return (f"none of the last {n} candidates met the constraints {', '.join(parts)}; every one was recorded "
                "as infeasible. Relax the constraint or change the space")

    # --- queries -----------------------------------------------------------------------------------
    def _feasible(self) -> list[Trial]:
        return [
            t for t in self.trials
            if Result(t.state, t.metrics).feasible(self.constraints)
        ]

    @property
    def best_trial(self) -> Trial | None:
        """The best feasible complete trial on the first objective (earliest on ties)."""
        o = self.objectives[0]
        best = None
        for t in self._feasible():
            if best is None or o.better(t.metrics[o.name], best.metrics[o.name]):
                best = t
        return best

    def pareto_front(self) -> list[Trial]:
        """Feasible complete trials not dominated on the objectives, by number."""
        ts = self._feasible()
        if not ts:
            return []
        pts = np.array([Result(t.state, t.metrics).values(self.objectives) for t in ts])
        return [t for t, keep in zip(ts, pareto_mask(pts)) if keep]

    def summary(self) -> dict[str, Any]:
        """Counts by state and failure kind, the best trial and the front, as a JSON-ready dict."""
        counts: dict[str, int] = {}
        failures: dict[str, int] = {}  # failed trials by kind (error, invalid, timeout, worker_died, driver_died)
        for t in self.trials:
            counts[t.state] = counts.get(t.state, 0) + 1
            if t.state == TrialState.FAILED:
                failures[t.failure or "error"] = failures.get(t.failure or "error", 0) + 1
        best = self.best_trial
        return {
            "study": self.name,
            "storage": self.storage.url,
            "space": self.space.name or "custom",
            "strategy": self.config["strategy"]["name"],
            "seed": self.seed,
            "objectives": [o.to_config() for o in self.objectives],
            "constraints": [c.to_config() for c in self.constraints],
            "counts": counts,
            "failures": failures,
            "best": None if best is None else best.to_json(),
            "pareto_front": [t.number for t in self.pareto_front()],
        }


# --- factories -------------------------------------------------------------------------------------
def create_study(
    space: Space | str,
    objectives: Any = ("score",),
    constraints: Any = (),
    strategy: str | Mapping[str, Any] = "auto",
    storage: str | Storage | None = None,
    seed: int | None = None,
    name: str = "default",
    metadata: Mapping[str, Any] | None = None,
    cost_models: Mapping[str, Any] | None = None,
    fidelities: Sequence[float] | None = None,
    load_if_exists: bool = False,
) -> Study:
    """Create a study and write its header to ``storage``.

    Args:
        space: a :class:`Space` or a registered space name.
        objectives: ``Objective`` objects (or names, or ``(name, "max"|"min")`` pairs).
        constraints: ``Constraint`` objects (or ``"latency_ms<=2"`` strings).
        strategy: a registered strategy name, or ``{"name": ..., **params}``.
        storage: a file path / ``sqlite:///path.db`` (durable) or ``None`` (in memory).
        seed: seeds the strategy; the same seed gives the same trajectory.
        name: the study's name inside the storage.
        metadata: JSON-safe extra settings kept in the header (the CLI stores the evaluator there).
        cost_models: ``{metric name: cost model}``. Cheap ones (``model.cheap``) run before dispatch: a
            candidate whose cheap costs break a constraint is recorded as ``infeasible``, told to the
            strategy, and never evaluated. Expensive ones run with the evaluation, in the executor. Each
            needs ``predict(arch) -> float``. Strategies may query the cheap ones freely.
        fidelities: the evaluator's fidelities (e.g. epochs ``[12, 200]``, the largest is full training);
            multi-fidelity strategies (``sh``, ``hyperband``, ``asha``, ``auto``) ask at these, others at full.
        load_if_exists: when ``storage`` already holds a study named ``name`` with the same settings, join it
            (several drivers started at once on one study) instead of raising.

    Raises:
        ConfigError, UnknownNameError, StorageError: invalid settings, checked before anything is written.
        StudyExistsError: the storage holds a study of that name (and ``load_if_exists`` is false).
        ConfigError: with ``load_if_exists``, the existing study has other settings.
    """
    if isinstance(space, str):
        space = create_space(space)
    if not isinstance(space, Space):
        raise ConfigError(f"space must be a Space or a registered space name, got {space!r}")
    objs = parse_objectives(objectives)
    cons = parse_constraints(constraints)
    if isinstance(strategy, str):
        strategy = {"name": strategy}
    elif isinstance(strategy, Strategy):
        strategy = strategy.to_config()
    if not isinstance(strategy, Mapping) or "name" not in strategy:
        raise ConfigError(f"strategy must be a name or {{'name': ..., **params}}, got {strategy!r}")
    params = {k: v for k, v in strategy.items() if k != "name"}
    # validate now: build it once (it is rebuilt by the study from the stored config)
    probe = create_strategy(strategy["name"], space, objectives=objs, constraints=cons, seed=seed, **params)
    try:
        fids = None if fidelities is None else [float(f) for f in fidelities]
    except (TypeError, ValueError):
        raise ConfigError(f"fidelities must be a list of numbers such as [12, 200], got {fidelities!r}") from None
    probe.attach(fidelities=fids)  # validates them
    probe.check_ready()  # e.g. a strategy that needs fidelities and got none
    if not isinstance(name, str) or not name:
        raise ConfigError(f"study name must be a non-empty string, got {name!r}")
    config = {
        "archscout": __version__,
        "space": space.to_config(),
        "objectives": [o.to_config() for o in objs],
        "constraints": [c.to_config() for c in cons],
        "strategy": probe.to_config(),
        "seed": seed,
        "metadata": dict(metadata or {}),
        "cost_models": {n: _cost_config(m) for n, m in (cost_models or {}).items()},
        "fidelities": fids,
    }
    for n, m in (cost_models or {}).items():
        if not callable(getattr(m, "predict", None)):
            raise ConfigError(f"cost model {n!r} needs a predict(arch) method, got {m!r}")
    store = create_storage(storage)
    try:
        store.create_study(name, config)
    except StudyExistsError:
        if not load_if_exists:
            raise
        _check_same_settings(store, name, config)
    return Study(store, name, store.study_config(name), cost_models)


def _check_same_settings(store: Storage, name: str, config: Mapping[str, Any]) -> None:
    """Raise when the stored study ``name`` was created with other settings than ``config`` (its metadata
    aside: each driver may run with its own executor, workers and budget)."""
    from .storage.base import dumps, loads

    stored, wanted = store.study_config(name), loads(dumps(config))
    differ = sorted(
        k for k in set(stored) | set(wanted) if k not in ("archscout", "metadata") and stored.get(k) != wanted.get(k)
    )
    if differ:
        raise ConfigError(
            f"{store.url} already holds a study {name!r} with other settings ({', '.join(differ)} differ); "
            "use the same settings to join it, or another --study name or storage"
        )


def _cost_config(model: Any) -> dict:
    cfg = model.to_config() if callable(getattr(model, "to_config", None)) else {"type": type(model).__name__}
    return {**cfg, "cheap": bool(getattr(model, "cheap", True))}


class _CostAsEvaluator:
    def __init__(self, name: str, model: Any) -> None:
        self.name, self.model = name, model

    def evaluate(self, arch: Architecture, fidelity: float | None = None) -> dict[str, float]:
        return {self.name: self.model.predict(arch)}


def load_study(storage: str | Storage, name: str | None = None,
               cost_models: Mapping[str, Any] | str | None = None, on_stale: str = "requeue",
               replay: bool = True) -> Study:
    """Rebuild a study from its storage (header + replay of every record): finished trials are kept as
    recorded; trials whose driver stopped while they ran are handed out again by ``ask`` (``on_stale=
    "requeue"``) or recorded as failed (``on_stale="fail"``); trials of drivers still running are left to them.

    Args:
        cost_models: the study's live cost models (``{metric: model}``), or ``"stored"`` to rebuild them from the
            settings the header keeps (:func:`archscout.hardware.cost_models_from_config`); ``None`` (default):
            none, which is enough to read the study, not to continue a search that screens by cost.
        replay: True (default): a seeded strategy proposes the recorded trajectory again, so its state is
            exactly that of the uninterrupted run (a model-based strategy refits its model at each step). False:
            the records are told to it as they are, which is fast; for reading a study (export, reports), not
            for continuing a seeded trajectory.

    Raises:
        StorageError: the storage does not exist, is not an archscout storage, or has no such study.
        ConfigError, DataError: with ``cost_models="stored"``, a stored cost model cannot be rebuilt (the message
            names its metric; pass the live model instead).
    """
    if isinstance(storage, str) and "://" not in storage and storage not in ("memory", ":memory:"):
        import os

        if not os.path.exists(storage):
            raise StorageError(f"storage file {storage!r} does not exist; check the path")
    store = create_storage(storage)
    name = store.resolve_name(name)
    config = store.study_config(name)
    if isinstance(cost_models, str):
        if cost_models != "stored":
            raise ConfigError(f"cost_models must be a mapping of metric names to cost models or 'stored', "
                              f"got {cost_models!r}")
        from .hardware import cost_models_from_config

        cost_models = cost_models_from_config(config.get("cost_models") or {})
    return Study(store, name, config, cost_models, on_stale=on_stale, replay=replay)
