"""The Ray executor on one local Ray (2 CPUs, a custom resource), shared by the whole module.

Requests no alive node can meet (``resources={"nonexistent": 1}``, a GPU on a CPU-only cluster) are
rejected with a ConfigError when the executor starts, rather than left pending forever."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import archscout as asc  # noqa: E402
from archscout.execution import FAILURE_TIMEOUT, FAILURE_WORKER_DIED, Job, RayExecutor  # noqa: E402

SPACE = asc.create_space("nb201")
TESTS = Path(__file__).resolve().parent


def _score(arch):
    return float(sum(o != "none" for o in arch.values[0]))


class Scripted:
    """Picklable evaluator: ``{str(arch): action}`` scripts the special cases; the others score ``_score``
    after ``sleep_s`` seconds and report the pid of the process that ran them."""

    def __init__(self, actions=None, sleep_s=0.0):
        self.actions = dict(actions or {})
        self.sleep_s = sleep_s

    def evaluate(self, arch, fidelity=None):
        action = self.actions.get(str(arch))
        if action == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if action == "sleep":
            time.sleep(30)
        if action == "stuck":  # deaf to the in-task timer, as an evaluation stuck in native code is
            signal.signal(signal.SIGALRM, signal.SIG_IGN)
            time.sleep(30)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        return {"acc": _score(arch), "pid": float(os.getpid())}


def _archs(n):
    return [a for a in list(SPACE.enumerate())[:: 15625 // (3 * n)] if a.values[0][0] != "none"][:n]


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, resources={"device_test": 2}, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, runtime_env={"env_vars": {"PYTHONPATH": str(TESTS)}})
    yield
    if started:
        ray.shutdown()


def _run_all(ex, archs):
    pending, done, running = list(enumerate(archs)), {}, 0
    while pending or running:
        while pending and ex.free_slots() > 0:
            n, a = pending.pop(0)
            ex.submit(Job(n, a))
            running += 1
        for c in ex.poll():
            assert c.number not in done
            done[c.number] = c
            running -= 1
    return done


def test_results_are_correct_and_run_in_ray_workers():
    archs = _archs(6)
    with RayExecutor(workers=2) as ex:
        ex.start(Scripted())
        assert ex.free_slots() == 2
        done = _run_all(ex, archs)
    assert sorted(done) == list(range(6))
    for n, a in enumerate(archs):
        assert done[n].failure is None and done[n].metrics["acc"] == _score(a)
        assert done[n].started_at <= done[n].finished_at
    assert os.getpid() not in {c.metrics["pid"] for c in done.values()}
    assert ray.is_initialized()  # this executor did not start Ray, so it leaves it running


def test_killed_worker_fails_only_its_trial():
    archs = _archs(6)
    with RayExecutor(workers=2) as ex:
        ex.start(Scripted({str(archs[1]): "sigkill"}, sleep_s=0.3))  # trial 0 runs while trial 1 dies
        done = _run_all(ex, archs)
        again = _run_all(ex, archs[2:4])
    victim = done[1]
    assert victim.metrics is None and victim.failure == FAILURE_WORKER_DIED and "died" in victim.error
    assert all(done[n].failure is None and done[n].metrics["acc"] == _score(archs[n]) for n in (0, 2, 3, 4, 5))
    assert all(c.failure is None for c in again.values())


def test_timeout_fails_the_trial_and_the_executor_goes_on():
    archs = _archs(4)
    with RayExecutor(workers=2, timeout_s=1.0) as ex:
        ex.start(Scripted({str(archs[0]): "sleep"}))
        done = _run_all(ex, archs)
    assert done[0].failure == FAILURE_TIMEOUT and "timed out after" in done[0].error
    assert "(timeout_s=1.0)" in done[0].error
    assert all(done[n].failure is None for n in (1, 2, 3))


def test_an_evaluation_deaf_to_the_timer_is_cancelled_by_the_driver():
    archs = _archs(3)
    with RayExecutor(workers=2, timeout_s=0.5) as ex:
        ex._grace_s = 0.5  # cancel 1 s after submission instead of 30.5 s
        ex.start(Scripted({str(archs[0]): "stuck"}))
        done = _run_all(ex, archs)
    assert done[0].failure == FAILURE_TIMEOUT and "cancelled" in done[0].error
    assert all(done[n].failure is None for n in (1, 2))


def test_custom_resources():
    archs = _archs(2)
    with RayExecutor(workers=2, resources={"device_test": 1}, num_cpus=0.5) as ex:
        ex.start(Scripted())
        assert all(c.failure is None for c in _run_all(ex, archs).values())
    for settings in ({"resources": {"nonexistent": 1}}, {"num_gpus": 1}, {"resources": {"device_test": 3}}):
        ex = RayExecutor(**settings)
        with pytest.raises(asc.ConfigError, match="no node of the Ray cluster"):
            ex.start(Scripted())
        assert ray.is_initialized()


def test_settings_are_checked_at_construction():
    for bad in ({"resources": {"device_test": -1}}, {"resources": ["device_test"]}, {"resources": {"CPU": 1}},
                {"num_cpus": -1}, {"num_gpus": float("nan")}, {"address": ""}, {"runtime_env": "pip"},
                {"workers": 0}, {"timeout_s": 0}):
        with pytest.raises(asc.ConfigError):
            RayExecutor(**bad)
    cfg = RayExecutor(workers=3, num_cpus=0.5, resources={"device_test": 1}, timeout_s=60).to_config()
    assert cfg == {"name": "ray", "workers": 3, "timeout_s": 60.0, "address": None, "num_cpus": 0.5,
                   "num_gpus": 0, "resources": {"device_test": 1}, "runtime_env": None}
    assert asc.create_executor(**cfg).to_config() == cfg


def test_a_study_runs_end_to_end_on_ray():
    study = asc.create_study(SPACE, objectives=["acc"], strategy="random", seed=0)
    finished = study.optimize(Scripted(), budget=8, executor=RayExecutor(workers=2))
    assert study.n_evaluated == 8 and len(finished) == 8
    assert all(t.state == "complete" and t.metrics["acc"] == _score(t.arch) for t in finished)


_OWN_RAY = """
import ray
import archscout as asc
from archscout.execution import RayExecutor
study = asc.create_study(asc.create_space("nb201"), objectives=["acc"], strategy="random", seed=0)
study.optimize(lambda arch: {"acc": 1.0}, budget=3, executor=RayExecutor(workers=1))
assert study.n_evaluated == 3 and not ray.is_initialized()
print("ok")
"""


def test_an_executor_that_starts_ray_stops_it():
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    r = subprocess.run([sys.executable, "-c", _OWN_RAY], capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]


_CLUSTER_CLIENT = """
import os, sys
import archscout as asc
from archscout.execution import RayExecutor

