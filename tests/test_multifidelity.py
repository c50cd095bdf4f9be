"""Multi-fidelity strategies: successive halving, Hyperband and ASHA follow their promotion rules."""

import json
import math

import numpy as np
import pytest

import archscout as asc
from archscout.errors import ConfigError, SpaceExhaustedError
from archscout.execution import SimulatedExecutor
from archscout.results import Result

NAMES = ["sh", "hyperband", "asha"]
SPACE = asc.Space({"a": asc.Choice(list(range(8))), "b": asc.Choice(list(range(8))), "c": asc.Choice(list(range(8)))})
BIG_SPACE = asc.Space({k: asc.Choice(list(range(8))) for k in "abcdef"})  # 262,144 points: not enumerated
RUNGS = [1, 3, 9]


def true_score(arch) -> float:
    """Smooth objective with a hash-based jitter, so no two functions tie."""
    v = arch.values
    jitter = int(arch.functional_hash()[:6], 16) / 16**6
    return -sum((x - 5) ** 2 for x in v[:3]) + jitter


def noisy(arch, fidelity) -> float:
    """The score observed at ``fidelity``: the true score plus a deterministic noise that shrinks as 1/f."""
    f = 9.0 if fidelity is None else float(fidelity)
    noise = (int(arch.functional_hash()[-6:], 16) / 16**6 - 0.5) * 12.0
    return true_score(arch) + noise / f


def result(cand) -> Result:
    return Result("complete", {"score": noisy(cand.arch, cand.fidelity)})


def make(name, space=SPACE, fidelities=RUNGS, seed=0, **params):
    s = asc.create_strategy(name, space, seed=seed, **params)
    s.attach(fidelities=fidelities)
    return s


def drive(strategy, n, batch=1):
    """Ask up to ``batch`` at a time, then tell them all; returns the candidates in ask order."""
    out = []
    while len(out) < n:
        cands = [strategy.ask() for _ in range(min(batch, n - len(out)))]
        for c in cands:
            strategy.tell(c, result(c))
        out.extend(cands)
    return out


# --- rungs and parameters ---------------------------------------------------------------------------
def test_rungs_from_study_fidelities_and_default_eta():
    s = make("sh", fidelities=[200, 12])
    assert s.rungs == (12.0, 200.0)
    assert s.eta == pytest.approx(200 / 12)  # the ratio between the rungs
    assert s.n == 17  # one configuration of a bracket reaches full fidelity
    assert make("sh", fidelities=[1, 4, 16]).eta == pytest.approx(4)
    a = make("asha", fidelities=[200, 12])
    assert a.eta == pytest.approx(2 * 200 / 12)  # asha promotes more than 1/eta: twice the ratio
    assert a.ask().fidelity == 12.0
    assert make("asha", fidelities=[12, 200], eta=5).eta == 5


def test_without_fidelities_they_refuse_with_a_clear_error():
    """A multi-fidelity strategy with a single rung would silently be a plain sampler: it is refused, when the
    study is created (nothing written) and at the first ask of a strategy used on its own."""
    for name in NAMES:
        with pytest.raises(ConfigError, match="needs several fidelities"):
            asc.create_strategy(name, SPACE, seed=0).ask()
        with pytest.raises(ConfigError, match="needs several fidelities"):
            asc.create_study(SPACE, strategy=name, seed=0)
        with pytest.raises(ConfigError, match="needs several fidelities"):
            make(name, fidelities=[200]).ask()
        assert asc.create_strategy(name, SPACE, seed=0, fidelities=[12, 200]).ask().fidelity == 12.0  # its own rungs


def test_min_fidelity_builds_a_geometric_ladder():
    assert make("sh", fidelities=[1, 81], min_fidelity=1, eta=3).rungs == (1, 3, 9, 27, 81)
    # a step too close to the full fidelity is dropped; integer fidelities stay integers
    assert make("sh", fidelities=[100], min_fidelity=1, eta=3).rungs == (1, 3, 9, 27, 100)
    assert make("sh", fidelities=[10.0], min_fidelity=0.5, eta=2).rungs == (0.5, 1.0, 2.0, 4.0, 10.0)


