"""Built-in executors: inline, process pool and a simulated clock."""

from __future__ import annotations

import heapq
import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ..errors import ConfigError
from .base import Completion, Evaluator, Executor, Job, run_evaluation

__all__ = ["InlineExecutor", "ProcessExecutor", "SimulatedExecutor"]


def _check_workers(workers: Any) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
    return workers


class InlineExecutor(Executor):
    """Runs each job in the calling process, at submit time (one worker)."""

    name = "inline"

    def __init__(self, workers: int = 1) -> None:
        if _check_workers(workers) != 1:
            raise ConfigError("the inline executor runs one job at a time; use workers=1 or executor='process'")
        self.workers = 1
        self._done: list[Completion] = []

    def submit(self, job: Job) -> None:
        t0 = time.time()
        metrics, error = run_evaluation(self.evaluator, job.arch, job.fidelity)
        self._done.append(Completion(job.number, metrics, error, t0, time.time()))

    def poll(self, timeout: float | None = None) -> list[Completion]:
        done, self._done = self._done, []
        return done

    def free_slots(self) -> int:
        return 0 if self._done else 1


# --- process pool ---------------------------------------------------------------------------------
_WORKER_EVALUATOR: Evaluator | None = None


def _init_worker(evaluator: Evaluator, parent_pid: int) -> None:
    global _WORKER_EVALUATOR
    _WORKER_EVALUATOR = evaluator
    _exit_with_parent(parent_pid)


def _exit_with_parent(parent_pid: int, interval_s: float = 0.5) -> None:
    """A worker must not outlive a driver that was killed (SIGKILL leaves no chance to clean up)."""
    import threading

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="archscout-parent-watch", daemon=True).start()


def _run_in_worker(job: Job) -> tuple[int, Any, Any, float, float]:
    t0 = time.time()
    assert _WORKER_EVALUATOR is not None
    metrics, error = run_evaluation(_WORKER_EVALUATOR, job.arch, job.fidelity)
    return job.number, metrics, error, t0, time.time()


class ProcessExecutor(Executor):
    """Runs jobs in ``workers`` separate processes (real parallelism). The evaluator is sent to each worker
    once, when the pool starts; it must be picklable (a module-level function or object).

    A worker that dies fails only the jobs that were running in the pool at that moment; the pool is
    restarted for the next jobs.
    """

    name = "process"

    def __init__(self, workers: int = 2, start_method: str = "spawn") -> None:
        self.workers = _check_workers(workers)
        if start_method not in multiprocessing.get_all_start_methods():
            raise ConfigError(f"start_method must be one of {multiprocessing.get_all_start_methods()}")
        self.start_method = start_method
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[Future, tuple[Job, float]] = {}

    def start(self, evaluator: Evaluator) -> None:
        super().start(evaluator)
        self._new_pool()

    def _new_pool(self) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context(self.start_method),
            initializer=_init_worker,
            initargs=(self.evaluator, os.getpid()),
        )

    def submit(self, job: Job) -> None:
        assert self._pool is not None, "call start(evaluator) first"
        try:
            fut = self._pool.submit(_run_in_worker, job)
        except BrokenProcessPool:
            self._new_pool()
            fut = self._pool.submit(_run_in_worker, job)
        self._futures[fut] = (job, time.time())

    def poll(self, timeout: float | None = None) -> list[Completion]:
        if not self._futures:
            return []
        done, _ = wait(list(self._futures), timeout=timeout, return_when=FIRST_COMPLETED)
        out: list[Completion] = []
        broken = False
        for fut in done:
            job, t_submit = self._futures.pop(fut)
            try:
                number, metrics, error, t0, t1 = fut.result()
                out.append(Completion(number, metrics, error, t0, t1))
            except BrokenProcessPool:
                broken = True
                out.append(Completion(job.number, None, "the worker process died (killed, crashed or out of memory)",
                                      t_submit, time.time()))
            except Exception as e:  # noqa: BLE001 - e.g. an unpicklable result
                out.append(Completion(job.number, None, f"{type(e).__name__}: {e}", t_submit, time.time()))
        if broken:
            self._pool.shutdown(wait=False, cancel_futures=True)  # type: ignore[union-attr]
            self._new_pool()
        return sorted(out, key=lambda c: c.finished_at)

    def free_slots(self) -> int:
        return self.workers - len(self._futures)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._futures.clear()


class SimulatedExecutor(Executor):
    """Replays an asynchronous parallel search on a virtual clock, in no real time.

    Each job finishes ``evaluator.duration(arch, fidelity)`` simulated seconds after it starts (1 s when the
    evaluator gives no duration); ``workers`` jobs run at once. Metrics come from ``evaluator.lookup`` when
    it exists (tabular benchmarks: no real waiting), else ``evaluator.evaluate``.
    """

    name = "simulated"

    def __init__(self, workers: int = 1) -> None:
        self.workers = _check_workers(workers)
        self._clock = 0.0
        self._heap: list[tuple[float, int, Completion]] = []
        self._order = 0

    def submit(self, job: Job) -> None:
        method = "lookup" if hasattr(self.evaluator, "lookup") else "evaluate"
        metrics, error = run_evaluation(self.evaluator, job.arch, job.fidelity, method)
        duration = None
        if hasattr(self.evaluator, "duration"):
            try:
                duration = self.evaluator.duration(job.arch, job.fidelity)  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001
                duration = None
        duration = 1.0 if duration is None or not duration >= 0 else float(duration)
        start = self._clock
        c = Completion(job.number, metrics, error, start, start + duration)
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


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 2))