study = asc.create_study(asc.create_space("nb201"), objectives=["acc"], strategy="random", seed=0)
study.optimize(lambda arch: {"acc": float(os.getpid())}, budget=4, executor=RayExecutor(workers=2, address=sys.argv[1]))
assert study.n_evaluated == 4
assert all(t.metrics["acc"] != os.getpid() for t in study.trials)  # ran in the cluster's workers
print("ok")
"""


_CLUSTER_HOLDER = """
import sys
import ray

ctx = ray.init(num_cpus=2, include_dashboard=False)
print(ctx.address_info["gcs_address"], flush=True)
sys.stdin.read()  # until the test closes stdin
ray.shutdown()
"""


def test_a_study_runs_on_an_existing_cluster():
    """Another process holds a Ray cluster; a study runs on it through ``address=`` (and leaves it running)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    holder = subprocess.Popen([sys.executable, "-c", _CLUSTER_HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        address = holder.stdout.readline().strip()
        assert address, "the cluster did not start"
        r = subprocess.run([sys.executable, "-c", _CLUSTER_CLIENT, address], capture_output=True, text=True,
                           timeout=180, env=env)
        assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]
        assert holder.poll() is None  # the cluster is still up: the executor only disconnected
    finally:
        holder.stdin.close()
        holder.wait(timeout=120)
