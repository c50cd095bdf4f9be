"""Model-based strategies (smbo, bananas, pge, mobo) and auto: behaviour beyond the conformance suite."""

import math

import numpy as np
import pytest

import archscout as asc
from archscout.errors import ConfigError
from archscout.results import Result
from archscout.strategies.surrogate import IncrementalGP, candidate_pool, features, normal_scores

from synthetic import SPACE, drive, score


def best(s, n, f=score) -> float:
    """Best objective value after driving ``s`` for ``n`` results of ``f``."""
    return max(f(c.arch) for c in drive(s, n, f))


def test_incremental_gp_equals_the_batch_posterior():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = rng.normal(size=20)
    gp = IncrementalGP(degree=3, noise=0.1, pool=x)
    for i in range(20):
        gp.add(x[i])
    mu, sd = gp.predict_pool(y)
    k = ((1 + x @ x.T) / 2) ** 3
    kinv = np.linalg.inv(k[:20, :20] + 0.1 * np.eye(20))
    mu_ref = k[:, :20] @ kinv @ y
    var_ref = 1 - np.einsum("ij,jk,ik->i", k[:, :20], kinv, k[:, :20])
    assert np.allclose(mu, mu_ref, atol=1e-8)
    assert np.allclose(sd, np.sqrt(np.maximum(var_ref, 1e-12)), atol=1e-6)
    mu2, sd2 = gp.predict(x[20:], y)  # the dynamic path agrees with the pool path
    assert np.allclose(mu2, mu[20:], atol=1e-8) and np.allclose(sd2, sd[20:], atol=1e-6)


def test_normal_scores_are_rank_based_with_failures_lowest():
    z = normal_scores(np.array([3.0, -math.inf, 1.0, 1.0, 10.0]))
    assert z[1] < z[2] == z[3] < z[0] < z[4]
    assert np.allclose(normal_scores(np.array([1.0, 2.0, 3.0])), normal_scores(np.array([10.0, 200.0, 3000.0])))


def test_functional_encoding_merges_equivalent_paths():
    # a direct skip 0->3 and a skip-skip route 0->2->3 give the same identity path
    a = SPACE.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
    b = SPACE.parse("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|nor_conv_3x3~1|skip_connect~2|")
    assert np.array_equal(SPACE.encode(a, "functional"), SPACE.encode(b, "functional"))
    assert not np.array_equal(SPACE.encode(a, "onehot"), SPACE.encode(b, "onehot"))
    f = features(SPACE, [a, b])
    assert np.allclose(np.linalg.norm(f, axis=1), 1.0)


def test_pool_is_one_architecture_per_functional_class():
    pool = candidate_pool(SPACE, 100_000)
    assert len(pool) == 6466 and len(set(pool.hashes)) == 6466
    assert len(candidate_pool(asc.create_space("nb201", hash_rule="none"), 100_000)) == 15625
    assert candidate_pool(asc.create_space("mbv3"), 100_000) is None


@pytest.mark.parametrize("name", ["smbo", "bananas", "pge", "mcts", "reinforce"])
def test_beats_random_on_the_synthetic_objective(name):
    def mean_best(strategy):
        return np.mean([best(asc.create_strategy(strategy, SPACE, seed=s), 60) for s in range(4)])
    assert mean_best(name) > mean_best("random")


def test_smbo_random_forest_and_dynamic_pool():
    s = asc.create_strategy("smbo", SPACE, seed=0, surrogate="rf", n_trees=10)
    assert best(s, 20) > 0
    s = asc.create_strategy("smbo", asc.create_space("mbv3"), seed=0, n_init=5, pool_size=50)
    assert best(s, 15, f=lambda a: float(a["width_mult"])) == 1.2  # a non-enumerable space: mutation pool


@pytest.mark.parametrize("bad", [{"surrogate": "svm"}, {"beta": -1}, {"degree": 0}, {"noise": 0},
                                 {"n_init": 0}])
def test_smbo_bad_parameters(bad):
    with pytest.raises(ConfigError):
        asc.create_strategy("smbo", SPACE, **bad)


def test_pge_prior_ranks_initial_candidates_by_the_free_statistic():
    class Convs:
        cheap = True

        def predict(self, arch):
            return 1.0 + sum(op.startswith("nor_conv") for op in arch.values[0])

    s = asc.create_strategy("pge", SPACE, seed=0, prior="convs")
    s.attach(cost_models={"convs": Convs()})
    first = [s.ask() for _ in range(5)]
    assert all(Convs().predict(c.arch) >= 5 for c in first)  # best of 64 random cells by the prior
    plain = asc.create_strategy("pge", SPACE, seed=0)
    assert np.mean([Convs().predict(plain.ask().arch) for _ in range(5)]) < 5


def test_mobo_uses_known_costs_and_never_proposes_known_infeasible():
    class Convs:
        cheap = True

        def predict(self, arch):
            return float(sum(op.startswith("nor_conv") for op in arch.values[0]))

    objs = [asc.Objective("score", "max"), asc.Objective("convs", "min")]
    s = asc.create_strategy("mobo", SPACE, objectives=objs, constraints=["convs<=2"], seed=0)
    s.attach(cost_models={"convs": Convs()})
    for _ in range(30):
        c = s.ask()
        convs = Convs().predict(c.arch)
        assert convs <= 2
        s.tell(c, Result("complete", {"score": score(c.arch), "convs": convs}))


def test_mobo_top_steps_ignore_the_known_cost():
    """With a known cost, every ``top_every``-th proposal maximises the UCB of the modelled objective alone:
    with ``top_every=1`` (and the cost kept out of the model's inputs) two opposite cost models give the same
    proposals; with the staircase alone (``top_every=0``) they do not."""
    class Convs:
        cheap = True

        def __init__(self, sign):
            self.sign = sign

        def predict(self, arch):
            return 3.0 + self.sign * float(sum(op.startswith("nor_conv") for op in arch.values[0]))

    objs = [asc.Objective("score", "max"), asc.Objective("convs", "min")]

    def trail(top_every, sign):
        s = asc.create_strategy("mobo", SPACE, objectives=objs, seed=3, top_every=top_every, cost_weight=0.0)
        cost = Convs(sign)
        s.attach(cost_models={"convs": cost})
        out = []
        for _ in range(25):
            c = s.ask()
            out.append(str(c.arch))
            s.tell(c, Result("complete", {"score": score(c.arch), "convs": cost.predict(c.arch)}))
        return out

    assert trail(1, 1.0) == trail(1, -1.0)
    assert trail(0, 1.0)[:10] == trail(0, -1.0)[:10]  # the same random start
    assert trail(0, 1.0) != trail(0, -1.0)
    with pytest.raises(ConfigError, match="top_every"):
        asc.create_strategy("mobo", SPACE, objectives=objs, top_every=-1)


def test_auto_choices_and_state():
    objs = [asc.Objective("score", "max"), asc.Objective("lat", "min")]
    assert asc.create_strategy("auto", SPACE).inner.name == "smbo"
    assert asc.create_strategy("auto", SPACE, objectives=objs).inner.name == "mobo"
    a = asc.create_strategy("auto", SPACE, seed=0)
    a.attach(fidelities=[12, 200])
    assert a.inner.name == "asha"
    study = asc.create_study(SPACE, objectives=["score"], seed=0, fidelities=[12, 200])
    assert study.strategy.inner.name == "asha"
    state = a.state_dict()
    b = asc.create_strategy("auto", SPACE, seed=1)
    b.load_state_dict(state)
    assert b.inner.name == "asha"
