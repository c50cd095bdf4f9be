"""The process executor: long-lived worker processes, each with its own pipe, so that a worker that dies
fails only its own job."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from multiprocessing.util import Finalize
from typing import Any

from ..errors import ConfigError
from .base import (
    FAILURE_ERROR,
    FAILURE_TIMEOUT,
    FAILURE_WORKER_DIED,
    Completion,
    Evaluator,
    Executor,
    ExecutorCapabilities,
    Job,
    Outcome,
    check_timeout,
    check_workers,
    evaluation_outcome,
    pid_alive,
    timeout_message,
)

__all__ = ["ProcessExecutor"]

_READY, _DONE = "ready", "done"  # worker -> driver messages: (_READY, t) once, then (_DONE, number, ...) per job
_CRASH_SIGNALS = {"SIGSEGV", "SIGBUS", "SIGABRT", "SIGILL", "SIGFPE"}


# --- worker side ------------------------------------------------------------------------------------
def _worker_main(conn: Connection, driver_pid: int) -> None:
    """A worker: load the evaluator sent first on ``conn``, then run one job per message until ``None``
    or until the driver goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the driver, which stops the workers
    _exit_with_driver(driver_pid)
    evaluator: Evaluator | None = None
    init_error: str | None = None
    try:
        evaluator = pickle.loads(conn.recv_bytes())
    except (EOFError, OSError):
        return
    except Exception:  # noqa: BLE001 - reported with every job, so the study sees why its trials fail
        init_error = "the worker process could not load the evaluator:\n" + traceback.format_exc(limit=20).strip()
    try:
        conn.send((_READY, time.time()))
        while True:
            job = conn.recv()
            if job is None:
                return
            t0 = time.time()
            if evaluator is None:
                out = Outcome(None, init_error, FAILURE_ERROR)
            else:
                out = evaluation_outcome(evaluator, job.arch, job.fidelity)
            conn.send((_DONE, job.number, out.metrics, out.error, out.failure, t0, time.time()))
    except (EOFError, OSError):  # the driver closed the pipe or died
        return


def _exit_with_driver(driver_pid: int, interval_s: float = 0.5) -> None:
    """A worker must not outlive a driver that was killed (SIGKILL leaves it no chance to clean up): a
    daemon thread exits the process once the driver is gone or the worker was re-parented."""
    ppid0 = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != ppid0 or not pid_alive(driver_pid):
                os._exit(1)

    threading.Thread(target=watch, name="archscout-driver-watch", daemon=True).start()


# --- driver side ------------------------------------------------------------------------------------
@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    ready_at: float | None = None  # when it had loaded the evaluator (its clock = ours: same host)
    job: Job | None = None
    sent_at: float = 0.0

    def deadline(self, timeout_s: float | None) -> float | None:
        """When the running job times out (epoch seconds); ``None`` before the worker is ready."""
        if timeout_s is None or self.job is None or self.ready_at is None:
            return None
        return max(self.sent_at, self.ready_at) + timeout_s


def _death_reason(process: BaseProcess, ready: bool, start_method: str) -> str:
    """Why a worker's job failed: how its process ended (exit code or signal), with a hint when it died
    before it had even loaded the evaluator."""
    code = process.exitcode
    if code is None:
        how = "it stopped responding"
    elif code < 0:
        try:
            sig = signal.Signals(-code).name
        except ValueError:
            sig = f"signal {-code}"
        hint = (" (e.g. the out-of-memory killer or kill -9)" if sig == "SIGKILL"
                else " (a crash in native code)" if sig in _CRASH_SIGNALS else "")
        how = f"killed by {sig}{hint}"
    else:
        how = f"exited with code {code}"
    if not ready:
        guard = (" (with start_method='spawn' or 'forkserver', a script must start the run under "
                 "`if __name__ == '__main__':`)" if start_method != "fork" else "")
        return (f"the worker process (pid {process.pid}) died before it could load the evaluator: {how}; see its "
                f"traceback on stderr{guard}")
    return f"the worker process (pid {process.pid}) died while running this trial: {how}; a fresh worker replaces it"


