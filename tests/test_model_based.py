"""Model-based strategies (smbo, bananas, pge, mobo) and auto: behaviour beyond the conformance suite."""

import math

import numpy as np
import pytest
from synthetic import SPACE, drive, score

import archscout as asc
from archscout.errors import ConfigError
from archscout.results import Result
from archscout.strategies.surrogate import IncrementalGP, candidate_pool, features, normal_scores


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


# --- spaces too large to enumerate: the rolling candidate pool ---------------------------------------------
BIG = asc.Space({
    "width": asc.Choice([16, 24, 32]),
    "stages": asc.Stages(n=4, depth=asc.Ordinal([2, 3, 4]),
                         layer={"kernel": asc.Choice([3, 5, 7]), "expand": asc.Choice([3, 4, 6])}),
    "cell": asc.Cell(nodes=4, ops=["none", "skip", "conv1x1", "conv3x3", "avgpool3x3"]),
})


def test_rolling_pool_fills_free_slots_then_replaces_the_oldest():
    from archscout.strategies.surrogate import RollingPool

    rng = np.random.default_rng(0)
    archs = []
    while len({a.functional_hash() for a in archs}) < 12:
        archs.append(BIG.sample(rng))
    distinct = list({a.functional_hash(): a for a in archs}.values())
    pool = RollingPool(BIG, 5, {"twice": lambda xs: 2 * features(BIG, xs)})
    assert pool.add(distinct[:3] + distinct[:1]) == 3  # a repeated function is added once
    assert len(pool) == 3 and pool.n_alive == 3 and list(pool.ids) == [0, 1, 2]
    assert np.allclose(pool.column("twice"), 2 * pool.features)
    pool.discard(lambda h: h == distinct[1].functional_hash())
    assert list(pool.alive) == [True, False, True]
    assert np.allclose(pool.row(distinct[1]), features(BIG, [distinct[1]])[0])  # remembered after it left
    assert pool.add(distinct[3:7]) == 4  # the free slot first, then new slots up to the size, then the oldest
    assert pool.n_alive == 5 and len(pool) == 5
    assert distinct[0].functional_hash() not in pool.index  # the oldest made room
    assert pool.archs[2] == distinct[2]  # the others do not move
    assert [pool.archs[i] for i in (0, 1, 3, 4)] == distinct[3:7]
    oldest_first = [pool.archs[i] for i in np.argsort(pool.ids) if pool.ids[i] >= 0]
    assert [a.functional_hash() for a in oldest_first] == [a.functional_hash() for a in
                                                             [distinct[2], distinct[3], distinct[4], distinct[5],
                                                              distinct[6]]]
    alive = pool.alive
    assert np.allclose(pool.features[alive], features(BIG, [a for a in pool.archs if a is not None]))
    enc = pool.encoding("path")  # asked late: computed for the members, then kept up to date
    pool.add(distinct[7:8])
    live = [i for i, a in enumerate(pool.archs) if a is not None]
    assert np.allclose(pool.encoding("path")[live], [BIG.encode(pool.archs[i], "path") for i in live])
    assert enc.shape[1] == BIG.encoding_size("path")


def test_gp_columns_set_per_slot_equal_the_fixed_pool_posterior():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 6))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = rng.normal(size=15)
    ref = IncrementalGP(degree=3, noise=0.1, pool=x[15:])
    gp = IncrementalGP(degree=3, noise=0.1, pool=np.zeros((0, 6)))
    gp.pool_set(np.arange(10), x[15:25])  # some columns before the observations, the rest after
    for i in range(15):
        ref.add(x[i])
        gp.add(x[i])
    gp.pool_set(np.arange(10, 25), x[25:40])
    gp.pool_set(np.array([3]), x[18])  # a slot whose occupant changes
    mu_ref, sd_ref = ref.predict_pool(y)
    mu, sd = gp.predict_pool(y)
    assert np.allclose(mu, mu_ref, atol=1e-8) and np.allclose(sd, sd_ref, atol=1e-6)
    pending = x[30:32]
    assert np.allclose(gp.predict_pool(y, pending)[1], ref.predict_pool(y, pending)[1], atol=1e-6)


@pytest.mark.parametrize("name", ["smbo", "mobo", "bananas"])
def test_a_proposal_on_a_large_space_encodes_only_the_fresh_candidates(name, monkeypatch):
    """After the pool's first fill, each proposal computes the features of its few fresh candidates, not of
    the whole pool (this is what keeps ``auto`` cheap on spaces too large to enumerate)."""
    objs = [asc.Objective("score", "max")] + ([asc.Objective("lat", "min")] if name == "mobo" else [])
    s = asc.create_strategy(name, BIG, objectives=objs, seed=0, pool_size=200, pool_refresh=8)
    calls = []
    original = asc.Space.encode
    monkeypatch.setattr(asc.Space, "encode", lambda self, arch, kind="onehot": calls.append(1) or
                        original(self, arch, kind))

    def tell(c):
        s.tell(c, Result("complete", {"score": float(np.sum(BIG.encode(c.arch))) % 7, "lat": 1.0}))

    for _ in range(12):  # the random start and the first model-based proposal (which fills the pool)
        tell(s.ask())
    calls.clear()
    for _ in range(20):
        c = s.ask()
        tell(c)
    per_ask = len(calls) / 20
    # two encodings per fresh candidate (one-hot and functional) plus the scorer's own in tell()
    assert per_ask <= 2 * 8 + 3, per_ask
    assert s.to_config()["pool_refresh"] == 8


def test_the_rolling_pool_state_restores_exactly():
    s = asc.create_strategy("smbo", BIG, seed=3, pool_size=100, pool_refresh=10)
    drive(s, 20, lambda a: float(a["width"]))
    state = s.state_dict()
    assert sum(t is not None for t in state["state"]["pool"]["slots"]) == 100
    t = asc.create_strategy("smbo", BIG, seed=4, pool_size=100, pool_refresh=10)
    t.load_state_dict(state)
    a = [str(c.arch) for c in drive(s, 15, lambda a: float(a["width"]))]
    b = [str(c.arch) for c in drive(t, 15, lambda a: float(a["width"]))]
    assert a == b


@pytest.mark.parametrize("name", ["smbo", "mobo"])
def test_model_based_strategies_pass_the_conformance_checks_on_a_large_space(name):
    from archscout.testing import check_strategy

    check_strategy(name, space=BIG, pool_size=200, pool_refresh=16)


def test_the_rolling_pool_passes_the_conformance_checks_where_it_can_run_dry():
    """NB201 forced onto the rolling pool (``pool_limit=0``): state round trips keep every slot (bananas'
    Thompson draws are per slot), and a small pool meets taken candidates often."""
    from archscout.testing import check_strategy

    check_strategy("bananas", space="nb201", pool_limit=0, pool_size=100, pool_refresh=8)


def test_pool_refresh_is_validated():
    with pytest.raises(ConfigError, match="pool_refresh"):
        asc.create_strategy("smbo", BIG, pool_refresh=0)
