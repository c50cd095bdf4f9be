"""The Ray executor: each evaluation is a Ray task with its own resources, on a local Ray or a cluster.

Ray is imported only when the executor starts (``pip install 'archscout[ray]'``).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from typing import Any

from ..errors import ConfigError, require
from .base import (
    FAILURE_ERROR,
    FAILURE_TIMEOUT,
    FAILURE_WORKER_DIED,
    Completion,
    Evaluator,
    Executor,
    ExecutorCapabilities,
    Job,
    alarm_usable,
    check_timeout,
    check_workers,
    evaluation_outcome,
    timeout_message,
)

__all__ = ["RayExecutor"]

_MAX_ERROR_CHARS = 4000  # a Ray error can carry pages of context; the failure reason keeps its start
_GRACE_S = 30.0  # see RayExecutor: the driver cancels a trial timeout_s + max(_GRACE_S, timeout_s) after submission


def _run_trial(evaluator: Evaluator, job: Job, timeout_s: float | None) -> tuple[int, Any, Any, Any, float, float]:
    """The body of one Ray task: evaluate ``job``; exceptions of the evaluator become a failed outcome, and
    so does an evaluation still running ``timeout_s`` seconds after the task started (interrupted by a
    ``SIGALRM`` timer, which Ray tasks can use: they run on their worker's main thread)."""
    t0 = time.time()
    limit = timeout_s if timeout_s is not None and alarm_usable() else None
    out = evaluation_outcome(evaluator, job.arch, job.fidelity, timeout_s=limit)
    return job.number, out.metrics, out.error, out.failure, t0, time.time()


def _check_amount(what: str, value: Any) -> float:
    """``value`` unchanged; raises ConfigError unless it is a non-negative finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{what} must be a non-negative number, got {value!r}")
    return value


class RayExecutor(Executor):
    """Runs each evaluation as a Ray task (CPUs, GPUs and custom resources per trial), at most ``workers`` at once.

    The evaluator is put in Ray's object store once, at :meth:`start`, and every task gets it by reference.
    Tasks are never retried (``max_retries=0``): a worker that dies (killed, crashed, out of memory) fails
    its own trial (``failure="worker_died"``) and Ray starts a fresh worker for the next ones. Exceptions of
    the evaluator come back as failed trials with their traceback (``failure="error"``).

    Args:
        workers: trials run at once (>= 1).
        address: ``None`` to use the Ray already initialized in this process, else the cluster named by
            ``$RAY_ADDRESS``, else a new local Ray (with enough CPUs for ``workers`` trials, no dashboard);
            ``"auto"``, ``"host:6379"`` or ``"ray://host:10001"`` to connect to an existing cluster.
        num_cpus: CPUs each trial reserves (Ray accounting, fractions allowed).
        num_gpus: GPUs each trial reserves.
        resources: custom resources each trial reserves, e.g. ``{"device_rpi4": 1}`` to run on nodes started
            with ``ray start --resources='{"device_rpi4": 1}'``.
        timeout_s: seconds a trial may run, counted from the start of its task (not from submission, so
            Ray's scheduling and worker start-up do not count): the task interrupts the evaluation and
            reports it failed (``failure="timeout"``). An evaluation that cannot be interrupted (stuck in
            native code) or a task that never starts is cancelled by the driver, killing its worker,
            ``timeout_s + max(30 s, timeout_s)`` after submission. ``None``: no limit.
        runtime_env: a Ray runtime environment for the trial tasks (e.g. ``{"pip": [...]}``,
            ``{"env_vars": {...}}``).

    Raises:
        ConfigError: a bad setting (here), or at :meth:`start` a request no alive node of the cluster can
            meet (e.g. ``resources={"device_rpi4": 1}`` on a cluster without such a node): rejected at once
            rather than left pending forever.
        OptionalDependencyError: at :meth:`start`, when Ray is not installed.

    Calling :meth:`shutdown` (``Study.optimize`` does) stops Ray only when this executor started it; to
    reuse one local Ray across several runs, call ``ray.init(...)`` yourself first.
    """

    name = "ray"
    capabilities = ExecutorCapabilities(parallel=True, isolated=True)

    def __init__(self, workers: int = 2, address: str | None = None, num_cpus: float = 1, num_gpus: float = 0,
                 resources: dict[str, float] | None = None, timeout_s: float | None = None,
                 runtime_env: dict[str, Any] | None = None) -> None:
        self.workers = check_workers(workers)
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ConfigError(f"address must be None (local Ray) or a Ray address such as 'auto' or "
                              f"'ray://host:10001', got {address!r}")
        self.address = address
        self.num_cpus = _check_amount("num_cpus", num_cpus)
        self.num_gpus = _check_amount("num_gpus", num_gpus)
        if resources is None:
            resources = {}
        if not isinstance(resources, dict):
            raise ConfigError(f"resources must be a dict of resource name -> amount per trial, got {resources!r}")
        for key, amount in resources.items():
            if not isinstance(key, str) or not key:
                raise ConfigError(f"resource names must be non-empty strings, got {key!r}")
            if key in ("CPU", "GPU"):
                raise ConfigError(f"give {key} with num_{key.lower()}s=..., not in resources")
            _check_amount(f"resource {key!r}", amount)
        self.resources = dict(resources)
        self.timeout_s = check_timeout(timeout_s)
        if runtime_env is not None and not isinstance(runtime_env, dict):
            raise ConfigError(f"runtime_env must be a dict (a Ray runtime environment) or None, got {runtime_env!r}")
        self.runtime_env = runtime_env
        self._ray: Any = None
        self._owns_ray = False
        self._task: Any = None
        self._evaluator_ref: Any = None
        self._running: dict[Any, tuple[Job, float]] = {}  # ObjectRef -> (job, submitted at)
        self._grace_s = _GRACE_S

    def to_config(self) -> dict[str, Any]:
        return {**super().to_config(), "address": self.address, "num_cpus": self.num_cpus,
                "num_gpus": self.num_gpus, "resources": dict(self.resources), "runtime_env": self.runtime_env}

    # --- lifecycle ------------------------------------------------------------------------------------
    def start(self, evaluator: Evaluator) -> None:
        if self._task is not None:
            self.shutdown()
        ray = self._ray = require("ray", "ray")
        if not ray.is_initialized():
            target = self.address or os.environ.get("RAY_ADDRESS")
            try:
                if target is None:
                    cpus = max(os.cpu_count() or 1, math.ceil(self.workers * self.num_cpus))
                    ray.init(num_cpus=cpus, include_dashboard=False, configure_logging=False)
                else:  # connect (address None: to the cluster named by $RAY_ADDRESS, as Ray does)
                    ray.init(address=target)
            except Exception as e:  # noqa: BLE001 - Ray raises ValueError/ConnectionError/RuntimeError here
                where = f"the Ray cluster at {target!r}" if target else "a local Ray"
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise ConfigError(
                    f"could not start or reach {where}: {first}; check the address (e.g. 'auto' on a cluster "
                    "node, or ray://head:10001 with ray[client] installed) and that the cluster runs"
                ) from None
            self._owns_ray = True
        try:
            self._check_cluster()
            super().start(evaluator)
            self._evaluator_ref = ray.put(evaluator)
            self._task = ray.remote(max_retries=0)(_run_trial)
        except BaseException:
            self.shutdown()
            raise

    def _needs(self) -> dict[str, float]:
        need = {"CPU": self.num_cpus, "GPU": self.num_gpus, **self.resources}
        return {k: v for k, v in need.items() if v > 0}

    def _check_cluster(self) -> None:
        """Raise ConfigError when no alive node offers what one trial needs (its task would wait forever)."""
        need = self._needs()
        if not need:
            return
        nodes = [n.get("Resources", {}) for n in self._ray.nodes() if n.get("Alive")]
        if any(all(res.get(k, 0) >= v for k, v in need.items()) for res in nodes):
            return
        have = "; ".join(", ".join(f"{k}={v:g}" for k, v in sorted(res.items()) if not k.startswith(("node:", "memory",
                         "object_store_memory"))) for res in nodes) or "no alive node"
        raise ConfigError(f"no node of the Ray cluster offers what one trial needs ({need}); nodes have: {have}. "
                          f"Start nodes with those resources (ray start --resources=... or ray.init(resources=...)) "
                          f"or ask for less (num_cpus, num_gpus, resources)")

    def shutdown(self) -> None:
        """Cancel the running trials (killing their workers) and stop Ray if this executor started it."""
        ray = self._ray
        if ray is not None and ray.is_initialized():
            for ref in self._running:
                with contextlib.suppress(Exception):  # already finished or its worker already gone
                    ray.cancel(ref, force=True)
        self._running.clear()
        self._evaluator_ref = None
        self._task = None
        if self._owns_ray and ray is not None:
            ray.shutdown()
            self._owns_ray = False

    # --- jobs -----------------------------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        """Start ``job`` as a Ray task (Ray queues it until the cluster has its resources)."""
        if self._task is None:
            raise RuntimeError("call start(evaluator) before submit()")
        options: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus,
                                   "name": f"archscout-trial-{job.number}"}
        if self.resources:
            options["resources"] = self.resources
        if self.runtime_env is not None:
            options["runtime_env"] = self.runtime_env
        ref = self._task.options(**options).remote(self._evaluator_ref, job, self.timeout_s)
        self._running[ref] = (job, time.time())

    def free_slots(self) -> int:
        return self.workers - len(self._running)

    def poll(self, timeout: float | None = None) -> list[Completion]:
        """Wait until at least one trial finished (or ``timeout`` seconds passed; ``None``: no limit) and
        return every finished one, in the order they finished."""
        if not self._running:
            return []
        ray = self._ray
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            waits = [] if self.timeout_s is None else \
                [submitted + self._cancel_after_s() - time.time() for _, submitted in self._running.values()]
            if end is not None:
                waits.append(end - time.monotonic())
            refs = list(self._running)
            ready, _ = ray.wait(refs, num_returns=1, timeout=max(0.0, min(waits)) if waits else None)
            if ready:
                ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            out = [self._complete(ref) for ref in ready]
            out += self._expire()
            if out:
                return sorted(out, key=lambda c: c.finished_at)
            if not self._running or (end is not None and time.monotonic() >= end):
                return []

    def _cancel_after_s(self) -> float:
        """Seconds after submission when the driver cancels an unfinished trial (``timeout_s`` set)."""
        assert self.timeout_s is not None
        return self.timeout_s + max(self._grace_s, self.timeout_s)

    def _expire(self) -> list[Completion]:
        """Fail and cancel (killing their workers) the trials still running long past ``timeout_s``."""
        if self.timeout_s is None:
            return []
        now = time.time()
        out = []
        for ref, (job, submitted) in list(self._running.items()):
            if now - submitted >= self._cancel_after_s():
                del self._running[ref]
                with contextlib.suppress(Exception):  # finished meanwhile or its worker already gone
                    self._ray.cancel(ref, force=True)
                out.append(Completion(
                    job.number, None, f"{timeout_message(now - submitted, self.timeout_s)} since submission: the "
                    f"evaluation did not stop at its time limit (stuck in native code?) or its task never started; "
                    f"the Ray task was cancelled and its worker killed", submitted, now, FAILURE_TIMEOUT))
        return out

    def _complete(self, ref: Any) -> Completion:
        job, submitted = self._running.pop(ref)
        try:
            number, metrics, error, failure, t0, t1 = self._ray.get(ref)
        except Exception as e:  # noqa: BLE001 - every Ray failure fails only this trial
            error, failure = self._describe(e)
            return Completion(job.number, None, error, submitted, time.time(), failure)
        return Completion(number, metrics, error, t0, t1, failure)

    def _describe(self, e: BaseException) -> tuple[str, str]:
        """The failure reason and category for a Ray error raised by ``ray.get`` on a trial."""
        exc = self._ray.exceptions
        cause = getattr(e, "cause", None) if isinstance(e, exc.RayTaskError) else None
        err = cause if isinstance(cause, BaseException) else e
        died = tuple(getattr(exc, n) for n in ("WorkerCrashedError", "OutOfMemoryError", "NodeDiedError",
                                                "LocalRayletDiedError", "ObjectLostError", "TaskCancelledError")
                     if hasattr(exc, n))
        detail = str(e).strip()[:_MAX_ERROR_CHARS]
        if isinstance(err, getattr(exc, "OutOfMemoryError", ())):
            return f"the Ray worker running this trial was killed for lack of memory: {detail}", FAILURE_WORKER_DIED
        if isinstance(err, getattr(exc, "TaskCancelledError", ())):
            return f"the Ray task of this trial was cancelled: {detail}", FAILURE_WORKER_DIED
        if isinstance(err, getattr(exc, "ObjectLostError", ())):
            return f"the result of this trial was lost (its Ray worker or node died): {detail}", FAILURE_WORKER_DIED
        if isinstance(err, died):
            return (f"the Ray worker running this trial died (killed, crashed or out of memory); Ray starts a "
                    f"fresh one: {detail}", FAILURE_WORKER_DIED)
        return f"the Ray task of this trial failed ({type(err).__name__}): {detail}", FAILURE_ERROR
