"""The CLI as a user runs it: real subprocesses, real files, kill -9 and resume."""

import json
import sqlite3
import subprocess
import sys

import pytest

import archscout as asc


def run(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "archscout", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def test_list():
    r = run("list")
    assert r.returncode == 0
    for name in ("random", "rea", "ls", "nb201", "mbv3", "process", "simulated"):
        assert name in r.stdout


def test_bench_writes_summary_and_plot(nb201_table, tmp_path):
    out = tmp_path / "res"
    r = run("bench", "nb201", "--table", nb201_table, "--objective", "valid_acc_200ep", "--report", "test_acc_200ep",
            "--strategies", "random,rea,ls", "--budget", "60", "--seeds", "3", "--out", out)
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "summary.json").read_text())
    assert set(s["strategies"]) == {"random", "rea", "ls"}
    for e in s["strategies"].values():
        assert {"queries_to_optimum_mean", "queries_to_optimum_median", "optimum", "random_sample_mean",
                "overhead_ms_per_trial"} <= set(e)
        assert {"25", "50", "60"} <= set(e["checkpoints"])
    assert (out / "anytime.png").stat().st_size > 1000
    assert "queries to optimum" in r.stdout


def _search_args(table, db, budget, scale="0", executor="inline", workers="1", strategy="rea"):
    return ["search", "--benchmark", "nb201", "--table", table, "--objective", "valid_acc_200ep", "--strategy",
            strategy, "--budget", budget, "--seed", "0", "--storage", db, "--replay-time-scale", scale,
            "--executor", executor, "--workers", workers, "--no-progress"]


def _table_values(table):
    import csv

    return {r["arch_str"]: float(r["valid_acc_200ep"]) for r in csv.DictReader(open(table))}


def test_search_show_json(nb201_table, tmp_path):
    db = tmp_path / "s.db"
    r = run(*_search_args(nb201_table, db, 25))
    assert r.returncode == 0, r.stderr
    r = run("show", db, "--json")
    data = json.loads(r.stdout)
    assert len(data["trials"]) == 25
    vals = _table_values(nb201_table)
    for t in data["trials"]:
        assert {"number", "state", "arch", "metrics", "started_at", "finished_at"} <= set(t)
        assert t["state"] == "complete" and t["metrics"]["valid_acc_200ep"] == vals[t["arch"]]
    assert run("show", db).returncode == 0


