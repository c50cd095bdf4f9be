"""The table cost model: one CostModel for a numeric column of a CSV table of architectures, rebuilt from every
config it writes (``table``, ``table-latency``, ``TabularBenchmark.cost_model``), and the study header's cost
models rebuilt with ``cost_models_from_config``."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

import archscout as asc
from archscout.benchmarks import TabularBenchmark, create_benchmark
from archscout.benchmarks.protocol import make_study
from archscout.errors import ConfigError, DataError
from archscout.hardware import (
    TableCost,
    TableLatency,
    cost_model_from_config,
    cost_models_from_config,
    create_cost_model,
)

ARCHS = [  # NB201 cells; the last two compute one function under the "nb201" hash rule (dead paths collapse)
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|none~0|+|skip_connect~0|nor_conv_3x3~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|",
    "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|avg_pool_3x3~0|none~1|none~2|",
]
TWIN = "|skip_connect~0|+|skip_connect~0|nor_conv_3x3~1|+|avg_pool_3x3~0|none~1|none~2|"  # same function as ARCHS[3]


def _write(path, rows, header="arch_str,group,lat_ms,acc") -> str:
    path.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return str(path)


@pytest.fixture()
def table(tmp_path) -> str:
    rows = [(a, "ab"[i % 2], 1.5 + i, 70 + i) for i, a in enumerate(ARCHS)]
    return _write(tmp_path / "lat.csv", rows)


def _same_predictions(a, b, archs) -> None:
    assert [a.predict(x) for x in archs] == [b.predict(x) for x in archs]


def _bump(path: str) -> None:
    """A new modification time, so the next load reads the file again."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


# --- the "table" model ---------------------------------------------------------------------------------------
def test_table_cost_reads_a_column_and_round_trips_with_a_non_default_space(table):
    space = asc.create_space("nb201", hash_rule="none")
    model = create_cost_model("table", table=table, column="lat_ms", space=space)
    archs = [space.parse(a) for a in ARCHS]
    assert isinstance(model, TableCost) and model.cheap and model.unit == "ms"
    assert [model.predict(a) for a in archs] == [1.5, 2.5, 3.5, 4.5]
    cfg = model.to_config()
    assert cfg["space"] == space.to_config() and "params" in cfg["space"]  # hash_rule="none" is stored
    again = cost_model_from_config(cfg)
    assert type(again) is TableCost and again.space == space and again.to_config() == cfg
    _same_predictions(model, again, archs)
    np.testing.assert_array_equal(again.predict_many(archs), [1.5, 2.5, 3.5, 4.5])
    assert create_cost_model("table", table=table, column="acc", space="nb201").unit == ""
    assert create_cost_model("table", table=table, column="acc", space="nb201", unit="%").unit == "%"


def test_where_keeps_some_rows_and_a_missing_architecture_is_a_data_error(table):
    model = create_cost_model("table", table=table, column="acc", space={"name": "nb201"}, where={"group": "b"})
    space = model.space
    assert model.predict(space.parse(ARCHS[1])) == 71.0 and model.predict(space.parse(ARCHS[3])) == 73.0
    with pytest.raises(DataError) as e:
        model.predict(space.parse(ARCHS[0]))
    assert table in str(e.value) and ARCHS[0] in str(e.value)
    again = cost_model_from_config(model.to_config())
    assert again.where == {"group": "b"}
    _same_predictions(model, again, [space.parse(ARCHS[1]), space.parse(ARCHS[3])])
    with pytest.raises(DataError, match="no row with"):
        create_cost_model("table", table=table, column="acc", space="nb201", where={"group": "z"})


def test_functional_key_finds_every_member_of_a_class(tmp_path):
    space = asc.create_space("nb201")
    assert space.parse(TWIN).functional_hash() == space.parse(ARCHS[3]).functional_hash()
    path = _write(tmp_path / "classes.csv", [(a, "a", 2.0 + i, 0) for i, a in enumerate(ARCHS)])
    model = create_cost_model("table", table=path, column="lat_ms", space="nb201", key="functional")
    assert model.predict(space.parse(TWIN)) == model.predict(space.parse(ARCHS[3])) == 5.0
    again = cost_model_from_config(model.to_config())
    assert again.key == "functional"
    _same_predictions(model, again, [space.parse(a) for a in ARCHS + [TWIN]])
    by_values = create_cost_model("table", table=path, column="lat_ms", space="nb201")
    with pytest.raises(DataError, match="no row for architecture"):
        by_values.predict(space.parse(TWIN))
    twice = _write(tmp_path / "twice.csv", [(a, "a", 1, 0) for a in ARCHS + [TWIN]])
    with pytest.raises(DataError, match="functionally equal"):
        create_cost_model("table", table=twice, column="lat_ms", space="nb201", key="functional")


