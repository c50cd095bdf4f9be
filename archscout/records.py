"""The records of a study as one driver sees them: replay of the log, the records other drivers append, trial
numbers, heartbeats, orphaned trials and queued retries. A :class:`~archscout.study.Study` holds one
:class:`TrialLog` and builds its public ask/tell API on it."""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .drivers import FAILURE_DRIVER_DIED, STALE_POLICIES, Heartbeat, driver_stopped, new_driver_id
from .errors import ConfigError, SpaceExhaustedError
from .execution.base import FAILURE_ERROR, FAILURE_INVALID
from .objectives import Objective
from .results import Candidate, Result, Trial, TrialState
from .space import Architecture, Space
from .storage import Storage
from .storage.base import Event
from .strategies import Strategy
from .strategies.base import seen_key

__all__ = ["ANY_OWNER", "TrialLog", "check_metrics"]

ANY_OWNER = object()
"""``TrialLog.finish(..., owner=ANY_OWNER)``: record the result whoever holds the trial."""


class TrialLog:
    """The state of a study rebuilt from its records, kept in step with the other drivers of the study.

    Attributes:
        on_stale: what to do with a trial whose driver stopped while it ran: ``"requeue"`` (run it again,
            the default) or ``"fail"`` (record it as failed, reason ``driver_died``).
        heartbeat_s: seconds between two heartbeats of this driver (default 5).
        stale_after_s: a driver whose last heartbeat is older than this is taken as stopped (default 60). A
            driver of this machine whose process is gone is taken as stopped at once.
        driver: this driver's id, recorded with every trial it starts.
    """

    def __init__(self, storage: Storage, name: str, space: Space, objectives: Sequence[Objective],
                 strategy: Strategy, seed: int | None, on_stale: str = "requeue", reproduce: bool = True) -> None:
        if on_stale not in STALE_POLICIES:
            raise ConfigError(f"on_stale must be one of {list(STALE_POLICIES)}, got {on_stale!r}")
        self.storage = storage
        self.name = name
        self.space = space
        self.objectives = tuple(objectives)
        self.strategy = strategy
        self.seed = seed
        self._reproduce = bool(reproduce)
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
        self._holding = 0  # depth of hold_heartbeat() blocks: a driving loop keeps the heartbeat between trials
        self._replay()

    # --- replay and sync ---------------------------------------------------------------------------
    def _replay(self) -> None:
        diverged = False
        drivers = set()
        # a seeded strategy re-proposes the recorded trajectory (its state is rebuilt exactly); an unseeded one
        # cannot, and is told the records as they are
        reproduce = self.seed is not None and self._reproduce
        for ev in self.storage.events(self.name):
            if ev.kind == "ask" and ev.trial not in self._trials:
                drivers.add(ev.payload.get("driver"))
            diverged |= self._apply_event(ev, reproduce=reproduce)
        # with several drivers the records interleave their proposals: divergence is expected then
        live = any(not driver_stopped(b, self.stale_after_s) for b in self.storage.drivers(self.name).values())
        if diverged and len(drivers) <= 1 and not live:
            warnings.warn(
                f"replaying study {self.name!r}: the strategy proposed other architectures than the records "
                "(was it changed?); every recorded result is kept and told to it", stacklevel=4,
            )
        self.find_orphans(force=True)

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
            self._keys.add(seen_key(arch, fid))
            self._trials[ev.trial] = Trial(ev.trial, arch, fid, TrialState.RUNNING, {}, None, ev.time, None)
            self._n_running += 1
            self._next_number = max(self._next_number, ev.trial + 1)
            return diverged
        if ev.kind == "tell" and self._trials.get(ev.trial) is not None \
                and self._trials[ev.trial].state == TrialState.RUNNING:
            self._apply_tell(ev.trial, p)
        return False

    def sync(self) -> None:
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

    def find_orphans(self, force: bool = False) -> None:
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
            self.finish(n, None, state=TrialState.FAILED, failure=FAILURE_DRIVER_DIED, owner=owner,
                        error=f"its driver {owner} stopped while it ran; failed because on_stale='fail'")

    # --- starting trials ---------------------------------------------------------------------------
    def start(self, budget: int | None) -> Trial | None:
        """Start a trial: a re-queued orphan first, then a queued retry, else the strategy's next candidate;
        ``None`` when the study already holds ``budget`` evaluated or running trials.

        Raises:
            SpaceExhaustedError: the strategy has nothing new to propose.
        """
        # beat before the trial is recorded, so that no other driver ever sees it without a live owner
        self._start_heartbeat()
        try:
            trial = self._start_trial(budget)
        except BaseException:
            self._stop_heartbeat_if_idle()
            raise
        if trial is None:
            self._stop_heartbeat_if_idle()
        return trial

    def _start_trial(self, budget: int | None) -> Trial | None:
        self.sync()
        self.find_orphans()
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
                self.sync()
                if budget is not None and self._n_evaluated + self._n_running >= budget:
                    if retry is None:
                        self.strategy.on_fail(cand)
                    return None
                if retry is not None:
                    arch, fid, of, attempt = self._retries.pop(0)
                    cand = Candidate(-1 - self._next_number, arch, fid)
                    extra: dict[str, Any] = {"retry_of": of, "attempt": attempt}
                elif self.strategy.dedup and seen_key(cand.arch, cand.fidelity) in self._keys:
                    self.strategy.on_fail(cand)  # another driver started the same function meanwhile
                    continue
                else:
                    extra = {}
                number = self._next_number
                payload = {"cand": cand.id, "arch": str(cand.arch), "fidelity": cand.fidelity,
                           "driver": self.driver, **extra}
                seq = self.storage.append(self.name, "ask", number, payload)
            if retry is not None:
                self.strategy.note_pending(cand)
            self._last_seq = max(self._last_seq, seq)
            self._next_number = number + 1
            self._candidates[number] = cand
            self._owner[number] = self.driver
            self._attempt[number] = int(extra.get("attempt", 1))
            self._keys.add(seen_key(cand.arch, cand.fidelity))
            self._n_running += 1
            trial = Trial(number, cand.arch, cand.fidelity, TrialState.RUNNING, {}, None, time.time(), None)
            self._trials[number] = trial
            return trial
        raise SpaceExhaustedError("other drivers keep starting every architecture this driver proposes")

    def _claim(self, number: int) -> Trial | None:
        """Take over the orphaned trial ``number`` (recorded as a second ``ask`` of it by this driver)."""
        with self.storage.locked(self.name):
            self.sync()
            if number not in self._requeue:  # finished, or taken by another driver meanwhile
                return None
            self._requeue.remove(number)
            old = self._trials[number]
            seq = self.storage.append(self.name, "ask", number, {
                "cand": self._candidates[number].id, "arch": str(old.arch), "fidelity": old.fidelity,
                "driver": self.driver, "claim": True,
            })
        self._last_seq = max(self._last_seq, seq)
        self._owner[number] = self.driver
        return old

    def queue_retry(self, trial: Trial) -> None:
        """Run ``trial``'s architecture again, as a new trial whose record names the one it retries."""
        self._retries.append((trial.arch, trial.fidelity, trial.number, self.attempt(trial.number) + 1))

    def attempt(self, number: int) -> int:
        """Which attempt trial ``number`` is (1: the first; a retry of the first is 2, ...)."""
        return self._attempt.get(number, 1)

    # --- heartbeats ---------------------------------------------------------------------------------
    def _start_heartbeat(self) -> None:
        """Beat while this driver holds running trials (only storages other processes can open need it)."""
        if self.storage.shared and not self._heartbeat.running:
            self._heartbeat.interval_s = self.heartbeat_s
            self._heartbeat.start()

    def _stop_heartbeat_if_idle(self) -> None:
        if self._heartbeat.running and not self._holding and self.driver not in self._owner.values():
            self._heartbeat.stop()

    @contextlib.contextmanager
    def hold_heartbeat(self) -> Iterator[None]:
        """Keep this driver's heartbeat for the whole block (a loop that drives the study), not only while it
        holds trials; on leaving, it stops once the driver holds none."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
            self._stop_heartbeat_if_idle()

    def detach(self) -> None:
        """Stop beating: this driver's running trials become orphans at once (another driver, or this one's
        next ask, may take them over); the next ask beats again."""
        self._heartbeat.stop()

    def abandon(self, numbers: Sequence[int]) -> None:
        """Give up this driver's running trials ``numbers`` (re-queued: this driver's next ask, or another
        driver, runs them again) and stop beating."""
        self._requeue.extend(n for n in numbers if n not in self._requeue and self._owner.get(n) == self.driver)
        self.detach()

    # --- finishing trials --------------------------------------------------------------------------
    def finish(self, number: int, metrics: Mapping[str, float] | None, *, state: str | None = None,
               error: str | None = None, started_at: float | None = None, finished_at: float | None = None,
               failure: str | None = None, owner: Any = ANY_OWNER) -> Trial | None:
        """Record the result of trial ``number`` unless it is already finished (then ``None``); with
        ``owner`` (a driver id), only while that driver still holds the trial.

        Metrics that lack an objective, or hold a non-finite objective value, fail a complete trial with kind
        ``invalid``.

        Raises:
            ConfigError: no trial has that number.
            StorageError: the record could not be written.
        """
        if number not in self._trials:
            raise ConfigError(f"trial {number} does not exist in study {self.name!r}")
        if state is None:
            state = TrialState.COMPLETE if metrics is not None and error is None else TrialState.FAILED
        clean: dict[str, float] = {}
        if state == TrialState.COMPLETE:
            clean, error = check_metrics(metrics, self.objectives)
            if error is not None:
                state, failure = TrialState.FAILED, FAILURE_INVALID
        elif metrics:
            clean = {k: float(v) for k, v in metrics.items()}
        if state == TrialState.FAILED and not error:
            error = "failed without a reason"
        payload: dict[str, Any] = {
            "state": state, "metrics": clean, "error": error,
            "started_at": started_at if started_at is not None else self._trials[number].started_at,
            "finished_at": finished_at if finished_at is not None else time.time(),
        }
        if state == TrialState.FAILED:
            payload["failure"] = failure or FAILURE_ERROR
        with self.storage.locked(self.name):
            self.sync()
            if self._trials[number].state != TrialState.RUNNING:
                return None
            if owner is not ANY_OWNER and self._owner.get(number) != owner:
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

    # --- queries -----------------------------------------------------------------------------------
    def trial(self, number: int) -> Trial:
        """Trial ``number``.

        Raises:
            ConfigError: no trial has that number.
        """
        try:
            return self._trials[number]
        except KeyError:
            raise ConfigError(f"trial {number} does not exist in study {self.name!r}") from None

    def owner(self, number: int) -> str | None:
        """The driver that holds running trial ``number`` (``None`` when it is not running)."""
        return self._owner.get(number)

    @property
    def trials(self) -> list[Trial]:
        """All trials, by number."""
        return [self._trials[n] for n in sorted(self._trials)]

    @property
    def interrupted(self) -> list[Trial]:
        """Running trials whose driver stopped, queued to run again here."""
        return [self._trials[n] for n in self._requeue]

    @property
    def n_evaluated(self) -> int:
        """Complete or failed trials (what the budget counts)."""
        return self._n_evaluated

    @property
    def n_running(self) -> int:
        """Running trials of every driver."""
        return self._n_running

    @property
    def n_running_elsewhere(self) -> int:
        """Running trials held by other drivers (not re-queued here)."""
        return sum(d != self.driver for n, d in self._owner.items() if n not in self._requeue)

    @property
    def has_queued(self) -> bool:
        """Whether this driver has re-queued orphans or retries to start."""
        return bool(self._requeue or self._retries)


def check_metrics(metrics: Any, objectives: Sequence[Objective]) -> tuple[dict[str, float], str | None]:
    """``(clean metrics, None)`` with every value as a float, or ``(metrics so far, reason)`` when ``metrics``
    is not a mapping of numbers, or lacks an objective, or holds a non-finite objective value."""
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
