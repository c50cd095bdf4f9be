"""Behaviour of the multi-agent RL strategy ``marl`` beyond the shared contract (which
``tests/test_conformance.py`` checks on the default space): conformance on a hardware-like space with several
parameters and with user groups, group validation, learning, conditional spaces and state round trips."""

import json

import numpy as np
import pytest
from synthetic import SPACE as NB201
from synthetic import drive

import archscout as asc
from archscout.errors import ConfigError
from archscout.results import Candidate, Result
from archscout.strategies.marl import MultiAgent
from archscout.testing import check_strategy, iter_strategy_checks

SIZES = [4, 8, 16, 32, 64, 128]
OPTIONS: dict[str, list] = {"rows": SIZES, "cols": SIZES, "dataflow": ["os", "ws", "is"],
                            "sram": [16, 32, 64, 128, 256, 512]}
HW = asc.Space({n: asc.Choice(v) if n == "dataflow" else asc.Ordinal(v) for n, v in OPTIONS.items()})
# 648 designs: enough for the conformance rules' 200 distinct asks
GROUPS = [["rows", "cols"], ["dataflow", "sram"]]
_RNG = np.random.default_rng(0)
_TABLES = {n: _RNG.normal(size=len(v)) for n, v in OPTIONS.items()}


def separable(arch) -> float:
    """A synthetic objective over HW: a sum of one fixed random value per (parameter, option)."""
    return float(sum(_TABLES[n][v.index(arch[n])] for n, v in OPTIONS.items()))


OPTIMUM = float(sum(t.max() for t in _TABLES.values()))


def tell(s, values, score, cid):
    s.tell(Candidate(cid, s.space.make(values)), Result("complete", {"score": score}))


# --- the contract on other spaces and settings -----------------------------------------------------------
@pytest.mark.parametrize("params", [{}, {"split": "slot"}, {"algorithm": "reinforce", "learning_rate": 1.5}])
def test_conformance_on_a_hardware_space(params):
    check_strategy("marl", space=HW, **params)


def test_conformance_with_user_groups():
    # user groups name this space's parameters, so the rule that switches to a space of its own ("a", "b") is
    # checked with groups of that space
    for rule, check in iter_strategy_checks("marl", space=HW, groups=GROUPS, learning_rate=[4.0, 8.0]):
        if rule != "exhausts_a_small_space_then_raises":
            check()
    dict(iter_strategy_checks("marl", space=HW, groups=[["a"], ["b"]]))["exhausts_a_small_space_then_raises"]()


def test_conformance_with_split_slots_on_a_cell_space():
    check_strategy("marl", space=NB201, split="slot", algorithm="reinforce")


# --- groups and settings ---------------------------------------------------------------------------------
def test_default_agents_are_one_per_parameter_or_per_slot():
    s = MultiAgent(HW, seed=0)
    assert [a.params for a in s.agents] == [("rows",), ("cols",), ("dataflow",), ("sram",)]
    assert [a.slots for a in s.agents] == [(0,), (1,), (2,), (3,)]
    cell = MultiAgent(NB201, seed=0)
    assert len(cell.agents) == 1 and cell.agents[0].slots == tuple(range(6))  # a cell is one parameter
    edges = MultiAgent(NB201, seed=0, split="slot")
    assert [a.slots for a in edges.agents] == [(k,) for k in range(6)]  # one agent per edge
    grouped = MultiAgent(HW, seed=0, groups=[["sram", "rows"], ["cols", "dataflow"]], learning_rate=[1.0, 3.0])
    assert [(a.params, a.slots, a.learning_rate) for a in grouped.agents] == [
        (("sram", "rows"), (0, 3), 1.0), (("cols", "dataflow"), (1, 2), 3.0)]
    assert grouped.to_config()["groups"] == [["sram", "rows"], ["cols", "dataflow"]]


@pytest.mark.parametrize("groups, message", [
    ([["rows", "cols"], ["dataflow"]], r"parameters in no group \['sram'\]"),
    ([["rows", "cols"], ["cols", "dataflow", "sram"]], r"in more than one group \['cols'\]"),
    ([["rows", "cols", "banks"], ["dataflow", "sram"]], r"unknown parameters \['banks'\]"),
    ([["rows", "cols", "bank"], ["dataflow"]], r"unknown parameters \['bank'\]; .*no group \['sram'\]"),
    ([["rows", "cols"], [], ["dataflow", "sram"]], "non-empty list of parameter names"),
    (["rows", "cols", "dataflow", "sram"], "non-empty list of parameter names"),
    ([], "non-empty list of lists"),
])
def test_bad_groups_name_the_culprits(groups, message):
    with pytest.raises(ConfigError, match=message):
        asc.create_strategy("marl", HW, groups=groups)


