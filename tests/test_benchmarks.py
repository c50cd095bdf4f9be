import csv
import json

import numpy as np
import pytest

import archscout as asc
from archscout.benchmarks import create_benchmark
from archscout.benchmarks.runner import RunResult, run_protocol
from archscout.benchmarks.stats import summarize
from archscout.errors import ConfigError, DataError

OPT_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_nb201_loader_values_and_fidelities(nb201_bench):
    b = nb201_bench
    assert len(b) == 15625
    a = b.space.parse(OPT_ARCH)
    ev = b.evaluator()
    full = ev.lookup(a)
    assert full["valid_acc_200ep"] == pytest.approx(91.60666665039064)
    assert b.optimum() == full["valid_acc_200ep"]
    low = ev.lookup(a, 12)
    assert low["valid_acc_200ep"] != full["valid_acc_200ep"]  # read from valid_acc_12ep
    assert sorted(b.fidelities) == [12.0, 200.0]
    assert ev.duration(a, 12) == pytest.approx(ev.duration(a, 200) * 12 / 200)
    assert b.mean("test_acc_200ep") == pytest.approx(83.39395669333334)


def test_cost_columns_join_by_architecture(nb201_table, latency_table):
    b = create_benchmark("nb201", table=str(nb201_table), cost_table=str(latency_table),
                         cost_columns=["pixel3_ms", "raspi4_ms"])
    with open(latency_table) as fh:
        rows = list(csv.DictReader(fh))
    arch = b.space.parse(rows[0]["arch_str"])
    m = b.evaluator().lookup(arch)
    assert m["pixel3_ms"] == float(rows[0]["pixel3_ms"])
    assert m["raspi4_ms"] == float(rows[0]["raspi4_ms"])


def test_nb201_with_a_cost_keeps_every_cell_distinct(nb201_table, latency_table):
    """Cells of one functional class differ in latency, so with a cost column dedup by function is off by
    default (the true front's cells stay reachable); an explicit rule still wins."""
    plain = create_benchmark("nb201", table=str(nb201_table))
    costed = create_benchmark("nb201", table=str(nb201_table), cost_table=str(latency_table),
                              cost_columns=["pixel3_ms"])
    forced = create_benchmark("nb201", table=str(nb201_table), cost_table=str(latency_table),
                              cost_columns=["pixel3_ms"], hash_rule="nb201")
    a = plain.space.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    b = plain.space.parse("|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|none~2|")
    assert a.functional_hash() == b.functional_hash()
    assert costed.space.parse(str(a)).functional_hash() != costed.space.parse(str(b)).functional_hash()
    assert forced.space.parse(str(a)).functional_hash() == forced.space.parse(str(b)).functional_hash()
    assert [s.params["cell"].hash_rule for s in (plain.space, costed.space, forced.space)] == ["nb201", "none", "nb201"]


def test_generic_loader_on_a_small_table(tmp_path):
    sp = asc.Space({"w": asc.Choice([8, 16]), "d": asc.Ordinal([1, 2])})
    path = tmp_path / "t.csv"
    with open(path, "w") as f:
        f.write("arch,acc,time_s\n")
        for i, a in enumerate(sp.enumerate()):
            f.write(f"{a},{10 + i},{100 * (i + 1)}\n")
    b = create_benchmark("tabular", table=str(path), space=sp, arch_column="arch", objective="acc",
                         time_column="time_s")
    assert b.optimum() == 13
    a = sp.make({"w": 16, "d": 2})
    assert b.evaluator().lookup(a) == {"acc": 13.0}
    assert b.duration(a) == 400.0


@pytest.mark.parametrize("content,match", [
    ("arch,acc\n", "no rows"),
    ("", "empty"),
    ("name,acc\nx,1\n", "no column 'arch'"),
    ("arch,acc\nw=8; d=1,abc\n", "not a number"),
    ("arch,acc\nw=9; d=1,1\n", "cannot parse"),
    ("arch,acc\nw=8; d=1,1\nw=8; d=1,2\n", "appears twice"),
    ("arch,acc\nw=8; d=1,1,5\n", "fields"),
])
def test_bad_tables(tmp_path, content, match):
    sp = asc.Space({"w": asc.Choice([8, 16]), "d": asc.Ordinal([1, 2])})
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=match):
        create_benchmark("tabular", table=str(path), space=sp, arch_column="arch", objective="acc")


def test_missing_file_and_column(nb201_table, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        create_benchmark("nb201", table=str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match="no column 'valid_acc'"):
        create_benchmark("nb201", table=str(nb201_table), objective="valid_acc")
    with pytest.raises(ConfigError):
        create_benchmark("nb201", table=str(nb201_table), bogus=1)


def test_summary_statistics_by_hand(nb201_bench):
    opt = nb201_bench.optimum()
    rep = nb201_bench.mean("test_acc_200ep")
    runs = [
        RunResult("s", 0, np.array([80.0, opt, 85.0]), np.array([79.0, 91.0, 84.0]), np.arange(3.0), 0.003),
        RunResult("s", 1, np.array([70.0, 75.0, 90.0]), np.array([69.0, 74.0, 88.0]), np.arange(3.0), 0.003),
    ]
    s = summarize(runs, nb201_bench, budget=3, checkpoints=[1, 2, 3])
    e = s["strategies"]["s"]
    assert e["checkpoints"]["2"]["hit_rate"] == 0.5
    assert e["checkpoints"]["3"]["regret_mean"] == pytest.approx(((opt - 90.0)) / 2)
    assert e["checkpoints"]["3"]["report_mean"] == pytest.approx((91.0 + 88.0) / 2)
    assert e["checkpoints"]["1"]["ri_mean"] == pytest.approx(np.mean([100 * (79 - rep) / rep, 100 * (69 - rep) / rep]))
    assert e["queries_to_optimum_mean"] == (2 + 4) / 2
    assert e["queries_to_optimum_median"] == 3.0
    assert e["overhead_ms_per_trial"] == pytest.approx(1.0)
    assert e["optimum"] == opt and e["random_sample_mean"] == rep


def test_protocol_is_reproducible_and_parallel_invariant(nb201_bench):
    a = summarize(run_protocol(nb201_bench, ["random", "rea", "ls"], 3, 60, workers=1), nb201_bench, 60)
    b = summarize(run_protocol(nb201_bench, ["random", "rea", "ls"], 3, 60, workers=2), nb201_bench, 60)
    for s in a["strategies"]:
        assert a["strategies"][s]["curve"] == b["strategies"][s]["curve"]
        assert a["strategies"][s]["checkpoints"] == b["strategies"][s]["checkpoints"]
    for key in ("regret_mean", "regret_std", "hit_rate", "report_mean", "report_std", "ri_mean"):
        assert key in a["strategies"]["rea"]["checkpoints"]["50"]
    json.dumps(a)


def test_plot_is_written(nb201_bench, tmp_path):
    from archscout.reports.bench import plot_anytime

    s = summarize(run_protocol(nb201_bench, ["random", "ls"], 2, 30), nb201_bench, 30)
    plot_anytime(s, str(tmp_path / "a.png"))
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
