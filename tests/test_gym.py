"""archscout.gym: the two environment shapes, ArchGym's rewards, the records in a study, and the drivers."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

from gymnasium.utils.env_checker import check_env  # noqa: E402

import archscout as asc  # noqa: E402
from archscout.errors import ConfigError, InvalidArchitectureError, OptionalDependencyError  # noqa: E402
from archscout.gym import (  # noqa: E402
    DecisionEnv,
    DesignEnv,
    Reward,
    RewardError,
    map_action,
    run_random_agent,
    run_strategy,
)
from archscout.hardware import CostModel  # noqa: E402

SMALL = asc.Space({"a": asc.Choice(["x", "y", "z"]), "b": asc.Ordinal([4, 5])})
SPACES = {"nb201": asc.create_space("nb201"), "mbv3": asc.create_space("mbv3"), "small": SMALL}
ALL_SPACES = {**SPACES, "nbgraph": asc.create_space("nbgraph"), "transnas-macro": asc.create_space("transnas-macro")}
SHAPES: dict[str, type[DesignEnv] | type[DecisionEnv]] = {"design": DesignEnv, "decision": DecisionEnv}
REWARD = Reward("hinge", {"latency_ms": 3.0, "energy_mj": 6.0})


def synthetic(arch: asc.Architecture) -> dict[str, float]:
    """A cheap deterministic evaluator: two metrics that are functions of the one-hot encoding."""
    x = arch.encode("onehot")
    k = np.arange(1, len(x) + 1)
    return {"latency_ms": 1.0 + float((x * k).sum() % 5), "energy_mj": 1.0 + float((x * k * k).sum() % 9)}


class FakeLatency(CostModel):
    """A cost model that needs no network: latency from the architecture's string length."""

    name, unit = "fake_latency", "ms"

    def predict(self, arch: asc.Architecture) -> float:
        return 0.1 * len(str(arch))

    def to_config(self) -> dict:
        return {"name": self.name}


# --- environments pass gymnasium's checker ------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("space", SPACES)
def test_check_env(shape, space):
    env = SHAPES[shape](SPACES[space], synthetic, REWARD)
    check_env(env, skip_render_check=True)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()
    env.close()  # idempotent


@pytest.mark.parametrize("env_id", ["archscout/Design-v0", "archscout/Decision-v0"])
def test_gymnasium_make(env_id):
    env = gymnasium.make(env_id, space="nb201", evaluator=synthetic, reward=REWARD.to_config())
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    terminated = False
    while not terminated:
        obs, _reward, terminated, _truncated, info = env.step(env.action_space.sample())
    assert SPACES["nb201"].parse(info["arch"]) is not None
    env.close()


def test_design_env_step_and_observation():
    env = DesignEnv(SMALL, synthetic, REWARD, render_mode="ansi")
    assert env.render() == "no design evaluated yet\n"
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.tolist() == [0.0, 0.0] and info == {}
    arch = SMALL.make({"a": "y", "b": 5})
    obs, reward, terminated, truncated, info = env.step(env.action_of(arch))
    m = synthetic(arch)
    assert (terminated, truncated) == (True, False)
    assert info["arch"] == str(arch) and info["metrics"] == m and "error" not in info
    assert obs.tolist() == [m["latency_ms"], m["energy_mj"]]
    assert reward == REWARD(m) and info["met"] == REWARD.met(m)
    assert env.last_trial is not None and env.last_trial.number == 0
    assert env.study.trials[0].metrics["reward"] == reward
    text = env.render()
    assert text is not None and str(arch) in text
    # a repeated design is evaluated and recorded again
    env.step(env.action_of(arch))
    assert [str(t.arch) for t in env.study.trials] == [str(arch)] * 2