def test_explicit_rungs_win_over_study_fidelities():
    s = asc.create_strategy("asha", SPACE, fidelities=[2, 20, 200], eta=10, sampler="random")
    s.attach(fidelities=[12, 200])
    assert s.rungs == (2.0, 20.0, 200.0)
    assert s.ask().fidelity == 2.0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("params, match", [
    ({"eta": 1}, "eta"), ({"eta": "3"}, "eta"), ({"eta": math.inf}, "eta"),
    ({"fidelities": []}, "fidelities"), ({"fidelities": [0, 10]}, "fidelities"), ({"fidelities": [3, 3]}, "fidelities"),
    ({"fidelities": "12,200"}, "fidelities"), ({"min_fidelity": -1}, "min_fidelity"),
    ({"min_fidelity": 1, "fidelities": [1, 9]}, "not both"), ({"sampler": "bogus"}, "sampler"),
])
def test_bad_parameters(name, params, match):
    with pytest.raises(ConfigError, match=match):
        asc.create_strategy(name, SPACE, **params)


@pytest.mark.parametrize("name", ["sh", "hyperband"])
def test_bad_bracket_size(name):
    with pytest.raises(ConfigError, match="n "):
        asc.create_strategy(name, SPACE, n=0)


def test_min_fidelity_needs_a_full_fidelity():
    with pytest.raises(ConfigError, match="below the full fidelity"):
        make("asha", fidelities=[12], min_fidelity=12)
    s = asc.create_strategy("asha", SPACE, min_fidelity=1)
    with pytest.raises(ConfigError, match="needs the study's fidelities"):
        s.ask()
    with pytest.raises(ConfigError, match="needs the study's fidelities"):
        asc.create_study(SPACE, strategy={"name": "sh", "min_fidelity": 1}).ask()


def test_fidelities_cannot_change_mid_run():
    s = make("asha")
    s.ask()
    s.attach(fidelities=RUNGS)  # the same: fine
    with pytest.raises(ConfigError, match="middle of a run"):
        s.attach(fidelities=[2, 200])


# --- promotion rules ----------------------------------------------------------------------------------
def test_successive_halving_promotes_the_top_third_of_each_rung():
    s = make("sh", n=9, eta=3, sampler="random")
    first = drive(s, 9)
    assert [c.fidelity for c in first] == [1.0] * 9
    assert len({c.arch.functional_hash() for c in first}) == 9
    second = drive(s, 3)
    best3 = sorted(first, key=lambda c: -noisy(c.arch, 1))[:3]
    assert [(c.arch, c.fidelity) for c in second] == [(c.arch, 3.0) for c in best3]
    third = drive(s, 1)
    assert third[0].fidelity == 9.0 and third[0].arch == max(second, key=lambda c: noisy(c.arch, 3)).arch
    nxt = drive(s, 9)
    assert [c.fidelity for c in nxt] == [1.0] * 9  # a new bracket
    assert not {c.arch for c in nxt} & {c.arch for c in first}


def test_successive_halving_never_waits_for_a_rung():
    s = make("sh", n=9, eta=3, sampler="random")
    pending = [s.ask() for _ in range(12)]  # the first bracket's rung is full: a second bracket starts
    assert [c.fidelity for c in pending] == [1.0] * 12
    for c in pending[:9]:
        s.tell(c, result(c))
    c = s.ask()
    assert c.fidelity == 3.0 and c.arch == max(pending[:9], key=lambda c: noisy(c.arch, 1)).arch


def test_hyperband_cycles_brackets_from_the_lowest_rung():
    s = make("hyperband", n=9, eta=3, sampler="random")
    fids = [c.fidelity for c in drive(s, 9 + 3 + 1 + 5 + 1 + 3 + 9)]
    assert fids == [1.0] * 9 + [3.0] * 3 + [9.0] + [3.0] * 5 + [9.0] + [9.0] * 3 + [1.0] * 9


def _check_asha_history(strategy, events, eta):
    """Replay ``events`` ("ask"/"tell", candidate) and check each ask against the ASHA rule."""
    rungs = [1.0, 3.0, 9.0]
    done = [[] for _ in rungs]  # (score, order, hash), told order
    asked = [set() for _ in rungs]
    archs = {}
    order = 0
    for kind, c in events:
        h = c.arch.functional_hash()
        k = rungs.index(c.fidelity)
        if kind == "tell":
            done[k].append((noisy(c.arch, c.fidelity), -order, h))
            order += 1
            continue
        promotable = None
        for j in (1, 0):
            top = sorted(done[j], reverse=True)[: int(len(done[j]) / eta)]
            cands = [x for x in top if x[2] not in asked[j + 1]]
            if cands:
                promotable = (j + 1, cands[0][2])
                break
        if promotable is None:
            assert k == 0 and h not in archs, "a new configuration starts at the lowest rung"
        else:
            assert (k, h) == promotable, "the best promotable configuration of the highest rung moves up"
        asked[k].add(h)
        archs[h] = c.arch
    return sum(len(a) for a in asked[1:])


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("sampler", ["random", "model"])
def test_asha_promotes_the_top_fraction_of_the_highest_possible_rung(batch, sampler):
    s = make("asha", eta=3, sampler=sampler, seed=batch)
    events = []
    while len(events) < 2 * 150:
        cands = [s.ask() for _ in range(batch)]
        events += [("ask", c) for c in cands]
        for c in cands:
            s.tell(c, result(c))
            events.append(("tell", c))
    n_promoted = _check_asha_history(s, events, 3)
    assert n_promoted >= 40  # a third of 100+ configurations moved up, and some of them again


