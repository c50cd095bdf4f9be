"""Pending candidates (asynchronous ask/tell): every strategy keeps several asks in flight, excludes what
is evaluated elsewhere, and the model-based ones fantasise pending outcomes when choosing the next one."""

import importlib.util
import json
import math
import random

import numpy as np
import pytest
from synthetic import SPACE, drive, score

import archscout as asc
from archscout.results import Candidate, Result
from archscout.strategies import list_strategies
from archscout.strategies.surrogate import IncrementalGP

HAS_OPTUNA = importlib.util.find_spec("optuna") is not None
NAMES = [n for n in list_strategies() if HAS_OPTUNA or "optuna" not in n]


def _key(c: Candidate) -> tuple[str, float | None]:
    return c.arch.functional_hash(), c.fidelity


def _tell(s, c: Candidate) -> None:
    s.tell(c, Result("complete", {"score": score(c.arch)}))


def make(name: str, seed: int, **params):
    """A strategy on SPACE; those that need several fidelities get rungs of their own (12 and 200)."""
    from archscout.strategies import STRATEGIES

    if STRATEGIES.get(name).capabilities.needs_fidelities:
        params.setdefault("fidelities", [12, 200])
    return asc.create_strategy(name, SPACE, seed=seed, **params)


def _copy(s, name: str, **params):
    """A fresh strategy restored from ``s``'s state (JSON round trip)."""
    t = make(name, 12345, **params)
    t.load_state_dict(json.loads(json.dumps(s.state_dict())))
    return t


@pytest.fixture(params=NAMES)
def name(request):
    return request.param


# The rules every strategy follows with pending candidates (distinct batches, foreign pending candidates, results
# of unknown candidates) are conformance checks: archscout.testing.check_strategy, run by tests/test_conformance.py.


# --- fantasies of the model-based strategies --------------------------------------------------------------
MODEL_BASED = [  # (name, parameters, rounds)
    ("smbo", {}, 3), ("smbo", {"surrogate": "rf", "n_trees": 20}, 2), ("smbo", {"pool_limit": 0}, 3),
    ("bananas", {}, 3), ("pge", {}, 3), ("mobo", {}, 3), ("auto", {}, 3),
    ("asha", {}, 8), ("sh", {"sampler": "model"}, 8), ("hyperband", {"sampler": "model"}, 8),
]


@pytest.mark.parametrize("name, params, rounds", MODEL_BASED, ids=[f"{n}{p or ''}" for n, p, _ in MODEL_BASED])
def test_model_based_proposals_account_for_pending_candidates(name, params, rounds):
    """Counterfactual: ``s`` keeps a batch of 4 pending; ``t``, restored from the same state, forgets each
    proposal (``on_fail``) before its next ask, so it excludes the same functions but fantasises nothing.
    Without fantasies the two batches are identical (no random draw depends on them); with them, some
    proposal must differ. The tree ensemble of the multi-fidelity sampler changes its choice less often
    (it already draws different trees per ask), hence more rounds."""
    s = make(name, 0, **params)
    drive(s, 12)  # past every warm-up
    differ = 0
    for _ in range(rounds):
        t = _copy(s, name, **params)
        batch = [s.ask() for _ in range(4)]
        ignored = []
        for _ in range(4):
            ignored.append(t.ask())
            t.on_fail(ignored[-1])
        assert _key(batch[0]) == _key(ignored[0])  # nothing pending yet: the same proposal
        differ += sum(_key(a) != _key(b) for a, b in zip(batch, ignored))
        for c in batch:
            _tell(s, c)
        drive(s, 4)
    assert differ > 0, f"{name}: pending candidates made no difference to the proposals"


def test_mcts_value_model_is_refitted_with_pending_candidates_as_liars(monkeypatch):
    """Both copies see the same pending candidates (the same virtual losses in the tree); only ``s``'s value
    model knows them as liars, and that changes the proposals."""
    s = asc.create_strategy("mcts", SPACE, seed=0)
    drive(s, 30)
    state = json.loads(json.dumps(s.state_dict()))
    t = asc.create_strategy("mcts", SPACE, seed=0)
    t.load_state_dict(state)
    monkeypatch.setattr(t, "_liar_tables", lambda: t._tables)
    a = [s.ask() for _ in range(6)]
    b = [t.ask() for _ in range(6)]
    assert _key(a[0]) == _key(b[0])
    assert [_key(c) for c in a] != [_key(c) for c in b]


def test_gp_believer_equals_observing_the_pending_inputs_at_the_posterior_mean():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = rng.normal(size=20)
    for n in (0, 20):
        gp = IncrementalGP(degree=3, noise=0.1, pool=x)
        for i in range(n):
            gp.add(x[i])
        mu0, sd0 = gp.predict_pool(y[:n])
        pend = x[25:28]
        mu, sd = gp.predict_pool(y[:n], pend)
        full = IncrementalGP(degree=3, noise=0.1, pool=x)
        for row in [*x[:n], *pend]:
            full.add(row)
        mu_p = mu0[25:28]  # the believed outcomes
        mu_f, sd_f = full.predict_pool(np.concatenate([y[:n], mu_p]))
        assert np.allclose(mu, mu0) and np.allclose(mu_f, mu0, atol=1e-8)
        assert np.allclose(sd, sd_f, atol=1e-8)
        assert sd[25] < 0.5 * sd0[25] and np.all(sd <= sd0 + 1e-12)
        mu2, sd2 = gp.predict(x[30:], y[:n], pend)  # the dynamic path agrees
        assert np.allclose(mu2, mu[30:]) and np.allclose(sd2, sd[30:], atol=1e-8)
        assert np.array_equal(gp.predict_pool(y[:n])[1], sd0)  # nothing stored


