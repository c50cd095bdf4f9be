"""One submit/poll contract for every executor, and the evaluator contract it runs."""

from __future__ import annotations

import abc
import math
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

from ..errors import ConfigError
from ..space import Architecture

__all__ = [
    "FAILURES",
    "FAILURE_ERROR",
    "FAILURE_INVALID",
    "FAILURE_TIMEOUT",
    "FAILURE_WORKER_DIED",
    "Completion",
    "EvaluationTimeout",
    "Evaluator",
    "Executor",
    "ExecutorCapabilities",
    "FunctionEvaluator",
    "Job",
    "Outcome",
    "WithCosts",
    "alarm_usable",
    "as_evaluator",
    "check_timeout",
    "check_workers",
    "evaluation_outcome",
    "pid_alive",
    "run_evaluation",
    "time_limit",
    "timeout_message",
]

#: Failure categories of a :class:`Completion` (``Completion.failure``).
FAILURE_ERROR = "error"  #: the evaluator raised an exception
FAILURE_INVALID = "invalid"  #: the evaluator returned non-finite, non-numeric or non-mapping metrics
FAILURE_TIMEOUT = "timeout"  #: the evaluation ran longer than the executor's ``timeout_s``
FAILURE_WORKER_DIED = "worker_died"  #: the process running the evaluation died (killed, crashed, out of memory)
FAILURES = (FAILURE_ERROR, FAILURE_INVALID, FAILURE_TIMEOUT, FAILURE_WORKER_DIED)


@runtime_checkable
class Evaluator(Protocol):
    """Anything with ``evaluate(arch, fidelity) -> {metric: value}``.

    Optional: ``duration(arch, fidelity) -> seconds`` (the simulated clock uses it) and
    ``lookup(arch, fidelity)`` (the same metrics without any real waiting), and ``to_config()``.
    """

    def evaluate(self, arch: Architecture, fidelity: float | None = None) -> Mapping[str, float]: ...


class FunctionEvaluator:
    """Wraps a plain function ``f(arch) -> {metric: value}`` (or ``f(arch, fidelity)``)."""

    def __init__(self, fn: Callable[..., Mapping[str, float]]) -> None:
        self.fn = fn
        import inspect

        try:
            n = len(inspect.signature(fn).parameters)
        except (TypeError, ValueError):  # pragma: no cover
            n = 1
        self._with_fidelity = n >= 2

    def evaluate(self, arch: Architecture, fidelity: float | None = None) -> Mapping[str, float]:
        return self.fn(arch, fidelity) if self._with_fidelity else self.fn(arch)

    def to_config(self) -> dict:
        return {"type": "function", "name": getattr(self.fn, "__qualname__", repr(self.fn))}


class WithCosts:
    """An evaluator followed by expensive cost models (e.g. measured latency), run in the same worker:
    ``evaluate`` returns the evaluator's metrics plus ``{name: model.predict(arch)}``."""

    def __init__(self, evaluator: Evaluator, cost_models: Mapping[str, Any]) -> None:
        self.evaluator = evaluator
        self.cost_models = dict(cost_models)

    def evaluate(self, arch: Architecture, fidelity: float | None = None) -> dict[str, float]:
        out = dict(self.evaluator.evaluate(arch, fidelity))
        for name, model in self.cost_models.items():
            out[name] = float(model.predict(arch))
        return out

    def __getattr__(self, name: str) -> Any:  # duration/lookup of the wrapped evaluator
        if name in ("evaluator", "cost_models"):
            raise AttributeError(name)
        return getattr(self.evaluator, name)

    def lookup(self, arch: Architecture, fidelity: float | None = None) -> dict[str, float]:
        inner = getattr(self.evaluator, "lookup", self.evaluator.evaluate)
        out = dict(inner(arch, fidelity))
        for name, model in self.cost_models.items():
            out[name] = float(model.predict(arch))
        return out


def as_evaluator(obj: Any) -> Evaluator:
    if hasattr(obj, "evaluate"):
        return obj
    if callable(obj):
        return FunctionEvaluator(obj)
    raise TypeError(f"an evaluator needs an evaluate(arch, fidelity) method or must be callable, got {obj!r}")


