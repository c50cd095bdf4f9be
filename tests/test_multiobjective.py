"""Exact multi-objective metrics (archscout.pareto) and the NSGA-II strategy."""

import itertools
import json
import math
import sys

import numpy as np
import pytest

import archscout as asc
from archscout.errors import ConfigError, OptionalDependencyError
from archscout.objectives import pareto_mask
from archscout.pareto import (
    front_recall,
    hv_contributions,
    hv_ratio,
    hypervolume,
    hypervolume_improvement,
    normalize,
    true_front,
)
from archscout.results import Result
from archscout.strategies.nsga2 import crowding_distance, nondominated_ranks, rank_and_crowding


def brute_hv(points, ref):
    """Inclusion-exclusion over every subset of boxes [p, ref] (exact; small sets only)."""
    pts = [np.asarray(p, float) for p in points if np.all(np.asarray(p) < ref)]
    total = 0.0
    for k in range(1, len(pts) + 1):
        for sub in itertools.combinations(pts, k):
            corner = np.max(sub, axis=0)
            total += (-1) ** (k + 1) * float(np.prod(np.asarray(ref) - corner))
    return total


def random_sets(rng, m, n_sets=60, max_n=7):
    for t in range(n_sets):
        n = int(rng.integers(0, max_n + 1))
        if t % 2:
            yield rng.random((n, m))
        else:  # a coarse grid: ties, copies and points on the reference boundary
            yield rng.integers(0, 5, (n, m)) / 4.0


# --- hypervolume ------------------------------------------------------------------------------------
@pytest.mark.parametrize("m", [1, 2])
def test_hypervolume_matches_inclusion_exclusion(m):
    rng = np.random.default_rng(m)
    ref = np.ones(m)
    for pts in random_sets(rng, m):
        assert hypervolume(pts.reshape(-1, m), ref) == pytest.approx(brute_hv(pts, ref), abs=1e-12)


def test_hypervolume_three_objectives_matches_inclusion_exclusion():
    pytest.importorskip("pymoo")
    rng = np.random.default_rng(3)
    ref = np.ones(3)
    for pts in random_sets(rng, 3, n_sets=30, max_n=6):
        assert hypervolume(pts.reshape(-1, 3), ref) == pytest.approx(brute_hv(pts, ref), abs=1e-12)


def test_hypervolume_two_objectives_matches_pymoo():
    pytest.importorskip("pymoo")
    from pymoo.indicators.hv import HV

    rng = np.random.default_rng(5)
    for _ in range(20):
        pts = rng.random((50, 2))
        assert hypervolume(pts, (1.0, 1.0)) == pytest.approx(HV(ref_point=np.ones(2))(pts), abs=1e-12)


def test_hypervolume_simple_values_and_invariances():
    assert hypervolume(np.empty((0, 2)), (1, 1)) == 0.0
    assert hypervolume([[0.5, 0.5]], (1, 1)) == pytest.approx(0.25)
    assert hypervolume([[0.0, 0.5], [0.5, 0.0]], (1, 1)) == pytest.approx(0.75)
    assert hypervolume([[1.0, 0.0], [2.0, -1.0]], (1, 1)) == 0.0  # not strictly inside the reference
    assert hypervolume([[0.2, 0.3], [np.inf, 0.0]], (1, 1)) == pytest.approx(0.56)
    rng = np.random.default_rng(0)
    pts = rng.random((30, 2))
    ref = np.array([1.2, 1.1])
    hv = hypervolume(pts, ref)
    assert hypervolume(pts[rng.permutation(30)], ref) == pytest.approx(hv)  # order
    assert hypervolume(np.vstack([pts, pts + 0.01]), ref) == pytest.approx(hv)  # dominated points
    assert hypervolume(pts + 3.0, ref + 3.0) == pytest.approx(hv)  # translation
    assert hypervolume(pts * [2.0, 5.0], ref * [2.0, 5.0]) == pytest.approx(10.0 * hv)  # scaling
    assert hypervolume(pts, 1.1) == pytest.approx(hypervolume(pts, (1.1, 1.1)))  # scalar reference


def test_hypervolume_rejects_bad_input():
    with pytest.raises(ConfigError, match="reference"):
        hypervolume([[0.1, 0.2]], (1.0, 1.0, 1.0))
    with pytest.raises(ConfigError, match="NaN"):
        hypervolume([[np.nan, 0.2]], (1.0, 1.0))
    with pytest.raises(ConfigError, match="2-D"):
        hypervolume(np.zeros((2, 2, 2)), (1.0, 1.0))


def test_three_objectives_without_pymoo_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pymoo", None)
    assert hypervolume([[0.5, 0.5]], (1, 1)) == pytest.approx(0.25)  # two objectives need no pymoo
    with pytest.raises(OptionalDependencyError, match=r"archscout\[mo\]"):
        hypervolume([[0.5, 0.5, 0.5]], (1, 1, 1))