@pytest.mark.parametrize("params, message", [
    ({"algorithm": "a2c"}, "algorithm"), ({"split": "edge"}, "split"), ({"learning_rate": 0}, "learning_rate"),
    ({"learning_rate": [1.0, 2.0]}, "one per agent"), ({"groups": GROUPS, "learning_rate": [1.0, -1.0]},
                                                       r"learning_rate\[1\]"),
    ({"batch_size": 0}, "batch_size"), ({"epochs": 1.5}, "epochs"), ({"clip": 1.0}, "clip"),
    ({"entropy_weight": -0.1}, "entropy_weight"), ({"epsilon": 1.2}, "epsilon"),
    ({"baseline_decay": 1.0}, "baseline_decay"), ({"groups": GROUPS, "split": "slot"}, "split='slot'"),
])
def test_bad_settings_raise_config_error(params, message):
    with pytest.raises(ConfigError, match=message):
        asc.create_strategy("marl", HW, **params)


def test_refuses_two_objectives_like_reinforce():
    with pytest.raises(ConfigError, match="one objective"):
        asc.create_strategy("marl", HW, objectives=[asc.Objective("a"), asc.Objective("b", "min")])


# --- learning --------------------------------------------------------------------------------------------
def _mean_best(name, budget, seeds=range(10), **params):
    return np.mean([max(separable(c.arch) for c in drive(asc.create_strategy(name, HW, seed=s, **params),
                                                          budget, separable)) for s in seeds])


@pytest.mark.parametrize("params", [{}, {"algorithm": "reinforce"}, {"groups": GROUPS}])
def test_beats_random_search_on_a_separable_objective(params):
    # 40 of 648 designs: random search's best-so-far averages ~1.9 (the optimum is ~2.8); marl ~2.4-2.6
    assert _mean_best("marl", 40, **params) > _mean_best("random", 40) + 0.3


def test_each_agent_learns_its_own_parameter():
    # the agents whose parameter has a clear best option (ahead of the next by > 0.3; not "rows", whose two best
    # options are close, so that once the others converge dedup makes it try them all) put most mass on it
    clear = [n for n in HW.names if np.diff(np.sort(_TABLES[n])[-2:])[0] > 0.3]
    assert clear == ["cols", "dataflow", "sram"]
    for seed in range(3):
        s = MultiAgent(HW, seed=seed)
        drive(s, 60, separable)
        for agent in s.agents:
            (name,), (slot,) = agent.params, agent.slots
            if name in clear:
                best = int(np.argmax(_TABLES[name]))
                assert s.probabilities(slot)[best] > 0.4, (seed, name, s.probabilities(slot))


def test_ppo_update_moves_towards_a_good_action_and_clips():
    sp = asc.Space({"a": asc.Choice(["p", "q", "r"])})
    s = MultiAgent(sp, seed=0, learning_rate=0.1, batch_size=2, epochs=50, clip=0.2, entropy_weight=0.0)
    tell(s, {"a": "p"}, 0.0, 100)  # its own baseline: advantage 0
    np.testing.assert_allclose(s.probabilities(0), [1 / 3] * 3)
    tell(s, {"a": "q"}, 5.0, 101)  # rank reward 1 against a baseline of 0.5: a full batch, then 50 steps
    p = s.probabilities(0)
    assert p[1] > p[0] == pytest.approx(p[2])
    assert p[1] / (1 / 3) == pytest.approx(1.2, abs=0.05)  # the clipped ratio stops the update at 1 + clip


def test_an_agent_that_does_not_act_is_not_updated():
    sp = asc.Space({"kind": asc.Choice(["mlp", "conv"]), "kernel": asc.Choice([3, 5, 7], when={"kind": "conv"}),
                    "width": asc.Ordinal([16, 32, 64, 128])})
    s = MultiAgent(sp, seed=0, algorithm="reinforce", entropy_weight=0.0)
    kernel_slot = s.agents[1].slots[0]
    for cid, w in enumerate([16, 32, 64, 128]):
        tell(s, {"kind": "mlp", "width": w}, float(w), cid)  # the kernel agent never acts
    np.testing.assert_allclose(s.probabilities(kernel_slot), [1 / 3] * 3)
    assert s.state_dict()["state"]["baselines"][1] is None
    assert s.probabilities(s.agents[2].slots[0])[3] > 0.25
    mixed = asc.Space({**sp.params, "depth": asc.Int(1, 12), "lr": asc.Float(1e-4, 1e-1, log=True)})
    check_strategy("marl", space=mixed)  # conditional, integer and float parameters


# --- state -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("params", [{}, {"groups": GROUPS}, {"algorithm": "reinforce"}])
def test_state_round_trip_resumes_the_same_trajectory(params):
    s = asc.create_strategy("marl", HW, seed=4, **params)
    drive(s, 21, separable)  # mid-batch: the PPO buffers are part of the state
    pending = [s.ask() for _ in range(2)]
    state = json.loads(json.dumps(s.state_dict(), allow_nan=False))
    t = asc.create_strategy("marl", HW, seed=99, **params)
    t.load_state_dict(state)
    assert t.state_dict() == s.state_dict()
    for strat in (s, t):
        for c in pending:
            strat.tell(c, Result("complete", {"score": separable(c.arch)}))
    assert [str(c.arch) for c in drive(s, 30, separable)] == [str(c.arch) for c in drive(t, 30, separable)]
    with pytest.raises(ConfigError, match="does not match"):
        asc.create_strategy("marl", HW, seed=0, split="slot", groups=None).load_state_dict(
            asc.create_strategy("marl", NB201, seed=0).state_dict())