@dataclass(frozen=True)
class Job:
    """An evaluation to run: trial ``number`` of ``arch`` at ``fidelity``."""

    number: int
    arch: Architecture
    fidelity: float | None = None


@dataclass(frozen=True)
class Completion:
    """A finished job: metrics (``None`` when it failed), the failure reason (``error``, a traceback or a
    sentence) and its category (``failure``, one of :data:`FAILURES`, ``None`` on success), and start/finish
    times on the executor's clock (seconds since the epoch, or simulated seconds)."""

    number: int
    metrics: Mapping[str, float] | None
    error: str | None
    started_at: float
    finished_at: float
    failure: str | None = None


class Outcome(NamedTuple):
    """What one evaluation gave: metrics, or ``None`` with the reason and its category."""

    metrics: dict[str, float] | None
    error: str | None
    failure: str | None


def evaluation_outcome(evaluator: Evaluator, arch: Architecture, fidelity: float | None,
                       method: str = "evaluate", timeout_s: float | None = None) -> Outcome:
    """Run one evaluation (``evaluator.<method>(arch, fidelity)``), turning exceptions into an
    ``"error"`` failure (with the traceback) and non-mapping, non-numeric or non-finite metrics into an
    ``"invalid"`` one. With ``timeout_s`` (seconds), an evaluation still running then is interrupted
    (:func:`time_limit`) and becomes a ``"timeout"`` failure.

    Only :class:`Exception` raised by the evaluator is caught: ``KeyboardInterrupt`` and the like propagate.

    Raises:
        ConfigError: ``timeout_s`` given where :func:`time_limit` cannot work (see :func:`alarm_usable`).
    """
    if timeout_s is None:
        return _outcome(evaluator, arch, fidelity, method)
    t0 = time.monotonic()
    try:
        with time_limit(timeout_s):
            return _outcome(evaluator, arch, fidelity, method)
    except EvaluationTimeout:
        return Outcome(None, timeout_message(time.monotonic() - t0, timeout_s), FAILURE_TIMEOUT)


def _outcome(evaluator: Evaluator, arch: Architecture, fidelity: float | None, method: str) -> Outcome:
    try:
        out = getattr(evaluator, method)(arch, fidelity)
    except Exception:  # noqa: BLE001 - any failure of user code fails the trial, not the study
        return Outcome(None, traceback.format_exc(limit=20).strip(), FAILURE_ERROR)
    if not isinstance(out, Mapping):
        return Outcome(None, f"the evaluator returned {type(out).__name__}, not a mapping of metric values",
                       FAILURE_INVALID)
    metrics: dict[str, float] = {}
    for k, v in out.items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            return Outcome(None, f"metric {k!r} is not a number: {v!r}", FAILURE_INVALID)
        if not math.isfinite(f):
            return Outcome(None, f"metric {k!r} is {f} (not finite)", FAILURE_INVALID)
        metrics[str(k)] = f
    return Outcome(metrics, None, None)


def run_evaluation(evaluator: Evaluator, arch: Architecture, fidelity: float | None,
                   method: str = "evaluate") -> tuple[dict[str, float] | None, str | None]:
    """:func:`evaluation_outcome` without the failure category: ``(metrics, None)`` or ``(None, reason)``."""
    metrics, error, _ = evaluation_outcome(evaluator, arch, fidelity, method)
    return metrics, error