def test_decision_env_walk_mask_and_reward():
    env = DecisionEnv("nbgraph", synthetic, REWARD)
    with pytest.raises(gymnasium.error.ResetNeeded):
        env.step(0)
    obs, _ = env.reset(seed=0)
    assert obs["choices"].tolist() == [0] * env.n_slots
    rewards, steps, done = [], 0, False
    while not done:
        mask = obs["action_mask"]
        assert mask.dtype == np.int8 and mask.any()
        assert env.action_masks().tolist() == mask.astype(bool).tolist()
        slot = int(obs["slot"])
        # an action outside the allowed options is mapped onto them
        bad = [a for a in range(env.n_options) if not mask[a]]
        action = bad[0] if bad else 0
        obs, reward, done, _truncated, info = env.step(action)
        assert obs["choices"][slot] >= 1 and mask[obs["choices"][slot] - 1]
        rewards.append(reward)
        steps += 1
    assert all(r == 0.0 for r in rewards[:-1]) and int(obs["slot"]) == env.n_slots and not obs["action_mask"].any()
    assert rewards[-1] == REWARD(info["metrics"]) and len(env.study.trials) == 1
    with pytest.raises(gymnasium.error.ResetNeeded):
        env.step(0)


def test_map_action():
    assert map_action(3, 5, None) == 3 and map_action(7, 5, None) == 2
    assert map_action(2, 5, (0, 2, 4)) == 2 and map_action(1, 5, (0, 2, 4)) == 2 and map_action(3, 5, (0, 2, 4)) == 0


# --- actions and architectures --------------------------------------------------------------------------------
@pytest.mark.parametrize("space", ALL_SPACES)
def test_action_architecture_round_trip(space):
    sp = ALL_SPACES[space]
    design = DesignEnv(sp, synthetic, REWARD)
    decision = DecisionEnv(sp, synthetic, REWARD)
    rng = np.random.default_rng(0)
    for _ in range(40):
        arch = sp.sample(rng)
        action = design.action_of(arch)
        assert design.action_space.contains(action)
        assert design.arch_of(action) == arch
        assert design.action_of(str(arch)).tolist() == action.tolist()
    for _ in range(5):  # the same choices, one step at a time, build the same architecture
        arch = sp.sample(rng)
        action = design.action_of(arch)
        obs, _ = decision.reset()
        done = False
        while not done:
            obs, _r, done, _t, info = decision.step(int(action[int(obs["slot"])]))
        assert info["arch"] == str(arch)
    design.action_space.seed(0)
    for _ in range(20):  # every action is a valid architecture (masked steps included)
        a = design.arch_of(design.action_space.sample())
        assert sp.validate(str(a)) == a


def test_arch_of_and_action_of_refuse_bad_input():
    env = DesignEnv(SMALL, synthetic, REWARD)
    with pytest.raises(InvalidArchitectureError, match="shape"):
        env.arch_of([0, 1, 2])
    with pytest.raises(InvalidArchitectureError, match="integer"):
        env.arch_of([0.5, 1.0])
    with pytest.raises(InvalidArchitectureError):
        env.action_of("a=w; b=4")
    floats = DesignEnv(asc.Space({"lr": asc.Float(0.1, 1.0), "b": asc.Choice(["p", "q"])}), synthetic, REWARD)
    with pytest.raises(InvalidArchitectureError, match="outside"):
        floats.action_of(floats.space.make({"lr": 0.123456789, "b": "p"}))
    with pytest.raises(ConfigError, match="grid or a sample"):
        run_strategy(floats, "random", 2)


# --- rewards ------------------------------------------------------------------------------------------------
def test_distance_reward():
    r = Reward("distance", {"power": 2.0, "latency": 4.0})
    assert r({"power": 3.0, "latency": 5.0}) == pytest.approx(8.0)  # (2/1) * (4/1)
    assert r({"power": 102.0, "latency": 5.0}) == pytest.approx(0.08)  # (2/100) * (4/1)
    assert r({"power": 1.0, "latency": 3.0}) == pytest.approx(8.0)  # either side of the target
    assert r({"power": 2.0, "latency": 9.0}) == 1e3  # on target: capped (DRAMGym's reward_cap)
    assert Reward("distance", {"p": 2.0}, cap=5.0)({"p": 2.1}) == 5.0
    assert Reward("distance", {"p": 2.0, "l": 4.0}, weights={"p": 2})({"p": 3.0, "l": 5.0}) == pytest.approx(16.0)
    assert r.fail_reward == 0.0


