"""Studies: objectives + constraints + a strategy + durable records, driven by ask/tell or ``optimize``."""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from . import __version__
from .drivers import RetryPolicy
from .errors import ConfigError, ConstraintError, SpaceExhaustedError, StorageError, StudyExistsError
from .execution import Executor, Job, as_evaluator, create_executor, run_evaluation
from .execution.base import FAILURE_ERROR, WithCosts
from .objectives import (
    Constraint, Objective, Result, TrialState, pareto_mask, parse_constraints, parse_objectives,
)
from .space import Architecture, Space, create_space
from .storage import Storage, create_storage
from .strategies import Strategy, create_strategy
from .records import StudyRecords, Trial, _check_metrics

__all__ = ["Trial", "Study", "create_study", "load_study"]


class Study(StudyRecords):
    """A search: use :func:`create_study` or :func:`load_study` rather than this constructor.

    Several drivers (processes, on one machine or many) may work on one study at once through a shared
    storage: each picks up the others' records before it asks, the budget of :meth:`optimize` belongs to the
    study, and a trial whose driver stopped is re-queued or failed (``on_stale``) by another driver.

    Attributes ``on_stale``, ``heartbeat_s``, ``stale_after_s`` and ``driver``: see
    :class:`~archscout.records.StudyRecords`.
    """

    def __init__(self, storage: Storage, name: str, config: Mapping[str, Any],
                 cost_models: Mapping[str, Any] | None = None, on_stale: str = "requeue") -> None:
        self.config = dict(config)
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
        super().__init__(storage, name, self.space, self.objectives, self.strategy, self.seed, on_stale)

    # --- ask / tell --------------------------------------------------------------------------------
    def ask(self) -> Trial:
        """Start a trial: a trial interrupted by a crash is handed out again first, else the strategy
        proposes a new candidate. The start is recorded before this returns.

        Raises:
            SpaceExhaustedError: the strategy has nothing new to propose.
        """
        trial = self._ask(None)
        assert trial is not None
        return trial

    def tell(
        self,
        trial: Trial | int,
        metrics: Mapping[str, float] | None = None,
        *,
        state: str | None = None,
        error: str | None = None,
        started_at: float | None = None,
        finished_at: float | None = None,
    ) -> Trial:
        """Finish a running trial with its metrics (complete) or an error (failed).

        Metrics that lack an objective, or hold a non-finite objective value, fail the trial with that
        reason. The result is recorded durably before the strategy learns it.

        Raises:
            ConfigError: the trial is unknown or already finished, or ``state`` is invalid.
        """
        if isinstance(trial, Trial):
            number = trial.number
        elif isinstance(trial, (int, np.integer)) and not isinstance(trial, bool):
            number = int(trial)
        else:
            raise ConfigError(f"tell() needs a Trial or a trial number, got {trial!r}")
        if state is not None and state not in TrialState.FINISHED:
            raise ConfigError(f"state must be one of {TrialState.FINISHED}, got {state!r}")
        for what, t in (("started_at", started_at), ("finished_at", finished_at)):
            if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t)):
                raise ConfigError(f"{what} must be a time in seconds, got {t!r}")
        if metrics is not None and state in (TrialState.FAILED, TrialState.INFEASIBLE):
            metrics, bad = _check_metrics(metrics, ())
            if bad is not None:
                raise ConfigError(f"trial {number}: {bad}")
        out = self._finish(number, metrics, state=state, error=error, started_at=started_at, finished_at=finished_at)
        if out is None:
            raise ConfigError(f"trial {number} is already {self._trials[number].state}; a trial is told once")
        return out

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
        belongs to the study.

        Args:
            evaluator: an object with ``evaluate(arch, fidelity) -> {metric: value}`` or a function of ``arch``.
            budget: total number of evaluated trials the study should hold (>= 1).
            executor: ``"inline"``, ``"process"``, ``"simulated"``, ``"ray"`` or an :class:`Executor`.
            workers: parallel evaluations (executors built by name).
            progress: show a progress bar on stderr with the best value so far.
            callbacks: called as ``cb(study, trial)`` after each finished trial.
            timeout_s: per-trial time limit in seconds (executors built by name); a trial over it is failed
                with reason ``timeout`` and its worker is replaced.
            retries: a :class:`RetryPolicy` (or its ``max_retries``): failed trials of the kinds it names are
                tried again, each attempt a trial of its own. Default: no retries.

        Returns:
            the trials finished by this call, in the order they finished.

        Raises:
            StorageError: a record could not be written; the run stops and everything recorded stays.
        """
        if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget <= 0:
            raise ConfigError(f"budget must be a positive integer, got {budget!r}")
        policy = RetryPolicy.coerce(retries)
        evaluator = as_evaluator(evaluator)
        expensive = {n: m for n, m in self.cost_models.items() if not getattr(m, "cheap", True)}
        if expensive:
            evaluator = WithCosts(evaluator, expensive)
        if isinstance(executor, Executor):
            ex = executor
        else:
            ex = create_executor(executor, workers=workers, **({} if timeout_s is None else {"timeout_s": timeout_s}))
        ex.start(evaluator)
        bar = _Progress(self, budget) if progress else None
        finished: list[Trial] = []
        running: dict[int, dict[str, float]] = {}  # own trial number -> costs known before dispatch
        exhausted = False
        infeasible_run = 0
        max_infeasible = max(200, 10 * int(budget))

        def record(t: Trial | None) -> None:
            if t is None:
                return
            finished.append(t)
            if bar:
                bar.update(t)
            for cb in callbacks:
                cb(self, t)

        self._in_loop = True
        try:
            while True:
                while not exhausted and ex.free_slots() > 0:
                    try:
                        trial = self._ask(budget)
                    except SpaceExhaustedError as e:
                        warnings.warn(f"stopping early: {e}", stacklevel=2)
                        exhausted = True
                        break
                    if trial is None:
                        break
                    costs, error = self.cheap_costs(trial.arch)
                    if error is not None or not self.meets_constraints(costs):
                        record(self._finish(trial.number, costs, error=error, failure=FAILURE_ERROR,
                                            state=TrialState.FAILED if error else TrialState.INFEASIBLE))
                        if error is not None:
                            continue
                        infeasible_run += 1
                        if infeasible_run >= max_infeasible:
                            raise ConstraintError(self._infeasible_message(infeasible_run))
                        continue
                    infeasible_run = 0
                    running[trial.number] = costs
                    ex.submit(Job(trial.number, trial.arch, trial.fidelity))
                if running:
                    for c in ex.poll():
                        costs = running.pop(c.number, {})
                        metrics = None if c.metrics is None else {**costs, **c.metrics}
                        failure = c.failure or (FAILURE_ERROR if c.error else None)
                        t = self._finish(c.number, metrics, error=c.error, started_at=c.started_at,
                                         finished_at=c.finished_at, failure=failure, expect_owner=self.driver)
                        if t is None:
                            warnings.warn(f"trial {c.number} was finished by another driver meanwhile; this "
                                          "result is not recorded twice", stacklevel=2)
                            continue
                        record(t)
                        attempt = self._attempt.get(c.number, 1)
                        if t.state == TrialState.FAILED and policy.allows(t.failure, attempt):
                            self._retries.append((t.arch, t.fidelity, c.number, attempt + 1))
                    continue
                # nothing of ours runs: done, or waiting for other drivers' trials (or to take them over)
                self._sync()
                self._find_orphans()
                if exhausted or self._n_evaluated >= budget:
                    break
                if self._requeue or self._n_evaluated + self._n_running < budget:
                    continue
                if not any(d != self.driver for d in self._owner.values()):
                    break  # only trials this process asked outside this loop are left; their teller finishes them
                time.sleep(min(1.0, self.heartbeat_s))
        except BaseException:
            # what ran here is orphaned: this driver or another may run it again
            self._requeue.extend(n for n in running if n not in self._requeue)
            self._heartbeat.stop()
            raise
        finally:
            self._in_loop = False
            ex.shutdown()
            if bar:
                bar.close()
        self._stop_heartbeat_if_idle()
        return finished

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

    def _infeasible_message(self, n: int) -> str:
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

    def summary(self) -> dict:
        counts: dict[str, int] = {}
        failures: dict[str, int] = {}  # failed trials by kind (error, invalid, timeout, worker_died, driver_died)
        for t in self._trials.values():
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


class _Progress:
    """tqdm bar with the number of evaluated trials and the best value so far."""

    def __init__(self, study: Study, budget: int) -> None:
        from tqdm import tqdm

        self.study = study
        self.bar = tqdm(total=budget, initial=min(study.n_evaluated, budget), unit="trial", file=sys.stderr,
                        dynamic_ncols=True, desc=study.name)
        self._refresh()

    def _refresh(self) -> None:
        study = self.study
        counts: dict[str, int] = {}
        for t in study.trials:
            counts[t.state] = counts.get(t.state, 0) + 1
        post: dict[str, Any] = {}
        if len(study.objectives) == 1:
            best = study.best_trial
            o = study.objectives[0]
            if best is not None:
                post[f"best {o.name}"] = f"{best.metrics[o.name]:.4g}"
        else:
            front = study.pareto_front()
            a, b = study.objectives[0], study.objectives[1]
            pts = sorted(((t.metrics[a.name], t.metrics[b.name]) for t in front), key=lambda p: p[1])
            shown = ", ".join(f"{x:.3g}/{y:.3g}" for x, y in pts[:4]) + (" ..." if len(pts) > 4 else "")
            post[f"front {a.name}/{b.name}"] = f"[{shown}]" if pts else "[]"
        for state in (TrialState.FAILED, TrialState.INFEASIBLE):
            if counts.get(state):
                post[state] = counts[state]
        self.bar.set_postfix(post, refresh=False)

    def update(self, trial: Trial) -> None:
        if trial.state in (TrialState.COMPLETE, TrialState.FAILED):
            self.bar.update(1)
        self._refresh()

    def close(self) -> None:
        self.bar.close()


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
    differ = sorted(k for k in set(stored) | set(wanted) if k not in ("archscout", "metadata") and stored.get(k) != wanted.get(k))
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
               cost_models: Mapping[str, Any] | None = None, on_stale: str = "requeue") -> Study:
    """Rebuild a study from its storage (header + replay of every record): finished trials are kept as
    recorded; trials whose driver stopped while they ran are handed out again by ``ask`` (``on_stale=
    "requeue"``) or recorded as failed (``on_stale="fail"``); trials of drivers still running are left to them.
    Pass the study's ``cost_models`` again (live objects are not stored; their settings are, in the header).

    Raises:
        StorageError: the storage does not exist, is not an archscout storage, or has no such study.
    """
    if isinstance(storage, str) and "://" not in storage and storage not in ("memory", ":memory:"):
        import os

        if not os.path.exists(storage):
            raise StorageError(f"storage file {storage!r} does not exist; check the path")
    store = create_storage(storage)
    name = store.resolve_name(name)
    return Study(store, name, store.study_config(name), cost_models, on_stale=on_stale)
