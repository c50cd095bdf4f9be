"""Conformance checks of an executor: the submit/poll contract of :class:`~archscout.execution.Executor`.

``check_executor(MyExecutor)`` runs jobs of :class:`ScriptedEvaluator` (a picklable evaluator whose behaviour on
chosen architectures is scripted: raise, return NaN or a list, sleep, kill its own process) and checks that
every job completes exactly once, that a failure completes as a failed :class:`~archscout.execution.Completion`
with its kind and never stops the executor, that ``free_slots``/``submit``/``poll`` keep their contract, that
timeouts fail only their job, that ``to_config`` rebuilds the executor, and what the declared
:class:`~archscout.execution.ExecutorCapabilities` promise (jobs in other processes that may die alone,
a simulated clock).
"""

from __future__ import annotations

import inspect
import json
import math
import os
import signal
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..execution import (
    EXECUTORS,
    FAILURE_ERROR,
    FAILURE_INVALID,
    FAILURE_TIMEOUT,
    FAILURE_WORKER_DIED,
    Completion,
    Executor,
    ExecutorCapabilities,
    Job,
    create_executor,
)
from ..space import Architecture, create_space
from ._checks import Rule, Suite, bind_or_config_error, expect, iter_checks, register_suite, run_all

__all__ = ["ScriptedEvaluator", "check_executor", "expected_value", "iter_executor_checks"]

TIMEOUT_S = 1.0
"""The timeout (seconds) of the timeout rule; its slow job sleeps 30 s."""


def expected_value(arch: Architecture) -> float:
    """The metric ``acc`` that :class:`ScriptedEvaluator` returns for ``arch`` when nothing is scripted."""
    return int(arch.functional_hash()[:6], 16) / 16**6


class ScriptedEvaluator:
    """A picklable evaluator whose behaviour on some architectures is scripted.

    ``actions`` maps ``str(arch)`` to ``"raise"`` (raises ValueError), ``"nan"``/``"inf"`` (a non-finite metric),
    ``"list"`` (returns a list), ``"text"`` (a non-numeric metric), ``"sleep"`` (sleeps 30 s), ``"sigkill"``
    or ``"sigsegv"`` (kills its own process with that signal) or ``"exit"`` (``os._exit(3)``). Other
    architectures return ``{"acc": expected_value(arch), "fid": fidelity or -1, "pid": os.getpid()}`` after
    ``sleep_s`` seconds.
    ``lookup`` acts the same without waiting or dying (for simulated clocks); ``duration`` gives the simulated
    seconds of a job: ``durations[str(arch)]``, else 30 for ``"sleep"``, else 1.
    """

    def __init__(self, actions: Mapping[str, str] | None = None, sleep_s: float = 0.0,
                 durations: Mapping[str, float] | None = None) -> None:
        self.actions = dict(actions or {})
        self.sleep_s = float(sleep_s)
        self.durations = dict(durations or {})

    def evaluate(self, arch: Architecture, fidelity: float | None = None) -> Any:
        return self._run(arch, fidelity, real=True)

    def lookup(self, arch: Architecture, fidelity: float | None = None) -> Any:
        return self._run(arch, fidelity, real=False)

    def duration(self, arch: Architecture, fidelity: float | None = None) -> float:
        text = str(arch)
        if text in self.durations:
            return float(self.durations[text])
        return 30.0 if self.actions.get(text) == "sleep" else 1.0

    def _run(self, arch: Architecture, fidelity: float | None, real: bool) -> Any:
        action = self.actions.get(str(arch))
        if action == "raise":
            raise ValueError("scripted failure")
        if action in ("nan", "inf"):
            return {"acc": float(action)}
        if action == "list":
            return [1.0]
        if action == "text":
            return {"acc": "high"}
        if real and action == "sleep":
            time.sleep(30)
        if real and action == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if real and action == "sigsegv":
            os.kill(os.getpid(), signal.SIGSEGV)
        if real and action == "exit":
            os._exit(3)
        if real and self.sleep_s:
            time.sleep(self.sleep_s)
        return {"acc": expected_value(arch), "fid": -1.0 if fidelity is None else float(fidelity),
                "pid": float(os.getpid())}