def test_hinge_reward():
    r = Reward("hinge", {"latency": 2.0, "acc": 0.9}, directions={"acc": "max"})
    assert r({"latency": 3.0, "acc": 0.8}) == pytest.approx(-(0.5 + 0.1 / 0.9))
    assert not r.met({"latency": 3.0, "acc": 0.8})
    assert r({"latency": 1.0, "acc": 0.95}) == 0.0 and r.met({"latency": 1.0, "acc": 0.95})
    assert r({"latency": 2.0, "acc": 0.9}) == 0.0 and r.met({"latency": 2.0, "acc": 0.9})
    w = Reward("hinge", {"latency": 2.0, "acc": 0.9}, directions={"acc": "max"}, weights={"latency": 2})
    assert w({"latency": 3.0, "acc": 0.8}) == pytest.approx(-(1.0 + 0.1 / 0.9))
    assert r.fail_reward == -1000.0 and w.fail_reward == -1500.0  # TimeloopGym's 500 per target, negated


def test_reciprocal_reward():
    assert Reward("reciprocal", {"latency": 1.0})({"latency": 4.0}) == pytest.approx(0.25)
    edp = Reward("reciprocal", {"latency": 1.0, "energy": 1.0})
    assert edp({"latency": 4.0, "energy": 5.0}) == pytest.approx(1 / 20)
    mixed = Reward("reciprocal", {"acc": 0.5, "latency": 2.0}, directions={"acc": "max"})
    assert mixed({"acc": 0.8, "latency": 4.0}) == pytest.approx(0.2)
    assert mixed.met({"acc": 0.8, "latency": 2.0}) and not mixed.met({"acc": 0.8, "latency": 4.0})
    assert edp.fail_reward == -1.0  # MaestroGym's failure value
    with pytest.raises(RewardError, match="positive"):
        edp({"latency": 0.0, "energy": 5.0})
    with pytest.raises(RewardError, match="positive"):
        edp({"latency": 2.0, "energy": -1.0})


def test_reward_config_round_trip_and_metrics_order():
    r = Reward("hinge", {"b": 1.0, "a": 2.0}, directions={"a": "max"}, weights={"b": 3.0}, fail_reward=-7)
    assert r.metrics == ("b", "a")
    again = Reward.from_config(r.to_config())
    assert again == r and again.to_config() == r.to_config()
    assert Reward.from_config({"kind": "reciprocal", "targets": {"x": 1}}).fail_reward == -1.0


@pytest.mark.parametrize("args, match", [
    (("best", {"x": 1.0}), "kind"),
    (("hinge", {}), "targets"),
    (("hinge", None), "targets"),
    (("distance", {"x": 0.0}), "cannot be 0"),
    (("hinge", {"x": math.nan}), "finite"),
    (("hinge", {"x": "fast"}), "number"),
    (("hinge", {" x": 1.0}), "names"),
])
def test_reward_refuses_bad_settings(args, match):
    with pytest.raises(ConfigError, match=match):
        Reward(*args)


def test_reward_refuses_bad_options():
    with pytest.raises(ConfigError, match="direction"):
        Reward("hinge", {"x": 1.0}, directions={"x": "down"})
    with pytest.raises(ConfigError, match="without a target"):
        Reward("hinge", {"x": 1.0}, directions={"y": "max"})
    with pytest.raises(ConfigError, match="without a target"):
        Reward("hinge", {"x": 1.0}, weights={"y": 1.0})
    with pytest.raises(ConfigError, match="> 0"):
        Reward("hinge", {"x": 1.0}, weights={"x": 0})
    with pytest.raises(ConfigError, match="cap"):
        Reward("distance", {"x": 1.0}, cap=0)
    with pytest.raises(ConfigError, match="unknown reward settings"):
        Reward.from_config({"kind": "hinge", "targets": {"x": 1.0}, "tagets": {}})
    r = Reward("hinge", {"x": 1.0})
    with pytest.raises(RewardError, match="missing"):
        r({"y": 1.0})
    with pytest.raises(RewardError, match="finite"):
        r.met({"x": math.inf})