def test_search_from_toml(nb201_table, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
[study]
storage = "runs/t.db"
budget = 12
seed = 3
strategy = "ls"

[benchmark]
name = "nb201"
table = "{nb201_table}"
objective = "valid_acc_200ep"
""")
    r = run("search", cfg, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert asc.load_study(str(tmp_path / "runs" / "t.db")).n_evaluated == 12


@pytest.mark.parametrize("args,needle", [
    (["search", "--benchmark", "nb2O1", "--table", "{t}", "--budget", "5", "--storage", "{d}"], "unknown benchmark"),
    (["search", "--benchmark", "nb201", "--table", "{t}", "--budget", "5", "--storage", "{d}", "--strategy", "nope"],
     "unknown strategy"),
    (["search", "--benchmark", "nb201", "--table", "missing.csv", "--budget", "5", "--storage", "{d}"],
     "does not exist"),
    (["search", "--benchmark", "nb201", "--table", "{t}", "--objective", "acc", "--budget", "5", "--storage", "{d}"],
     "no column 'acc'"),
    (["search", "--benchmark", "nb201", "--table", "{t}", "--storage", "{d}"], "budget"),
    (["bench", "nb201", "--table", "{t}", "--budget", "0"], "positive integer"),
    (["bench", "nb201", "--table", "{t}", "--budget", "-3"], "positive"),
    (["bench", "nb201", "--table", "{t}", "--strategies", "rea,bananna", "--budget", "5"], "unknown strategy"),
    (["resume", "{tmp}/nothing.db"], "does not exist"),
    (["show", "{tmp}/nothing.db"], "does not exist"),
    (["search", "{tmp}/nothing.toml"], "does not exist"),
])
def test_bad_input_gives_one_line_error(nb201_table, tmp_path, args, needle):
    args = [a.format(t=nb201_table, d=tmp_path / "x.db", tmp=tmp_path) for a in args]
    r = run(*args, cwd=tmp_path)
    assert r.returncode != 0
    assert needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    err_lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(err_lines) <= 3, r.stderr  # argparse prints usage + one line; ours print one line


def test_bad_toml(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[study\nbudget = 3")
    r = run("search", cfg)
    assert r.returncode == 2 and "not valid TOML" in r.stderr
    cfg.write_text("[study]\nbudgett = 3\n")
    r = run("search", cfg)
    assert r.returncode == 2 and "unknown key" in r.stderr


def test_storage_from_another_schema_version_is_refused_and_kept(nb201_table, tmp_path):
    db = tmp_path / "v.db"
    assert run(*_search_args(nb201_table, db, 5)).returncode == 0
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    con.commit()
    r = run("resume", db)
    assert r.returncode == 2 and "schema version 2" in r.stderr
    n = con.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert n == 10  # nothing lost


def test_existing_storage_is_joined_never_overwritten(nb201_table, tmp_path):
    """A second `archscout search` on the same storage joins the study (its budget is already met, so it runs
    nothing); one with other settings is refused; the records stay as they were."""
    db = tmp_path / "e.db"
    assert run(*_search_args(nb201_table, db, 5)).returncode == 0
    r = run(*_search_args(nb201_table, db, 5))
    assert r.returncode == 0 and "joining study 'default': 5 of 5" in r.stderr
    r = run(*_search_args(nb201_table, db, 5, strategy="random"))
    assert r.returncode == 2 and "other settings (strategy differ)" in r.stderr
    assert asc.load_study(str(db)).n_evaluated == 5


# --- list: every registry -------------------------------------------------------------------------------
LIST_KINDS = ["strategies", "spaces", "benchmarks", "executors", "storages", "cost-models", "devices", "datasets",
              "ops", "builders"]


def test_list_shows_every_registry_with_its_doc():
    pytest.importorskip("torch")
    r = run("list")
    assert r.returncode == 0, r.stderr
    headers = [ln[:-1] for ln in r.stdout.splitlines() if ln and not ln.startswith(" ")]
    assert headers == LIST_KINDS
    entries = {ln.split()[0]: ln for ln in r.stdout.splitlines() if ln.startswith("  ")}
    for name in ("rea", "nb201", "process", "sqlite", "postgresql", "measured-latency", "table-latency", "cpu-ort",
                 "nb201-pixel3", "digits", "conv3x3", "mbconv_k3_e4_se", "mbv3"):
        assert name in entries, name
        assert len(entries[name].split()) > 1, entries[name]  # each entry with its one-line doc
    assert "sqlite" in entries and "SQLite file" in entries["sqlite"]


def test_list_one_kind():
    r = run("list", "cost-models")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "cost-models:" and all(ln.startswith("  ") for ln in lines[1:])
    names = [ln.split()[0] for ln in lines[1:]]
    assert names == asc.list_cost_models()
    r = run("list", "storages")
    assert [ln.split()[0] for ln in r.stdout.splitlines()[1:]] == asc.list_storages()
    r = run("list", "--help")
    assert all(kind in r.stdout for kind in LIST_KINDS)


def test_list_without_torch_says_which_extra():
    code = ("import sys; sys.modules['torch'] = None\n"  # as if torch were not installed
            "from archscout.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    r = subprocess.run([sys.executable, "-c", code, "list"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "devices:" in lines and "ops:" not in lines and "builders:" not in lines
    assert [ln for ln in r.stdout.splitlines() if "pip install 'archscout[nn]'" in ln] == [
        "ops and builders: need torch: pip install 'archscout[nn]'"]
    r = subprocess.run([sys.executable, "-c", code, "list", "ops"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ops and builders: need torch: pip install 'archscout[nn]'"


# --- the library behind search and resume ------------------------------------------------------------------
def test_search_from_python_then_resume_from_the_shell(nb201_table, tmp_path):
    from archscout.runs import RunSettings, SearchConfig, resume_search, run_search, start_search

    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[study]\nstorage = "py.db"\nseed = 1\nstrategy = "rea"\n'
                   f'[benchmark]\nname = "nb201"\ntable = "{nb201_table}"\nobjective = "valid_acc_200ep"\n')
    config = SearchConfig.load(cfg, overrides={"study": {"budget": 6}, "execution": {"workers": None}})
    assert config.storage == str(tmp_path / "py.db") and config.study_name == "default"
    study, evaluator, run_settings = start_search(config)
    assert run_settings == RunSettings.from_metadata(study.config["metadata"]["run"])
    assert study.config["metadata"]["run"] == {
        "benchmark": {"name": "nb201", "params": {"table": str(nb201_table), "objective": "valid_acc_200ep"}},
        "replay_time_scale": 0.0, "executor": "inline", "workers": 1, "budget": 6, "timeout_s": None,
        "retries": None, "address": None}
    run_search(study, evaluator, run_settings, progress=False)
    assert study.n_evaluated == 6
    study.close()
    r = run("resume", tmp_path / "py.db", "--budget", 9, "--no-progress")
    assert r.returncode == 0, r.stderr
    study, _, again = resume_search(str(tmp_path / "py.db"), overrides={"budget": 12, "workers": None})
    assert study.n_evaluated == 9 and again.budget == 12 and again.workers == 1
    study.close()


@pytest.mark.parametrize("sections,words", [
    ({"studdy": {}}, "unknown section [studdy]"),
    ({"benchmark": {"name": "nb201", "table": "t.csv"}, "study": {"budget": 0}}, "[study] budget must be a positive"),
    ({"benchmark": {"name": "nb201", "table": "t.csv"}}, "budget must be a positive integer, got None"),
    ({"study": {"budget": 3}}, "say what to search"),
    ({"benchmark": {"name": "nb201"}, "study": {"budget": 3}}, "needs its table"),
    ({"benchmark": {"name": "nb201", "table": "t.csv"}, "study": {"budget": 3}, "execution": {"executor": "nope"}},
     "executor 'nope' is unknown"),
    ({"benchmark": {"name": "nb201", "table": "t.csv"}, "study": {"budget": 3}, "execution": {"address": "auto"}},
     "use it with --executor ray"),
    ({"benchmark": {"name": "nb201", "table": "t.csv"}, "study": {"budget": 3},
      "execution": {"timeout_s": float("nan")}}, "timeout_s must be a positive number"),
])
def test_search_config_is_checked_at_once(sections, words):
    from archscout.runs import SearchConfig

    with pytest.raises(asc.ConfigError) as e:
        SearchConfig(sections)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_hash_rule_reaches_the_benchmark_of_a_search(nb201_table, tmp_path):
    db = tmp_path / "h.db"
    r = run(*_search_args(nb201_table, db, 3), "--hash-rule", "none")
    assert r.returncode == 0, r.stderr
    run_meta = asc.load_study(str(db)).config["metadata"]["run"]
    assert run_meta["benchmark"]["params"]["hash_rule"] == "none"
