"""Benchmark protocol extensions: two-objective runs (cheap or evaluated cost), significance tests against
a baseline, multi-fidelity runs timed on the simulated clock, and the ``bench`` flags that drive them."""

import json

import numpy as np
import pytest

import archscout as asc
from archscout.benchmarks import create_benchmark
from archscout.benchmarks.runner import RunResult, make_study, run_protocol
from archscout.benchmarks.stats import summarize
from archscout.cli import main
from archscout.errors import ConfigError
from archscout.pareto import true_front


@pytest.fixture(scope="module")
def mo_bench(nb201_table, latency_table):
    return create_benchmark("nb201", table=str(nb201_table), cost_table=str(latency_table),
                            cost_columns=["pixel3_ms"])


@pytest.mark.parametrize("mode", ["cheap", "evaluated"])
def test_two_objective_run(mo_bench, mode):
    runs = run_protocol(mo_bench, ["random", "nsga2"], 3, 40, cost_column="pixel3_ms", cost_mode=mode)
    table = {(float(a), float(c)) for a, c in zip(mo_bench.columns["valid_acc_200ep"], mo_bench.columns["pixel3_ms"])}
    for r in runs:
        assert r.cost is not None and len(r.cost) == len(r.objective) == 40
        assert r.fidelity is None
        # every recorded (objective, cost) pair is a row of the table
        assert all((float(a), float(c)) in table for a, c in zip(r.objective, r.cost))
    s = summarize(runs, mo_bench, 40, [10, 40], cost_column="pixel3_ms", cost_mode=mode)
    front = true_front(np.column_stack([mo_bench.columns["valid_acc_200ep"], mo_bench.columns["pixel3_ms"]]),
                       ["max", "min"])
    assert s["multi_objective"] and s["cost_mode"] == mode and s["front_size"] == len(front.points) > 1
    for name in ("random", "nsga2"):
        e = s["strategies"][name]
        for c in ("10", "40"):
            cp = e["checkpoints"][c]
            assert 0 < cp["hv_ratio_mean"] <= 1 and cp["hv_ratio_std"] >= 0
            assert 0 <= cp["front_recall_mean"] <= 1 and cp["front_recall_std"] >= 0
        assert e["checkpoints"]["40"]["hv_ratio_mean"] >= e["checkpoints"]["10"]["hv_ratio_mean"]
        assert len(e["curve"]["queries"]) == len(e["curve"]["hv_ratio_mean"]) <= 32
    vs = s["strategies"]["random"]["checkpoints"]["40"]["vs_baseline"]
    assert vs["baseline"] == "nsga2" and 0 <= vs["p_value"] <= 1 and isinstance(vs["better"], bool)
    assert "vs_baseline" not in s["strategies"]["nsga2"]["checkpoints"]["40"]
    json.dumps(s)


def test_cheap_cost_is_known_to_the_strategy(mo_bench):
    study, ev = make_study(mo_bench, "nsga2", 0, cost_column="pixel3_ms", cost_mode="cheap")
    arch = mo_bench.archs[7]
    assert study.strategy.known_costs(arch) == {"pixel3_ms": mo_bench.value(arch, "pixel3_ms")}
    assert "pixel3_ms" not in ev.metrics  # the evaluator returns only the objective metrics
    done = study.optimize(ev, budget=12, executor="simulated")
    for t in done:
        assert t.state == "complete"
        assert t.metrics["pixel3_ms"] == mo_bench.value(t.arch, "pixel3_ms")
    study2, ev2 = make_study(mo_bench, "nsga2", 0, cost_column="pixel3_ms", cost_mode="evaluated")
    assert study2.strategy.known_costs(arch) == {} and "pixel3_ms" in ev2.metrics


def _tiny(tmp_path):
    sp = asc.Space({"a": asc.Choice([0, 1, 2]), "b": asc.Choice([0, 1])})
    path = tmp_path / "tiny.csv"
    # acc (max) vs cost (min): the front is (1, 1), (3, 2), (4, 5)
    rows = {(0, 0): (1, 1), (0, 1): (3, 2), (1, 0): (4, 5), (1, 1): (2, 3), (2, 0): (0.5, 4), (2, 1): (3, 6)}
    with open(path, "w") as f:
        f.write("arch,acc,cost\n")
        for a in sp.enumerate():
            acc, cost = rows[(a["a"], a["b"])]
            f.write(f"{a},{acc},{cost}\n")
    return create_benchmark("tabular", table=str(path), space=sp, arch_column="arch", objective="acc",
                            cost_columns=["cost"])


def test_hv_ratio_is_one_when_the_whole_front_is_found(tmp_path):
    b = _tiny(tmp_path)
    whole = RunResult("all", 0, np.array([2.0, 1.0, 3.0, 4.0]), np.array([2.0, 1.0, 3.0, 4.0]), np.arange(4.0),
                      0.0, cost=np.array([3.0, 1.0, 2.0, 5.0]))
    part = RunResult("part", 0, np.array([2.0, 1.0, 3.0, 0.5]), np.array([2.0, 1.0, 3.0, 0.5]), np.arange(4.0),
                     0.0, cost=np.array([3.0, 1.0, 2.0, 4.0]))
    s = summarize([whole, part], b, 4, [1, 3, 4], cost_column="cost", cost_mode="evaluated")
    assert s["front_size"] == 3
    e = s["strategies"]["all"]["checkpoints"]
    assert e["4"]["hv_ratio_mean"] == pytest.approx(1.0)
    assert e["4"]["front_recall_mean"] == pytest.approx(1.0)
    assert e["3"]["front_recall_mean"] == pytest.approx(2 / 3)
    assert e["3"]["hv_ratio_mean"] < 1.0
    p = s["strategies"]["part"]["checkpoints"]["4"]
    assert p["hv_ratio_mean"] < 1.0 and p["front_recall_mean"] == pytest.approx(2 / 3)
    # a real study that evaluates the whole 6-point table finds the whole front
    runs = run_protocol(b, ["random"], 2, 6, cost_column="cost", cost_mode="cheap")
    s2 = summarize(runs, b, 6, [6], cost_column="cost", cost_mode="cheap")
    assert s2["strategies"]["random"]["checkpoints"]["6"]["hv_ratio_mean"] == pytest.approx(1.0)
    assert s2["baseline"] is None


