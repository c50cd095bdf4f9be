"""Every kind of bad input gives a clear ArchscoutError (or CLI exit code 2 with one error line) whose
message names what is wrong, and never loses what a storage already holds."""

from __future__ import annotations

import ast
import os
import pickle
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import archscout as asc
from archscout.benchmarks import create_benchmark
from archscout.cli import main
from archscout.errors import (
    ArchscoutError,
    ConfigError,
    DataError,
    InvalidArchitectureError,
    StorageError,
    UnknownNameError,
)
from archscout.objectives import Constraint, Objective, parse_constraints, parse_objectives
from archscout.storage import create_storage
from archscout.tables import read_columns

PACKAGE = Path(asc.__file__).resolve().parent


def _words(message: str, words: str) -> None:
    """Every ``|``-separated word of ``words`` appears in ``message`` (case-insensitive), on one line."""
    assert "\n" not in message.strip(), message
    for w in words.split("|"):
        assert w.lower() in message.lower(), f"{w!r} not in {message!r}"


# --- space declarations ----------------------------------------------------------------------------------
@pytest.mark.parametrize("make,words", [
    (lambda: asc.Choice([]), "at least one option"),
    (lambda: asc.Choice(["a", "a"]), "not distinct"),
    (lambda: asc.Choice([1, "1"]), "not distinct"),
    (lambda: asc.Choice(["a;b"]), "'a;b'|cannot appear"),
    (lambda: asc.Choice([" a"]), "surrounding spaces"),
    (lambda: asc.Choice([None, "on"]), "None"),
    (lambda: asc.Choice([float("nan"), 1.0]), "nan"),
    (lambda: asc.Choice([[1], [2]]), "scalars|[1]"),
    (lambda: asc.Choice("abc"), "list of options"),
    (lambda: asc.Ordinal(5), "list of options"),
    (lambda: asc.Int(3, 1), "low <= high|low=3|high=1"),
    (lambda: asc.Int(0, 4, step=0), "step"),
    (lambda: asc.Int(0.5, 2), "low|integer"),
    (lambda: asc.Int(0, "9"), "high|integer"),
    (lambda: asc.Int(0, 2**70), "2**62"),
    (lambda: asc.Float(1.0, 1.0), "low < high"),
    (lambda: asc.Float(2.0, 1.0), "low < high"),
    (lambda: asc.Float(0.0, float("inf")), "finite"),
    (lambda: asc.Float("a", 1.0), "numbers|'a'"),
    (lambda: asc.Float(0.0, 1.0, log=True), "log|low > 0"),
    (lambda: asc.Cell(nodes=1, ops=["a"]), "nodes"),
    (lambda: asc.Cell(nodes=-3, ops=["a"]), "nodes|-3"),
    (lambda: asc.Cell(nodes=10**9, ops=["a"]), "nodes"),
    (lambda: asc.Cell(nodes=2.5, ops=["a"]), "nodes"),
    (lambda: asc.Cell(nodes=3, ops=[]), "op names"),
    (lambda: asc.Cell(nodes=3, ops=5), "op names"),
    (lambda: asc.Cell(nodes=3, ops=["a", "a"]), "not distinct"),
    (lambda: asc.Cell(nodes=3, ops=["a~b"]), "op name|'a~b'"),
    (lambda: asc.Cell(nodes=3, ops=["a", "b"], zero="z"), "zero|'z'"),
    (lambda: asc.Cell(nodes=3, ops=["a", "b"], hash_rule="exact"), "hash_rule|'exact'"),
    (lambda: asc.DigitCell(nodes=3, ops=[f"o{i}" for i in range(11)]), "at most 10"),
    (lambda: asc.DigitCell(nodes=3, ops=["a", "b"], prefix="x;"), "prefix"),
    (lambda: asc.Stages(n=0, depth=[1], layer={"k": asc.Choice([3])}), "n >= 1"),
    (lambda: asc.Stages(n=2, depth=[-1, 2], layer={"k": asc.Choice([3])}), "depth"),
    (lambda: asc.Stages(n=2, depth=[1], layer={}), "per-layer"),
    (lambda: asc.Stages(n=2, depth=[1], layer=[asc.Choice([3])]), "mapping"),
    (lambda: asc.Stages(n=2, depth=[1], layer={"k": asc.Int(1, 3)}), "'k'|choice or ordinal"),
    (lambda: asc.Skeleton(modules=(7, 3)), "modules|min <= max"),
    (lambda: asc.Skeleton(modules=5), "modules|(min, max)"),
    (lambda: asc.Skeleton(block="res-net"), "block|'-'"),
    (lambda: asc.LinkOps(links=[], ops=["a", "b"]), "link"),
    (lambda: asc.LinkOps(links=["0x"], ops=["a", "b"]), "'0x'|digit"),
    (lambda: asc.LinkOps(links=["01", "02"], ops=["a", "b"]), "'02'|not earlier"),
    (lambda: asc.LinkOps(links=["00"], ops=["a-b", "c"]), "'a-b'"),
    (lambda: asc.LinkOps(links=["00"], ops=["skip"]), "besides the identity"),
    (lambda: asc.Space({}), "non-empty"),
    (lambda: asc.Space([asc.Int(0, 1)]), "mapping"),
    (lambda: asc.Space({"a;b": asc.Int(0, 1)}), "parameter name|'a;b'"),
    (lambda: asc.Space({"a": 5}), "'a'|must be a choice"),
    (lambda: asc.Space({"b": asc.Int(0, 1, when={"a": 1}), "a": asc.Int(0, 1)}), "'b'|'a'|not declared before"),
    (lambda: asc.Space({"a": asc.Int(0, 1), "b": asc.Int(0, 1, when={"a": 5})}), "condition of 'b'|5"),
    (lambda: asc.Space({"a": asc.Int(0, 1), "b": asc.Int(0, 1, when={"a": []})}), "no allowed values"),
    (lambda: asc.Space({"a": asc.Int(0, 1), "b": asc.Int(0, 1, when=5)}), "when="),
    (lambda: asc.Space.from_config(5), "space config"),
    (lambda: asc.Space.from_config({"params": [1]}), "params"),
    (lambda: asc.Space.from_config({"params": {"a": 5}}), "parameter's config"),
    (lambda: asc.Space.from_config({"params": {"a": {"type": "integer"}}}), "unknown parameter type|'integer'"),
    (lambda: asc.Space.from_config({"params": {"a": {"type": "stages", "n": 1}}}), "stages|depth"),
    (lambda: asc.Space.from_config({"params": {"a": {"type": "int", "low": 0}}}), "int|high"),
    (lambda: asc.Space.from_config({"nam": "nb201"}), "name"),
    (lambda: asc.create_space("nb201", bogus=1), "bad parameters|'nb201'|bogus"),
    (lambda: asc.create_space("nb201").encoding_size("onehott"), "unknown encoding|'onehott'"),
    (lambda: asc.Space({"c": asc.Cell(nodes=30, ops=["a", "b"])}).encoding_size("path"), "path|onehot"),
])
def test_bad_space_declarations(make, words):
    with pytest.raises(ConfigError) as e:
        make()
    _words(str(e.value), words)


