"""Every registered component passes the conformance checks that archscout ships (``archscout.testing``): every
strategy, executor, storage backend and cost model, one test per component and rule, so a newly registered one is
checked without anyone adding a test. Deliberately broken components show that the checks catch what they claim
to, with a message that names the broken rule."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

import archscout as asc
from archscout.errors import DataError
from archscout.execution import Completion, Executor, ExecutorCapabilities, InlineExecutor, list_executors
from archscout.hardware import CostModel, list_cost_models
from archscout.storage import list_storages
from archscout.strategies import RandomSearch, list_strategies
from archscout.testing import (
    StepTimer,
    check_cost_model,
    check_executor,
    check_storage,
    check_strategy,
    iter_cost_model_checks,
    iter_executor_checks,
    iter_strategy_checks,
    parametrize_with_checks,
)

NB201 = asc.create_space("nb201")
SMALL_NET = {"builder": "nb201", "C": 4, "N": 1, "input_shape": [3, 8, 8]}  # tiny NB201 networks on 8x8 inputs


def _torch_model(**settings):
    """Settings of a cost model that builds torch networks (skips without torch)."""
    pytest.importorskip("torch")
    return {"factory": SMALL_NET, "archs": NB201, **settings}


def _measured(**settings):
    """A measured model times with a fake clock (StepTimer), never with real time; so does its rebuilt copy."""
    return _torch_model(device="cpu-torch", warmup=1, repeats=3, timer=StepTimer(), config_overrides={
        "timer": StepTimer()}, **settings)


def _learned():
    rng = np.random.default_rng(0)
    train = [NB201.sample(rng) for _ in range(8)]
    pytest.importorskip("sklearn")
    return _torch_model(model="ridge", train={"space": NB201.to_config(), "archs": [str(a) for a in train],
                                              "latencies_ms": [1.0 + 0.5 * i for i in range(8)]})


# Example settings of every registered cost model (as scikit-learn keeps example parameters for its estimators):
# ``request -> settings`` for check_cost_model. A cost model registered without an entry here fails its checks.
COST_MODEL_SETTINGS = {
    "params": lambda request: _torch_model(),
    "flops": lambda request: _torch_model(),
    "peak_mem_mb": lambda request: _torch_model(),
    "measured-latency": lambda request: _measured(),
    "lut-latency": lambda request: _measured(),
    "learned-latency": lambda request: _learned(),
    "table-latency": lambda request: {"table": str(request.getfixturevalue("latency_table")), "column": "fpga_ms"},
    "table": lambda request: {"table": str(request.getfixturevalue("latency_table")), "column": "pixel3_ms",
                              "space": "nb201"},
    "systolic": lambda request: _torch_model(metric="latency_ms", accelerator={"rows": 8, "cols": 8, "dataflow": "ws"}),
    "proxy": lambda request: _proxy(request.getfixturevalue("tmp_path")),
}


def _proxy(tmp_path):
    """A proxy fitted (k-nearest neighbours, fast) to 40 accelerator designs with a synthetic cost, saved."""
    pytest.importorskip("sklearn")
    from archscout.hardware.proxy import fit_proxy

    space = asc.create_space("systolic")
    rng = np.random.default_rng(0)
    archs = list({space.sample(rng) for _ in range(40)})
    fit = fit_proxy([(a, float(a["rows"] * a["cols"] + a["bandwidth"])) for a in archs], "cycles", regressor="knn")
    return {"path": fit.model.save(tmp_path / "proxy.json"), "archs": space}


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray (2 CPUs) for the Ray checks of this module."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    if started:
        ray.shutdown()


# --- every registry entry, every rule ----------------------------------------------------------------------
@parametrize_with_checks("strategy", list_strategies())
def test_strategy(check):
    check()


@parametrize_with_checks("executor", list_executors())
def test_executor(check, request):
    if check.label == "ray":
        request.getfixturevalue("ray_session")
    check()


@parametrize_with_checks("storage", list_storages())
def test_storage(check, request):
    # memory and sqlite need no URL (sqlite: a temporary file per rule); PostgreSQL gets a fresh database
    # (skipped without a server, failed under ARCHSCOUT_REQUIRE_POSTGRES=1 as CI sets it)
    url = request.getfixturevalue("postgres_url") if check.label == "postgresql" else None
    check(url=url)


@parametrize_with_checks("cost_model", list_cost_models())
def test_cost_model(check, request):
    settings = COST_MODEL_SETTINGS.get(check.label)
    if settings is None:
        pytest.fail(f"cost model {check.label!r} has no example settings: add them to COST_MODEL_SETTINGS")
    check(**settings(request))


@pytest.mark.parametrize("test, names", [
    (test_strategy, list_strategies), (test_executor, list_executors), (test_storage, list_storages),
    (test_cost_model, list_cost_models),
], ids=["strategies", "executors", "storages", "cost_models"])
def test_every_registry_entry_is_checked(test, names):
    checks = [p.values[0] for mark in test.pytestmark if mark.name == "parametrize" for p in mark.args[1]]
    assert {c.label for c in checks} == set(names())
    per_entry = {}
    for c in checks:
        per_entry.setdefault(c.label, set()).add(c.rule)
    assert all(len(rules) >= 5 for rules in per_entry.values()), per_entry
    if test is test_cost_model:
        assert set(COST_MODEL_SETTINGS) == set(names())


def test_rules_are_chosen_by_capabilities():
    rules = {n: {r for r, _ in iter_strategy_checks(n)} for n in ("rea", "nsga2", "asha", "auto")}
    assert "refuses_two_objectives" in rules["rea"] and "handles_two_objectives" not in rules["rea"]
    assert "handles_two_objectives" in rules["nsga2"] and "refuses_two_objectives" not in rules["nsga2"]
    assert "asks_at_full_fidelity" in rules["rea"] and "asks_at_lower_fidelities" not in rules["rea"]
    assert {"asks_at_lower_fidelities", "refuses_to_ask_without_fidelities"} <= rules["asha"]
    assert "asks_at_lower_fidelities" in rules["auto"] and "refuses_to_ask_without_fidelities" not in rules["auto"]
    inline = {r for r, _ in iter_executor_checks("inline")}
    process = {r for r, _ in iter_executor_checks("process")}
    simulated = {r for r, _ in iter_executor_checks("simulated")}
    assert "killed_worker_fails_only_its_job" in process and "killed_worker_fails_only_its_job" not in inline
    assert "simulated_clock_follows_durations" in simulated - process
    from archscout.testing import iter_storage_checks

    assert "reopen_keeps_everything" in {r for r, _ in iter_storage_checks("sqlite")}
    assert "reopen_keeps_everything" not in {r for r, _ in iter_storage_checks("memory")}


# --- a component of one's own: a correct one passes, broken ones fail naming the rule -------------------------
class Greedy(asc.Strategy):
    """Mutates the best architecture so far (the guide's example, with its state)."""

    name = "test-greedy"

    def __init__(self, space, objectives=None, constraints=(), seed=None, dedup=True):
        super().__init__(space, objectives, constraints, seed, dedup)
        self.best = None

    def _propose(self):
        return self.space.sample(self.rng) if self.best is None else self.space.mutate(self.best[0], self.rng)

    def _observe(self, candidate, result):
        s = self.score(result)
        if s > -np.inf and (self.best is None or s > self.best[1]):
            self.best = (candidate.arch, s)

    def _state(self):
        return {"best": None if self.best is None else [str(self.best[0]), self.best[1]]}

    def _load_state(self, state):
        b = state["best"]
        self.best = None if b is None else (self.space.parse(b[0]), float(b[1]))


class Seedless(Greedy):
    """Broken: draws from fresh entropy, not from its seeded generator."""

    name = "test-seedless"

    def _propose(self):
        return self.space.sample(np.random.default_rng())


class Repeats(RandomSearch):
    """Broken: never asks whether a function was seen, and proposes from a pool of three."""

    name = "test-repeats"

    def is_seen(self, arch, fidelity=None):
        return False

    def _propose(self):
        return self.space.sample(np.random.default_rng(int(self.rng.integers(3))))


class SetState(Greedy):
    """Broken: its state holds a set, which is not JSON."""

    name = "test-set-state"

    def _state(self):
        return {"best": None, "tried": {1, 2}}


def test_a_correct_strategy_of_ones_own_passes():
    check_strategy(Greedy, space=NB201)


@pytest.mark.parametrize("cls, rule, text", [
    (Seedless, "same_seed_same_trajectory", "seed 7 twice gave different trajectories"),
    (Repeats, "no_duplicate_functions", r"one ask at a time: ask \d+ proposed .* again"),
    (SetState, "state_dict_round_trip_continues_identically", r"state_dict\(\) is not strict JSON"),
])
def test_a_broken_strategy_fails_naming_the_rule(cls, rule, text):
    with pytest.raises(AssertionError, match=rf"^check_strategy\({cls.name}\): rule {rule}: {text}"):
        dict(iter_strategy_checks(cls, space=NB201))[rule]()
    if cls is Seedless:  # the whole check stops at the first broken rule
        with pytest.raises(AssertionError, match=rf"rule {rule}"):
            check_strategy(cls)


class Unguarded(InlineExecutor):
    """Broken: lets the evaluator's exceptions out of ``submit`` instead of completing the job as failed."""

    name = "test-unguarded"

    def submit(self, job):
        t0 = time.time()
        metrics = dict(self.evaluator.evaluate(job.arch, job.fidelity))
        self.done.append(Completion(job.number, metrics, None, t0, time.time()))

    def start(self, evaluator):
        super().start(evaluator)
        self.done = []

    def poll(self, timeout=None):
        out, self.done = self.done, []
        return out

    def free_slots(self):
        return 0 if self.done else 1


class Forgetful(Executor):
    """Broken: ``to_config`` forgets its timeout."""

    name = "test-forgetful"
    capabilities = ExecutorCapabilities()

    def __init__(self, workers=1, timeout_s=None):
        self.inner = InlineExecutor(workers, timeout_s)
        self.workers, self.timeout_s = self.inner.workers, self.inner.timeout_s

    def start(self, evaluator):
        self.inner.start(evaluator)

    def submit(self, job):
        self.inner.submit(job)

    def poll(self, timeout=None):
        return self.inner.poll(timeout)

    def free_slots(self):
        return self.inner.free_slots()

    def to_config(self):
        return {"name": self.name, "workers": self.workers}


def test_broken_executors_fail_naming_the_rule():
    with pytest.raises(AssertionError, match=r"^check_executor\(test-unguarded\): rule "
                                             r"every_job_completes_exactly_once: raised ValueError: scripted failure"):
        check_executor(Unguarded)
    with pytest.raises(AssertionError, match=r"^check_executor\(test-forgetful\): rule "
                                             r"timeout_fails_the_job_and_the_executor_goes_on: to_config\(\) lost"):
        check_executor(Forgetful)
    checks = dict(iter_executor_checks(Forgetful))
    checks["every_job_completes_exactly_once"]()  # the rest of the contract holds
    with pytest.raises(AssertionError, match="settings_are_validated_and_round_trip"):
        checks["settings_are_validated_and_round_trip"]()


class KnownCells(CostModel):
    """A cost model of one's own: the number of convolutions of an NB201 cell, for the cells it knows."""

    name, unit, cheap = "test-known-cells", "convs", True

    def __init__(self, known=()):
        self.known = {str(a): float(sum(op.startswith("nor_conv") for op in NB201.parse(str(a)).values[0]))
                      for a in known}

    def predict(self, arch):
        try:
            return self.known[str(arch)]
        except KeyError:
            raise DataError(f"no value for {str(arch)!r}; pass it in known=") from None

    def to_config(self):
        return {"name": self.name, "known": sorted(self.known)}


class CarelessCells(KnownCells):
    """Broken: a plain KeyError for an architecture it does not know."""

    name = "test-careless-cells"

    def predict(self, arch):
        return self.known[str(arch)]


def test_cost_models_of_ones_own():
    archs = [NB201.sample(np.random.default_rng(i)) for i in range(4)]
    known = [str(a) for a in archs]
    check_cost_model(KnownCells, archs=archs, known=known)
    with pytest.raises(AssertionError, match=r"^check_cost_model\(test-careless-cells\): rule "
                                             r"uncostable_architecture_raises_archscout_error: predict .* raised "
                                             r"KeyError"):
        check_cost_model(CarelessCells, archs=archs, known=known)
    with pytest.raises(AssertionError, match=r"rule predicts_finite_floats: raised DataError"):
        dict(iter_cost_model_checks(KnownCells, archs=NB201, known=known))["predicts_finite_floats"]()


def test_check_settings_errors_are_config_errors():
    with pytest.raises(asc.ConfigError, match="needs url="):
        check_storage("postgresql")
    with pytest.raises(asc.ConfigError, match="Strategy subclass"):
        check_strategy(int)
    with pytest.raises(asc.UnknownNameError):
        check_executor("slurm")
    with pytest.raises(asc.ConfigError, match="archs="):
        check_cost_model(KnownCells)


def test_importing_the_checks_stays_light():
    code = ("import sys, archscout.testing\n"
            "print(sorted(m for m in ('pytest', 'torch', 'ray', 'psycopg', 'optuna', 'sklearn') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", (r.stdout, r.stderr)


def test_step_timer_is_a_deterministic_clock():
    t = StepTimer(2.0)
    assert [t(), t(), t()] == pytest.approx([0.002, 0.004, 0.006]) and t.reads == 3
    with pytest.raises(asc.ConfigError):
        StepTimer(0)