def test_mann_whitney_by_hand(nb201_bench):
    opt = nb201_bench.optimum()
    def mk(name, seed, vals):
        return RunResult(name, seed, np.array(vals), np.array(vals), np.arange(len(vals), dtype=float), 0.0)

    runs = [mk("a", i, [opt, opt]) for i in range(4)] + [mk("b", i, [opt, opt]) for i in range(4)] \
        + [mk("c", i, [80.0 + i, 81.0 + i]) for i in range(4)]
    s = summarize(runs, nb201_bench, 2, [1, 2], baseline="a")
    assert s["baseline"] == "a"
    same = s["strategies"]["b"]["checkpoints"]["2"]["vs_baseline"]
    assert same["p_value"] == 1.0 and same["better"] is False  # identical zero regrets
    worse = s["strategies"]["c"]["checkpoints"]["2"]["vs_baseline"]
    assert 0 <= worse["p_value"] < 0.05 and worse["better"] is False
    from scipy.stats import mannwhitneyu

    reg_c = [opt - (81.0 + i) for i in range(4)]
    assert worse["p_value"] == pytest.approx(mannwhitneyu(reg_c, [0.0] * 4, alternative="two-sided").pvalue)
    with pytest.raises(ConfigError, match="baseline"):
        summarize(runs, nb201_bench, 2, baseline="zzz")


def test_multi_fidelity_run_times_full_fidelity_regret(nb201_bench):
    if "asha" not in asc.list_strategies():
        pytest.skip("asha is not registered")
    runs = run_protocol(nb201_bench, ["asha", "random"], 2, 40, multi_fidelity=True)
    asha = [r for r in runs if r.strategy == "asha"]
    assert all(r.fidelity is not None and len(r.fidelity) == len(r.objective) for r in runs)
    assert any((r.fidelity < 200).any() for r in asha)  # asha asked at 12 epochs too
    s = summarize(runs, nb201_bench, 40, [10, 40], regret_levels=[5.0, 0.0], time_target=("random", 40))
    assert s["multi_fidelity"] and s["fidelities"] == [12.0, 200.0]
    for name in ("asha", "random"):
        ttr = s["strategies"][name]["time_to_regret"]
        assert set(ttr) == {"5.0", "0.0"}
        for v in ttr.values():
            assert 0 <= v["reached"] <= 1
            assert (v["mean_s"] is None) == (v["reached"] == 0)
    tt = s["time_target"]
    assert tt["strategy"] == "random" and tt["queries"] == 40 and tt["time_s"] > 0
    r = s["strategies"]["random"]
    assert r["time_to_target_s"] is not None and 0 < r["time_ratio"] <= 1.0 + 1e-9
    # the incumbent ignores low-fidelity results: a run whose only optimum-valued result is at 12 epochs
    opt = nb201_bench.optimum()
    fake = RunResult("x", 0, np.array([opt, 80.0]), np.array([opt, 80.0]), np.array([1.0, 2.0]), 0.0,
                     fidelity=np.array([12.0, 200.0]))
    s2 = summarize([fake], nb201_bench, 2, [1, 2], regret_levels=[0.0])
    assert s2["strategies"]["x"]["checkpoints"]["2"]["regret_mean"] == pytest.approx(opt - 80.0)
    assert s2["strategies"]["x"]["checkpoints"]["1"]["hit_rate"] == 0.0
    assert s2["strategies"]["x"]["time_to_regret"]["0.0"]["reached"] == 0.0


def test_cli_bench_two_objectives_evaluated(nb201_table, latency_table, tmp_path, capsys):
    out = tmp_path / "mo"
    rc = main(["bench", "nb201", "--table", str(nb201_table), "--objective", "valid_acc_200ep",
               "--cost-table", str(latency_table), "--cost-column", "pixel3_ms", "--cost-mode", "evaluated",
               "--strategies", "random,nsga2", "--budget", "20", "--seeds", "2", "--workers", "1",
               "--checkpoints", "10", "--out", str(out)])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["cost_mode"] == "evaluated" and s["cost_column"] == "pixel3_ms" and s["baseline"] == "nsga2"
    assert 0 < s["strategies"]["random"]["checkpoints"]["20"]["hv_ratio_mean"] <= 1
    text = capsys.readouterr().out
    assert "cost mode evaluated" in text and "hv ratio" in text and "Mann-Whitney" in text


def test_cli_bad_cost_mode_and_baseline(nb201_table, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "nb201", "--table", str(nb201_table), "--cost-mode", "fast"])
    assert e.value.code == 2
    assert "--cost-mode" in capsys.readouterr().err
    rc = main(["bench", "nb201", "--table", str(nb201_table), "--strategies", "random,rea", "--baseline", "ls",
               "--budget", "5", "--seeds", "1", "--out", str(tmp_path / "x")])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "--baseline 'ls'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()
