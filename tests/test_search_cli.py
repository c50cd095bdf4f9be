"""Real-training and supernet searches from the shell: a TOML file or flags, kill -9 and resume, export, joining."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

import numpy as np
import pytest

import archscout as asc

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


def _cli(*args):
    return [sys.executable, "-m", "archscout", *map(str, args)]


def run(*args, cwd=None, timeout=600):
    return subprocess.run(_cli(*args), capture_output=True, text=True, timeout=timeout, cwd=cwd)


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory):
    """A small 8x8 dataset with an official test split: 900 training and 300 test images of scikit-learn digits."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 8, 8)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x_train=X[:900], y_train=y[:900], x_test=X[900:1200], y_test=y[900:1200])
    return path


TOML = """
[study]
storage = "runs/t.db"
seed = 0
budget = {budget}
strategy = "random"
objectives = ["accuracy:max", "latency_ms:min"]
constraints = ["latency_ms<=1000"]

[space]
name = "nb201"
options = {{C = 4, N = 1}}

[data]
data = "{data}"
train_subset = 400

[training]
epochs = 2
batch_size = 50

[hardware]
device = "cpu-ort"
calibration = 10

[execution]
executor = "process"
workers = 2
"""


def _done(db):
    if not db.exists():
        return {}
    try:
        study = asc.load_study(str(db))
    except asc.StorageError:
        return {}
    out = {t.number: t.to_json() for t in study.trials if t.state != "running"}
    study.close()
    return out