# --- evaluators, failures, records ------------------------------------------------------------------------------
def test_cost_model_evaluators():
    env = DesignEnv(SMALL, FakeLatency(), Reward("reciprocal", {"fake_latency": 1.0}))
    _o, reward, _t, _tr, info = env.step(np.array([0, 1]))
    assert info["metrics"] == {"fake_latency": pytest.approx(0.1 * len("a=x; b=5"))}
    assert reward == pytest.approx(1 / info["metrics"]["fake_latency"])
    two = DesignEnv(SMALL, {"latency_ms": FakeLatency(), "energy_mj": FakeLatency()}, REWARD)
    _o, _r, _t, _tr, info = two.step(np.array([2, 0]))
    assert set(info["metrics"]) == {"latency_ms", "energy_mj"}

    class Evaluator:
        def evaluate(self, arch, fidelity=None):
            assert fidelity is None
            return synthetic(arch)

    _o, _r, _t, _tr, info = DesignEnv(SMALL, Evaluator(), REWARD).step(np.array([1, 1]))
    assert info["metrics"] == synthetic(SMALL.make({"a": "y", "b": 5}))


@pytest.mark.parametrize("bad", [42, {"latency_ms": 3}, {}])
def test_env_refuses_bad_evaluators(bad):
    with pytest.raises(ConfigError, match="evaluator|cost model|mapping"):
        DesignEnv(SMALL, bad, REWARD)


def test_env_refuses_bad_settings():
    with pytest.raises(ConfigError, match="reward"):
        DesignEnv(SMALL, synthetic, "hinge")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="render_mode"):
        DesignEnv(SMALL, synthetic, REWARD, render_mode="human")
    with pytest.raises(ConfigError, match="named 'reward'"):
        DesignEnv(SMALL, synthetic, Reward("hinge", {"reward": 1.0}))
    with pytest.raises(ConfigError, match="single architecture"):
        DesignEnv(asc.Space({"a": asc.Choice(["x"])}), synthetic, REWARD)
    with pytest.raises(ConfigError, match="space"):
        DecisionEnv(42, synthetic, REWARD)  # type: ignore[arg-type]


def test_failing_evaluation_is_recorded_and_the_env_keeps_working():
    def flaky(arch):
        if arch["a"] == "z":
            raise RuntimeError("simulator crashed")
        if arch["a"] == "y":
            return {"latency_ms": 2.0}  # energy_mj missing
        return synthetic(arch)

    env = DesignEnv(SMALL, flaky, REWARD)
    env.reset(seed=0)
    obs, reward, terminated, _t, info = env.step(np.array([2, 0]))
    assert "simulator crashed" in info["error"] and reward == REWARD.fail_reward == -1000.0
    assert obs.tolist() == [0.0, 0.0] and terminated and not info["met"]
    _o, reward, _t, _tr, info = env.step(np.array([1, 0]))
    assert "energy_mj" in info["error"] and "missing" in info["error"] and reward == -1000.0
    _o, reward, _t, _tr, info = env.step(np.array([0, 0]))
    assert "error" not in info and reward == REWARD(synthetic(SMALL.make({"a": "x", "b": 4})))
    states = [t.state for t in env.study.trials]
    assert states == ["failed", "failed", "complete"]
    assert "simulator crashed" in env.study.trials[0].error
    assert env.study.trials[0].metrics["reward"] == -1000.0
    # a DecisionEnv too, and non-finite metrics fail the design
    denv = DecisionEnv(SMALL, lambda arch: {"latency_ms": math.nan, "energy_mj": 1.0}, REWARD)
    records = run_random_agent(denv, 2, seed=0)
    assert all("not finite" in r["error"] and r["reward"] == -1000.0 for r in records)


