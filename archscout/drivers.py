"""Several drivers on one study: driver identities, heartbeats, stopped drivers, retries.

A *driver* is a process that runs a study's loop (``Study.optimize`` or its own ask/tell loop). Several may
work on one study at once, on one machine or many, through a shared storage. Each driver beats a heartbeat
row in the storage from a background thread; a trial whose driver stopped beating (or whose process is gone,
when it ran on this machine) is *orphaned*, and another driver re-queues it or fails it, per policy.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .execution.base import FAILURES, pid_alive
from .storage.base import DriverBeat, Storage

__all__ = ["STALE_POLICIES", "Heartbeat", "RetryPolicy", "driver_stopped", "new_driver_id"]

STALE_POLICIES = ("requeue", "fail")
FAILURE_DRIVER_DIED = "driver_died"  # the driver stopped while the trial ran (on_stale="fail")
FAILURE_KINDS = (*FAILURES, FAILURE_DRIVER_DIED)
HOST = socket.gethostname()


@dataclass(frozen=True)
class RetryPolicy:
    """How failed evaluations are retried.

    Args:
        max_retries: extra attempts per failed trial (0: a failed trial is only recorded). Each attempt is a
            trial of its own (it counts toward the budget) whose record names the trial it retries.
        on: failure kinds that are retried: ``"error"`` (the evaluator raised), ``"invalid"`` (non-finite or
            non-numeric metrics), ``"timeout"`` (over the per-trial timeout), ``"worker_died"`` (the worker
            process was killed or crashed), ``"driver_died"`` (the driver stopped while it ran).
    """

    max_retries: int = 0
    on: tuple[str, ...] = ("timeout", "worker_died", "driver_died")

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError(f"max_retries must be an integer >= 0, got {self.max_retries!r}")
        on = (self.on,) if isinstance(self.on, str) else tuple(self.on)
        bad = [k for k in on if k not in FAILURE_KINDS]
        if bad:
            raise ConfigError(f"retry on {bad} is not a failure kind; use some of {list(FAILURE_KINDS)}")
        object.__setattr__(self, "on", on)

    @classmethod
    def coerce(cls, value: Any) -> RetryPolicy:
        """A policy from ``None``/an int (``max_retries``)/a mapping/a policy."""
        if value is None:
            return cls()
        if isinstance(value, RetryPolicy):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"max_retries", "on"}
            if unknown:
                raise ConfigError(f"unknown retry setting(s) {sorted(unknown)}; use max_retries and on")
            return cls(**dict(value))
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(max_retries=value)
        raise ConfigError(f"retries must be a number of retries, a RetryPolicy or a mapping, got {value!r}")

    def allows(self, failure: str | None, attempt: int) -> bool:
        """Whether a trial that failed with ``failure`` on its ``attempt``-th attempt (1 = first) is retried."""
        return failure in self.on and attempt <= self.max_retries


def new_driver_id() -> str:
    """A fresh, unique driver id naming the machine and process."""
    return f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def driver_info() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": HOST, "started_at": time.time()}


def driver_stopped(beat: DriverBeat | None, stale_after_s: float) -> bool:
    """Whether a driver has stopped: no heartbeat row (it ended, or never beat), a beat older than
    ``stale_after_s``, or a process of this machine that no longer exists."""
    if beat is None or beat.age_s > stale_after_s:
        return True
    pid = beat.info.get("pid")
    if beat.info.get("host") == HOST and isinstance(pid, int) and pid != os.getpid():
        return not pid_alive(pid)
    return False


class Heartbeat:
    """Beats ``driver``'s row in ``storage`` every ``interval_s`` seconds from a daemon thread.

    The first beat is written by :meth:`start` itself, so a storage that cannot be written fails there. Later
    failures are kept in :attr:`error` and retried at the next beat (a driver that cannot beat for longer than
    the stale limit may see its trials taken over by another driver; their results are then not recorded twice).
    """

    def __init__(self, storage: Storage, study: str, driver: str, interval_s: float) -> None:
        self.storage, self.study, self.driver, self.interval_s = storage, study, driver, float(interval_s)
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self.storage.heartbeat(self.study, self.driver, driver_info())
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name=f"archscout-heartbeat-{self.study}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.storage.heartbeat(self.study, self.driver)
                self.error = None
            except Exception as e:  # noqa: BLE001 - kept for the driver; the next beat retries
                self.error = e

    def stop(self) -> None:
        """Stop beating and delete the row (this driver's unfinished trials become orphans at once)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 5)
            self._thread = None
        with contextlib.suppress(Exception):  # the row then goes stale by age
            self.storage.end_driver(self.study, self.driver)
