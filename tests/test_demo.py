"""The demo end to end on a tiny budget: a supernet trained for one epoch on a small synthetic 28x28 dataset,
latency calibration, three specialisations with exports checked by ONNX Runtime, a from-scratch search in worker
processes, the report files; and the demo's errors."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from archscout.demo import DemoSettings
from archscout.errors import ConfigError

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("matplotlib")

BUDGETS = (50.0, 100.0, 200.0)  # ms: every model meets them, so what is exported does not depend on timing noise


def _synthetic_npz(path, n_train=600, n_test=200, seed=0):
    """A learnable 10-class, 28x28 uint8 dataset in the .npz layout the loaders read: class k is a bright band
    at rows 2k..2k+4 on noise."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = np.arange(n) % 10
        rng.shuffle(y)
        x = rng.integers(0, 90, size=(n, 28, 28, 1), dtype=np.uint8)
        for i, k in enumerate(y):
            x[i, 2 * k + 2:2 * k + 6, 4:24, 0] = 230
        return x, y.astype(np.int64)

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    np.savez_compressed(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def _demo(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "archscout", "demo", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    data = _synthetic_npz(root / "tiny.npz")
    out = root / "report"
    r = _demo("--out", str(out), "--data", str(data), "--epochs", "1", "--train-subset", "300", "--val-size", "100",
              "--search-budget", "3", "--calibration", "10", "--calibration-test", "5", "--scratch-trials", "2",
              "--workers", "2", "--threads", "1", "--budgets-ms", ",".join(map(str, BUDGETS)), "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    return out, r


def test_report_files(demo_run):
    out, _ = demo_run
    for name in ("report.html", "summary.json", "study.db", "heldout.npz", "fronts.png", "predictor.png",
                 "supernet/supernet.json"):
        assert (out / name).is_file(), name
    for study in ("specialise-1", "specialise-2", "specialise-3", "scratch"):
        for name in ("report.html", "pareto.png", "trials.csv"):
            assert (out / "studies" / study / name).is_file(), (study, name)
    with open(out / "studies" / "specialise-1" / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert sum(r["state"] == "complete" for r in rows) == 3
    with open(out / "studies" / "scratch" / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert sum(r["state"] == "complete" for r in rows) == 2
    assert {"val_accuracy", "accuracy", "latency_ms"} <= set(rows[0])
    html = (out / "report.html").read_text()
    for text in ("fronts.png", "predictor.png", "within ±10 %", "Exported models", "Time of every step",
                 "from scratch"):
        assert text in html, text


def test_summary(demo_run):
    out, _ = demo_run
    s = json.loads((out / "summary.json").read_text())
    pv = s["predictor_validation"]
    assert 0.0 <= pv["within10"] <= 1.0 and pv["mape"] >= 0.0
    assert pv["n"] == 5 and pv["n_train"] == 10
    assert len(pv["points"]["test"]) == 5
    ec = s["export_check"]  # the predictor against the latency re-measured from every exported file
    assert ec["n"] == sum(len(sp["exported"]) for sp in s["specialised"]) and 0.0 <= ec["within10"] <= 1.0
    assert s["budgets"] == list(BUDGETS)
    assert [sp["budget_ms"] for sp in s["specialised"]] == list(BUDGETS)
    for sp in s["specialised"]:
        assert sp["trials"]["complete"] == 3 and sp["front"]
    assert s["scratch"]["budget_ms"] == BUDGETS[1] and s["scratch"]["trials"]["complete"] == 2
    assert s["scratch"]["best"]["latency_ms_measured"] > 0
    assert s["data"]["train"] == 300 and s["data"]["val"] == 100 and s["data"]["test"] == 200
    assert 0.0 <= s["supernet"]["accuracy_largest"] <= 1.0
    for step in ("data", "supernet", "calibration", "specialise-1", "specialise-2", "specialise-3", "scratch",
                 "report"):
        assert s["steps"][step] >= 0.0, step
    assert s["elapsed_s"] >= sum(s["steps"].values()) - 1.0


def test_exported_models_match_their_reports(demo_run):
    import onnxruntime as ort
    import torch

    out, _ = demo_run
    held = np.load(out / "heldout.npz")
    X, y = held["X"], held["y"]
    assert X.shape == (200, 1, 28, 28) and X.dtype == np.float32
    summary = json.loads((out / "summary.json").read_text())
    exported = summary["exported"]
    assert exported, "every model meets the (large) budgets, so each front is exported"
    for name in exported:
        meta = json.loads((out / "models" / f"{name}.json").read_text())
        assert {"arch", "accuracy", "accuracy_study", "latency_ms_predicted", "latency_ms_measured",
                "latency_budget_ms"} <= set(meta)
        assert meta["latency_ms_measured"] <= meta["latency_budget_ms"]
        sess = ort.InferenceSession(str(out / "models" / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        feed = sess.get_inputs()[0].name
        logits = np.concatenate([sess.run(None, {feed: X[i:i + 50]})[0] for i in range(0, len(X), 50)])
        acc = float(np.mean(logits.argmax(1) == y))
        assert abs(acc - meta["accuracy"]) <= 0.005, name
        state = torch.load(out / "models" / f"{name}.pt", weights_only=True)
        assert state and all(isinstance(v, torch.Tensor) for v in state.values())


def test_quiet_prints_no_progress(demo_run):
    _, r = demo_run
    assert "%|" not in r.stderr and "it/s" not in r.stderr and "[archscout demo]" not in r.stderr, r.stderr[-2000:]
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("archscout demo: done in"), r.stdout
    assert "within ±10 %" in lines[0]


def test_demo_refuses_to_overwrite(demo_run):
    out, _ = demo_run
    r = _demo("--out", str(out), "--data", str(out.parent / "tiny.npz"), timeout=120)
    assert r.returncode == 2 and "already holds a demo run" in r.stderr


def test_missing_dataset_is_one_line_before_any_work(tmp_path):
    out = tmp_path / "never"
    r = _demo("--out", str(out), "--data", str(tmp_path / "nowhere" / "fashion.npz"), timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archscout: error:"), r.stderr
    assert "--data" in lines[0] and "apt-get install dataset-fashion-mnist" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("kwargs", [
    {"epochs": 0}, {"search_budget": 1}, {"calibration": 5}, {"train_subset": "many"}, {"budgets_ms": (0.5, 0.4)},
    {"budgets_ms": ()}, {"budget_fractions": (0.5, 1.5)}, {"strategy": "no-such"}, {"data": ""}, {"workers": True},
])
def test_settings_are_checked_at_once(kwargs):
    with pytest.raises(ConfigError):
        DemoSettings(**kwargs)


def test_default_settings_are_the_ten_minute_ones():
    s = DemoSettings()
    assert s.data == "fashion-mnist" and s.n_budgets == 3 and s.budgets_ms is None
    assert DemoSettings(**s.to_dict()) == s