def test_asha_never_blocks_with_many_pending():
    s = make("asha", eta=3, sampler="random")
    drive(s, 20)
    pending = [s.ask() for _ in range(30)]  # nothing told: still proposing
    pairs = {(c.arch.functional_hash(), c.fidelity) for c in pending}
    assert len(pairs) == 30
    rng = np.random.default_rng(0)
    for i in rng.permutation(len(pending)):  # results come back in any order, asks go on in between
        s.tell(pending[int(i)], result(pending[int(i)]))
        pending.append(s.ask())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch", [1, 5])
def test_a_function_is_never_evaluated_twice_at_a_fidelity(name, batch):
    s = make(name, eta=2, n=8, sampler="random") if name != "asha" else make(name, eta=2, sampler="random")
    cands = drive(s, 400, batch=batch)
    pairs = [(c.arch.functional_hash(), c.fidelity) for c in cands]
    assert len(set(pairs)) == len(pairs)
    assert {c.fidelity for c in cands} == {1.0, 3.0, 9.0}


@pytest.mark.parametrize("name", NAMES)
def test_exhausting_the_space_promotes_what_is_left_then_raises(name):
    small = asc.Space({"a": asc.Choice([1, 2, 3]), "b": asc.Ordinal([1, 2])})
    s = make(name, small, fidelities=[1, 9], eta=2, **({} if name == "asha" else {"n": 2}))
    pairs = set()
    with pytest.raises(SpaceExhaustedError):
        for _ in range(100):
            c = s.ask()
            pairs.add((c.arch.functional_hash(), c.fidelity))
            s.tell(c, result(c))
    assert len({h for h, _ in pairs}) == 6
    assert all(f in (1.0, 9.0) for _, f in pairs)
    if name == "asha":
        assert len(pairs) == 12  # every function ends up at full fidelity


def test_result_at_no_fidelity_counts_as_full_and_is_not_repeated():
    s = make("asha", eta=2, sampler="random")
    arch = SPACE.parse(str(SPACE.make({"a": 5, "b": 5, "c": 5})))
    s.tell(asc.Candidate(10_000, arch), Result("complete", {"score": 100.0}))
    assert s._results[2][arch.functional_hash()][1] == 100.0
    for c in drive(s, 200):
        assert c.arch.functional_hash() != arch.functional_hash()


def test_failed_results_are_never_promoted():
    s = make("asha", eta=2, sampler="random")
    failed = set()
    for _ in range(120):
        c = s.ask()
        if c.fidelity == 1.0 and len(failed) < 20:
            failed.add(c.arch.functional_hash())
            s.tell(c, Result("failed", {}, "boom"))
        else:
            assert c.arch.functional_hash() not in failed
            s.tell(c, result(c))


# --- state -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, sampler, space", [
    ("sh", "random", SPACE), ("sh", "model", SPACE), ("hyperband", "model", SPACE),
    ("asha", "random", SPACE), ("asha", "model", SPACE), ("asha", "model", BIG_SPACE),
])
def test_state_roundtrip_mid_bracket_continues_identically(name, sampler, space):
    s = make(name, space, eta=3, sampler=sampler, seed=5)
    drive(s, 37, batch=2)
    pending = [s.ask() for _ in range(4)]
    state = json.loads(json.dumps(s.state_dict()))
    t = make(name, space, eta=3, sampler=sampler, seed=999)
    t.load_state_dict(state)
    for strat in (s, t):
        for c in pending:
            strat.tell(c, result(c))
    a = [(str(c.arch), c.fidelity) for c in drive(s, 60, batch=3)]
    b = [(str(c.arch), c.fidelity) for c in drive(t, 60, batch=3)]
    assert a == b
    assert len({f for _, f in a}) >= 2  # the continuation crosses rungs


