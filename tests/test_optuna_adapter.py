"""The Optuna adapters ('tpe-optuna', 'nsga2-optuna'): space mapping, dedup, failures, constraints, state."""

import json
import sys

import numpy as np
import pytest

import archscout as asc
from archscout.errors import ConfigError, OptionalDependencyError
from archscout.results import Candidate, Result
from archscout.space import Param

optuna = pytest.importorskip("optuna")

NB201 = asc.create_space("nb201")
SMALL = asc.Space({"a": asc.Choice([1, 2, 3]), "b": asc.Ordinal([1, 2])})
OBJS = [asc.Objective("acc", "max"), asc.Objective("lat", "min")]
NAMES = ["tpe-optuna", "nsga2-optuna"]
OPT = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def value(arch) -> float:
    return int(arch.functional_hash()[:6], 16) / 16**6


def metrics(arch) -> dict:
    v = value(arch)
    return {"acc": v, "lat": (1.0 - v) ** 2 + 0.1 * (int(arch.functional_hash()[6:10], 16) / 16**4)}


def drive(s, n, mo=False):
    out = []
    for _ in range(n):
        c = s.ask()
        s.tell(c, Result("complete", metrics(c.arch) if mo else {"score": value(c.arch)}))
        out.append(c)
    return out


# --- mapping ---------------------------------------------------------------------------------------
def test_nb201_maps_to_one_categorical_per_edge():
    s = asc.create_strategy("tpe-optuna", NB201, seed=0)
    fixed = s._mapping.fixed
    assert len(fixed) == 6
    for d in fixed.values():
        assert isinstance(d, optuna.distributions.CategoricalDistribution)
        assert tuple(d.choices) == NB201.params["cell"].ops
    c = s.ask()
    trial = s.study.trials[-1]
    assert s._mapping.decode(optuna.trial.FixedTrial(trial.params)) == c.arch


@pytest.mark.parametrize("space", [
    asc.create_space("mbv3"),
    asc.Space({"width": asc.Choice([16, 24, 32]), "depth": asc.Ordinal([2, 3, 4]), "k": asc.Int(1, 7, step=2),
               "lr": asc.Float(1e-4, 1e-1, log=True), "big": asc.Int(0, 10**6)}),
    asc.Space({"kind": asc.Choice(["a", "b"]), "x": asc.Choice([1, 2], when={"kind": "a"}),
               "cell": asc.Cell(nodes=4, ops=["none", "skip", "conv"], when={"kind": "b"})}),
], ids=["mbv3", "scalars", "conditional"])
def test_other_spaces_map_and_round_trip(space):
    s = asc.create_strategy("nsga2-optuna", space, seed=1, population_size=4)
    cands = drive(s, 25)
    assert len({c.arch.functional_hash() for c in cands}) == 25
    for c in cands[:5]:
        params, dists = s._mapping.encode(c.arch)
        assert set(params) == set(dists)
        assert s._mapping.decode(optuna.trial.FixedTrial(params)) == c.arch


def test_registered_enumerable_spaces_map():
    for name in ("transnas-micro", "transnas-macro", "nbgraph"):
        space = asc.create_space(name)
        s = asc.create_strategy("tpe-optuna", space, seed=0)
        cands = drive(s, 12)
        assert len({c.arch.functional_hash() for c in cands}) == 12


class _Unbounded(Param):
    """A parameter without an enumeration (for the error path)."""

    kind = "unbounded"

    def size(self):
        return float("inf")

    def _config(self):
        return {}


def test_unmappable_space_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot map parameter 'u'"):
        asc.create_strategy("tpe-optuna", asc.Space({"u": _Unbounded()}))


def test_missing_optuna_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(OptionalDependencyError, match=r"archscout\[compare\]"):
        asc.create_strategy("tpe-optuna", NB201)


def test_bad_parameters():
    for name, params in [("tpe-optuna", {"n_startup_trials": -1}), ("tpe-optuna", {"multivariate": "yes"}),
                         ("nsga2-optuna", {"population_size": 1}),
                         ("nsga2-optuna", {"crossover_prob": 2.0}), ("nsga2-optuna", {"mutation_prob": "x"})]:
        with pytest.raises(ConfigError):
            asc.create_strategy(name, NB201, **params)


