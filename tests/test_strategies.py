"""Conformance suite: every registered strategy follows the ask/tell contract."""

import json
import math

import numpy as np
import pytest

import archscout as asc
from archscout.errors import ConfigError, SpaceExhaustedError
from archscout.results import Result
from archscout.strategies import list_strategies

from synthetic import OPT, SPACE, drive, score


@pytest.fixture(params=list_strategies())
def name(request):
    return request.param


def make(name, space=SPACE, **params):
    """A strategy; those that need several fidelities get their own rungs."""
    from archscout.strategies import STRATEGIES

    if STRATEGIES.get(name).capabilities.needs_fidelities:
        params.setdefault("fidelities", [12, 200])
    return asc.create_strategy(name, space, **params)


def test_registry_lists_required_strategies():
    assert {"random", "rea", "ls"} <= set(list_strategies())


def test_ask_returns_valid_candidates_with_increasing_ids(name):
    s = make(name, SPACE, seed=0)
    cands = drive(s, 40)
    assert [c.id for c in cands] == list(range(40))
    for c in cands:
        assert SPACE.validate(str(c.arch)) == c.arch


def test_same_seed_same_trajectory(name):
    a = [str(c.arch) for c in drive(make(name, SPACE, seed=7), 120)]
    b = [str(c.arch) for c in drive(make(name, SPACE, seed=7), 120)]
    c = [str(c.arch) for c in drive(make(name, SPACE, seed=8), 120)]
    assert a == b
    assert a != c


@pytest.mark.parametrize("batch", [1, 4])
def test_no_duplicate_functional_evaluations(name, batch):
    s = make(name, SPACE, seed=1)
    keys = [(c.arch.functional_hash(), c.fidelity) for c in drive(s, 400, batch=batch)]
    assert len(set(keys)) == len(keys)  # at most once per fidelity: a promotion is a new evaluation


def test_state_roundtrip_continues_identically(name):
    s = make(name, SPACE, seed=3)
    drive(s, 60)
    pending = [s.ask() for _ in range(3)]  # pending candidates are part of the state
    state = json.loads(json.dumps(s.state_dict()))  # JSON-safe
    t = make(name, SPACE, seed=999)
    t.load_state_dict(state)
    assert [c.id for c in t.pending] == [c.id for c in pending]
    for strat in (s, t):
        for c in pending:
            strat.tell(c, Result("complete", {"score": score(c.arch)}))
    assert [str(c.arch) for c in drive(s, 50)] == [str(c.arch) for c in drive(t, 50)]


def test_failed_and_foreign_results_are_accepted(name):
    s = make(name, SPACE, seed=0)
    c = s.ask()
    s.tell(c, Result("failed", {}, "boom"))
    foreign = asc.Candidate(10_000, SPACE.parse(OPT))
    s.tell(foreign, Result("complete", {"score": 9.0}))
    for _ in range(30):
        assert s.ask().arch.functional_hash() != foreign.arch.functional_hash()


def test_exhausts_small_space_then_raises(name):
    sp = asc.Space({"a": asc.Choice([1, 2, 3]), "b": asc.Ordinal([1, 2])})
    s = make(name, sp, seed=0)
    seen, asked = set(), set()
    with pytest.raises(SpaceExhaustedError):
        for _ in range(6 * 3):  # at most once per function and fidelity (two rungs for those with fidelities)
            c = s.ask()
            assert (c.arch, c.fidelity) not in asked
            asked.add((c.arch, c.fidelity))
            seen.add(c.arch)
            s.tell(c, Result("complete", {"score": float(c.arch["a"])}))
    assert len(seen) == 6


def test_bad_parameters(name):
    with pytest.raises(ConfigError):
        make(name, SPACE, seed=-1)
    with pytest.raises(ConfigError):
        make(name, SPACE, not_a_parameter=1)


def test_config_roundtrip(name):
    s = make(name, SPACE, seed=0)
    cfg = s.to_config()
    again = asc.create_strategy(cfg.pop("name"), SPACE, seed=0, **cfg)
    assert again.to_config() == s.to_config()


def test_single_objective_strategies_refuse_two_objectives():
    objs = [asc.Objective("acc", "max"), asc.Objective("latency_ms", "min")]
    with pytest.raises(ConfigError, match="one objective"):
        asc.create_strategy("rea", SPACE, objectives=objs)
    asc.create_strategy("random", SPACE, objectives=objs)


def test_rea_and_ls_beat_random_on_synthetic_objective():
    def best(name):
        return np.mean([max(score(c.arch) for c in drive(make(name, SPACE, seed=s), 150))
                        for s in range(5)])
    assert best("rea") > best("random")
    assert best("ls") > best("random")


def test_rea_parameters_validated():
    with pytest.raises(ConfigError, match="sample_size"):
        asc.create_strategy("rea", SPACE, population_size=5, sample_size=6)


def test_constraint_violation_scores_worst():
    s = asc.create_strategy("rea", SPACE, constraints=[asc.Constraint("lat", "<=", 1.0)])
    assert s.score(Result("complete", {"score": 5.0, "lat": 2.0})) == -math.inf
    assert s.score(Result("complete", {"score": 5.0, "lat": 0.5})) == 5.0
