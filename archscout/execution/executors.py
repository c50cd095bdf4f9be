"""Built-in executors: inline, process pool (in :mod:`.pool`) and a simulated clock."""

from __future__ import annotations

import heapq
import time

from ..errors import ConfigError
from .base import (
    FAILURE_TIMEOUT,
    Completion,
    Evaluator,
    Executor,
    ExecutorCapabilities,
    Job,
    Outcome,
    alarm_usable,
    check_timeout,
    check_workers,
    evaluation_outcome,
    timeout_message,
)
from .pool import ProcessExecutor

__all__ = ["InlineExecutor", "ProcessExecutor", "SimulatedExecutor"]


class InlineExecutor(Executor):
    """Runs each job in the calling process, at submit time (one worker).

    Args:
        workers: must be 1.
        timeout_s: seconds an evaluation may run before it is interrupted and failed (``failure="timeout"``);
            ``None``: no limit. Needs the main thread of a Unix process (a ``SIGALRM`` timer), and only
            interrupts Python code: an evaluation stuck inside a C extension is stopped when it returns.

    Raises:
        ConfigError: ``workers != 1``, a bad ``timeout_s``, or a timeout where no ``SIGALRM`` timer can be used.
    """

    name = "inline"
    capabilities = ExecutorCapabilities()

    def __init__(self, workers: int = 1, timeout_s: float | None = None) -> None:
        if check_workers(workers) != 1:
            raise ConfigError("the inline executor runs one job at a time; use workers=1 or executor='process'")
        self.workers = 1
        self.timeout_s = check_timeout(timeout_s)
        self._check_alarm()
        self._done: list[Completion] = []

    def _check_alarm(self) -> None:
        if self.timeout_s is not None and not alarm_usable():
            raise ConfigError("the inline executor enforces timeout_s with SIGALRM, which needs the main thread "
                              "of a Unix process; use executor='process' for timeouts here")

    def start(self, evaluator: Evaluator) -> None:
        self._check_alarm()
        super().start(evaluator)
        self._done = []

    def submit(self, job: Job) -> None:
        t0 = time.time()
        out = evaluation_outcome(self.evaluator, job.arch, job.fidelity, timeout_s=self.timeout_s)
        self._done.append(Completion(job.number, out.metrics, out.error, t0, time.time(), out.failure))

    def poll(self, timeout: float | None = None) -> list[Completion]:
        done, self._done = self._done, []
        return done

    def free_slots(self) -> int:
        return 0 if self._done else 1


class SimulatedExecutor(Executor):
    """Replays an asynchronous parallel search on a virtual clock, in no real time.

    Each job finishes ``evaluator.duration(arch, fidelity)`` simulated seconds after it starts (1 s when the
    evaluator gives no duration); ``workers`` jobs run at once. Metrics come from ``evaluator.lookup`` when
    it exists (tabular benchmarks: no real waiting), else ``evaluator.evaluate``. A job whose duration
    exceeds ``timeout_s`` fails (``failure="timeout"``) ``timeout_s`` simulated seconds after it started.

    Raises:
        ConfigError: ``workers < 1`` or a bad ``timeout_s``.
    """

    name = "simulated"
    capabilities = ExecutorCapabilities(parallel=True, real_time=False)

    def __init__(self, workers: int = 1, timeout_s: float | None = None) -> None:
        self.workers = check_workers(workers)
        self.timeout_s = check_timeout(timeout_s)
        self._clock = 0.0
        self._heap: list[tuple[float, int, Completion]] = []
        self._order = 0

    def submit(self, job: Job) -> None:
        method = "lookup" if hasattr(self.evaluator, "lookup") else "evaluate"
        out = evaluation_outcome(self.evaluator, job.arch, job.fidelity, method)
        duration = None
        if hasattr(self.evaluator, "duration"):
            try:
                duration = self.evaluator.duration(job.arch, job.fidelity)
            except Exception:  # noqa: BLE001
                duration = None
        duration = 1.0 if duration is None or not duration >= 0 else float(duration)
        if self.timeout_s is not None and duration > self.timeout_s:
            duration = self.timeout_s
            out = Outcome(None, timeout_message(duration, self.timeout_s), FAILURE_TIMEOUT)
        start = self._clock
        c = Completion(job.number, out.metrics, out.error, start, start + duration, out.failure)
        heapq.heappush(self._heap, (c.finished_at, self._order, c))
        self._order += 1

    def poll(self, timeout: float | None = None) -> list[Completion]:
        if not self._heap:
            return []
        t, _, c = heapq.heappop(self._heap)
        self._clock = max(self._clock, t)
        return [c]

    def free_slots(self) -> int:
        return self.workers - len(self._heap)

    def now(self) -> float:
        return self._clock