# --- improvement and contributions --------------------------------------------------------------------
def test_hypervolume_improvement_equals_difference_of_hypervolumes():
    rng = np.random.default_rng(7)
    ref = np.ones(2)
    for front in random_sets(rng, 2, n_sets=80, max_n=10):
        front = front.reshape(-1, 2)
        cands = rng.random((20, 2)) if len(front) % 2 else rng.integers(0, 5, (20, 2)) / 4.0
        cands = np.vstack([cands, front[:2]])  # copies of front points improve nothing
        base = hypervolume(front, ref)
        expected = [hypervolume(np.vstack([front, c[None]]), ref) - base for c in cands]
        np.testing.assert_allclose(hypervolume_improvement(front, cands, ref), expected, atol=1e-12)


def test_hypervolume_improvement_three_objectives():
    pytest.importorskip("pymoo")
    rng = np.random.default_rng(8)
    front, cands, ref = rng.random((6, 3)), rng.random((5, 3)), np.ones(3)
    base = hypervolume(front, ref)
    expected = [hypervolume(np.vstack([front, c[None]]), ref) - base for c in cands]
    np.testing.assert_allclose(hypervolume_improvement(front, cands, ref), expected, atol=1e-12)


def test_hypervolume_improvement_of_empty_front_is_box_volume():
    cands = np.array([[0.5, 0.5], [0.0, 0.9], [1.0, 0.0]])
    np.testing.assert_allclose(hypervolume_improvement(np.empty((0, 2)), cands, (1, 1)), [0.25, 0.1, 0.0])


def test_hv_contributions_equal_leave_one_out():
    rng = np.random.default_rng(9)
    ref = np.ones(2)
    for pts in random_sets(rng, 2, n_sets=60, max_n=10):
        pts = pts.reshape(-1, 2)
        total = hypervolume(pts, ref)
        expected = [total - hypervolume(np.delete(pts, i, axis=0), ref) for i in range(len(pts))]
        np.testing.assert_allclose(hv_contributions(pts, ref), expected, atol=1e-12)


# --- true front -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("m", [2, 3])
def test_true_front_matches_pareto_mask(m):
    rng = np.random.default_rng(10 + m)
    for grid in (False, True):
        vals = rng.integers(0, 12, (2000, m)).astype(float) if grid else rng.normal(size=(2000, m))
        dirs = ["max", "min", "max"][:m]
        front = true_front(vals, dirs)
        signed = vals * np.array([1.0 if d == "max" else -1.0 for d in dirs])
        np.testing.assert_array_equal(front.indices, np.flatnonzero(pareto_mask(signed)))
        np.testing.assert_array_equal(front.points, np.unique(vals[front.indices], axis=0))


def test_true_front_keeps_copies_and_breaks_ties_exactly():
    vals = np.array([[1.0, 5.0], [1.0, 5.0], [1.0, 4.0], [0.0, 1.0], [2.0, 9.0], [2.0, 9.0], [3.0, 9.5]])
    front = true_front(vals, ["min", "min"])  # (1, 4) beats (1, 5); (2, 9) is dominated by (1, 4)
    np.testing.assert_array_equal(front.indices, [3])
    front = true_front(vals, ["max", "max"])
    np.testing.assert_array_equal(front.indices, [6])
    front = true_front(vals, ["max", "min"])
    np.testing.assert_array_equal(front.indices, [2, 3, 4, 5, 6])
    assert len(front.points) == 4  # the two copies of (2, 9) count once


def test_true_front_of_a_benchmark_table(nb201_table, latency_table):
    from archscout.benchmarks import create_benchmark

    bench = create_benchmark("nb201", table=str(nb201_table), cost_table=str(latency_table),
                             cost_columns=["pixel3_ms"])
    vals = np.column_stack([bench.columns["valid_acc_200ep"], bench.columns["pixel3_ms"]])
    front = true_front(vals, ["max", "min"])
    np.testing.assert_array_equal(front.indices, np.flatnonzero(pareto_mask(vals * [1.0, -1.0])))
    assert vals[front.indices, 0].max() == vals[:, 0].max()
    assert hv_ratio(vals[front.indices], front.points, ["max", "min"]) == pytest.approx(1.0)


def test_true_front_rejects_bad_input():
    with pytest.raises(ConfigError, match="direction"):
        true_front(np.zeros((3, 2)), ["max"])
    with pytest.raises(ConfigError, match="'max' or 'min'"):
        true_front(np.zeros((3, 2)), ["max", "up"])
    with pytest.raises(ConfigError, match="finite"):
        true_front([[1.0, np.inf]], ["max", "min"])