class ExecutorSubject:
    """An executor class or registered name and the settings it is checked with."""

    def __init__(self, executor: type[Executor] | str, **settings: Any) -> None:
        if isinstance(executor, str):
            cls = EXECUTORS.get(executor)
            self.name: str | None = executor
        else:
            cls = executor
            self.name = None
        if not (isinstance(cls, type) and issubclass(cls, Executor)):
            raise ConfigError(f"check_executor needs an Executor subclass or a registered name, got {executor!r}")
        self.cls = cls
        self.label = executor if isinstance(executor, str) else getattr(cls, "name", cls.__name__)
        self.settings = dict(settings)
        self.capabilities: ExecutorCapabilities = cls.capabilities
        self.workers = int(settings.get("workers", 2 if self.capabilities.parallel else 1))
        self.built: list[Executor] = []
        self.space = create_space("nb201")

    def traits(self) -> dict[str, bool | None]:
        return _traits(self.cls)

    def close(self) -> None:
        built, self.built = self.built, []
        for ex in built:
            ex.shutdown()

    def create(self, **settings: Any) -> Executor:
        """An executor with exactly these settings, as ``create_executor`` builds it."""
        if self.name is not None:
            ex = create_executor(self.name, **settings)
        else:
            bind_or_config_error(f"executor {self.label!r}", self.cls, **settings)
            ex = self.cls(**settings)
        self.built.append(ex)
        return ex

    def make(self, **extra: Any) -> Executor:
        """An executor with the subject's settings (and ``workers``), updated by ``extra``."""
        return self.create(**{**self.settings, "workers": self.workers, **extra})

    def archs(self, n: int, seed: int = 0) -> list[Architecture]:
        """``n`` functionally distinct architectures of NB201."""
        rng = np.random.default_rng(seed)
        out: dict[str, Architecture] = {}
        while len(out) < n:
            a = self.space.sample(rng)
            out.setdefault(a.functional_hash(), a)
        return list(out.values())


def _traits(cls: type[Executor]) -> dict[str, bool | None]:
    caps = getattr(cls, "capabilities", None)
    out: dict[str, bool | None] = asdict(caps) if isinstance(caps, ExecutorCapabilities) else {}
    try:
        params = inspect.signature(cls).parameters
        out["timeout"] = "timeout_s" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    except (TypeError, ValueError):
        out["timeout"] = None
    return out


def run_all_jobs(ex: Executor, archs: list[Architecture], fidelity: float | None = None,
                 first: int = 0) -> dict[int, Completion]:
    """Submit every architecture (job numbers from ``first``) as soon as a slot is free, poll until all are
    done; checks that each completes once and that a poll's completions come in the order they finished."""
    pending = list(enumerate(archs, start=first))
    done: dict[int, Completion] = {}
    running = 0
    polls = 0
    while pending or running:
        while pending and ex.free_slots() > 0:
            n, a = pending.pop(0)
            ex.submit(Job(n, a, fidelity))
            running += 1
        expect(running > 0, f"free_slots() is {ex.free_slots()} with no job running")
        batch = ex.poll()
        polls += 1
        expect(polls < 10_000, "10000 polls and the jobs did not finish")
        expect(isinstance(batch, list), f"poll() returned {batch!r}, not a list")
        finished = [c.finished_at for c in batch]
        expect(finished == sorted(finished), f"poll() returned completions out of finishing order: {finished}")
        for c in batch:
            expect(isinstance(c, Completion), f"poll() returned {c!r}, not a Completion")
            expect(c.number not in done, f"job {c.number} completed twice")
            expect(first <= c.number < first + len(archs), f"poll() returned job {c.number}, never submitted")
            expect(c.finished_at >= c.started_at, f"job {c.number} finished ({c.finished_at}) before it started "
                                                  f"({c.started_at})")
            done[c.number] = c
            running -= 1
    return done


def _expect_ok(c: Completion, arch: Architecture) -> Mapping[str, float]:
    """The metrics of a job that must have succeeded with the expected value."""
    expect(c.failure is None and c.error is None and c.metrics is not None,
           f"job {c.number} failed ({c.failure}: {c.error})")
    assert c.metrics is not None
    expect(c.metrics["acc"] == expected_value(arch), f"job {c.number} gave acc={c.metrics['acc']}, "
                                                     f"expected {expected_value(arch)}")
    return c.metrics


# --- the rules ---------------------------------------------------------------------------------------------
def declares_name_and_capabilities(sub: ExecutorSubject) -> None:
    """The class has its own ``name`` (the registered one), ExecutorCapabilities, ``workers`` and ``timeout_s``."""
    name = getattr(sub.cls, "name", None)
    expect(isinstance(name, str) and name not in ("", "base"), f"the class needs its own name, has {name!r}")
    if sub.name is not None:
        expect(name == sub.name, f"registered as {sub.name!r} but its name is {name!r}")
    expect(isinstance(sub.capabilities, ExecutorCapabilities),
           f"capabilities must be an ExecutorCapabilities value, got {sub.capabilities!r}")
    ex = sub.make()
    expect(ex.workers == sub.workers, f"built with workers={sub.workers}, its workers is {ex.workers!r}")
    expect(ex.timeout_s is None or isinstance(ex.timeout_s, float), f"timeout_s is {ex.timeout_s!r}")