@pytest.mark.parametrize("name", NAMES)
def test_config_roundtrip_keeps_rung_settings(name):
    params = {"eta": 4.0, "fidelities": [2.0, 8.0, 32.0], "sampler": "model"}
    if name != "asha":
        params["n"] = 16
    s = asc.create_strategy(name, SPACE, **params)
    cfg = s.to_config()
    assert {k: cfg[k] for k in params} == params
    again = asc.create_strategy(cfg.pop("name"), SPACE, **cfg)
    assert again.to_config() == s.to_config()


# --- samplers ----------------------------------------------------------------------------------------------
def test_model_sampler_beats_random_sampling():
    """The sampler picks new configurations: compare the best of the first 120 configurations each starts at the
    lowest rung (promotions re-ask configurations already started)."""
    def quadratic(arch):
        return -float(sum((x - 5) ** 2 for x in arch.values))

    def best(sampler, seed):
        s = make("asha", BIG_SPACE, sampler=sampler, seed=seed)
        out, new = -math.inf, 0
        while new < 120:
            c = s.ask()
            s.tell(c, Result("complete", {"score": quadratic(c.arch)}))
            if c.fidelity == RUNGS[0]:
                new += 1
                out = max(out, quadratic(c.arch))
        return out

    model = np.mean([best("model", seed) for seed in range(3)])
    rand = np.mean([best("random", seed) for seed in range(3)])
    assert model > rand + 3.0  # -3.7 against -7.0 (optimum 0)


# --- studies ------------------------------------------------------------------------------------------
class _Synthetic:
    """Evaluator with fidelities: the noisy score, and a training time proportional to the fidelity."""

    def evaluate(self, arch, fidelity=None):
        return {"score": noisy(arch, fidelity)}

    def duration(self, arch, fidelity=None):
        return 10.0 * (9.0 if fidelity is None else float(fidelity))


@pytest.mark.parametrize("name", NAMES)
def test_study_with_parallel_workers_uses_every_rung(name):
    study = asc.create_study(SPACE, strategy={"name": name, "eta": 3}, seed=0, fidelities=RUNGS)
    done = study.optimize(_Synthetic(), budget=120, executor=SimulatedExecutor(workers=4))
    assert len(done) == 120
    assert {t.fidelity for t in done} == {1.0, 3.0, 9.0}
    pairs = [(t.arch.functional_hash(), t.fidelity) for t in done]
    assert len(set(pairs)) == len(pairs)


def test_nb201_study_at_two_fidelities_charges_cheap_trials_less(nb201_table):
    bench = asc.create_benchmark("nb201", table=str(nb201_table), objective="valid_acc_200ep")
    study = asc.create_study(bench.space, objectives=[bench.objective], strategy={"name": "asha"}, seed=0,
                             fidelities=[12, 200])
    done = study.optimize(bench.evaluator(), budget=80, executor=SimulatedExecutor(workers=1))
    assert {t.fidelity for t in done} == {12.0, 200.0}
    for t in done:
        full = bench.duration(t.arch)
        assert t.finished_at - t.started_at == pytest.approx(full * t.fidelity / 200)
        assert t.metrics["valid_acc_200ep"] == bench.value(t.arch, "valid_acc_200ep", t.fidelity)
    cheap = [t for t in done if t.fidelity == 12.0]
    ratio = np.mean([(t.finished_at - t.started_at) / bench.duration(t.arch) for t in cheap])
    assert ratio == pytest.approx(0.06)
    promoted = {t.arch.functional_hash() for t in done if t.fidelity == 200.0}
    assert promoted <= {t.arch.functional_hash() for t in cheap}  # every full run was promoted from 12 epochs


@pytest.mark.parametrize("name", NAMES)
def test_resumed_study_replays_without_divergence(name, tmp_path, recwarn):
    path = str(tmp_path / "mf.db")
    study = asc.create_study(SPACE, strategy={"name": name, "eta": 3}, storage=path, seed=1, fidelities=RUNGS)
    study.optimize(_Synthetic(), budget=50, executor=SimulatedExecutor(workers=3))
    again = asc.load_study(path)
    assert not [w for w in recwarn if "replaying" in str(w.message)]
    assert [(t.arch, t.fidelity) for t in again.trials] == [(t.arch, t.fidelity) for t in study.trials]
    nxt_a, nxt_b = study.strategy.ask(), again.ask()  # the original's next proposal, not recorded
    assert (nxt_a.arch, nxt_a.fidelity) == (nxt_b.arch, nxt_b.fidelity)