# --- normalised measures ------------------------------------------------------------------------------
def test_normalize_maps_ideal_and_nadir_to_zero_and_one():
    pts = np.array([[2.0, 10.0], [4.0, 30.0], [3.0, 10.0]])
    out = normalize(pts, pts.min(axis=0), pts.max(axis=0))
    np.testing.assert_allclose(out, [[0.0, 0.0], [1.0, 1.0], [0.5, 0.0]])
    np.testing.assert_allclose(normalize([[1.0, 2.0]], [1.0, 2.0], [1.0, 3.0]), [[0.0, 0.0]])  # flat column


def test_hv_ratio_follows_its_definition():
    # accuracy (max) and latency (min): the true front is (90, 1), (95, 3), (99, 10)
    front = np.array([[90.0, 1.0], [95.0, 3.0], [99.0, 10.0]])
    dirs = ["max", "min"]
    assert hv_ratio(front, front, dirs) == pytest.approx(1.0)
    assert hv_ratio(np.vstack([front, [[80.0, 2.0]]]), front, dirs) == pytest.approx(1.0)
    # by hand: minimisation form (-acc, lat), ideal (-99, 1), nadir (-90, 10), reference 1.1
    norm = normalize(front * [-1, 1], np.array([-99.0, 1.0]), np.array([-90.0, 10.0]))
    full = hypervolume(norm, (1.1, 1.1))
    only_middle = (1.1 - norm[1, 0]) * (1.1 - norm[1, 1])
    assert hv_ratio(front[1:2], front, dirs) == pytest.approx(only_middle / full)
    assert hv_ratio([[80.0, 50.0]], front, dirs) == 0.0  # outside the reference box
    assert hv_ratio([[np.nan, 1.0], [99.0, 10.0]], front, dirs) == pytest.approx(
        hv_ratio([[99.0, 10.0]], front, dirs))  # failed evaluations are ignored
    assert 0.0 < hv_ratio(front[:2], front, dirs) < 1.0


def test_front_recall_counts_distinct_front_points():
    front = np.array([[90.0, 1.0], [95.0, 3.0], [95.0, 3.0], [99.0, 10.0]])
    assert front_recall(front, front) == 1.0
    assert front_recall([[95.0, 3.0]], front) == pytest.approx(1 / 3)
    assert front_recall([[95.0 * (1 + 1e-14), 3.0]], front) == pytest.approx(1 / 3)  # within 1e-12 relative
    assert front_recall([[95.0 * (1 + 1e-9), 3.0]], front) == 0.0
    assert front_recall(np.empty((0, 2)), front) == 0.0


# --- NSGA-II building blocks --------------------------------------------------------------------------
def test_nondominated_ranks_peel_fronts():
    rng = np.random.default_rng(0)
    vals = rng.integers(0, 6, (60, 2)).astype(float)
    rank = nondominated_ranks(vals)
    rest = np.arange(60)
    r = 0
    while len(rest):
        mask = pareto_mask(vals[rest])
        np.testing.assert_array_equal(np.sort(np.flatnonzero(rank == r)), np.sort(rest[mask]))
        rest = rest[~mask]
        r += 1


def test_crowding_distance():
    d = crowding_distance(np.array([[0.0, 4.0], [1.0, 3.0], [3.0, 1.0], [4.0, 0.0]]))
    assert np.isinf(d[0]) and np.isinf(d[3])
    np.testing.assert_allclose(d[1:3], [3 / 4 + 3 / 4, 3 / 4 + 3 / 4])
    assert np.isinf(crowding_distance(np.zeros((2, 2)))).all()


def test_constrained_domination_order():
    vals = np.array([[1.0, 1.0], [5.0, 5.0], [0.0, 0.0], [9.0, 9.0], [-1.0, -1.0], [9.0, 9.0]])
    viol = np.array([0.0, 2.0, 0.0, 0.5, math.inf, 2.0])
    rank, _ = rank_and_crowding(vals, viol)
    # feasible by domination (1,1) > (0,0); then violation 0.5; then 2.0 (two rows); failed last
    assert list(rank) == [0, 3, 1, 2, 4, 3]


# --- the NSGA-II strategy ------------------------------------------------------------------------------
SPACE = asc.create_space("nb201")
OBJS = [asc.Objective("acc", "max"), asc.Objective("lat", "min")]


def synthetic(arch):
    """Two conflicting objectives on NB201: convolutions raise accuracy and latency."""
    ops = arch.values[0]
    conv3 = sum(o == "nor_conv_3x3" for o in ops)
    conv1 = sum(o == "nor_conv_1x1" for o in ops)
    jitter = int(arch.functional_hash()[:6], 16) / 16**6
    acc = 3.0 * conv3 + 2.0 * conv1 + sum(o == "skip_connect" for o in ops[3:]) + jitter
    lat = 2.0 * conv3 ** 1.5 + conv1 + 0.3 * jitter
    return {"acc": acc, "lat": lat}