def every_job_completes_exactly_once(sub: ExecutorSubject) -> None:
    """12 jobs at fidelity 12, a third of them raising, each complete once, with the fidelity passed through."""
    archs = sub.archs(12)
    script = {str(a): "raise" for a in archs[::3]}
    ex = sub.make()
    ex.start(ScriptedEvaluator(script))
    done = run_all_jobs(ex, archs, fidelity=12)
    expect(sorted(done) == list(range(12)), f"completed jobs {sorted(done)}, submitted 0..11")
    for n, a in enumerate(archs):
        c = done[n]
        if str(a) in script:
            expect(c.metrics is None and c.failure == FAILURE_ERROR and "scripted failure" in (c.error or ""),
                   f"job {n} raised, but completed as {c}")
        else:
            fid = _expect_ok(c, a)["fid"]
            expect(fid == 12.0, f"job {n} was evaluated at fidelity {fid}, not 12")


def failures_complete_with_their_kind(sub: ExecutorSubject) -> None:
    """An evaluator that raises, returns NaN or inf, a non-mapping or a non-number completes as a failure of
    kind ``error`` or ``invalid`` with its reason; the executor goes on with later jobs."""
    archs = sub.archs(12)
    kinds = {"raise": (FAILURE_ERROR, "ValueError: scripted failure"), "nan": (FAILURE_INVALID, "not finite"),
             "inf": (FAILURE_INVALID, "not finite"), "list": (FAILURE_INVALID, "not a mapping"),
             "text": (FAILURE_INVALID, "not a number")}
    script = dict(zip((str(a) for a in archs[:10:2]), kinds))
    ex = sub.make()
    ex.start(ScriptedEvaluator(script))
    done = run_all_jobs(ex, archs[:10])
    for n, a in enumerate(archs[:10]):
        c = done[n]
        if str(a) in script:
            failure, text = kinds[script[str(a)]]
            expect(c.metrics is None and c.failure == failure and text in (c.error or ""),
                   f"job {n} ({script[str(a)]}) completed as failure={c.failure!r} error={c.error!r}, expected "
                   f"failure={failure!r} with {text!r}")
        else:
            _expect_ok(c, a)
    later = run_all_jobs(ex, archs[10:], first=10)
    for n, c in later.items():
        _expect_ok(c, archs[n])


def submit_poll_contract(sub: ExecutorSubject) -> None:
    """After ``start``, ``free_slots()`` is ``workers``; ``workers`` jobs are accepted at once, leaving none
    free; ``poll()`` with nothing running returns ``[]``; once all are done every slot is free again."""
    ex = sub.make()
    ex.start(ScriptedEvaluator())
    expect(ex.poll(timeout=0.1) == [], "poll() with no job running did not return []")
    expect(ex.free_slots() == sub.workers, f"free_slots() is {ex.free_slots()} after start, not workers="
                                           f"{sub.workers}")
    archs = sub.archs(sub.workers)
    for n, a in enumerate(archs):
        ex.submit(Job(n, a))
    expect(ex.free_slots() == 0, f"free_slots() is {ex.free_slots()} with {sub.workers} jobs submitted")
    done: dict[int, Completion] = {}
    for _ in range(10_000):
        if len(done) == len(archs):
            break
        for c in ex.poll():
            expect(c.number not in done, f"job {c.number} completed twice")
            done[c.number] = c
    expect(sorted(done) == list(range(len(archs))), f"completed {sorted(done)} of {len(archs)} jobs")
    for n, a in enumerate(archs):
        _expect_ok(done[n], a)
    expect(ex.free_slots() == sub.workers, f"free_slots() is {ex.free_slots()} once every job is done")
    expect(ex.poll(timeout=0.1) == [], "poll() after every job was returned did not return []")