def _reap(w: _Worker, kill: bool = False) -> None:
    """Close ``w``'s pipe and wait for its process to end (SIGKILL first when ``kill``)."""
    w.conn.close()
    if kill and w.process.is_alive():
        w.process.kill()
    w.process.join(timeout=2.0)
    if w.process.is_alive():  # pragma: no cover - SIGTERM ignored by the evaluator
        w.process.kill()
        w.process.join(timeout=2.0)
    with contextlib.suppress(ValueError):  # pragma: no cover - still running after SIGKILL (uninterruptible sleep)
        w.process.close()


def _stop_workers(slots: list[_Worker | None]) -> None:
    """Stop every worker in ``slots`` at once (SIGTERM, then SIGKILL after 1 s) and empty the list."""
    workers = [w for w in slots if w is not None]
    slots.clear()
    for w in workers:
        w.conn.close()
        if w.process.is_alive():
            w.process.terminate()
    end = time.monotonic() + 1.0
    for w in workers:
        w.process.join(timeout=max(0.0, end - time.monotonic()))
    for w in workers:
        _reap(w, kill=True)


class ProcessExecutor(Executor):
    """Runs jobs in ``workers`` long-lived worker processes (real parallelism), each with its own pipe.

    The evaluator is pickled once, when the executor starts, and sent to each worker as it starts; it must
    be picklable (a module-level function or object). A worker that dies (SIGKILL, segfault, ``os._exit``,
    out of memory) fails only its own job (``failure="worker_died"``, with its exit code or signal) and a
    fresh worker replaces it; other running jobs go on. Workers exit on their own when the driver dies.

    Args:
        workers: worker processes, i.e. jobs run at once (>= 1).
        start_method: how workers start (``"spawn"``, ``"forkserver"``, ``"fork"``); ``"spawn"`` is the safe
            default (no state inherited from the driver, fine with threads and CUDA).
        timeout_s: seconds a job may run, counted once its worker has loaded the evaluator; a job that runs
            longer is failed (``failure="timeout"``) and its worker is killed and replaced. ``None``: no limit.

    Raises:
        ConfigError: bad ``workers``, ``start_method`` or ``timeout_s``; at :meth:`start`, an evaluator
            that cannot be pickled.
    """

    name = "process"
    capabilities = ExecutorCapabilities(parallel=True, isolated=True)

    def __init__(self, workers: int = 2, start_method: str = "spawn", timeout_s: float | None = None) -> None:
        self.workers = check_workers(workers)
        if start_method not in multiprocessing.get_all_start_methods():
            raise ConfigError(f"start_method must be one of {multiprocessing.get_all_start_methods()}, "
                              f"got {start_method!r}")
        self.start_method = start_method
        self.timeout_s = check_timeout(timeout_s)
        self._slots: list[_Worker | None] = []  # never rebound: the finalizer below holds it
        self._backlog: deque[Job] = deque()
        self._done: list[Completion] = []
        self._payload = b""
        # workers are not daemons (an evaluator may start processes of its own, e.g. data loaders), so an
        # executor dropped without shutdown() must still stop them, at the latest when the interpreter exits
        # (before multiprocessing joins its children there)
        Finalize(self, _stop_workers, args=(self._slots,), exitpriority=10)

    def to_config(self) -> dict[str, Any]:
        return {**super().to_config(), "start_method": self.start_method}

    # --- lifecycle ------------------------------------------------------------------------------------
    def start(self, evaluator: Evaluator) -> None:
        if self._slots:
            self.shutdown()
        try:
            payload = pickle.dumps(evaluator, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # noqa: BLE001 - PicklingError, AttributeError, TypeError...
            raise ConfigError(
                f"the process executor sends the evaluator to its workers, but it cannot be pickled "
                f"({type(e).__name__}: {e}); define it at module level (no lambda or local function) "
                f"or use executor='inline'") from None
        super().start(evaluator)
        self._payload = payload
        # get_context(str) is typed as BaseContext, which lacks Process; the concrete contexts all have it
        self._ctx: Any = multiprocessing.get_context(self.start_method)
        self._slots.extend(self._spawn(send=False) for _ in range(self.workers))
        for w in self._slots:  # sent once all have started, so that their start-ups overlap
            self._send_evaluator(w)  # type: ignore[arg-type]

    def _spawn(self, send: bool = True) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=_worker_main, args=(child, os.getpid()), name="archscout-worker")
        process.start()
        child.close()
        w = _Worker(process, parent)
        if send:
            self._send_evaluator(w)
        return w

    def _send_evaluator(self, w: _Worker) -> None:
        with contextlib.suppress(OSError):  # died at once: noticed when it is given a job
            w.conn.send_bytes(self._payload)

    def shutdown(self) -> None:
        """Stop every worker at once (SIGTERM, then SIGKILL after a 1 s grace period); running jobs are dropped."""
        self._backlog.clear()
        self._done = []
        _stop_workers(self._slots)

    # --- jobs -----------------------------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        """Send ``job`` to an idle worker (jobs beyond ``free_slots()`` wait for one)."""
        if not self._slots:
            raise RuntimeError("call start(evaluator) before submit()")
        self._backlog.append(job)
        self._dispatch()

    def _dispatch(self) -> None:
        for i in range(len(self._slots)):
            if not self._backlog:
                return
            w = self._slots[i]
            if w is not None and w.job is not None:
                continue
            if w is None or not w.process.is_alive():  # died while idle: replace it now
                if w is not None:
                    _reap(w)
                w = self._slots[i] = self._spawn()
            job = self._backlog.popleft()
            try:
                data = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as e:  # noqa: BLE001 - e.g. an architecture holding an unpicklable value
                t = time.time()
                self._done.append(Completion(job.number, None, f"the job cannot be sent to a worker process "
                                             f"({type(e).__name__}: {e})", t, t, FAILURE_ERROR))
                continue
            w.job, w.sent_at = job, time.time()
            with contextlib.suppress(OSError):  # it died just now: poll() sees it and fails the job
                w.conn.send_bytes(data)

    def free_slots(self) -> int:
        busy = sum(1 for w in self._slots if w is not None and w.job is not None)
        return self.workers - busy - len(self._backlog) - len(self._done)

    def poll(self, timeout: float | None = None) -> list[Completion]:
        """Wait until at least one job finished (or ``timeout`` seconds passed; ``None``: no limit) and
        return the finished ones, in the order they finished."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            self._collect()
            self._dispatch()
            if self._done:
                done, self._done = self._done, []
                return sorted(done, key=lambda c: c.finished_at)
            busy = [w for w in self._slots if w is not None and w.job is not None]
            if not busy:
                return []
            waits = [d - time.time() for w in busy if (d := w.deadline(self.timeout_s)) is not None]
            if end is not None:
                waits.append(end - time.monotonic())
                if end - time.monotonic() <= 0:
                    return []
            handles: list[Any] = [w.conn for w in busy] + [w.process.sentinel for w in busy]
            wait(handles, timeout=max(0.0, min(waits)) if waits else None)

    def _collect(self) -> None:
        """Read what the busy workers sent; fail the jobs of dead workers and of those past their deadline."""
        for i, w in enumerate(self._slots):
            if w is None or w.job is None:
                continue
            broken = self._read(w)
            if w.job is None:
                continue
            if broken or not w.process.is_alive():
                w.process.join(timeout=1.0)
                self._read(w)  # what it wrote before dying is all in the pipe now
                if w.job is None:
                    continue
                reason = _death_reason(w.process, w.ready_at is not None, self.start_method)
                self._done.append(Completion(w.job.number, None, reason, w.sent_at, time.time(), FAILURE_WORKER_DIED))
                w.job = None
                _reap(w, kill=True)
                self._slots[i] = self._spawn()
                continue
            deadline = w.deadline(self.timeout_s)
            if deadline is not None and time.time() >= deadline:
                assert self.timeout_s is not None
                started = max(w.sent_at, w.ready_at or w.sent_at)
                _reap(w, kill=True)
                now = time.time()
                self._done.append(Completion(w.job.number, None, timeout_message(now - started, self.timeout_s)
                                             + "; its worker process was killed and replaced", started, now,
                                             FAILURE_TIMEOUT))
                self._slots[i] = self._spawn()

    def _read(self, w: _Worker) -> bool:
        """Read every message ``w`` has sent; True when its pipe is broken (closed or a partial message)."""
        try:
            while w.job is not None and not w.conn.closed and w.conn.poll():
                msg = w.conn.recv()
                if msg[0] == _READY:
                    w.ready_at = msg[1]
                elif msg[0] == _DONE:
                    _, number, metrics, error, failure, t0, t1 = msg
                    self._done.append(Completion(number, metrics, error, t0, t1, failure))
                    w.job = None
        except (EOFError, OSError, pickle.UnpicklingError):
            return True
        return False
