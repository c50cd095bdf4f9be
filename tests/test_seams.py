"""The public seams: a hand-written ask/tell loop gets what ``optimize`` gets (budget shared by drivers, retries by
failure kind, heartbeats), strategies carry tokens and declare capabilities that studies enforce, and every kind
of component registers through a public function."""

from __future__ import annotations

import pytest

import archscout as asc
from archscout.errors import ConfigError, StorageError
from archscout.results import Proposal

SPACE = asc.create_space("nb201")


def acc(arch) -> dict[str, float]:
    ops = arch.values[0]
    return {"acc": 50.0 + 5 * sum(o.startswith("nor_conv") for o in ops) + int(arch.functional_hash()[:4], 16) / 65536}


# --- a hand-written loop -------------------------------------------------------------------------------------
def test_a_hand_written_loop_gets_retries_by_failure_kind():
    study = asc.create_study(SPACE, objectives=["acc"], strategy="random", seed=0)
    study.retries = asc.RetryPolicy(max_retries=2, on=("timeout",))
    first = study.ask()
    assert study.tell(first, error="took too long", failure="timeout").failure == "timeout"
    retry = study.ask()  # the retry comes first, as a trial of its own
    assert retry.number == first.number + 1 and retry.arch == first.arch
    assert study.tell(retry, error="boom", failure="error").failure == "error"  # not retried: kind not named
    other = study.ask()
    assert other.arch != first.arch
    study.tell(other, acc(other.arch))
    events = [e for e in study.storage.events(study.name) if e.kind == "ask"]
    assert events[1].payload["retry_of"] == first.number and events[1].payload["attempt"] == 2
    with pytest.raises(ConfigError, match="failure must be one of"):
        study.tell(study.ask(), error="x", failure="gremlins")


def test_a_hand_written_loop_shares_the_budget_with_other_drivers(tmp_path):
    db = str(tmp_path / "shared.db")
    a = asc.create_study(SPACE, objectives=["acc"], strategy="rea", storage=db, seed=0, name="s")
    b = asc.create_study(SPACE, objectives=["acc"], strategy="rea", storage=db, seed=0, name="s", load_if_exists=True)
    done = 0
    while True:
        progressed = False
        for s in (a, b):
            t = s.ask(budget=9)
            if t is not None:
                s.tell(t, acc(t.arch))
                done += 1
                progressed = True
        if not progressed:
            break
    a.refresh()
    assert done == 9 and a.n_evaluated == b.n_evaluated == 9
    assert a.ask(budget=9) is None and b.ask(budget=9) is None
    a.close(), b.close()


def test_driving_keeps_the_heartbeat_between_trials_and_detach_orphans_at_once(tmp_path):
    db = str(tmp_path / "beat.db")
    a = asc.create_study(SPACE, objectives=["acc"], strategy="random", storage=db, seed=0)
    with a.driving():
        t = a.ask()
        a.tell(t, acc(t.arch))
        assert a.driver in a.storage.drivers(a.name)  # nothing running, still beating inside the block
    assert a.driver not in a.storage.drivers(a.name)
    running = a.ask()
    assert a.driver in a.storage.drivers(a.name)
    a.detach()
    b = asc.load_study(db)
    assert [x.number for x in b.interrupted] == [running.number]
    a.close(), b.close()


def test_telling_twice_is_refused_and_a_taken_over_result_is_dropped(tmp_path):
    db = str(tmp_path / "twice.db")
    a = asc.create_study(SPACE, objectives=["acc"], strategy="random", storage=db, seed=0)
    t = a.ask()
    a.tell(t, acc(t.arch))
    with pytest.raises(ConfigError, match="told once"):
        a.tell(t, acc(t.arch))
    u = a.ask()
    a.detach()
    b = asc.load_study(db)
    b.optimize(acc, budget=2)  # b takes u over and finishes it
    with pytest.warns(UserWarning, match="taken over"):
        assert a.tell(u, acc(u.arch)) is None
    assert [e.kind for e in b.storage.events(b.name)].count("tell") == 2
    a.close(), b.close()


