"""Studies: objectives + constraints + a strategy + durable records, driven by ask/tell or ``optimize``."""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import __version__
from .drivers import STALE_POLICIES, Heartbeat, RetryPolicy, driver_stopped, new_driver_id
from .errors import ConfigError, ConstraintError, SpaceExhaustedError, StorageError, StudyExistsError
from .execution import Executor, Job, as_evaluator, create_executor, run_evaluation
from .execution.base import WithCosts
from .objectives import (
    Candidate, Constraint, Objective, Result, TrialState, pareto_mask, parse_constraints, parse_objectives,
)
from .space import Architecture, Space, create_space
from .storage import Storage, create_storage
from .storage.base import Event
from .strategies import Strategy, create_strategy
from .strategies.base import _seen_key

__all__ = ["Trial", "Study", "create_study", "load_study"]


@dataclass(frozen=True)
class Trial:
    """One evaluation of a study, as recorded. Times are seconds since the epoch (or simulated seconds
    when the study ran on the simulated executor)."""

    number: int
    arch: Architecture
    fidelity: float | None = None
    state: str = TrialState.RUNNING
    metrics: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    failure: str | None = None  # why a failed trial failed: error, invalid, timeout, worker_died, driver_died

    def to_json(self) -> dict:
        return {
            "number": self.number,
            "state": self.state,
            "arch": str(self.arch),
            "functional_hash": self.arch.functional_hash(),
            "fidelity": self.fidelity,
            "metrics": dict(self.metrics),
            "error": self.error,
            "failure": self.failure,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


class Study:
    """A search: use :func:`create_study` or :func:`load_study` rather than this constructor.

    Several drivers (processes, on one machine or many) may work on one study at once through a shared
    storage: each picks up the others' records before it asks, the budget of :meth:`optimize` belongs to the
    study, and a trial whose driver stopped is re-queued or failed (``on_stale``) by another driver.

    Attributes:
        on_stale: what to do with a trial whose driver stopped while it ran: ``"requeue"`` (run it again,
            the default) or ``"fail"`` (record it as failed, reason ``driver_died``).
        heartbeat_s: seconds between two heartbeats of this driver (default 5).
        stale_after_s: a driver whose last heartbeat is older than this is taken as stopped (default 60). A
            driver of this machine whose process is gone is taken as stopped at once.
    """

    def __init__(self, storage: Storage, name: str, config: Mapping[str, Any],
                 cost_models: Mapping[str, Any] | None = None, on_stale: str = "requeue") -> None:
        if on_stale not in STALE_POLICIES:
            raise ConfigError(f"on_stale must be one of {list(STALE_POLICIES)}, got {on_stale!r}")
        self.storage = storage
        self.name = name
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
        self.on_stale = on_stale
        self.heartbeat_s = 5.0
        self.stale_after_s = 60.0
        self.driver = new_driver_id()
        self._heartbeat = Heartbeat(storage, name, self.driver, self.heartbeat_s)
        self._trials: dict[int, Trial] = {}
        self._candidates: dict[int, Candidate] = {}  # running trial number -> candidate
        self._owner: dict[int, str | None] = {}  # running trial number -> driver that runs it
        self._attempt: dict[int, int] = {}  # trial number -> attempt (1 = first)
        self._keys: set[str] = set()  # dedup keys of every trial's architecture and fidelity
        self._requeue: list[int] = []  # orphaned trials this driver may run again
        self._retries: list[tuple[Architecture, float | None, int, int]] = []  # arch, fidelity, retry_of, attempt
        self._last_seq = 0
        self._next_number = 0
        self._n_evaluated = 0  # complete or failed trials, kept up to date by _apply_tell
        self._n_running = 0
        self._beats_checked = -math.inf
        self._in_loop = False  # optimize() keeps the heartbeat between trials
        self._replay()

    # --- replay and sync ---------------------------------------------------------------------------
    def _replay(self) -> None:
        diverged = False
        drivers = set()
        # a seeded strategy re-proposes the recorded trajectory (its state is rebuilt exactly); an unseeded one
        # cannot, and is told the records as they are
        reproduce = self.seed is not None
        for ev in self.storage.events(self.name):
            if ev.kind == "ask" and ev.trial not in self._trials:
                drivers.add(ev.payload.get("driver"))
            diverged |= self._apply_event(ev, reproduce=reproduce)
        # with several drivers the records interleave their proposals: divergence is expected then
        if diverged and len(drivers) <= 1 and not self.storage.drivers(self.name):
            warnings.warn(
                f"replaying study {self.name!r}: the strategy proposed other architectures than the records "
                "(was it changed?); every recorded result is kept and told to it", stacklevel=3,
            )
        self._find_orphans(force=True)

    def _apply_event(self, ev: Event, reproduce: bool = False) -> bool:
        """Apply one record to the in-memory state; returns whether a reproduced proposal diverged."""
        self._last_seq = max(self._last_seq, ev.seq)
        p = ev.payload
        if ev.kind == "ask":
            if ev.trial in self._trials:  # a driver took over an orphaned trial
                if self._trials[ev.trial].state == TrialState.RUNNING:
                    self._owner[ev.trial] = p.get("driver")
                    if ev.trial in self._requeue and p.get("driver") != self.driver:
                        self._requeue.remove(ev.trial)
                return False
            arch = self.space.parse(p["arch"])
            fid = p.get("fidelity")
            cand = None
            diverged = False
            if reproduce and "retry_of" not in p:
                try:
                    cand = self.strategy.ask()
                except SpaceExhaustedError:
                    cand = None
                if cand is None or cand.arch != arch or cand.fidelity != fid:
                    if cand is not None:
                        self.strategy.on_fail(cand)
                    cand, diverged = None, True
            if cand is None:
                cand = Candidate(-1 - ev.trial, arch, fid)
                self.strategy.note_pending(cand)
            self._candidates[ev.trial] = cand
            self._owner[ev.trial] = p.get("driver")
            self._attempt[ev.trial] = int(p.get("attempt", 1))
            self._keys.add(_seen_key(arch, fid))
            self._trials[ev.trial] = Trial(ev.trial, arch, fid, TrialState.RUNNING, {}, None, ev.time, None)
            self._n_running += 1
            self._next_number = max(self._next_number, ev.trial + 1)
            return diverged
        if ev.kind == "tell" and self._trials.get(ev.trial) is not None \
                and self._trials[ev.trial].state == TrialState.RUNNING:
            self._apply_tell(ev.trial, p)
        return False

    def _sync(self) -> None:
        """Apply the records other drivers appended since this one last looked."""
        for ev in self.storage.events(self.name, after=self._last_seq):
            self._apply_event(ev)

    def _apply_tell(self, number: int, p: Mapping[str, Any]) -> Trial:
        old = self._trials[number]
        trial = Trial(
            number, old.arch, old.fidelity, p["state"], dict(p.get("metrics") or {}), p.get("error"),
            p.get("started_at", old.started_at), p.get("finished_at"), p.get("failure"),
        )
        self._trials[number] = trial
        self._n_running -= 1
        if trial.state in (TrialState.COMPLETE, TrialState.FAILED):
            self._n_evaluated += 1
        self._owner.pop(number, None)
        if number in self._requeue:
            self._requeue.remove(number)
        cand = self._candidates.pop(number)
        self.strategy.tell(cand, Result(trial.state, trial.metrics, trial.error))
        return trial

    def _find_orphans(self, force: bool = False) -> None:
        """Re-queue (or fail, per ``on_stale``) running trials whose driver stopped. Reads the heartbeats at
        most once per heartbeat interval unless ``force``."""
        others = [n for n, d in self._owner.items() if d != self.driver and n not in self._requeue]
        if not others or (not force and time.monotonic() - self._beats_checked < self.heartbeat_s):
            return
        self._beats_checked = time.monotonic()
        beats = self.storage.drivers(self.name)
        stopped = sorted(n for n in others if driver_stopped(beats.get(self._owner[n] or ""), self.stale_after_s))
        if not stopped:
            return
        if self.on_stale == "requeue":
            self._requeue.extend(stopped)
            return
        for n in stopped:
            owner = self._owner.get(n)
            self._finish(n, None, state=TrialState.FAILED, failure="driver_died", expect_owner=owner,
                         error=f"its driver {owner} stopped while it ran; failed because on_stale='fail'")

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

    def _ask(self, budget: int | None) -> Trial | None:
        """Start a trial unless the study already holds ``budget`` evaluated or running trials (``None``)."""
        self._sync()
        self._find_orphans()
        while self._requeue:
            trial = self._claim(self._requeue[0])
            if trial is not None:
                return trial
        for _ in range(100):
            retry = self._retries[0] if self._retries else None
            if retry is None:
                if budget is not None and self._n_evaluated + self._n_running >= budget:
                    return None  # before asking the strategy, which is not free
                cand = self.strategy.ask()
            with self.storage.locked(self.name):
                self._sync()
                if budget is not None and self._n_evaluated + self._n_running >= budget:
                    if retry is None:
                        self.strategy.on_fail(cand)
                    return None
                if retry is not None:
                    arch, fid, of, attempt = self._retries.pop(0)
                    cand = Candidate(-1 - self._next_number, arch, fid)
                    extra = {"retry_of": of, "attempt": attempt}
                elif self.strategy.dedup and _seen_key(cand.arch, cand.fidelity) in self._keys:
                    self.strategy.on_fail(cand)  # another driver started the same function meanwhile
                    continue
                else:
                    extra = {}
                number = self._next_number
                payload = {"cand": cand.id, "arch": str(cand.arch), "fidelity": cand.fidelity,
                           "driver": self.driver, **extra}
                seq = self.storage.append(self.name, "ask", number, payload)
            self._start_heartbeat()
            if retry is not None:
                self.strategy.note_pending(cand)
            self._last_seq = max(self._last_seq, seq)
            self._next_number = number + 1
            self._candidates[number] = cand
            self._owner[number] = self.driver
            self._attempt[number] = int(extra.get("attempt", 1))
            self._keys.add(_seen_key(cand.arch, cand.fidelity))
            self._n_running += 1
            trial = Trial(number, cand.arch, cand.fidelity, TrialState.RUNNING, {}, None, time.time(), None)
            self._trials[number] = trial
            return trial
        raise SpaceExhaustedError("other drivers keep starting every architecture this driver proposes")

    def _claim(self, number: int) -> Trial | None:
        """Take over the orphaned trial ``number`` (recorded as a second ``ask`` of it by this driver)."""
        with self.storage.locked(self.name):
            self._sync()
            if number not in self._requeue:  # finished, or taken by another driver meanwhile
                return None
            self._requeue.remove(number)
            old = self._trials[number]
            seq = self.storage.append(self.name, "ask", number, {
                "cand": self._candidates[number].id, "arch": str(old.arch), "fidelity": old.fidelity,
                "driver": self.driver, "claim": True,
            })
        self._start_heartbeat()
        self._last_seq = max(self._last_seq, seq)
        self._owner[number] = self.driver
        return old

    def _start_heartbeat(self) -> None:
        """Beat while this driver holds running trials (only storages other processes can open need it)."""
        if self.storage.shared and not self._heartbeat.running:
            self._heartbeat.interval_s = self.heartbeat_s
            self._heartbeat.start()

    def _stop_heartbeat_if_idle(self) -> None:
        if self._heartbeat.running and not self._in_loop and self.driver not in self._owner.values():
            self._heartbeat.stop()

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

    _UNSET = object()

    def _finish(self, number: int, metrics: Mapping[str, float] | None, *, state: str | None = None,
                error: str | None = None, started_at: float | None = None, finished_at: float | None = None,
                failure: str | None = None, expect_owner: Any = _UNSET) -> Trial | None:
        """Record the result of trial ``number`` unless it is already finished (then ``None``); with
        ``expect_owner``, only while that driver still holds it."""
        if number not in self._trials:
            raise ConfigError(f"trial {number} does not exist in study {self.name!r}")
        if state is None:
            state = TrialState.COMPLETE if metrics is not None and error is None else TrialState.FAILED
        clean: dict[str, float] = {}
        if state == TrialState.COMPLETE:
            clean, error = _check_metrics(metrics, self.objectives)
            if error is not None:
                state, failure = TrialState.FAILED, "invalid"
        elif metrics:
            clean = {k: float(v) for k, v in metrics.items()}
        if state == TrialState.FAILED and not error:
            error = "failed without a reason"
        payload = {
            "state": state, "metrics": clean, "error": error,
            "started_at": started_at if started_at is not None else self._trials[number].started_at,
            "finished_at": finished_at if finished_at is not None else time.time(),
        }
        if state == TrialState.FAILED:
            payload["failure"] = failure or "error"
        with self.storage.locked(self.name):
            self._sync()
            if self._trials[number].state != TrialState.RUNNING:
                return None
            if expect_owner is not Study._UNSET and self._owner.get(number) != expect_owner:
                return None
            seq = self.storage.append(self.name, "tell", number, payload)
        self._last_seq = max(self._last_seq, seq)
        trial = self._apply_tell(number, payload)
        self._stop_heartbeat_if_idle()
        return trial

    def close(self) -> None:
        """Stop this driver's heartbeat (its unfinished trials become orphans at once) and close the storage."""
        self._heartbeat.stop()
        self.storage.close()

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
                        record(self._finish(trial.number, costs, error=error, failure="error",
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
                        failure = getattr(c, "failure", None) or ("error" if c.error else None)
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
    @property
    def trials(self) -> list[Trial]:
        """All trials, by number."""
        return [self._trials[n] for n in sorted(self._trials)]

    @property
    def interrupted(self) -> list[Trial]:
        """Trials that were running when the previous process stopped; ``ask`` hands them out first."""
        return [self._trials[n] for n in self._requeue]

    @property
    def n_evaluated(self) -> int:
        """Complete or failed trials (what the budget counts)."""
        return self._n_evaluated

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
        for t in self._trials.values():
            counts[t.state] = counts.get(t.state, 0) + 1
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
            "best": None if best is None else best.to_json(),
            "pareto_front": [t.number for t in self.pareto_front()],
        }


def _check_metrics(metrics: Any, objectives: Sequence[Objective]) -> tuple[dict[str, float], str | None]:
    if not isinstance(metrics, Mapping):
        return {}, f"metrics must be a mapping of names to numbers, got {type(metrics).__name__}"
    clean: dict[str, float] = {}
    for k, v in metrics.items():
        try:
            clean[str(k)] = float(v)
        except (TypeError, ValueError):
            return {}, f"metric {k!r} is not a number: {v!r}"
    for o in objectives:
        if o.name not in clean:
            return clean, f"objective {o.name!r} missing from the metrics (got {sorted(clean)})"
        if not math.isfinite(clean[o.name]):
            return clean, f"objective {o.name!r} is {clean[o.name]} (not finite)"
    return clean, None


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
