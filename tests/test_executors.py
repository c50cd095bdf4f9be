"""Conformance suite: every executor honours the submit/poll contract."""

import os
import time

import pytest

import archscout as asc
from archscout.execution import Job, create_executor, list_executors

SPACE = asc.create_space("nb201")


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
        return {"acc": float(sum(o != "none" for o in ops)), "fid": -1.0 if fidelity is None else float(fidelity)}

    def duration(self, arch, fidelity=None):
        return 10.0 + SPACE.params["cell"].ops.index(arch.values[0][1])


def _archs(n):
    return list(SPACE.enumerate())[:: 15625 // n][:n]


@pytest.fixture(params=list_executors())
def executor(request):
    workers = 1 if request.param == "inline" else 2
    ex = create_executor(request.param, workers=workers)
    ex.start(Evaluator())
    yield ex
    ex.shutdown()


def test_every_job_completes_exactly_once(executor):
    archs = _archs(12)
    pending = list(enumerate(archs))
    done = {}
    running = 0
    while pending or running:
        while pending and executor.free_slots() > 0:
            n, a = pending.pop(0)
            executor.submit(Job(n, a, 12))
            running += 1
        for c in executor.poll():
            assert c.number not in done
            done[c.number] = c
            running -= 1
    assert sorted(done) == list(range(12))
    for n, a in enumerate(archs):
        c = done[n]
        if a.values[0][0] == "none":
            assert c.metrics is None and "first edge is none" in c.error
        else:
            assert c.error is None and c.metrics["fid"] == 12.0
        assert c.finished_at >= c.started_at


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


def test_dead_worker_fails_its_trial_and_the_study_goes_on():
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
    assert dead.metrics is None and "died" in dead.error
    assert any(c.metrics for c in results.values())


def test_bad_workers():
    with pytest.raises(asc.ConfigError):
        create_executor("process", workers=0)
    with pytest.raises(asc.ConfigError):
        create_executor("inline", workers=2)
    with pytest.raises(asc.UnknownNameError):
        create_executor("slurm")