def run(strategy, n, batch=1, order=None):
    pts = []
    while len(pts) < n:
        cands = [strategy.ask() for _ in range(batch)]
        if order == "reverse":
            cands = cands[::-1]
        for c in cands:
            m = synthetic(c.arch)
            strategy.tell(c, Result("complete", m))
            pts.append([m["acc"], m["lat"]])
    return np.array(pts)


def _front():
    vals = np.array([[m["acc"], m["lat"]] for m in (synthetic(a) for a in SPACE.enumerate())])
    return true_front(vals, ["max", "min"]).points


def test_nsga2_beats_random_on_hypervolume():
    front = _front()
    dirs = ["max", "min"]

    def score(name):
        return np.mean([hv_ratio(run(asc.create_strategy(name, SPACE, objectives=OBJS, seed=s), 120), front, dirs)
                        for s in range(6)])

    assert score("nsga2") > score("random") + 0.01


def test_nsga2_asynchronous_batches_in_any_order():
    s = asc.create_strategy("nsga2", SPACE, objectives=OBJS, seed=0, population_size=20)
    pts = run(s, 100, batch=5, order="reverse")
    assert len(pts) == 100 and not s._pool  # five full generations, results told out of order
    assert len(s._parents) == 20
    # elitism: the extremes of the front seen so far (infinite crowding) always survive
    signed = pts * [1.0, -1.0]
    for j in range(2):
        best = signed[np.argmax(signed[:, j])]
        assert any(np.array_equal(best, p) for p in s._pvals)


def test_nsga2_keeps_proposing_while_results_are_pending():
    s = asc.create_strategy("nsga2", SPACE, objectives=OBJS, seed=1, population_size=4)
    run(s, 8)
    pending = [s.ask() for _ in range(30)]  # none told: still new, distinct proposals
    assert len({c.arch.functional_hash() for c in pending}) == 30
    for c in pending[::-1]:
        s.tell(c, Result("complete", synthetic(c.arch)))
    assert len(s._parents) == 4


def test_nsga2_prefers_feasible_results():
    cons = [asc.Constraint("lat", "<=", 3.0)]
    s = asc.create_strategy("nsga2", SPACE, objectives=OBJS, constraints=cons, seed=2, population_size=10)
    run(s, 150)
    assert (s._pviol == 0).all()
    assert (s._pvals[:, 1] >= -3.0).all()  # signed latency


def test_nsga2_failed_results_rank_last():
    s = asc.create_strategy("nsga2", SPACE, objectives=OBJS, seed=3, population_size=4)
    for i in range(12):
        c = s.ask()
        s.tell(c, Result("failed", {}, "boom") if i % 3 == 0 else Result("complete", synthetic(c.arch)))
    assert np.isfinite(s._pviol).all()


def test_nsga2_single_objective_is_a_genetic_algorithm():
    def best(name):
        out = []
        for seed in range(4):
            s = asc.create_strategy(name, SPACE, objectives=[asc.Objective("acc", "max")], seed=seed)
            out.append(run(s, 100)[:, 0].max())
        return np.mean(out)

    assert best("nsga2") >= best("random")


def test_nsga2_state_roundtrip_multi_objective():
    s = asc.create_strategy("nsga2", SPACE, objectives=OBJS, seed=4, population_size=6)
    run(s, 27)
    pending = [s.ask() for _ in range(4)]
    t = asc.create_strategy("nsga2", SPACE, objectives=OBJS, seed=99, population_size=6)
    t.load_state_dict(json.loads(json.dumps(s.state_dict())))
    for strat in (s, t):
        for c in pending[::-1]:
            strat.tell(c, Result("complete", synthetic(c.arch)))
    np.testing.assert_array_equal(run(s, 30, batch=3), run(t, 30, batch=3))


@pytest.mark.parametrize("params", [{"population_size": 1}, {"population_size": 2.5}, {"crossover_prob": 1.5},
                                    {"mutation_prob": -0.1}, {"mutation_prob": True}])
def test_nsga2_bad_parameters(params):
    with pytest.raises(ConfigError):
        asc.create_strategy("nsga2", SPACE, objectives=OBJS, **params)


def test_pareto_mask_keeps_every_copy_of_a_front_point_and_agrees_with_the_definition():
    rng = np.random.default_rng(7)
    pts = rng.integers(0, 4, size=(200, 2)).astype(float)  # many exact duplicates
    pts[:5] = -np.inf
    mask = pareto_mask(pts)
    for i, p in enumerate(pts):
        dominated = np.any(np.all(pts >= p, axis=1) & np.any(pts > p, axis=1))
        assert mask[i] == (not dominated)
    assert pareto_mask(np.ones((1000, 3))).all()  # identical points are all kept
    assert pareto_mask(np.zeros((0, 2))).shape == (0,)