def timeout_fails_the_job_and_the_executor_goes_on(sub: ExecutorSubject) -> None:
    """With ``timeout_s=1``, a job that sleeps 30 s completes as a ``timeout`` failure naming the limit, the
    jobs beside it and after it complete, and the process's SIGALRM handler is left as it was."""
    archs = sub.archs(6)
    ex = sub.make(timeout_s=TIMEOUT_S)
    expect(ex.timeout_s == TIMEOUT_S, f"built with timeout_s={TIMEOUT_S}, its timeout_s is {ex.timeout_s!r}")
    expect(ex.to_config().get("timeout_s") == TIMEOUT_S, "to_config() lost timeout_s")
    handler = signal.getsignal(signal.SIGALRM)
    ex.start(ScriptedEvaluator({str(archs[0]): "sleep"}))
    done = run_all_jobs(ex, archs[:3])
    c = done[0]
    expect(c.failure == FAILURE_TIMEOUT and c.metrics is None,
           f"the 30 s job completed as failure={c.failure!r} metrics={c.metrics}")
    expect("timed out after" in (c.error or "") and f"(timeout_s={TIMEOUT_S})" in (c.error or ""),
           f"the timeout's reason {c.error!r} does not say 'timed out after ... (timeout_s={TIMEOUT_S})'")
    if not sub.capabilities.real_time:
        took = c.finished_at - c.started_at
        expect(took == TIMEOUT_S, f"on a simulated clock the job should end timeout_s after it started, not {took}")
    for n in (1, 2):
        _expect_ok(done[n], archs[n])
    for n, c in run_all_jobs(ex, archs[3:], first=3).items():
        _expect_ok(c, archs[n])
    expect(signal.getsignal(signal.SIGALRM) == handler, "the SIGALRM handler was changed")