def test_mobo_counts_pending_candidates_on_the_front():
    class Convs:
        def predict(self, arch):
            return float(sum(o.startswith("nor_conv") for o in arch.values[0]))

    objs = [asc.Objective("score", "max"), asc.Objective("convs", "min")]
    # beta=0: the acquisition is the mean's rise above the front's staircase, so the GP's variance (which
    # pending candidates shrink too) plays no part and only the front can change
    s = asc.create_strategy("mobo", SPACE, seed=0, objectives=objs, beta=0.0)
    s.attach(cost_models={"convs": Convs()})

    def tell(c):
        s.tell(c, Result("complete", {"score": score(c.arch), "convs": Convs().predict(c.arch)}))

    for _ in range(20):
        tell(s.ask())
    pool = s._get_pool()
    before = s._acquire_pool(pool)
    c = s.ask()
    after = s._acquire_pool(pool)
    same_cost = np.array([Convs().predict(a) == Convs().predict(c.arch) for a in pool.archs])
    assert np.all(after[same_cost] <= before[same_cost] + 1e-12)
    assert np.any(after[same_cost] < before[same_cost] - 1e-9)


def test_successive_halving_waits_for_a_promotion_evaluated_elsewhere():
    s = asc.create_strategy("sh", SPACE, seed=0, fidelities=[10, 30], n=3, eta=3)
    first = [s.ask() for _ in range(3)]
    for c in first:
        _tell(s, c)
    best = max(first, key=lambda c: score(c.arch))
    elsewhere = Candidate(-1, best.arch, 30.0)
    s.note_pending(elsewhere)  # another driver promoted it already
    nxt = s.ask()
    assert _key(nxt) != _key(elsewhere) and nxt.fidelity == 10.0  # a new bracket starts meanwhile
    h = best.arch.functional_hash()
    bracket = next(br for br in s._brackets if br["id"] == 0)
    assert bracket["asked"][1] == [h] and h not in bracket["done"][1]  # waits for the other driver
    _tell(s, elsewhere)
    assert bracket["done"][1][h] == score(best.arch)  # and counts its result, not a failure
    assert all(_key(c) != _key(elsewhere) for c in drive(s, 12))


@pytest.mark.parametrize("name", ["asha", "sh", "hyperband"])
def test_multi_fidelity_never_starts_a_function_running_elsewhere_at_another_rung(name):
    s = asc.create_strategy(name, SPACE, seed=0, fidelities=[12, 50, 200])
    drive(s, 6)
    twin = _copy(s, name, fidelities=[12, 50, 200])
    elsewhere = [Candidate(-1 - i, twin.ask().arch, 200.0) for i in range(3)]  # what it would start next
    for c in elsewhere:
        s.note_pending(c)
    busy = {c.arch.functional_hash() for c in elsewhere}
    assert not busy & {c.arch.functional_hash() for c in drive(s, 30, batch=3)}


@pytest.mark.skipif(not HAS_OPTUNA, reason="needs optuna")
def test_optuna_sees_foreign_pending_candidates_as_running_trials():
    optuna = pytest.importorskip("optuna")
    s = asc.create_strategy("tpe-optuna", SPACE, seed=0)
    assert s.study.sampler._constant_liar
    drive(s, 12)
    other = SPACE.sample(np.random.default_rng(3))
    s.note_pending(Candidate(-4, other))
    mine = s.ask()
    running = s.study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.RUNNING])
    assert len(running) >= 2 and mine.arch.functional_hash() != other.functional_hash()
    params = s._mapping.encode(other)[0]
    assert any(t.params == params for t in running)
    s.tell(Candidate(-4, other), Result("complete", {"score": 9.0}))
    done = [t for t in s.study.get_trials(deepcopy=False) if t.params == params]
    assert done and all(t.state == optuna.trial.TrialState.COMPLETE and t.values == [9.0] for t in done)


# --- an asynchronous driver -----------------------------------------------------------------------------
def async_drive(s, n: int, workers: int = 4, seed: int = 0) -> list[Candidate]:
    """``workers`` evaluations in flight; each step one of them, chosen at random, finishes and is told,
    and a new candidate is asked in its place. Returns the told candidates in order."""
    order = random.Random(seed)
    running = [s.ask() for _ in range(workers)]
    told: list[Candidate] = []
    while running:
        c = running.pop(order.randrange(len(running)))
        _tell(s, c)
        told.append(c)
        if len(told) + len(running) < n:
            running.append(s.ask())
    return told


@pytest.mark.parametrize("name", ["smbo", "bananas", "mobo", "asha", "mcts", "rea"])
def test_asynchronous_search_is_not_worse_than_random(name):
    def best(strategy_name, seed):
        s = make(strategy_name, seed)
        told = async_drive(s, 60, seed=seed)
        keys = [_key(c) for c in told]
        assert len(set(keys)) == len(keys) == 60
        return max(score(c.arch) for c in told)

    seeds = range(3)
    ours = np.mean([best(name, k) for k in seeds])
    rand = np.mean([best("random", k) for k in seeds])
    assert ours >= rand, (ours, rand)  # in fact far better: 5.3 to 6.2 against 3.8 (optimum 6.17)
    assert math.isfinite(ours)