def test_toml_search_killed_then_resumed_then_exported(tiny_npz, tmp_path):
    budget = 8
    (tmp_path / "cfg.toml").write_text(TOML.format(budget=budget, data=tiny_npz))
    db = tmp_path / "runs" / "t.db"
    proc = subprocess.Popen(_cli("search", "cfg.toml", "--quiet"), cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 400
        while len(_done(db)) < 3 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert len(_done(db)) >= 3, "no trial finished in time"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = _done(db)
    assert 3 <= len(before) < budget
    r = run("resume", "runs/t.db", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming" not in r.stderr and "%|" not in r.stderr  # --quiet: no status lines, no bars

    study = asc.load_study(str(db))
    assert study.n_evaluated == budget == len(study.trials)
    assert all(t.state == "complete" for t in study.trials)
    after = {t.number: t.to_json() for t in study.trials}
    assert all(after[n] == t for n, t in before.items())  # every finished trial kept as it was
    events = study.storage.events(study.name)
    asks = Counter(e.trial for e in events if e.kind == "ask" and not e.payload.get("claim"))
    tells = Counter(e.trial for e in events if e.kind == "tell")
    assert max(tells.values()) == 1 and set(tells) == set(asks)  # none run twice, none lost
    run_meta = study.config["metadata"]["run"]
    assert run_meta["training"]["space"] == {"name": "nb201", "builder": None, "options": {"C": 4, "N": 1}}
    assert run_meta["training"]["data"] == {"data": str(tiny_npz), "train_subset": 400}
    assert run_meta["hardware"]["device"] == "cpu-ort" and run_meta["hardware"]["cache"].endswith(".json")
    assert study.config["cost_models"]["latency_ms"]["name"] == "learned-latency"
    study.close()

    out = tmp_path / "export"
    r = run("export", "runs/t.db", "--out", out, "--device", "cpu-ort", "--latency-budget-ms", 1000, "--quiet",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("exported ") and len(r.stdout.strip().splitlines()) == 1
    summary = json.loads((out / "export.json").read_text())
    assert summary["kind"] == "training" and summary["exported"]
    held = np.load(out / "heldout.npz")
    import onnxruntime as ort

    for name in summary["exported"]:
        meta = json.loads((out / "models" / f"{name}.json").read_text())
        sess = ort.InferenceSession(str(out / "models" / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        acc = float(np.mean(sess.run(None, {sess.get_inputs()[0].name: held["X"]})[0].argmax(1) == held["y"]))
        assert abs(acc - meta["accuracy"]) <= 0.005
        assert abs(meta["accuracy"] - meta["accuracy_study"]) <= 0.005  # trained again identically
        assert meta["latency_ms_measured"] <= 1000


def _flags(data, db, *extra):
    return ["search", "--space", "nb201", "--option", "C=4", "--option", "N=1", "--data", data, "--train-subset",
            200, "--epochs", 1, "--objectives", "accuracy:max,params_m:min", "--strategy", "random", "--budget", 3,
            "--storage", db, "--seed", 3, "--quiet", *extra]


def test_flags_only_search_is_reproducible_and_two_shells_share_it(tiny_npz, tmp_path):
    trajectories = []
    for name in ("a.db", "b.db"):
        r = run(*_flags(tiny_npz, tmp_path / name))
        assert r.returncode == 0, r.stderr[-3000:]
        study = asc.load_study(str(tmp_path / name))
        assert [o.name for o in study.objectives] == ["accuracy", "params_m"]
        trajectories.append([(str(t.arch), t.metrics["accuracy"], t.metrics["params_m"]) for t in study.trials])
        study.close()
    assert trajectories[0] == trajectories[1] and len(trajectories[0]) == 3  # same seed, same trajectory

    db = tmp_path / "shared.db"
    procs = [subprocess.Popen(_cli(*_flags(tiny_npz, db, "--budget", 6)), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-800:] for o in outs]
    study = asc.load_study(str(db))
    assert study.n_evaluated == 6 == len(study.trials)
    study.close()


def test_a_users_own_space_and_builder_by_module_attribute(tiny_npz, tmp_path):
    (tmp_path / "myspace.py").write_text(textwrap.dedent("""
        import archscout as asc

        def space():
            return asc.Space({"width": asc.Choice([4, 8]), "depth": asc.Ordinal([1, 2])}, name="mine")

        def build(arch, input_shape, num_classes):
            import torch.nn as nn
            c, layers = input_shape[0], []
            for _ in range(arch["depth"]):
                layers += [nn.Conv2d(c, arch["width"], 3, padding=1), nn.ReLU()]
                c = arch["width"]
            return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))
    """))
    cfg = tmp_path / "mine.toml"
    cfg.write_text(f'[study]\nbudget = 2\nstorage = "m.db"\nstrategy = "random"\n'
                   f'[space]\nname = "myspace:space"\nbuilder = "myspace:build"\n'
                   f'[data]\ndata = "{tiny_npz}"\ntrain_subset = 100\n[training]\nepochs = 1\n')
    r = run("search", cfg, "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    r = run("resume", "m.db", "--budget", 3, "--quiet", cwd=tmp_path)  # rebuilt from the header alone
    assert r.returncode == 0, r.stderr[-3000:]
    study = asc.load_study(str(tmp_path / "m.db"))
    assert study.n_evaluated == 3 and all(t.state == "complete" for t in study.trials)
    study.close()
    r = run("export", "m.db", "--out", "exp", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((tmp_path / "exp" / "export.json").read_text())["exported"]


def test_supernet_search_from_the_shell_and_its_export(tmp_path):
    from archscout.supernet import train_supernet

    sn = tmp_path / "sn"
    train_supernet("nb201", "digits", sn, epochs=1, train_subset=200, val_size=100, options={"C": 4, "N": 1},
                   settings={"batch_size": 50}, threads=1, progress=False)
    db = tmp_path / "s.db"
    r = run("search", "--supernet", sn, "--objectives", "accuracy:max,latency_ms:min", "--device", "cpu-ort",
            "--calibration", 10, "--budget", 4, "--strategy", "random", "--storage", db, "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    study = asc.load_study(str(db))
    assert study.n_evaluated == 4 and study.config["metadata"]["run"]["supernet"]["dir"] == str(sn)
    study.close()
    r = run("export", db, "--out", tmp_path / "exp", "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((tmp_path / "exp" / "export.json").read_text())
    assert summary["kind"] == "supernet" and summary["exported"]
    assert all(abs(row["accuracy"] - row["accuracy_study"]) < 0.5 for row in summary["front"])


def test_tabular_study_front_is_trained_for_export(nb201_table, tiny_npz, tmp_path):
    db = tmp_path / "tab.db"
    r = run("search", "--benchmark", "nb201", "--table", nb201_table, "--objective", "valid_acc_200ep", "--budget", 4,
            "--seed", 0, "--storage", db, "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    r = run("export", db, "--out", tmp_path / "exp", "--quiet")
    assert r.returncode == 2 and "--data" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run("export", db, "--out", tmp_path / "exp", "--data", tiny_npz, "--epochs", 1, "--train-subset", 200,
            "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((tmp_path / "exp" / "export.json").read_text())
    assert summary["kind"] == "tabular" and len(summary["front"]) == 1
    row = summary["front"][0]
    assert row["accuracy_study"] > 1  # the table's figure, in percent; the model's own is a fraction
    assert 0 <= row["accuracy"] <= 1


@pytest.mark.parametrize("args,words", [
    (["--space", "nb201", "--budget", 2], "needs data"),
    (["--space", "nb201", "--data", "digits", "--supernet", "sn", "--budget", 2], "evaluates one thing"),
    (["--benchmark", "nb201", "--table", "t.csv", "--data", "digits", "--budget", 2],
     "[data] does not apply to a tabular search"),
    (["--space", "nb201", "--data", "digits", "--objectives", "accuracy", "--budget", 2], "METRIC:max or METRIC:min"),
    (["--space", "nb201", "--data", "digits", "--objectives", "accuracy:max,speed:max", "--budget", 2],
     "no evaluator or cost model gives the metric 'speed'"),
    (["--space", "nb201", "--data", "digits", "--objectives", "accuracy:max,latency_ms:min", "--budget", 2],
     "latency_ms needs a device"),
    (["--space", "nope:space", "--data", "digits", "--budget", 2], "cannot import space 'nope:space'"),
    (["--space", "mbv4", "--data", "digits", "--budget", 2], "mbv4"),
    (["--space", "nb201", "--data", "missing.npz", "--budget", 2], "missing.npz"),
    (["--benchmark", "nb201", "--table", "t.csv", "--device", "cpu-ort", "--budget", 2],
     "[hardware] does not apply to a tabular search"),
])
def test_bad_search_settings_fail_at_once_on_one_line(args, words, tmp_path):
    r = run("search", *args, "--storage", tmp_path / "x.db", cwd=tmp_path, timeout=120)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x.db").exists()  # nothing written


def test_export_of_a_missing_storage_is_one_line(tmp_path):
    r = run("export", tmp_path / "none.db", "--out", tmp_path / "o")
    assert r.returncode == 2 and "does not exist" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("name,kind", [("fashion-mnist.toml", "training"), ("nb201-tabular.toml", "tabular"),
                                       ("supernet.toml", "supernet")])
def test_the_guides_example_configs_are_valid(name, kind):
    from pathlib import Path

    from archscout.runs import RunSettings, SearchConfig

    path = Path(__file__).resolve().parents[1] / "examples" / name
    config = SearchConfig.load(path)
    assert config.kind == kind
    run_settings = RunSettings.from_config(config)
    assert run_settings.kind == kind and os.path.isabs(config.storage)
    assert RunSettings.from_metadata(run_settings.to_metadata()) == run_settings