def settings_are_validated_and_round_trip(sub: ExecutorSubject) -> None:
    """Bad ``workers`` (and ``timeout_s``, when it takes one) raise ConfigError naming the setting (a serial
    executor refuses ``workers=2``); ``to_config()`` is JSON with the name and the settings, and builds an
    executor with the same config."""
    bad_workers = [0, -1, 1.5, True] + ([] if sub.capabilities.parallel else [2])
    for bad in bad_workers:
        try:
            sub.create(**{**sub.settings, "workers": bad})
        except ConfigError as e:
            expect("workers" in str(e), f"the error for workers={bad!r} does not name workers: {e}")
            continue
        raise AssertionError(f"workers={bad!r} did not raise ConfigError")
    if sub.traits().get("timeout"):
        bad_timeouts: tuple[Any, ...] = (0, -1.0, math.nan, math.inf, "1", True)
        for bad_timeout in bad_timeouts:
            try:
                sub.make(timeout_s=bad_timeout)
            except ConfigError as e:
                expect("timeout_s" in str(e), f"the error for timeout_s={bad_timeout!r} does not name timeout_s: {e}")
                continue
            raise AssertionError(f"timeout_s={bad_timeout!r} did not raise ConfigError")
    ex = sub.make(**({"timeout_s": 2} if sub.traits().get("timeout") else {}))
    cfg = ex.to_config()
    try:
        cfg = json.loads(json.dumps(cfg, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise AssertionError(f"to_config() is not strict JSON: {e}") from None
    expect(cfg.get("name") == sub.cls.name, f"to_config() names {cfg.get('name')!r}, not {sub.cls.name!r}")
    expect(cfg.get("workers") == sub.workers, f"to_config() has workers={cfg.get('workers')!r}")
    if sub.traits().get("timeout"):
        expect(cfg.get("timeout_s") == 2.0, f"to_config() has timeout_s={cfg.get('timeout_s')!r}, not 2.0")
    params = {k: v for k, v in cfg.items() if k != "name"}
    again = sub.create(**params)
    expect(again.to_config() == ex.to_config(), f"rebuilt from its config, to_config() is {again.to_config()} "
                                                f"instead of {ex.to_config()}")


def runs_jobs_in_other_processes(sub: ExecutorSubject) -> None:
    """Isolated: jobs run in processes other than the caller's."""
    archs = sub.archs(4)
    ex = sub.make()
    ex.start(ScriptedEvaluator())
    done = run_all_jobs(ex, archs)
    pids = {c.metrics["pid"] for c in done.values() if c.metrics}
    expect(len(pids) >= 1 and float(os.getpid()) not in pids, f"jobs ran in process(es) {sorted(pids)}, "
                                                               f"the caller is {os.getpid()}")


def killed_worker_fails_only_its_job(sub: ExecutorSubject) -> None:
    """Isolated: a job whose process is killed (SIGKILL) or exits completes as ``worker_died``; the jobs
    running beside it complete, and the executor goes on."""
    archs = sub.archs(7)
    script = {str(archs[1]): "sigkill", str(archs[4]): "exit"}
    ex = sub.make()
    ex.start(ScriptedEvaluator(script, sleep_s=0.3))  # each victim dies while another job runs
    done = run_all_jobs(ex, archs)
    for n, a in enumerate(archs):
        c = done[n]
        if str(a) in script:
            expect(c.metrics is None and c.failure == FAILURE_WORKER_DIED,
                   f"job {n} ({script[str(a)]}) completed as failure={c.failure!r} error={c.error!r}")
        else:
            _expect_ok(c, a)
    later = run_all_jobs(ex, archs[:2], first=7)
    _expect_ok(later[7], archs[0])
    expect(later[8].failure == FAILURE_WORKER_DIED, f"the killer job again completed as {later[8]}")


def simulated_clock_follows_durations(sub: ExecutorSubject) -> None:
    """Simulated clock: a job takes ``evaluator.duration(...)`` simulated seconds; jobs finish in the order of
    their simulated finishing times, and ``now()`` moves to the finishing time of what was polled."""
    archs = sub.archs(6)
    durations = {str(a): float(d) for a, d in zip(archs, (10, 14, 11, 3, 7, 5))}
    ex = sub.make()
    ex.start(ScriptedEvaluator(durations=durations))
    t0 = ex.now()
    done = run_all_jobs(ex, archs)
    for n, a in enumerate(archs):
        c = done[n]
        _expect_ok(c, a)
        expect(math.isclose(c.finished_at - c.started_at, durations[str(a)]),
               f"job {n} took {c.finished_at - c.started_at} simulated seconds, its duration is {durations[str(a)]}")
        expect(c.started_at >= t0, f"job {n} started at {c.started_at}, before the clock's {t0}")
    last = max(c.finished_at for c in done.values())
    expect(math.isclose(ex.now(), last), f"now() is {ex.now()} once every job is polled, not {last}")
    busy = sum(durations.values())
    expect(last - t0 <= busy + 1e-9, f"the jobs took {last - t0} simulated seconds, more than their {busy} total")
    if sub.workers > 1:
        expect(last - t0 < busy, f"{sub.workers} workers took the sum of the durations ({busy} s): no job overlapped")


RULES = (
    Rule("declares_name_and_capabilities", declares_name_and_capabilities),
    Rule("every_job_completes_exactly_once", every_job_completes_exactly_once),
    Rule("failures_complete_with_their_kind", failures_complete_with_their_kind),
    Rule("submit_poll_contract", submit_poll_contract),
    Rule("timeout_fails_the_job_and_the_executor_goes_on", timeout_fails_the_job_and_the_executor_goes_on,
         {"timeout": True}),
    Rule("settings_are_validated_and_round_trip", settings_are_validated_and_round_trip),
    Rule("runs_jobs_in_other_processes", runs_jobs_in_other_processes, {"isolated": True}),
    Rule("killed_worker_fails_only_its_job", killed_worker_fails_only_its_job, {"isolated": True}),
    Rule("simulated_clock_follows_durations", simulated_clock_follows_durations, {"real_time": False}),
)


def _static_traits(executor: type[Executor] | str) -> dict[str, bool | None]:
    cls = EXECUTORS.get(executor) if isinstance(executor, str) else executor
    return _traits(cls) if isinstance(cls, type) else {}


SUITE = register_suite(Suite("executor", RULES, ExecutorSubject, _static_traits))


def iter_executor_checks(executor: type[Executor] | str, **settings: Any) -> Iterator[tuple[str, Any]]:
    """``(rule name, check)`` for every rule that applies to ``executor`` (chosen by its capabilities and
    whether it takes ``timeout_s``); calling a check runs its rule (see :func:`check_executor`).

    Raises:
        UnknownNameError: no executor has that name. ConfigError: not an Executor subclass.
    """
    return iter_checks("executor", executor, settings)


def check_executor(executor: type[Executor] | str, **settings: Any) -> None:
    """Check an executor class (or registered name) against the submit/poll contract, rule by rule.

    Every rule builds fresh executors ``executor(workers=..., **settings)`` (``workers`` is 2 for a parallel
    executor, else 1, unless ``settings`` give it) and shuts them down afterwards. Jobs evaluate NB201
    architectures with :class:`ScriptedEvaluator`, which workers must be able to import (it lives in
    ``archscout.testing.executor``). The timeout rule takes a few seconds; the others well under a second
    per job.

    Args:
        executor: an :class:`~archscout.execution.Executor` subclass or the name it is registered under.
        settings: constructor settings used by every rule (e.g. ``address=`` of a Ray cluster).

    Raises:
        AssertionError: a rule is broken; the message names it, e.g.
            ``check_executor(process): rule killed_worker_fails_only_its_job: ...``.
        UnknownNameError: no executor has that name. ConfigError: not an Executor subclass.
    """
    run_all("executor", executor, settings)