def test_ask_with_a_bad_budget():
    study = asc.create_study(SPACE, objectives=["acc"], strategy="random")
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="budget"):
            study.ask(budget=bad)


# --- the strategy contract -----------------------------------------------------------------------------------
class Tokens(asc.Strategy):
    """Proposes random architectures and remembers, through the token, which proposal a result belongs to."""

    name = "test-tokens"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.told_tokens: list[int] = []
        self.discarded = 0

    def _propose(self):
        return Proposal(self.space.sample(self.rng), token=int(self.rng.integers(1 << 30)))

    def _observe(self, candidate, result):
        self.told_tokens.append(candidate.token)

    def _discard(self, proposal):
        self.discarded += 1


def test_a_proposal_token_comes_back_with_its_candidate_and_its_result():
    s = Tokens(SPACE, seed=0)
    cands = [s.ask() for _ in range(5)]
    assert all(isinstance(c.token, int) for c in cands)
    for c in reversed(cands):
        s.tell(asc.Candidate(c.id, c.arch), asc.Result("complete", {"score": 1.0}))  # even told without the token
    assert s.told_tokens == [c.token for c in reversed(cands)]
    restored = Tokens(SPACE, seed=1)
    pending = s.ask()
    restored.load_state_dict(s.state_dict())
    assert restored.pending[0].token == pending.token


def test_duplicates_are_discarded_then_the_one_fallback_finds_an_unseen_architecture():
    class Stuck(asc.Strategy):
        name = "test-stuck"

        def _propose(self):
            return self.space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")

    class StuckOnOne(asc.Strategy):
        name = "test-stuck-on-one"

        def _propose(self):
            return self.space.make({"a": 1})

    s = Stuck(SPACE, seed=0)
    first, second = s.ask(), s.ask()
    assert first.arch != second.arch  # the second came from the fallback
    t = StuckOnOne(asc.Space({"a": asc.Choice([1, 2])}), seed=0)
    assert {t.ask().arch["a"], t.ask().arch["a"]} == {1, 2}
    with pytest.raises(asc.SpaceExhaustedError):
        t.ask()


def test_capabilities_are_enforced():
    class NoConstraints(asc.Strategy):
        name = "test-no-constraints"
        capabilities = asc.Capabilities(constraints=False)

        def _propose(self):
            return self.space.sample(self.rng)

    with pytest.raises(ConfigError, match="cannot honour constraints"):
        NoConstraints(SPACE, constraints=["latency_ms<=2"])
    with pytest.raises(ConfigError, match="optimises one objective"):
        asc.create_study(SPACE, objectives=["acc", ("latency_ms", "min")], strategy="rea")
    with pytest.raises(ConfigError, match="needs several fidelities"):
        asc.create_study(SPACE, objectives=["acc"], strategy="hyperband")
    study = asc.create_study(SPACE, objectives=["acc"], strategy="hyperband", fidelities=[12, 200])
    assert study.ask().fidelity == 12.0


def test_strategy_is_abstract():
    with pytest.raises(TypeError):
        asc.Strategy(SPACE)  # type: ignore[abstract]


# --- registries ----------------------------------------------------------------------------------------------
def test_register_strategy_makes_it_usable_by_name():
    from archscout.strategies import STRATEGIES

    class Greedy(Tokens):
        """Test strategy registered by the test suite."""

        name = "test-greedy-registered"

    try:
        asc.register_strategy(Greedy)
        study = asc.create_study(SPACE, objectives=["acc"], strategy="test-greedy-registered", seed=0)
        study.optimize(acc, budget=4)
        assert study.n_evaluated == 4 and "test-greedy-registered" in asc.list_strategies()
        with pytest.raises(ConfigError, match="already registered"):
            asc.register_strategy(Greedy)
    finally:
        STRATEGIES._factories.pop("test-greedy-registered", None)
    with pytest.raises(ConfigError, match="Strategy subclass"):
        asc.register_strategy(object)  # type: ignore[arg-type]