def test_random_agent_and_strategy_records_land_in_sqlite(tmp_path):
    path = str(tmp_path / "gym.db")
    env = DesignEnv("nb201", synthetic, REWARD, storage=path, study_name="design")
    records = run_strategy(env, {"name": "rea", "population_size": 4, "sample_size": 2}, 12, seed=0)
    records += run_random_agent(env, 3, seed=1)
    env.close()
    assert [r["trial"] for r in records] == list(range(15))
    study = asc.load_study(path, name="design")
    assert len(study.trials) == 15
    assert study.config["metadata"]["gym"]["env"] == "design"
    assert Reward.from_config(study.config["metadata"]["gym"]["reward"]) == REWARD
    for r, t in zip(records, study.trials):
        assert t.state == "complete" and str(t.arch) == r["arch"]
        assert t.metrics["reward"] == pytest.approx(r["reward"]) and set(t.metrics) >= {"latency_ms", "energy_mj"}
        assert r["met"] == REWARD.met(t.metrics)
    assert study.best_trial is not None and study.best_trial.metrics["reward"] == max(r["reward"] for r in records)
    study.close()

    # the same storage and name is joined (a second run appends); other settings are refused
    again = DesignEnv("nb201", synthetic, REWARD, storage=f"sqlite:///{path}", study_name="design")
    run_random_agent(again, 2, seed=2)
    assert len(again.study.trials) == 17
    again.close()
    with pytest.raises(ConfigError, match="other settings"):
        DesignEnv("nb201", synthetic, Reward("distance", {"latency_ms": 3.0}), storage=path, study_name="design")

    denv = DecisionEnv("mbv3", synthetic, REWARD, storage=path, study_name="decision")
    recs = run_random_agent(denv, 4, seed=0)
    denv.close()
    study = asc.load_study(path, name="decision")
    assert len(study.trials) == 4 and [str(t.arch) for t in study.trials] == [r["arch"] for r in recs]
    assert all("reward" in t.metrics for t in study.trials)
    study.close()


def test_a_design_of_a_stopped_env_is_failed_not_replayed(tmp_path):
    path = str(tmp_path / "stale.db")
    env = DesignEnv(SMALL, synthetic, REWARD, storage=path)
    env.step(np.array([0, 0]))
    env.study.ask()  # a design whose environment stops before it is evaluated
    env.study.detach()
    again = DesignEnv(SMALL, synthetic, REWARD, storage=path)
    _o, _r, _t, _tr, info = again.step(np.array([1, 1]))
    assert info["arch"] == "a=y; b=5" and again.last_trial is not None and again.last_trial.number == 2
    assert [(t.state, t.failure) for t in again.study.trials] == [
        ("complete", None), ("failed", "driver_died"), ("complete", None)]
    again.close()


def test_run_strategy_with_a_strategy_object_and_exhaustion():
    env = DesignEnv(SMALL, synthetic, REWARD)
    strat = asc.create_strategy("random", SMALL, objectives=[asc.Objective("reward", "max")], seed=0)
    records = run_strategy(env, strat, 10)  # the space has 6 architectures
    assert len(records) == 6 and len({r["arch"] for r in records}) == 6
    assert strat.n_told == 6
    with pytest.raises(ConfigError, match="optimises"):
        run_strategy(env, asc.create_strategy("random", SMALL, seed=0), 2)
    with pytest.raises(ConfigError, match="another space"):
        run_strategy(env, asc.create_strategy("random", SPACES["nb201"], objectives=["reward"]), 2)
    with pytest.raises(ConfigError, match="budget"):
        run_strategy(env, "random", 0)
    with pytest.raises(ConfigError, match="DesignEnv"):
        run_strategy(DecisionEnv(SMALL, synthetic, REWARD), "random", 2)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="episodes"):
        run_random_agent(env, 0)


@pytest.mark.parametrize("shape", SHAPES)
def test_same_seed_same_trajectory(shape):
    def run(seed):
        return [(r["arch"], r["reward"]) for r in run_random_agent(SHAPES[shape]("mbv3", synthetic, REWARD), 6, seed)]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_strategy_runs_are_seeded():
    def run(seed):
        return [r["arch"] for r in run_strategy(DesignEnv("nb201", synthetic, REWARD), "rea", 8, seed=seed)]

    assert run(0) == run(0) and run(0) != run(1)


# --- imports ----------------------------------------------------------------------------------------------------
def test_import_archscout_does_not_import_gymnasium():
    code = "import sys, archscout; assert 'gymnasium' not in sys.modules, 'gymnasium imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_gymnasium_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "archscout.gym" or m.startswith("archscout.gym.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "gymnasium", None)
    with pytest.raises(OptionalDependencyError, match=r"pip install 'archscout\[gym\]'"):
        import archscout.gym  # noqa: F401