# --- dedup, failures, foreign results ----------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_duplicates_are_told_their_known_value(name):
    s = asc.create_strategy(name, SMALL, seed=0)
    cands = drive(s, 6)
    assert len({c.arch for c in cands}) == 6
    trials = s.study.trials
    assert len(trials) >= 6  # duplicates proposed by Optuna were told, not returned
    known = {str(c.arch): value(c.arch) for c in cands}
    for t in trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            arch = s._mapping.decode(optuna.trial.FixedTrial(t.params))
            assert t.values[0] == known[str(arch)]


def test_duplicate_of_a_pending_candidate_waits_for_its_result():
    s = asc.create_strategy("tpe-optuna", SMALL, seed=3)
    first = s.ask()
    others = [s.ask() for _ in range(5)]  # the space is exhausted: duplicates of pending ones wait
    shadows = sum(len(v) for v in s._shadows.values())
    running = [t for t in s.study.trials if t.state == optuna.trial.TrialState.RUNNING]
    assert len(running) == 6 + shadows
    for c in [first, *others]:
        s.tell(c, Result("complete", {"score": value(c.arch)}))
    assert not s._shadows
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in s.study.trials)


def test_failed_and_foreign_results_reach_the_study():
    s = asc.create_strategy("tpe-optuna", NB201, seed=0)
    c = s.ask()
    s.tell(c, Result("failed", {}, "boom"))
    assert s.study.trials[-1].state == optuna.trial.TrialState.FAIL
    foreign = NB201.parse(OPT)
    s.tell(Candidate(10_000, foreign), Result("complete", {"score": 5.0}))
    last = s.study.trials[-1]
    assert last.values == [5.0]
    assert s._mapping.decode(optuna.trial.FixedTrial(last.params)) == foreign
    s.tell(Candidate(10_001, NB201.sample(np.random.default_rng(0))), Result("infeasible", {"lat": 3.0}))
    assert s.study.trials[-1].state == optuna.trial.TrialState.FAIL


def test_on_fail_tells_optuna_a_failure():
    s = asc.create_strategy("nsga2-optuna", NB201, seed=0)
    c = s.ask()
    s.on_fail(c)
    assert s.study.trials[-1].state == optuna.trial.TrialState.FAIL
    assert not s.pending


def test_constraints_become_optuna_constraints():
    cons = [asc.Constraint("lat", "<=", 0.5)]
    s = asc.create_strategy("nsga2-optuna", NB201, objectives=OBJS, constraints=cons, seed=0)
    drive(s, 10, mo=True)
    assert len(s.study.trials) >= 10
    for t in s.study.trials:
        (viol,) = t.constraints.values()
        assert viol == pytest.approx(max(t.values[1] - 0.5, 0.0))


# --- reproducibility and state --------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_multi_objective_state_roundtrip_continues_identically(name):
    s = asc.create_strategy(name, NB201, objectives=OBJS, seed=5)
    drive(s, 33, mo=True)  # mid-generation for NSGA-II (population 20)
    pending = [s.ask() for _ in range(3)]
    state = json.loads(json.dumps(s.state_dict()))
    t = asc.create_strategy(name, NB201, objectives=OBJS, seed=77)
    t.load_state_dict(state)
    for strat in (s, t):
        for c in pending[::-1]:
            strat.tell(c, Result("complete", metrics(c.arch)))
    a = [str(c.arch) for c in drive(s, 30, mo=True)]
    b = [str(c.arch) for c in drive(t, 30, mo=True)]
    assert a == b
    assert len(s.study.trials) == len(t.study.trials)


def test_seeded_runs_repeat_and_seeds_differ():
    def traj(seed):
        return [str(c.arch) for c in drive(asc.create_strategy("tpe-optuna", NB201, seed=seed), 30)]

    assert traj(1) == traj(1)
    assert traj(1) != traj(2)


def test_tpe_beats_random_on_a_learnable_objective():
    target = NB201.parse(OPT)

    def score(arch):
        return sum(x == y for x, y in zip(arch.values[0], target.values[0])) + 0.1 * value(arch)

    def best(name):
        out = []
        for seed in range(3):
            s = asc.create_strategy(name, NB201, seed=seed)
            b = -1.0
            for _ in range(60):
                c = s.ask()
                v = score(c.arch)
                s.tell(c, Result("complete", {"score": v}))
                b = max(b, v)
            out.append(b)
        return np.mean(out)

    assert best("tpe-optuna") > best("random")
