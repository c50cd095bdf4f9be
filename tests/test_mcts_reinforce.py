"""Behaviour of the MCTS and REINFORCE strategies and of the decision sequence they search."""

import json
import math

import numpy as np
import pytest
from synthetic import SPACE as NB201
from synthetic import drive
from synthetic import score as synthetic

import archscout as asc
from archscout.errors import ConfigError, SpaceExhaustedError
from archscout.results import Candidate, Result
from archscout.strategies.decisions import DecisionSpace, fit_ridge, normalized_scores

TINY = asc.Space({"a": asc.Choice([0, 1]), "b": asc.Choice([0, 1, 2])})


def tell_foreign(strategy, values, result, cid):
    strategy.tell(Candidate(cid, strategy.space.make(values)), result)


# --- search quality -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mcts", "reinforce"])
def test_beats_random_on_synthetic_objective(name):
    def best(strategy_name, n):
        return np.mean([max(synthetic(c.arch) for c in drive(asc.create_strategy(strategy_name, NB201, seed=s),
                                                             n, synthetic)) for s in range(5)])

    for n in (60, 150):
        assert best(name, n) > best("random", n) + 0.5


def test_reinforce_policy_learns_the_best_op():
    conv = NB201.params["cell"].ops.index("nor_conv_3x3")
    s = asc.create_strategy("reinforce", NB201, seed=0)
    before = np.mean([s.probabilities(slot)[conv] for slot in range(6)])

    def n_conv(arch):
        return sum(op == "nor_conv_3x3" for op in arch.values[0]) + 0.01 * synthetic(arch)

    drive(s, 100, n_conv)
    after = [s.probabilities(slot)[conv] for slot in range(6)]
    assert before == pytest.approx(0.2)
    assert min(after) > 0.3 and np.mean(after) > 0.45


def test_reinforce_update_is_the_policy_gradient():
    sp = asc.Space({"a": asc.Choice(["p", "q", "r"])})
    s = asc.create_strategy("reinforce", sp, seed=0, learning_rate=1.0, baseline_decay=0.5, entropy_weight=0.0)
    tell_foreign(s, {"a": "p"}, Result("complete", {"score": 0.0}), 100)  # first reward is its own baseline
    np.testing.assert_allclose(s.probabilities(0), [1 / 3] * 3)
    tell_foreign(s, {"a": "q"}, Result("complete", {"score": 5.0}), 101)  # reward 1, baseline 0.5
    z = np.array([-0.5 / 3, 0.5 * (1 - 1 / 3), -0.5 / 3])
    np.testing.assert_allclose(s.probabilities(0), np.exp(z) / np.exp(z).sum())
    tell_foreign(s, {"a": "r"}, Result("failed", {}, "crash"), 102)  # the worst reward lowers "r"
    p = s.probabilities(0)
    assert p[2] < p[0] < p[1]


# --- MCTS tree ------------------------------------------------------------------------------------------
def test_mcts_backs_up_visits_and_rank_values():
    s = asc.create_strategy("mcts", TINY, seed=0, constraints=[asc.Constraint("lat", "<=", 1.0)])
    tell_foreign(s, {"a": 0, "b": 0}, Result("complete", {"score": 1.0, "lat": 0.5}), 100)
    tell_foreign(s, {"a": 0, "b": 1}, Result("complete", {"score": 3.0, "lat": 0.5}), 101)
    tell_foreign(s, {"a": 1, "b": 2}, Result("complete", {"score": 2.0, "lat": 0.5}), 102)
    tell_foreign(s, {"a": 1, "b": 0}, Result("complete", {"score": 9.0, "lat": 5.0}), 103)  # infeasible
    # ranks: infeasible 0, 1.0 -> 1/3, 2.0 -> 2/3, 3.0 -> 1
    assert s.node_stats() == (4, pytest.approx(0.5))
    assert s.node_stats([0]) == (2, pytest.approx(2 / 3))
    assert s.node_stats([1]) == (2, pytest.approx(1 / 3))
    assert s.node_stats([0, 1]) == (1, pytest.approx(1.0))
    assert s.node_stats([1, 0]) == (1, pytest.approx(0.0))
    visits, value = s.node_stats([0, 2])
    assert visits == 0 and math.isnan(value)
    # the two unseen architectures come next, then the space is exhausted
    rest = {(c.arch["a"], c.arch["b"]) for c in (s.ask(), s.ask())}
    assert rest == {(0, 2), (1, 1)}
    with pytest.raises(SpaceExhaustedError):
        s.ask()


def test_mcts_pending_candidates_are_distinct_and_not_told_visits():
    s = asc.create_strategy("mcts", NB201, seed=2)
    drive(s, 30, synthetic)
    cands = [s.ask() for _ in range(8)]
    assert len({c.arch.functional_hash() for c in cands}) == 8
    assert s.node_stats()[0] == 30
    for c in cands:
        s.tell(c, Result("complete", {"score": synthetic(c.arch)}))
    assert s.node_stats()[0] == 38