# --- settings shared by every executor --------------------------------------------------------------
def check_workers(workers: Any) -> int:
    """``workers`` as an int; raises :class:`ConfigError` unless it is an integer >= 1."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
    return workers


def check_timeout(timeout_s: Any) -> float | None:
    """``timeout_s`` as a float (seconds) or ``None``; raises :class:`ConfigError` unless it is ``None`` or a
    positive finite number."""
    if timeout_s is None:
        return None
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) \
            or not math.isfinite(timeout_s) or timeout_s <= 0:
        raise ConfigError(f"timeout_s must be a positive number of seconds or None (no limit), got {timeout_s!r}")
    return float(timeout_s)


def timeout_message(elapsed_s: float, timeout_s: float) -> str:
    """The error text of a timed-out evaluation, e.g. ``"timed out after 2.0 s (timeout_s=2.0)"``."""
    return f"timed out after {elapsed_s:.1f} s (timeout_s={float(timeout_s)})"


class EvaluationTimeout(BaseException):
    """Raised inside an evaluation by :func:`time_limit` when its time is up. A :class:`BaseException`, so
    that user code catching :class:`Exception` does not swallow it."""


def alarm_usable() -> bool:
    """Whether :func:`time_limit` can work here: a Unix process (``SIGALRM``), on its main thread."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(timeout_s: float) -> Iterator[None]:
    """Raise :class:`EvaluationTimeout` in the block once it has run ``timeout_s`` seconds, with a
    ``SIGALRM`` timer (``setitimer``). The previous ``SIGALRM`` handler and a running timer are restored.

    Raises:
        ConfigError: not on the main thread of a Unix process (see :func:`alarm_usable`).
    """
    if not alarm_usable():
        raise ConfigError("a timeout without worker processes needs the main thread of a Unix process; "
                          "use executor='process' for timeouts here")

    def on_alarm(signum: int, frame: Any) -> None:
        raise EvaluationTimeout

    t0 = time.monotonic()
    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    old_delay, old_interval = 0.0, 0.0
    try:
        try:
            old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, timeout_s)
            yield
        finally:  # the alarm may still fire here, before the timer is off: the outer block restores all
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, old_handler)
        if old_delay > 0:  # someone else's timer was running: give it back what is left of it
            left = old_delay - (time.monotonic() - t0)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), old_interval)


@dataclass(frozen=True)
class ExecutorCapabilities:
    """What an executor offers (``archscout.testing.check_executor`` chooses its checks by them).

    Attributes:
        parallel: runs several jobs at once (``workers > 1``).
        isolated: runs each job in another process, so a job that crashes or is killed fails only itself.
        real_time: jobs take real time (``False``: a simulated clock, durations from the evaluator).
    """

    parallel: bool = False
    isolated: bool = False
    real_time: bool = True


class Executor(abc.ABC):
    """Runs jobs. ``submit`` never blocks while ``free_slots() > 0``; ``poll`` waits until at least one
    job finished (or ``timeout`` seconds passed) and returns the finished ones, in the order they finished.

    A job that fails (the evaluator raised, returned bad metrics, ran past ``timeout_s`` or its worker died)
    still completes, as a :class:`Completion` with ``metrics=None``, the reason and its category: a failure
    never stops the executor. Every executor takes ``workers`` and ``timeout_s`` (seconds per job, ``None``
    for no limit). Register a new one with :func:`archscout.register_executor`; check it with
    ``archscout.testing.check_executor``.
    """

    name: ClassVar[str] = "base"
    capabilities: ClassVar[ExecutorCapabilities] = ExecutorCapabilities()
    workers: int = 1
    timeout_s: float | None = None

    def start(self, evaluator: Evaluator) -> None:
        """Get ready to run jobs of ``evaluator`` (called once per ``optimize``, before the first ``submit``)."""
        self.evaluator = evaluator

    @abc.abstractmethod
    def submit(self, job: Job) -> None:
        """Start ``job``; only called while :meth:`free_slots` is positive."""

    @abc.abstractmethod
    def poll(self, timeout: float | None = None) -> list[Completion]:
        """The jobs that finished since the last poll, waiting up to ``timeout`` seconds (``None``: until one
        finishes) when none has; ``[]`` when no job is running."""

    @abc.abstractmethod
    def free_slots(self) -> int:
        """How many more jobs :meth:`submit` accepts now."""

    def now(self) -> float:
        """The executor's clock (seconds since the epoch, or simulated seconds)."""
        return time.time()

    def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Stop the workers; jobs still running are abandoned."""

    def to_config(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict; ``create_executor(**cfg)`` builds the same executor."""
        return {"name": self.name, "workers": self.workers, "timeout_s": self.timeout_s}

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine is alive (a zombie, killed but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True
