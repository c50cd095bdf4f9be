"""Executors beyond the shared contract: the simulated clock's schedule, the process pool's workers (dying,
unloadable evaluators, a killed driver), settings of particular executors. The contract every executor follows
(jobs complete once, failures complete with their kind, the submit/poll contract, timeouts, settings round trip,
isolated jobs) is ``archscout.testing.check_executor``, run over every registered executor in
``test_conformance.py``."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import archscout as asc
from archscout.execution import (
    FAILURE_ERROR,
    FAILURE_WORKER_DIED,
    Job,
    create_executor,
)
from archscout.testing import ScriptedEvaluator, expected_value

SPACE = asc.create_space("nb201")
TESTS = Path(__file__).resolve().parent
TIMEOUT_S = 1.0


def _score(arch):
    return float(sum(o != "none" for o in arch.values[0]))


class Evaluator:
    """Picklable evaluator: fails on cells whose first edge is 'none', crashes its process on request."""

    def __init__(self, die_on=None):
        self.die_on = die_on

    def evaluate(self, arch, fidelity=None):
        ops = arch.values[0]
        if self.die_on is not None and str(arch) == self.die_on:
            os._exit(3)  # a worker process that dies (as on SIGKILL or a segfault)
        if ops[0] == "none":
            raise ValueError("first edge is none")
        time.sleep(0.01)
        return {"acc": _score(arch), "fid": -1.0 if fidelity is None else float(fidelity)}

    def duration(self, arch, fidelity=None):
        return 10.0 + SPACE.params["cell"].ops.index(arch.values[0][1])


def _refuse_to_load():
    raise RuntimeError("this evaluator cannot be loaded here")


Scripted = ScriptedEvaluator  # scripted failures: raise, nan, sleep, sigkill, sigsegv, exit, ...


class Unloadable(Scripted):
    """Pickles fine, but cannot be unpickled (in a worker process)."""

    def __reduce__(self):
        return _refuse_to_load, ()


def _archs(n):
    return list(SPACE.enumerate())[:: 15625 // n][:n]


def _good_archs(n):
    return [a for a in _archs(3 * n) if a.values[0][0] != "none"][:n]


def _run_all(ex, archs, fidelity=None):
    """Submit every architecture as soon as a slot is free; return {number: completion}."""
    pending = list(enumerate(archs))
    done = {}
    running = 0
    while pending or running:
        while pending and ex.free_slots() > 0:
            n, a = pending.pop(0)
            ex.submit(Job(n, a, fidelity))
            running += 1
        batch = ex.poll()
        assert [c.finished_at for c in batch] == sorted(c.finished_at for c in batch)
        for c in batch:
            assert c.number not in done
            done[c.number] = c
            running -= 1
    return done


def test_simulated_clock_replays_parallel_schedule():
    ex = create_executor("simulated", workers=2)
    ex.start(Evaluator())
    a, b, c = [SPACE.parse(f"|nor_conv_3x3~0|+|{op}~0|none~1|+|none~0|none~1|none~2|")
               for op in ("none", "avg_pool_3x3", "skip_connect")]
    ex.submit(Job(0, a))  # 10 s
    ex.submit(Job(1, b))  # 14 s
    assert ex.free_slots() == 0
    first = ex.poll()[0]
    assert (first.number, first.finished_at) == (0, 10.0)
    ex.submit(Job(2, c))  # starts at 10, takes 11 -> 21
    second, third = ex.poll()[0], ex.poll()[0]
    assert (second.number, second.finished_at) == (1, 14.0)
    assert (third.number, third.started_at, third.finished_at) == (2, 10.0, 21.0)


def test_process_executor_runs_in_other_processes():
    study = asc.create_study(SPACE, objectives=["acc"], strategy="random", seed=0)
    study.optimize(EvaluatorWithPid(), budget=6, executor="process", workers=2)
    assert study.n_evaluated == 6
    pids = {t.metrics.get("pid") for t in study.trials if t.state == "complete"}
    assert os.getpid() not in pids and pids


class EvaluatorWithPid(Evaluator):
    def evaluate(self, arch, fidelity=None):
        out = super().evaluate(arch, fidelity)
        out["pid"] = float(os.getpid())
        return out


def test_dead_worker_fails_only_its_job_and_the_pool_goes_on():
    archs = _good_archs(9)
    modes = {str(archs[1]): "sigkill", str(archs[4]): "sigsegv", str(archs[7]): "exit"}
    ex = create_executor("process", workers=2)
    ex.start(Scripted(modes, sleep_s=0.3))  # each victim dies while another job runs
    try:
        done = _run_all(ex, archs)
        later = _run_all(ex, archs[:2])
    finally:
        ex.shutdown()
    expect = {1: "killed by SIGKILL", 4: "killed by SIGSEGV", 7: "exited with code 3"}
    for n in range(9):
        c = done[n]
        if n in expect:
            assert c.metrics is None and c.failure == FAILURE_WORKER_DIED, c
            assert "died while running this trial" in c.error and expect[n] in c.error
        else:
            assert c.failure is None and c.metrics["acc"] == expected_value(archs[n])
    assert later[0].metrics is not None and later[1].failure == FAILURE_WORKER_DIED


def test_dead_worker_with_one_worker():
    archs = _archs(6)
    victim = next(a for a in archs if a.values[0][0] != "none")
    ex = create_executor("process", workers=1)
    ex.start(Evaluator(die_on=str(victim)))
    results = {}
    for n, a in enumerate(archs):
        ex.submit(Job(n, a))
        for c in ex.poll():
            results[c.number] = c
    ex.shutdown()
    assert len(results) == 6
    dead = results[archs.index(victim)]
    assert dead.metrics is None and "died" in dead.error and dead.failure == FAILURE_WORKER_DIED
    assert any(c.metrics for c in results.values())


def test_evaluator_that_cannot_load_in_workers_fails_trials_not_the_pool():
    ex = create_executor("process", workers=1)
    ex.start(Unloadable())
    try:
        done = _run_all(ex, _good_archs(2))
    finally:
        ex.shutdown()
    assert all(c.failure == FAILURE_ERROR and "could not load the evaluator" in c.error and
               "cannot be loaded here" in c.error for c in done.values())


def test_unpicklable_evaluator_is_rejected_at_start():
    ex = create_executor("process", workers=1)
    with pytest.raises(asc.ConfigError, match="cannot be pickled"):
        ex.start(lambda arch: {"acc": 1.0})


_DRIVER = """
import sys, time
sys.path.insert(0, {tests!r})
from test_executors import Scripted, _good_archs
from archscout.execution import Job, create_executor
arch = _good_archs(1)[0]
ex = create_executor("process", workers=2)
ex.start(Scripted({{str(arch): "sleep"}}))
ex.submit(Job(0, arch))
print(" ".join(str(w.process.pid) for w in ex._slots), flush=True)
time.sleep(120)
"""


def _gone(pid):
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return True


def test_workers_exit_when_the_driver_is_killed():
    code = _DRIVER.format(tests=str(TESTS))
    driver = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in driver.stdout.readline().split()]
        assert len(pids) == 2 and not any(_gone(p) for p in pids)
    finally:
        driver.kill()
        driver.wait()
    end = time.monotonic() + 30
    while not all(_gone(p) for p in pids) and time.monotonic() < end:
        time.sleep(0.1)
    assert all(_gone(p) for p in pids)


def test_inline_timeout_needs_the_main_thread():
    errors = []

    def build():
        try:
            create_executor("inline", timeout_s=1.0)
        except asc.ConfigError as e:
            errors.append(str(e))

    t = threading.Thread(target=build)
    t.start()
    t.join()
    assert errors and "executor='process'" in errors[0]


def test_bad_workers():
    with pytest.raises(asc.ConfigError):
        create_executor("process", workers=0)
    with pytest.raises(asc.ConfigError):
        create_executor("inline", workers=2)
    with pytest.raises(asc.ConfigError):
        create_executor("process", start_method="teleport")
    with pytest.raises(asc.UnknownNameError):
        create_executor("slurm")


def test_ray_executor_is_registered_without_importing_ray():
    code = ("import sys; from archscout.execution import create_executor; "
            "ex = create_executor('ray', workers=2, timeout_s=5); assert 'ray' not in sys.modules; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