def test_mcts_finds_the_last_unseen_architectures_of_a_subtree():
    sp = asc.Space({"a": asc.Choice(list(range(4))), "b": asc.Choice(list(range(4))), "c": asc.Ordinal([1, 2])})
    s = asc.create_strategy("mcts", sp, seed=0)
    every = [(a, b, c) for a in range(4) for b in range(4) for c in (1, 2)]
    left = {(1, 2, 2), (3, 0, 1)}
    for k, (a, b, c) in enumerate(v for v in every if v not in left):
        tell_foreign(s, {"a": a, "b": b, "c": c}, Result("complete", {"score": float(a + b + c)}), 1000 + k)
    got = set()
    for _ in range(2):
        arch = s.ask().arch
        got.add((arch["a"], arch["b"], arch["c"]))
    assert got == left
    with pytest.raises(SpaceExhaustedError):
        s.ask()


# --- parameters, spaces, state --------------------------------------------------------------------------
@pytest.mark.parametrize("name, params", [
    ("mcts", {"exploration": -0.1}),
    ("mcts", {"exploration": math.inf}),
    ("mcts", {"exploration": "big"}),
    ("mcts", {"value_model": "forest"}),
    ("mcts", {"rollouts": 0}),
    ("mcts", {"rollouts": True}),
    ("mcts", {"rollouts": 2.5}),
    ("reinforce", {"learning_rate": 0.0}),
    ("reinforce", {"learning_rate": math.nan}),
    ("reinforce", {"baseline_decay": 1.0}),
    ("reinforce", {"baseline_decay": -0.5}),
    ("reinforce", {"entropy_weight": -0.01}),
    ("reinforce", {"entropy_weight": None}),
])
def test_bad_parameters_raise_config_error(name, params):
    key = next(iter(params))
    with pytest.raises(ConfigError, match=key):
        asc.create_strategy(name, NB201, **params)


def _spaces():
    out = {n: asc.create_space(n) for n in asc.list_spaces()}
    out["conditional"] = asc.Space({
        "kind": asc.Choice(["conv", "mlp"]),
        "width": asc.Int(8, 64, step=8, when={"kind": "conv"}),
        "lr": asc.Float(1e-4, 1e-1, log=True, when={"kind": "mlp"}),
        "depth": asc.Ordinal([1, 2, 3]),
    })
    return out


SPACES = _spaces()


@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_decision_paths_round_trip(space_name):
    sp = SPACES[space_name]
    dec = DecisionSpace(sp)
    rng = np.random.default_rng(0)
    for _ in range(40):
        arch, steps = dec.run(lambda slot, n, allowed, st: rng.integers(n) if allowed is None
                              else allowed[rng.integers(len(allowed))])
        assert sp.validate(str(arch)) == arch
        again = dec.decode(arch)
        assert again is not None and [st[:2] for st in again] == [st[:2] for st in steps]
        assert all(dec.sizes[slot] > 1 and (allowed is None or i in allowed) for slot, i, allowed in steps)
        assert dec.features(steps).shape == (dec.n_features,)
    for _ in range(40):
        arch = sp.sample(rng)
        steps = dec.decode(arch)
        if steps is not None:  # floats off the grid have no path
            rebuilt, _ = dec.run(lambda slot, n, allowed, st, steps=steps: steps[len(st)][1])
            assert rebuilt == arch


@pytest.mark.parametrize("space_name", ["mbv3", "transnas-macro", "conditional"])
@pytest.mark.parametrize("name", ["mcts", "reinforce"])
def test_other_spaces_batches_and_state(space_name, name):
    sp = SPACES[space_name]

    def objective(arch):
        return int(arch.functional_hash()[:6], 16) / 16**6

    s = asc.create_strategy(name, sp, seed=4)
    told = drive(s, 30, objective, batch=3)
    pending = [s.ask() for _ in range(2)]
    t = asc.create_strategy(name, sp, seed=99)
    t.load_state_dict(json.loads(json.dumps(s.state_dict())))
    for strat in (s, t):
        for c in pending:
            strat.tell(c, Result("complete", {"score": objective(c.arch)}))
    a = [str(c.arch) for c in drive(s, 15, objective)]
    assert a == [str(c.arch) for c in drive(t, 15, objective)]
    hashes = [c.arch.functional_hash() for c in told + pending] + [sp.parse(x).functional_hash() for x in a]
    assert len(set(hashes)) == len(hashes)


def test_normalized_scores():
    np.testing.assert_allclose(normalized_scores([3.0, -math.inf, 1.0, 3.0]), [5 / 6, 0.0, 1 / 3, 5 / 6])
    np.testing.assert_allclose(normalized_scores([7.0]), [0.5])
    np.testing.assert_allclose(normalized_scores([2.0, -math.inf, 4.0], "minmax"), [0.0, 0.0, 1.0])


def test_fit_ridge_matches_scikit_learn():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    for n, d in ((40, 12), (8, 30)):  # primal and dual forms
        x = (rng.random((n, d)) < 0.3).astype(float)
        y = rng.random(n)
        coef, intercept = fit_ridge(x, y, alpha=0.7)
        ref = Ridge(alpha=0.7).fit(x, y)
        np.testing.assert_allclose(coef, ref.coef_, atol=1e-8)
        assert intercept == pytest.approx(ref.intercept_)