def test_template_arch_column(tmp_path):
    space = asc.create_space("nb201")
    rows = [(a[: a.index("+")], a[a.index("+"):], 1.0 + i) for i, a in enumerate(ARCHS)]
    path = _write(tmp_path / "split.csv", rows, header="head,tail,lat_ms")
    model = create_cost_model("table", table=path, column="lat_ms", space="nb201", arch_column="{head}{tail}")
    assert model.predict(space.parse(ARCHS[2])) == 3.0
    _same_predictions(model, cost_model_from_config(model.to_config()), [space.parse(a) for a in ARCHS])


def test_loaded_tables_are_shared_until_the_file_changes(table):
    a = create_cost_model("table", table=table, column="lat_ms", space="nb201")
    b = cost_model_from_config(a.to_config())
    assert b.values is a.values
    assert create_cost_model("table", table=os.path.relpath(table), column="lat_ms", space="nb201").values is a.values
    with open(table, "a") as f:
        f.write("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,a,9.5,0\n")
    _bump(table)
    c = cost_model_from_config(a.to_config())
    assert c.values is not a.values and c.predict(asc.create_space("nb201").parse(
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")) == 9.5


@pytest.mark.parametrize("params, error, words", [
    ({"column": "lat_ms", "space": "nb201"}, ConfigError, "needs table="),
    ({"table": "T", "space": "nb201"}, ConfigError, "needs column="),
    ({"table": "T", "column": "lat_ms"}, ConfigError, "needs space="),
    ({"table": "T", "column": "lat_ms", "space": 3}, ConfigError, "space must be"),
    ({"table": "T", "column": "lat_ms", "space": "nb201", "key": "hash"}, ConfigError, "unknown key"),
    ({"table": "T", "column": "lat_ms", "space": "nb201", "where": "group=a"}, ConfigError, "where must map"),
    ({"table": "T", "column": "lat_ms", "space": "nb201", "arch_column": "{}"}, ConfigError, "must name its columns"),
    ({"table": "T", "column": "lat_ms", "space": "nb201", "unit": 1}, ConfigError, "unit must be"),
    ({"table": "T", "column": "tpu_ms", "space": "nb201"}, DataError, "no column 'tpu_ms'"),
    ({"table": "missing.csv", "column": "lat_ms", "space": "nb201"}, DataError, "does not exist"),
])
def test_bad_settings(table, params, error, words):
    params = {k: (table if v == "T" else v) for k, v in params.items()}
    with pytest.raises(error, match=words):
        create_cost_model("table", **params)


def test_bad_rows_and_empty_cells(tmp_path):
    dup = _write(tmp_path / "dup.csv", [(ARCHS[0], "a", 1, 0), (ARCHS[0], "a", 2, 0)])
    with pytest.raises(DataError, match=r"dup.csv:3: architecture .* appears twice \(first on line 2\)"):
        create_cost_model("table", table=dup, column="lat_ms", space="nb201")
    bad = _write(tmp_path / "bad.csv", [("|conv~0|", "a", 1, 0)])
    with pytest.raises(DataError, match="bad.csv:2: column 'arch_str'"):
        create_cost_model("table", table=bad, column="lat_ms", space="nb201")
    gap = _write(tmp_path / "gap.csv", [(ARCHS[0], "a", "", 0), (ARCHS[1], "a", 2, 0)])
    model = create_cost_model("table", table=gap, column="lat_ms", space="nb201")
    with pytest.raises(DataError, match="no value in column 'lat_ms'"):
        model.predict(model.space.parse(ARCHS[0]))
    assert model.predict(model.space.parse(ARCHS[1])) == 2.0


# --- table-latency ------------------------------------------------------------------------------------------
def test_table_latency_keeps_its_settings_and_old_configs(table):
    space = asc.create_space("nb201")
    model = create_cost_model("table-latency", table=table, column="lat_ms")
    assert isinstance(model, TableLatency) and isinstance(model, TableCost) and model.unit == "ms"
    old = {"name": "table-latency", "table": table, "column": "lat_ms", "device": None, "arch_column": "arch_str",
           "space": {"name": "nb201"}}
    assert model.to_config() == old  # the keys stored studies hold, unchanged
    _same_predictions(model, cost_model_from_config(old), [space.parse(a) for a in ARCHS])
    none = asc.create_space("nb201", hash_rule="none")
    filtered = create_cost_model("table-latency", table=table, column="acc", space=none, key="functional",
                                 where={"group": "a"})
    cfg = filtered.to_config()
    assert cfg["key"] == "functional" and cfg["where"] == {"group": "a"} and cfg["space"] == none.to_config()
    again = cost_model_from_config(cfg)
    assert type(again) is TableLatency and again.unit == "ms"
    _same_predictions(filtered, again, [none.parse(ARCHS[0]), none.parse(ARCHS[2])])


def test_table_latency_from_a_device_profile_round_trips(latency_table):
    space = asc.create_space("nb201")
    model = asc.create_device("nb201-pixel3", table=latency_table).latency_model()
    arch = space.parse(ARCHS[0])
    assert model.predict(arch) == pytest.approx(3.60585)
    cfg = model.to_config()
    assert cfg["device"] == "nb201-pixel3" and cfg["column"] == "pixel3_ms"
    again = cost_model_from_config(cfg)
    assert again.device == model.device and again.predict(arch) == model.predict(arch)


# --- the benchmark's cost model -----------------------------------------------------------------------------
def _bench(tmp_path, **params) -> TabularBenchmark:
    main = _write(tmp_path / "main.csv", [(a, "ab"[i % 2], 1.5 + i, 70 + i) for i, a in enumerate(ARCHS)])
    return TabularBenchmark(main, asc.create_space("nb201", hash_rule="none"), objective="acc", **params)


def _check_rebuilds(model, bench, column, archs, fresh_path=None) -> None:
    """``model`` gives the benchmark's values; its config rebuilds it, and a fresh read of the file (after
    its modification time changes) holds exactly the values the benchmark handed over."""
    assert [model.predict(a) for a in archs] == [bench.value(a, column) for a in archs]
    cfg = model.to_config()
    again = cost_model_from_config(cfg)
    assert again.values is model.values  # a rebuild in this process shares the handed-over values
    _bump(fresh_path or cfg["table"])
    fresh = cost_model_from_config(cfg)
    assert fresh.values is not model.values and fresh.values == model.values


def test_benchmark_cost_model_of_its_own_table_with_where(tmp_path):
    bench = _bench(tmp_path, where={"group": "a"}, cost_columns=["lat_ms"])
    model = bench.cost_model("lat_ms")
    assert isinstance(model, TableCost) and model.unit == "ms" and model.where == {"group": "a"}
    cfg = model.to_config()
    assert cfg["table"] == bench.table and cfg["space"] == bench.space.to_config() and cfg["column"] == "lat_ms"
    _check_rebuilds(model, bench, "lat_ms", bench.archs)
    with pytest.raises(DataError, match=re.escape(ARCHS[1])):
        model.predict(asc.create_space("nb201", hash_rule="none").parse(ARCHS[1]))  # filtered out by where


def test_benchmark_cost_model_of_a_joined_cost_table_reads_no_file(tmp_path):
    costs = _write(tmp_path / "costs.csv", [(f"x{i}", a, 0.25 * i) for i, a in enumerate(ARCHS)],
                   header="idx,cell,energy_mj")
    bench = _bench(tmp_path, cost_table=costs, cost_columns=["energy_mj"], cost_arch_column="cell")
    # rewrite the cost file but keep its modification time: a model that read it would see the new values
    st = os.stat(costs)
    _write(tmp_path / "costs.csv", [(f"x{i}", a, 99.0) for i, a in enumerate(ARCHS)], header="idx,cell,energy_mj")
    os.utime(costs, ns=(st.st_atime_ns, st.st_mtime_ns))
    model = bench.cost_model("energy_mj")
    cfg = model.to_config()
    assert (cfg["table"], cfg["arch_column"], cfg["where"], cfg["unit"]) == (costs, "cell", {}, "mJ")
    assert [model.predict(a) for a in bench.archs] == [0.0, 0.25, 0.5, 0.75]
    assert cost_model_from_config(cfg).values is model.values
    _bump(costs)
    assert cost_model_from_config(cfg).predict(bench.archs[1]) == 99.0  # an edited file is read again


def test_benchmark_cost_model_of_a_cost_table_with_more_rows_reads_it(tmp_path):
    extra = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    costs = _write(tmp_path / "costs.csv", [(a, 0.5 + i) for i, a in enumerate(ARCHS + [extra])],
                   header="arch_str,lat_s")
    bench = _bench(tmp_path, cost_table=costs, cost_columns=["lat_s"])
    model = bench.cost_model("lat_s")
    assert model.unit == "s" and len(model.values) == len(bench) + 1  # the whole file, as a rebuild reads it
    _check_rebuilds(model, bench, "lat_s", bench.archs)


def test_benchmark_cost_model_keyed_by_function(tmp_path):
    main = _write(tmp_path / "classes.csv", [(a, "a", 2.0 + i, 70 + i) for i, a in enumerate(ARCHS)])
    bench = TabularBenchmark(main, asc.create_space("nb201"), objective="acc", key="functional",
                             cost_columns=["lat_ms"])
    model = bench.cost_model("lat_ms")
    assert model.key == "functional"
    twin = bench.space.parse(TWIN)
    assert model.predict(twin) == bench.value(twin, "lat_ms") == 5.0
    _check_rebuilds(model, bench, "lat_ms", bench.archs + [twin])


def test_benchmark_cost_model_of_a_column_it_did_not_load(tmp_path):
    with pytest.raises(ConfigError, match=r"'lat_ms' was not loaded .*cost_columns=\['lat_ms'\]"):
        _bench(tmp_path).cost_model("lat_ms")


def test_nb201_latency_cost_model_matches_a_fresh_read(tmp_path, nb201_table, latency_table):
    bench = create_benchmark("nb201", table=str(nb201_table), cost_table=str(latency_table),
                             cost_columns=["pixel3_ms"])
    model = bench.cost_model("pixel3_ms")
    assert model.space == bench.space and model.unit == "ms"
    link = tmp_path / "latency.csv"  # another path to the same file: a fresh read, not the handed-over values
    link.symlink_to(latency_table)
    fresh = cost_model_from_config({**model.to_config(), "table": str(link)})
    assert fresh.values is not model.values and fresh.values == model.values


def test_nbgraph_cost_models_round_trip(nbg_cora_table):
    bench = create_benchmark("nbgraph", table=str(nbg_cora_table))
    rng = np.random.default_rng(0)
    archs = [bench.space.sample(rng) for _ in range(50)]
    for column, unit in (("latency_s", "s"), ("params", "")):
        model = bench.cost_model(column)
        assert (model.key, model.arch_column, model.unit) == ("functional", bench.arch_column, unit)
        again = cost_model_from_config(model.to_config())
        _same_predictions(model, again, archs)
        assert [model.predict(a) for a in archs] == [bench.value(a, column) for a in archs]


# --- a study header's cost models -----------------------------------------------------------------------------
def test_protocol_study_header_rebuilds_live_cost_models(tmp_path):
    costs = _write(tmp_path / "costs.csv", [(a, 0.5 + i) for i, a in enumerate(ARCHS)], header="arch_str,lat_ms")
    bench = _bench(tmp_path, cost_table=costs, cost_columns=["lat_ms"])
    study, _ = make_study(bench, "random", 0, cost_column="lat_ms", cost_mode="cheap")
    header = study.config["cost_models"]
    assert header["lat_ms"]["cheap"] is True and header["lat_ms"]["name"] == "table"
    live = cost_models_from_config(header)
    assert list(live) == ["lat_ms"] and live["lat_ms"].to_config() == bench.cost_model("lat_ms").to_config()
    _same_predictions(live["lat_ms"], bench.cost_model("lat_ms"), bench.archs)
    assert asc.cost_models_from_config is cost_models_from_config


def test_nb201_protocol_header_rebuilds(nb201_table, latency_table):
    bench = create_benchmark("nb201", table=str(nb201_table), cost_table=str(latency_table),
                             cost_columns=["pixel3_ms"])
    study, _ = make_study(bench, "random", 0, cost_column="pixel3_ms", cost_mode="cheap")
    live = cost_models_from_config(study.config["cost_models"])
    rng = np.random.default_rng(1)
    archs = [bench.space.sample(rng) for _ in range(200)]
    assert [live["pixel3_ms"].predict(a) for a in archs] == [bench.value(a, "pixel3_ms") for a in archs]


def test_headers_that_cannot_be_rebuilt_name_the_metric(table):
    with pytest.raises(ConfigError, match=r"cost model 'convs' cannot be rebuilt .*'type': 'ConvCount'.*no registered"):
        cost_models_from_config({"convs": {"type": "ConvCount", "cheap": True}})
    with pytest.raises(ConfigError, match=r"cost model 'convs' cannot be rebuilt: .*'my-convs'.*import the module"):
        cost_models_from_config({"convs": {"name": "my-convs", "cheap": True}})
    with pytest.raises(ConfigError, match=r"cost model 'lat' cannot be rebuilt .*unknown key 'hash'"):
        cost_models_from_config({"lat": {"name": "table", "table": table, "column": "lat_ms", "space": "nb201",
                                         "key": "hash", "cheap": True}})
    with pytest.raises(DataError, match=r"cost model 'lat': .*gone.csv.*does not exist"):
        cost_models_from_config({"lat": {"name": "table", "table": "gone.csv", "column": "lat_ms", "space": "nb201"}})
    with pytest.raises(ConfigError, match="must map metric names"):
        cost_models_from_config([("lat", {})])
    with pytest.raises(ConfigError, match=r"overrides name metrics without a cost model: \['flops'\]"):
        cost_models_from_config({}, overrides={"flops": {}})
    lat = cost_models_from_config({"lat": {"name": "table", "table": table, "column": "lat_ms", "space": "nb201"}},
                                  overrides={"lat": {"unit": "s"}})["lat"]
    assert lat.unit == "s"