def test_unknown_space_name_suggests_the_close_one():
    with pytest.raises(UnknownNameError) as e:
        asc.create_space("nb210")
    _words(str(e.value), "unknown space|'nb210'|did you mean 'nb201'")


def test_numpy_options_keep_plain_string_forms():
    sp = asc.Space({"m": asc.Choice(list(np.linspace(0.5, 1.5, 3))), "k": asc.Ordinal(list(np.arange(1, 4)))})
    a = sp.make({"m": 1.0, "k": 2})
    assert str(a) == "m=1.0; k=2" and sp.parse(str(a)) == a
    assert sp.make({"m": np.float64(1.5), "k": np.int64(3)}) == sp.parse("m=1.5; k=3")


# --- architecture strings and values ------------------------------------------------------------------------
NB201_OK = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def _macro() -> asc.Space:
    return asc.Space({
        "width": asc.Choice([16, 32]),
        "stages": asc.Stages(n=2, depth=asc.Ordinal([1, 2]), layer={"k": asc.Choice([3, 5])}),
        "opt": asc.Choice(["sgd", "adam"]),
        "momentum": asc.Float(0.5, 0.99, when={"opt": "sgd"}),
        "layers": asc.Int(1, 8),
    })


@pytest.mark.parametrize("space,text,words", [
    ("nb201", NB201_OK.replace("nor_conv_1x1", "conv_5x5"), "unknown op 'conv_5x5'|ops are"),
    ("nb201", "", "malformed|expected 3 groups"),
    ("nb201", "|nor_conv_3x3~0|", "malformed|expected 3 groups"),
    ("nb201", NB201_OK + "+|none~0|", "expected 3 groups"),
    ("nb201", "|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2 incoming edges"),
    ("nb201", "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "'none~1'|should read 'op~0'"),
    ("nb201", "cell=" + NB201_OK + "; cell=" + NB201_OK, "given twice"),
    ("nb201", "cel=" + NB201_OK, "cannot parse"),
    ("transnas-micro", "64-41414-3_13_029", "unknown op digit 9"),
    ("transnas-micro", "64-41414-3_13", "node groups"),
    ("transnas-micro", "32-41414-3_13_020", "malformed"),
    ("transnas-macro", "64-411111111-basic", "modules"),
    ("transnas-macro", "64-11111-basic", "doublings"),
    ("transnas-macro", "64-41454-basic", "digits must be 1 to 4"),
    ("transnas-macro", "64-41414-resnet", "malformed skeleton"),
    ("nbgraph", "0012", "expected 'LINK:OP-OP-...'"),
    ("nbgraph", "0012:gcn-gat-skip", "expected 4 ops"),
    ("nbgraph", "9999:gcn-gat-skip-fc", "link '9999'"),
    ("nbgraph", "0012:gcn-gat-skip-mlp", "unknown op 'mlp'"),
    ("nbgraph", "0012:skip-skip-skip-skip", "computes nothing"),
    ("mbv3", "width_mult=1.0; stages=(kernel=3,expand=3)", "expected 5 stages"),
    ("mbv3", "width_mult=1.5; stages=" + "/".join(["(kernel=3,expand=3)" * 2] * 5), "'1.5' is not one of"),
    ("mbv3", "width_mult=1.0; stages=" + "/".join(["(kernel=3,expand=3)"] * 5), "depth 1|allowed depths"),
    ("mbv3", "width_mult=1.0; stages=" + "/".join(["(kernel=3,expand=3)(kernel=3)"] * 5), "stage 0|keys"),
    ("mbv3", "width_mult=1.0; stages=" + "/".join(["(kernel=3,expand=3)(kernel=4,expand=3)"] * 5), "'4'"),
    ("mbv3", "width_mult=1.0; stages=" + "/".join(["(kernel=3,expand=3)x(kernel=3,expand=3)"] * 5),
     "malformed stage 0"),
    ("macro", "width=16; stages=(k=3)/(k=5); opt=adam; layers=9", "layers|9 is not in [1, 8]"),
    ("macro", "width=16; stages=(k=3)/(k=5); opt=adam; layers=two", "layers|'two' is not an integer"),
    ("macro", "width=16; stages=(k=3)/(k=5); opt=adam; momentum=0.9; layers=2", "'momentum' is inactive"),
    ("macro", "width=16; stages=(k=3)/(k=5); opt=sgd; layers=2", "missing value for parameter 'momentum'"),
    ("macro", "width=16; stages=(k=3)/(k=5); opt=sgd; momentum=1.5; layers=2", "momentum|not in [0.5, 0.99]"),
    ("macro", "width=16; stages=(k=3)/(k=5); opt=sgd; momentum=nan; layers=2", "momentum|nan"),
    ("macro", "width=16 stages=(k=3)/(k=5)", "width"),
    ("macro", "width:16", "should read 'name=value'"),
])
def test_bad_architecture_strings(space, text, words):
    sp = _macro() if space == "macro" else asc.create_space(space)
    with pytest.raises(InvalidArchitectureError) as e:
        sp.parse(text)
    _words(str(e.value), words)


@pytest.mark.parametrize("space,values,words", [
    ("macro", [1, 2], "mapping"),
    ("macro", {"width": 16, "bogus": 1}, "unknown parameters|'bogus'"),
    ("macro", {"width": [16], "stages": [[[3]], [[5]]], "opt": "adam", "layers": 1}, "'width'|not one of"),
    ("macro", {"width": 16, "stages": [[[3]], [[5]]], "opt": "adam", "layers": float("inf")},
     "'layers'|not an integer"),
    ("macro", {"width": 16, "stages": [[[3]], [[5]]], "opt": "adam", "layers": 2.5}, "'layers'|not an integer"),
    ("macro", {"width": 16, "stages": [[[3]], [[5]]], "opt": "sgd", "momentum": 10**400, "layers": 1}, "momentum"),
    ("macro", {"width": 16, "stages": [[[3]], [[5]]], "opt": "sgd", "momentum": "0.9", "layers": 1},
     "momentum|not a number"),
    ("macro", {"width": 16, "stages": 5, "opt": "adam", "layers": 1}, "expected 2 stages"),
    ("nb201", {"cell": [["none"]] * 6}, "unknown op"),
    ("nb201", {"cell": ("none",) * 5}, "needs 6 edge ops"),
    ("nbgraph", {"gnn": (["0012"], ("gcn",) * 4)}, "link"),
    ("nbgraph", {"gnn": ("0012", ("gcn", ["gat"], "fc", "fc"))}, "unknown op"),
    ("transnas-macro", {"skeleton": (4, 1, 4, 1, 4.0)}, "module digits"),
])
def test_bad_architecture_values(space, values, words):
    sp = _macro() if space == "macro" else asc.create_space(space)
    with pytest.raises(InvalidArchitectureError) as e:
        sp.make(values)
    _words(str(e.value), words)


# --- objectives and constraints -----------------------------------------------------------------------------
@pytest.mark.parametrize("value,words", [
    (["<=2"], "metric name|''"),
    (["latency_ms"], "cannot read constraint 'latency_ms'|latency_ms<=2.0"),
    (["latency_ms==2"], "cannot read constraint"),
    (["latency_ms<=fast"], "'latency_ms'|bound must be a number|'fast'"),
    (["latency_ms<=inf"], "finite"),
    (["latency_ms<2>=3"], "bound must be a number"),
    ([("latency_ms", "=<", 2)], "op must be one of"),
    ([("latency_ms", "<=")], "cannot read constraint|bound"),
    ([("latency_ms", "<=", 2, 3)], "cannot read constraint"),
    ([{"name": "latency_ms", "opp": "<="}], "cannot read constraint|opp"),
    ([5], "cannot read constraint 5"),
    (5, "cannot read constraints 5"),
    ([Constraint], "cannot read constraint"),
])
def test_bad_constraints(value, words):
    with pytest.raises(ConfigError) as e:
        parse_constraints(value)
    _words(str(e.value), words)


def test_one_constraint_string_is_one_constraint():
    assert parse_constraints("latency_ms <= 2") == (Constraint("latency_ms", "<=", 2.0),)
    assert parse_constraints(None) == ()


@pytest.mark.parametrize("value,words", [
    (None, "at least one objective"),
    ([], "at least one objective"),
    ([""], "metric name"),
    ([" acc"], "metric name|' acc'"),
    ([("acc", "maximize")], "direction must be 'max' or 'min'|'maximize'"),
    ([{"name": "acc", "dir": "max"}], "cannot read objective|dir"),
    ([("acc", "max", "%", "extra")], "cannot read objective"),
    ([("acc", "max", 5)], "unit"),
    (["acc", "acc"], "not distinct"),
    ([3.5], "cannot read objective 3.5"),
    (5, "cannot read objectives 5"),
])
def test_bad_objectives(value, words):
    with pytest.raises(ConfigError) as e:
        parse_objectives(value)
    _words(str(e.value), words)


def test_objective_and_constraint_constructors_check_names():
    with pytest.raises(ConfigError, match="metric name"):
        Objective(5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="metric name"):
        Constraint(None, "<=", 1)  # type: ignore[arg-type]


# --- CSV tables ---------------------------------------------------------------------------------------------
SMALL = asc.Space({"w": asc.Choice([8, 16]), "d": asc.Ordinal([1, 2])})


def _load(path, **params):
    params = {"space": SMALL, "arch_column": "arch", "objective": "acc", **params}
    return create_benchmark("tabular", table=str(path), **params)


@pytest.mark.parametrize("content,words", [
    (b"", "empty|header row"),
    (b"arch,acc\n", "header but no rows"),
    (b"name,acc\nw=8; d=1,1\n", "no column 'arch'|its columns are ['name', 'acc']"),
    (b"arch,accuracy,time\nw=8; d=1,1,2\n", "no column 'acc'|['arch', 'accuracy', 'time']"),
    (b"arch,acc\nw=8; d=1,1\nw=16; d=1,abc\n", ":3|'acc'|'abc'|not a number"),
    (b"arch,acc\nw=8; d=1,\n", ":2|'acc'|empty or not finite"),
    (b"arch,acc\nw=8; d=1,nan\n", "'acc'|not finite"),
    (b"arch,acc\nw=8; d=1,inf\n", "'acc'|not finite"),
    (b"arch,acc\nw=9; d=1,1\n", ":2|'arch'|cannot parse|'9' is not one of"),
    (b"arch,acc\nw=8; d=1,1\nw=16; d=2,3\nw=8;d=1,2\n", ":4|appears twice|line 2"),
    (b"arch,acc\nw=8; d=1,1,5\n", ":2|3 fields|header has 2"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a UTF-8 CSV"),
    (bytes(range(256)) * 4, "not a UTF-8 CSV"),
    (b"\x00\x01\x02,\x03\n", "no column 'arch'"),
])
def test_bad_tables(tmp_path, content, words):
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as e:
        _load(path)
    _words(str(e.value), words)


def test_missing_table_and_folder_instead_of_a_file(tmp_path):
    with pytest.raises(DataError) as e:
        _load(tmp_path / "nope.csv")
    _words(str(e.value), "nope.csv|does not exist")
    with pytest.raises(DataError) as e:
        _load(tmp_path)
    _words(str(e.value), "is a folder|not a CSV file")
    with pytest.raises(ConfigError) as e:
        create_benchmark("tabular", table=5, space=SMALL, arch_column="arch", objective="acc")
    _words(str(e.value), "path of a CSV file|5")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs file permissions (not root)")
def test_unreadable_table(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("arch,acc\nw=8; d=1,1\n")
    path.chmod(0)
    try:
        with pytest.raises(DataError) as e:
            _load(path)
        _words(str(e.value), "cannot read table|permission")
    finally:
        path.chmod(0o644)


def test_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbfarch,acc\nw=8; d=1,1\nw=16; d=2,3\n")
    assert _load(path).optimum() == 3


@pytest.mark.parametrize("params,words", [
    ({"space": 5}, "space|5"),
    ({"space": "nb210"}, "unknown space 'nb210'"),
    ({"arch_column": "{w"}, "template|malformed"),
    ({"arch_column": "{}"}, "must name its columns"),
    ({"key": "hash"}, "unknown key 'hash'"),
    ({"direction": "up"}, "direction must be 'max' or 'min'"),
    ({"where": {"split": "x"}}, "no column 'split'"),
    ({"fidelities": {12: {"loss": "loss_12"}}}, "no column 'loss_12'"),
    ({"bogus": 1}, "bad parameters|bogus"),
])
def test_bad_benchmark_settings(tmp_path, params, words):
    path = tmp_path / "t.csv"
    path.write_text("arch,acc,acc_12\nw=8; d=1,1,0.5\nw=16; d=2,3,1\n")
    with pytest.raises(ArchscoutError) as e:
        _load(path, **params)
    _words(str(e.value), words)


def test_bad_queries_and_cost_tables(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("arch,acc,acc_12\nw=8; d=1,1,0.5\nw=16; d=2,3,1\n")
    b = _load(path, fidelities={12: {"acc": "acc_12"}, 200: {"acc": "acc"}})
    a = SMALL.make({"w": 8, "d": 1})
    with pytest.raises(ConfigError, match="fidelity 50 is not one of"):
        b.value(a, "acc", fidelity=50)
    with pytest.raises(KeyError, match="not in table"):
        b.value(SMALL.make({"w": 8, "d": 2}), "acc")
    with pytest.raises(ConfigError, match=r"'latency_ms' was not loaded.*pick one of"):
        b.cost_model("latency_ms")
    with pytest.raises(ConfigError, match="replay_time_scale must be a number >= 0"):
        b.evaluator(replay_time_scale=-1)
    costs = tmp_path / "c.csv"
    costs.write_text("arch,latency_ms\nw=8; d=1,2.5\n")
    with pytest.raises(DataError, match="lacks a value for 1 architectures"):
        _load(path, cost_table=str(costs), cost_columns=["latency_ms"])


def test_registered_benchmark_loaders_reject_bad_tables(tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        create_benchmark("nb201", table=str(tmp_path))
    with pytest.raises(ConfigError, match="metric name"):
        create_benchmark("nb201", table=str(tmp_path / "x.csv"), objective=5)
    with pytest.raises(ConfigError, match="path of a CSV file"):
        create_benchmark("transnas-micro", table=None)
    bad = tmp_path / "nbg.csv"
    bad.write_text("link,ops,valid_perf\n0012,gcn-gat-mlp-fc,0.5\n")
    with pytest.raises(DataError, match=r"ops \['mlp'\]"):
        create_benchmark("nbgraph", table=str(bad), cost_columns=())
    with pytest.raises(DataError, match="'search_space'; its columns are"):
        create_benchmark("transnas-macro", table=str(bad))
    assert read_columns(bad, ["link"]) == {"link": ["0012"]}


# --- datasets -----------------------------------------------------------------------------------------------
_X = np.zeros((20, 1, 4, 4))
_Y = np.arange(20) % 2


@pytest.mark.parametrize("make,error,words", [
    (lambda d: d.ArrayDataset([[1.0, 2.0], [1.0]], [0, 1]), DataError, "X cannot be read as one array"),
    (lambda d: d.ArrayDataset(_X, [[0], [1, 2]] * 10), DataError, "y cannot be read as one array"),
    (lambda d: d.ArrayDataset(np.zeros((4, 1, 2, 2), complex), [0, 1, 0, 1]), DataError, "X must hold numbers"),
    (lambda d: d.ArrayDataset(_X.reshape(20, -1), _Y), DataError, "(N, C, H, W)|reshape"),
    (lambda d: d.ArrayDataset(_X, _Y[:10]), DataError, "20 samples|y has 10"),
    (lambda d: d.ArrayDataset(_X, _Y * 10**12), DataError, "0 .. K-1"),
    (lambda d: d.ArrayDataset(_X, _Y - 1), DataError, ">= 0|-1"),
    (lambda d: d.ArrayDataset(_X, _Y + 0.5), DataError, "non-integral"),
    (lambda d: d.ArrayDataset(_X * np.nan, _Y), DataError, "NaN"),
    (lambda d: d.ArrayDataset(_X, np.zeros(20)), DataError, "only one class"),
    (lambda d: d.make_splits(d.ArrayDataset(_X, _Y), (float("nan"), 0.5, 0.5)), ConfigError, "fractions"),
    (lambda d: d.make_splits(d.ArrayDataset(_X, _Y), (0.5, 0.5)), ConfigError, "fractions"),
    (lambda d: d.make_splits(d.ArrayDataset(_X, _Y), seed="x"), ConfigError, "seed|'x'"),
    (lambda d: d.make_splits(d.ArrayDataset(_X, _Y), seed=-1), ConfigError, "seed|-1"),
    (lambda d: d.make_splits(d.ArrayDataset(_X[:4], _Y[:4])), DataError, "too few"),
    (lambda d: d.as_splits({"X": _X}), DataError, "item 0|map-style"),
    (lambda d: d.as_splits([("image", 0)]), DataError, "item 0|not (numeric image, integer label)"),
    (lambda d: d.as_splits(5), DataError, "cannot use int as a dataset"),
    (lambda d: d.as_splits("mnist6k"), UnknownNameError, "unknown dataset 'mnist6k'|'mnist5k'"),
])
def test_bad_datasets(make, error, words):
    from archscout import data

    with pytest.raises(error) as e:
        make(data)
    _words(str(e.value), words)


# --- storages -----------------------------------------------------------------------------------------------
def _events(path: str | Path) -> dict[str, list[tuple]]:
    """Every event of every study of the storage at ``path``, read with a fresh connection."""
    s = create_storage(str(path))
    try:
        return {n: [(e.kind, e.trial, e.payload) for e in s.events(n)] for n in s.study_names()}
    finally:
        s.close()


@pytest.mark.parametrize("url,words", [
    ("mysql://host/db", "unsupported storage URL scheme 'mysql'"),
    ("s3://bucket/study.db", "unsupported storage URL scheme 's3'"),
    ("sqlite://", "names no file"),
    ("sqlite:///", "names no file"),
    ("", "storage must be"),
    ("   ", "storage must be"),
])
def test_bad_storage_urls(tmp_path, monkeypatch, url, words):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StorageError) as e:
        create_storage(url)
    _words(str(e.value), words)
    assert os.listdir(tmp_path) == []


def test_storage_path_that_is_a_folder(tmp_path):
    for url in (str(tmp_path), f"sqlite:///{tmp_path}"):
        with pytest.raises(StorageError) as e:
            create_storage(url)
        _words(str(e.value), "folder")


@pytest.mark.parametrize("content", [b"arch,acc\nx,1\n", b"\x00" * 100, os.urandom(5000)])
def test_storage_that_is_not_a_database_is_refused_and_kept(tmp_path, content):
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    with pytest.raises(StorageError) as e:
        create_storage(str(path))
    _words(str(e.value), "notes.db|archscout")
    assert path.read_bytes() == content


def test_foreign_sqlite_database_is_refused_and_kept(tmp_path):
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE songs (title TEXT)")
    con.execute("INSERT INTO songs VALUES ('a')")
    con.commit()
    con.close()
    with pytest.raises(StorageError) as e:
        create_storage(str(path))
    _words(str(e.value), "other.db|not an archscout storage")
    con = sqlite3.connect(path)
    assert con.execute("SELECT title FROM songs").fetchall() == [("a",)]
    assert {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")} == {"songs"}
    con.close()


def test_load_study_errors_name_the_problem(tmp_path):
    with pytest.raises(StorageError, match="does not exist"):
        asc.load_study(str(tmp_path / "nothing.db"))
    db = tmp_path / "s.db"
    asc.create_study("nb201", objectives=["acc"], storage=str(db), name="one").storage.close()
    before = _events(db)
    with pytest.raises(StorageError) as e:
        asc.load_study(str(db), "two")
    _words(str(e.value), "'two'")
    assert _events(db) == before


@pytest.fixture
def told_study(tmp_path):
    """A SQLite study with one complete trial and one running trial."""
    db = tmp_path / "tell.db"
    study = asc.create_study("nb201", objectives=["acc"], storage=str(db), seed=0, strategy="random")
    t0, t1 = study.ask(), study.ask()
    study.tell(t0, {"acc": 1.0})
    yield study, db, t0, t1
    study.storage.close()


@pytest.mark.parametrize("bad,words", [
    (lambda s, t0, t1: s.tell(999, {"acc": 1.0}), "trial 999 does not exist"),
    (lambda s, t0, t1: s.tell(t0, {"acc": 2.0}), "already complete|told once"),
    (lambda s, t0, t1: s.tell(t1, {"acc": 1.0}, state="done"), "state must be one of|'done'"),
])
def test_bad_tell_keeps_every_record(told_study, bad, words):
    study, db, t0, t1 = told_study
    before = _events(db)
    with pytest.raises(ConfigError) as e:
        bad(study, t0, t1)
    _words(str(e.value), words)
    assert _events(db) == before
    again = asc.load_study(str(db))
    assert [(t.number, t.state) for t in again.trials] == [(0, "complete"), (1, "running")]
    study.tell(t1, {"acc": 0.5})  # the study is still usable
    assert asc.load_study(str(db)).n_evaluated == 2


@pytest.mark.parametrize("bad", [
    lambda s, t1: s.tell("abc", {"acc": 1.0}),
    lambda s, t1: s.tell(t1, {"acc": "x"}, state="failed"),
    lambda s, t1: s.tell(t1, [1, 2], state="failed"),
    lambda s, t1: s.tell(t1, {"acc": 1.0}, finished_at="x"),
])
def test_tell_with_badly_typed_arguments(told_study, bad):
    study, db, _t0, t1 = told_study
    before = _events(db)
    with pytest.raises(ConfigError):
        bad(study, t1)
    assert _events(db) == before


# --- the command line ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def macro_table(tmp_path_factory) -> Path:
    """A full synthetic table of the transnas-macro space (3,256 skeletons), objective column ``acc``."""
    path = tmp_path_factory.mktemp("tables") / "macro.csv"
    sp = asc.create_space("transnas-macro")
    with open(path, "w") as f:
        f.write("arch_str,acc\n")
        for i, a in enumerate(sp.enumerate()):
            f.write(f"{a},{(i * 7919) % 1000 / 10}\n")
    return path


def cli(capsys, *args) -> tuple[int, str]:
    """Run ``archscout ARGS`` in this process; the exit code and stderr."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse
        code = e.code
    err = capsys.readouterr().err
    return code, err


def one_error_line(err: str, words: str) -> None:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    _words(lines[0], words)


def _search(table, db, *extra):
    return ["search", "--benchmark", "tabular", "--space", "transnas-macro", "--table", table, "--objective", "acc",
            "--storage", db, "--no-progress", *extra]


@pytest.mark.parametrize("extra,words", [
    (["--budget", "0"], "--budget|positive integer"),
    (["--budget", "-3"], "--budget|positive integer"),
    (["--budget", "ten"], "--budget|'ten' is not an integer"),
    (["--budget", "3", "--workers", "two"], "--workers|'two' is not an integer"),
    (["--budget", "3", "--workers", "0"], "--workers|positive integer"),
    (["--budget", "3", "--seed", "-1"], "--seed|>= 0"),
    (["--budget", "3", "--executor", "cluster"], "--executor|invalid choice|'cluster'"),
    (["--budget", "3", "--replay-time-scale", "-1"], "--replay-time-scale|>= 0"),
    (["--budget", "3", "--direction", "up"], "--direction|invalid choice"),
    (["--budget", "3", "--strategy", "bananas2"], "unknown strategy 'bananas2'"),
    (["--budget", "3", "--space", "nb210"], "unknown space 'nb210'"),
    ([], "budget must be a positive integer"),
])
def test_search_flags(capsys, macro_table, tmp_path, extra, words):
    db = tmp_path / "s.db"
    code, err = cli(capsys, *_search(macro_table, db), *extra)
    assert code == 2
    one_error_line(err, words)


@pytest.mark.parametrize("args,words", [
    (["search", "--benchmark", "nb2O1", "--table", "t.csv", "--budget", "3"], "unknown benchmark 'nb2O1'|'nb201'"),
    (["search", "--budget", "3"], "--benchmark"),
    (["search", "--benchmark", "nb201", "--table", "missing.csv", "--budget", "3"], "missing.csv|does not exist"),
    (["search", "--benchmark", "nb201", "--budget", "3"], "--table"),
    (["bench", "nb201", "--table", "t.csv", "--budget", "0"], "positive integer"),
    (["bench", "nb201", "--table", "t.csv", "--seeds", "x"], "--seeds|not an integer"),
    (["bench", "nb201", "--table", "t.csv", "--workers", "-1"], "--workers|positive"),
    (["bench", "nb201", "--table", "t.csv", "--strategies", ","], "at least one name"),
    (["bench", "nb201", "--table", "t.csv", "--regret-levels", "1,x"], "'x' is not a number"),
    (["bench", "nb201", "--table", "t.csv", "--baseline", "bo"], "--baseline|'bo'"),
    (["resume", "nothing.db"], "nothing.db|does not exist"),
    (["resume", "nothing.db", "--budget", "0"], "--budget|positive integer"),
    (["show", "nothing.db"], "nothing.db|does not exist"),
    (["list", "models"], "invalid choice|'models'"),
    (["frobnicate"], "invalid choice|'frobnicate'"),
])
def test_cli_flags(capsys, tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    code, err = cli(capsys, *args)
    assert code == 2
    one_error_line(err, words)
    assert not os.path.exists(tmp_path / "nothing.db")


def test_bench_with_an_unknown_strategy(capsys, macro_table, tmp_path):
    code, err = cli(capsys, "bench", "tabular", "--space", "transnas-macro", "--table", macro_table, "--objective",
                    "acc", "--strategies", "rea,bananna", "--budget", "3", "--seeds", "1", "--workers", "1",
                    "--out", tmp_path / "out")
    assert code == 2
    one_error_line(err, "unknown strategy 'bananna'")


TOML_BENCH = '[benchmark]\nname = "tabular"\nspace = "transnas-macro"\ntable = "{table}"\nobjective = "acc"\n'


@pytest.mark.parametrize("text,words", [
    ("[study\nbudget = 3\n", "not valid TOML"),
    ('[study]\nbudget = 3\nbudget = 4\n', "not valid TOML"),
    ("[studies]\nbudget = 3\n", "unknown section [studies]|'study'"),
    ("[study]\nbudgett = 3\n", "unknown key|'budgett'|[study]|'budget'"),
    ("[execution]\nworker = 2\n", "unknown key|'worker'|'workers'"),
    (TOML_BENCH + '[study]\nbudget = "ten"\n', "budget must be a positive integer|'ten'"),
    (TOML_BENCH + "[study]\nbudget = 0\n", "budget must be a positive integer|0"),
    (TOML_BENCH + "[study]\nbudget = true\n", "budget must be a positive integer|True"),
    (TOML_BENCH + "[study]\nbudget = 2.5\n", "budget must be a positive integer|2.5"),
    (TOML_BENCH.replace("{table}", "nope.csv") + "[study]\nbudget = 3\n", "nope.csv|does not exist"),
    (TOML_BENCH.replace('"tabular"', '"tabulr"') + "[study]\nbudget = 3\n", "unknown benchmark 'tabulr'"),
    (TOML_BENCH + 'direction = "up"\n[study]\nbudget = 3\n', "direction must be 'max' or 'min'"),
    (TOML_BENCH + "arch_column = 5\n[study]\nbudget = 3\n", "arch_column|5"),
    (TOML_BENCH + '[study]\nbudget = 3\n[execution]\nreplay_time_scale = "x"\n', "replay_time_scale|'x'"),
    (TOML_BENCH.replace('"transnas-macro"', '"nb210"') + "[study]\nbudget = 3\n", "unknown space 'nb210'"),
    (TOML_BENCH.replace('space = "transnas-macro"', "space = 5") + "[study]\nbudget = 3\n", "space|5"),
])
def test_search_toml_configs(capsys, macro_table, tmp_path, text, words):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text.replace("{table}", str(macro_table)))
    code, err = cli(capsys, "search", cfg, "--no-progress", "--storage", tmp_path / "s.db")
    assert code == 2
    one_error_line(err, words)


def test_search_toml_file_missing_or_a_folder(capsys, tmp_path):
    code, err = cli(capsys, "search", tmp_path / "none.toml")
    assert code == 2
    one_error_line(err, "none.toml|does not exist")
    code, err = cli(capsys, "search", tmp_path)
    assert code == 2
    one_error_line(err, "does not exist")


@pytest.mark.parametrize("text", [
    TOML_BENCH + '[study]\nbudget = 2\n[execution]\nworkers = "two"\n',
    TOML_BENCH + "[study]\nbudget = 2\nstorage = 5\n",
    TOML_BENCH.replace('table = "{table}"', "table = 5") + "[study]\nbudget = 2\n",
    TOML_BENCH + '[study]\nbudget = 2\nstrategy = "rea"\nstrategy_params = "x"\n',
    TOML_BENCH + "cost_column = 5\n[study]\nbudget = 2\n",
    "study = 5\n" + TOML_BENCH,
], ids=["workers-str", "storage-int", "table-int", "strategy-params-str", "cost-column-int", "study-not-a-table"])
def test_search_toml_values_of_the_wrong_type(capsys, macro_table, tmp_path, text):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text.replace("{table}", str(macro_table)))
    code, err = cli(capsys, "search", cfg, "--no-progress")
    assert code == 2
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1 and "unknown section" not in lines[0], err


@pytest.mark.parametrize("execution", ['executor = "nope"', "workers = 0"])
def test_rejected_search_writes_no_study(capsys, macro_table, tmp_path, execution):
    cfg = tmp_path / "c.toml"
    db = tmp_path / "s.db"
    cfg.write_text(TOML_BENCH.replace("{table}", str(macro_table)) + f"[study]\nbudget = 2\n[execution]\n{execution}\n")
    code, _err = cli(capsys, "search", cfg, "--no-progress", "--storage", db)
    assert code == 2
    assert not db.exists() or _events(db) == {}


def test_bad_resume_keeps_every_record(capsys, macro_table, tmp_path):
    db = tmp_path / "r.db"
    code, err = cli(capsys, *_search(macro_table, db, "--budget", "3", "--strategy", "random", "--seed", "0"))
    assert code == 0, err
    before = _events(db)
    assert len(before["default"]) == 6
    for args, words in [
        (["resume", db, "--study", "other"], "'other'"),
        (["resume", db, "--budget", "-1"], "--budget|positive integer"),
        (["resume", db, "--workers", "0"], "--workers|positive integer"),
        (["resume", db, "--executor", "cluster"], "invalid choice|'cluster'"),
        (_search(macro_table, db, "--budget", "3", "--strategy", "rea"), "strategy"),
        (["show", db, "--study", "other"], "'other'"),
    ]:
        code, err = cli(capsys, *args)
        assert code == 2, (args, err)
        one_error_line(err, words)
        assert _events(db) == before, args
    code, err = cli(capsys, "resume", db, "--budget", "5", "--no-progress")
    assert code == 0, err
    assert asc.load_study(str(db)).n_evaluated == 5


def test_resume_of_a_study_not_started_by_search(capsys, tmp_path):
    db = tmp_path / "py.db"
    study = asc.create_study("nb201", objectives=["acc"], storage=str(db), seed=0)
    study.tell(study.ask(), {"acc": 1.0})
    study.storage.close()
    before = _events(db)
    code, err = cli(capsys, "resume", db)
    assert code == 2
    one_error_line(err, "not started by `archscout search`|load_study")
    assert _events(db) == before


def test_resume_of_files_that_are_not_storages(capsys, tmp_path):
    notes = tmp_path / "notes.db"
    notes.write_text("hello")
    code, err = cli(capsys, "resume", notes)
    assert code == 2
    one_error_line(err, "notes.db")
    assert notes.read_text() == "hello"
    code, err = cli(capsys, "resume", tmp_path)
    assert code == 2
    one_error_line(err, "folder")


# --- pickle audit --------------------------------------------------------------------------------------------
# Unpickling that never touches files or storages: the process pool sends each worker its evaluator over the
# worker's own pipe, as multiprocessing itself does.
# bytes the process pickled itself a moment before: the worker pipe, and the conformance check that a cost model
# survives the trip to a worker process
_ALLOWED = {("pool.py", "pickle.loads"), ("cost_model.py", "pickle.loads")}

_UNSAFE_CALLS = {
    ("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("cloudpickle", "load"),
    ("cloudpickle", "loads"), ("dill", "load"), ("dill", "loads"), ("joblib", "load"), ("marshal", "load"),
    ("marshal", "loads"), ("shelve", "open"), ("yaml", "load"), ("yaml", "unsafe_load"), ("jsonpickle", "decode"),
}


def _unsafe_loads(path: Path) -> list[str]:
    """Calls in ``path`` that may unpickle data: pickle-style loaders, torch.load without weights_only=True,
    np.load with allow_pickle=True, and names imported from pickle modules."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in {m for m, _ in _UNSAFE_CALLS}:
            for alias in node.names:
                if (node.module, alias.name) in _UNSAFE_CALLS:
                    found.append(f"{path.name}:{node.lineno}: from {node.module} import {alias.name}")
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        owner_name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
        call = (owner_name, node.func.attr)
        kw = {k.arg: k.value for k in node.keywords}
        where = f"{path.name}:{node.lineno}: {owner_name}.{node.func.attr}"
        if call in _UNSAFE_CALLS:
            found.append(where)
        elif call == ("torch", "load"):
            w = kw.get("weights_only")
            if not (isinstance(w, ast.Constant) and w.value is True):
                found.append(where + " without weights_only=True")
        elif call in {("np", "load"), ("numpy", "load")}:
            a = kw.get("allow_pickle")
            if a is not None and not (isinstance(a, ast.Constant) and a.value is False):
                found.append(where + " with allow_pickle")
    return found


def test_no_module_unpickles_data():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    found = [f for p in files for f in _unsafe_loads(p)
             if (p.name, f.split(": ", 1)[1]) not in _ALLOWED]
    assert not found, "modules that may unpickle data: " + "; ".join(found)


def test_the_audit_catches_unsafe_loads(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import pickle, torch, numpy as np\nfrom pickle import loads\n"
                   "pickle.load(f)\ntorch.load(p)\ntorch.load(p, weights_only=False)\n"
                   "np.load(p, allow_pickle=True)\ntorch.load(p, weights_only=True)\nnp.load(p)\n")
    assert len(_unsafe_loads(bad)) == 5


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_load_weights_roundtrip_and_refusals(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from archscout.nn.export import load_weights

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    path = tmp_path / "m.pt"
    torch.save(model.state_dict(), path)
    fresh = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    assert load_weights(fresh, path) is fresh
    x = torch.randn(5, 4)
    assert torch.equal(fresh(x), model(x))

    cases = {
        "evil_pickle.pt": pickle.dumps({"0.weight": _Evil()}),
        "garbage.pt": os.urandom(300),
        "empty.pt": b"",
        "text.pt": b"just some text\n",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    torch.save({"w": _Evil()}, tmp_path / "evil_zip.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    torch.save({"a.weight": torch.zeros(2)}, tmp_path / "other.pt")
    wrong_shape = {k: torch.zeros(v.shape[0] + 1, *v.shape[1:]) for k, v in model.state_dict().items()}
    torch.save(wrong_shape, tmp_path / "shape.pt")
    for name, words in [("evil_pickle.pt", "not a weights file|refused"),
                        ("evil_zip.pt", "not a weights file|refused"), ("garbage.pt", "not a weights file"),
                        ("empty.pt", "not a weights file"), ("text.pt", "not a weights file"),
                        ("list.pt", "does not hold a state dict"), ("other.pt", "do not fit|missing|'a.weight'"),
                        ("shape.pt", "do not fit|shape"), ("missing.pt", "does not exist")]:
        with pytest.raises(DataError) as e:
            load_weights(fresh, tmp_path / name)
        _words(str(e.value), words)
    assert not (tmp_path / "pwned").exists()
    assert torch.equal(fresh(x), model(x))  # refused files left the model as it was


def test_demo_weights_load_into_a_rebuilt_model(tmp_path):
    torch = pytest.importorskip("torch")
    from archscout.demo.space import demo_builder, demo_space
    from archscout.nn import build_model
    from archscout.nn.export import load_weights

    def build(arch, seed):
        return build_model(arch, (1, 8, 8), 10, builder=demo_builder, seed=seed)

    sp = demo_space()
    arch = sp.sample(np.random.default_rng(0))
    model = build(arch, 1)
    path = tmp_path / "trial0001.pt"
    torch.save(model.state_dict(), path)  # as the demo writes models/<name>.pt
    rebuilt = load_weights(build(arch, 2), path)
    x = torch.randn(3, 1, 8, 8)
    model.eval()
    rebuilt.eval()
    assert torch.equal(model(x), rebuilt(x))
    other = next(b for b in sp.neighbors(arch) if set(build(b, 0).state_dict()) != set(model.state_dict()))
    with pytest.raises(DataError, match="do not fit"):
        load_weights(build(other, 0), path)


def test_storages_hold_json_only(tmp_path):
    """Every record of a SQLite storage is JSON text (nothing is pickled)."""
    import json

    db = tmp_path / "j.db"
    study = asc.create_study("nb201", objectives=["acc"], storage=str(db), strategy="rea", seed=0)
    for _ in range(3):
        study.tell(study.ask(), {"acc": 1.0})
    study.storage.close()
    con = sqlite3.connect(db)
    text_cols = 0
    for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"):
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
        for row in con.execute(f"SELECT * FROM {table}"):
            for c, v in zip(cols, row):
                assert not isinstance(v, (bytes, memoryview)), f"{table}.{c} holds bytes"
                if isinstance(v, str) and v[:1] in "{[":
                    json.loads(v)
                    text_cols += 1
    con.close()
    assert text_cols >= 4