def test_register_space_device_executor_and_cost_model():
    from archscout.execution import EXECUTORS
    from archscout.hardware import COST_MODELS, DEVICES, CostModel, DeviceProfile, create_cost_model, create_device
    from archscout.space import SPACES

    @asc.register_space("test-tiny")
    def tiny(n: int = 2) -> asc.Space:
        return asc.Space({"a": asc.Choice(list(range(n)))}, name="test-tiny")

    class Width(CostModel):
        name, unit, cheap = "test-width", "", True

        def predict(self, arch):
            return float(arch["a"])

        def to_config(self):
            return {"name": self.name}

    try:
        assert asc.create_space("test-tiny", n=3).size() == 3
        assert asc.create_space("test-tiny").to_config() == {"name": "test-tiny"}  # stored by name
        asc.register_cost_model(Width)
        assert create_cost_model("test-width").predict(asc.create_space("test-tiny").make({"a": 1})) == 1.0
        asc.register_device("test-phone", DeviceProfile("test-phone", "measured", "a phone", runtime="torch"))
        assert create_device("test-phone").description == "a phone"
        with pytest.raises(ConfigError, match="already registered"):
            asc.register_space("test-tiny", tiny)
    finally:
        SPACES._factories.pop("test-tiny", None)
        COST_MODELS._factories.pop("test-width", None)
        DEVICES._factories.pop("test-phone", None)
    with pytest.raises(ConfigError, match="Executor subclass"):
        asc.register_executor(int)  # type: ignore[arg-type]
    assert "inline" in EXECUTORS.names()


def test_register_storage_by_scheme():
    from archscout.storage import STORAGES, InMemoryStorage

    shared = InMemoryStorage()

    @asc.register_storage("testmem")
    def open_it(url: str):
        return shared

    try:
        study = asc.create_study(SPACE, objectives=["acc"], strategy="random", storage="testmem://anything", seed=0)
        study.optimize(acc, budget=3)
        assert asc.load_study("testmem://x").n_evaluated == 3
        with pytest.raises(ConfigError, match="lowercase word"):
            asc.register_storage("Bad-Scheme", open_it)
    finally:
        STORAGES._factories.pop("testmem", None)
    with pytest.raises(StorageError, match="unsupported storage URL scheme 'testmem'"):
        asc.create_storage("testmem://x")


def test_top_level_names():
    for name in ("register_strategy", "register_space", "register_executor", "register_storage",
                 "register_cost_model", "register_device", "register_builder", "Capabilities", "Proposal",
                 "ExecutorCapabilities", "Storage", "CostModel", "cost_model_from_config"):
        assert getattr(asc, name) is not None, name


def test_load_study_rebuilds_the_stored_cost_models(tmp_path, latency_table):
    from archscout.hardware import create_cost_model

    db = str(tmp_path / "costs.db")
    lat = create_cost_model("table-latency", table=str(latency_table), column="pixel3_ms")
    study = asc.create_study(SPACE, objectives=["acc"], constraints=["lat<=1e9"], strategy="random", storage=db,
                             seed=0, cost_models={"lat": lat})
    study.optimize(acc, budget=3)
    study.close()
    again = asc.load_study(db, cost_models="stored")
    arch = again.trials[0].arch
    assert again.cost_models["lat"].predict(arch) == lat.predict(arch) == again.trials[0].metrics["lat"]
    again.optimize(acc, budget=5)
    assert all("lat" in t.metrics for t in again.trials)
    assert asc.load_study(db).cost_models == {}
    with pytest.raises(ConfigError, match="'stored'"):
        asc.load_study(db, cost_models="header")
