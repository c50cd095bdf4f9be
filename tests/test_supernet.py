"""Supernets: construction, weight inheritance, batch-norm recalibration, training methods, resume after a kill,
corrupt folders, eval / search / specialisation with export parity (tiny networks on digits)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from killing import kill_after_epochs  # noqa: E402

import archscout as asc  # noqa: E402
from archscout.errors import ConfigError, InvalidArchitectureError  # noqa: E402
from archscout.supernet import (  # noqa: E402
    SupernetError,
    SupernetEvaluator,
    create_supernet,
    eval_supernet,
    load_supernet,
    recalibrate_bn,
    search_supernet,
    train_supernet,
)
from archscout.supernet.cell import CellSupernet  # noqa: E402
from archscout.supernet.train import ofa_phases  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = {"options": {"C": 4, "N": 1}, "train_subset": 300, "val_size": 150,
        "settings": {"batch_size": 50}}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _train(out, **kw):
    args = {**TINY, "epochs": 2, **kw}
    return train_supernet("nb201", "digits", out, **args)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_torch_thread):
    out = tmp_path_factory.mktemp("sn") / "nb201"
    _train(out)
    return out


# --- construction and weight inheritance -----------------------------------------------------------------
def test_cell_supernet_holds_every_op_on_every_edge():
    sp = asc.create_space("nb201")
    net = create_supernet(sp, (1, 8, 8), 10, C=4, N=2)
    assert isinstance(net, CellSupernet)
    cells = [m for m in net.cells if type(m).__name__ == "MixedCell"]
    assert len(cells) == 6
    assert all(len(c.candidates) == 6 and all(len(e) == 5 for e in c.candidates) for c in cells)
    # every sub-network's parameters are inside the supernet's
    n_super = sum(p.numel() for p in net.parameters())
    big = sp.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    assert sum(p.numel() for p in net.extract(big).parameters()) < n_super


def test_unsupported_space_gets_an_error_naming_the_supported_shapes():
    sp = asc.Space({"width": asc.Choice([8, 16]), "depth": asc.Int(1, 3)})
    with pytest.raises(ConfigError, match="supported: one Cell parameter"):
        create_supernet(sp, (1, 8, 8), 10)
    two = asc.Space({"a": asc.Cell(nodes=3, ops=["conv3x3", "identity"]), "b": asc.Choice([1, 2])})
    with pytest.raises(ConfigError, match="supported"):
        create_supernet(two, (1, 8, 8), 10)


def test_a_users_cell_of_library_ops_works_without_a_hand_written_supernet():
    sp = asc.Space({"cell": asc.Cell(nodes=3, ops=["zero", "identity", "dwsep3x3", "maxpool3x3"])}, name="mine")
    net = create_supernet(sp, (1, 8, 8), 10, C=4, N=1)
    rng = np.random.default_rng(0)
    x = torch.randn(6, 1, 8, 8)
    net.train()
    net(x)
    net.eval()
    for _ in range(4):
        a = sp.sample(rng)
        net.set_active(a)
        assert torch.allclose(net.extract(a).eval()(x), net(x), atol=1e-6)


def test_extracted_subnetwork_computes_what_the_supernet_computes(trained):
    net, _ = load_supernet(trained)
    rng = np.random.default_rng(1)
    x = torch.randn(8, 1, 8, 8)
    for _ in range(5):
        a = net.space.sample(rng)
        net.set_active(a)
        sub = net.extract(a).eval()
        assert type(sub).__name__ == "NB201Network"
        with torch.no_grad():
            assert torch.equal(sub(x), net(x))
        # and the copy is independent of the supernet
        next(sub.parameters()).data.add_(1.0)
        assert not torch.equal(sub(x), net(x))


def test_bn_recalibration_averages_the_batches_of_the_active_path():
    sp = asc.create_space("nb201")
    net = create_supernet(sp, (1, 8, 8), 10, C=4, N=1)
    batches = [torch.randn(16, 1, 8, 8) * (i + 1) for i in range(3)]
    recalibrate_bn(net, batches)
    assert not net.training
    stem_bn = net.stem[1]
    with torch.no_grad():
        means = [net.stem[0](b).mean(dim=(0, 2, 3)) for b in batches]
    assert torch.allclose(stem_bn.running_mean, torch.stack(means).mean(0), atol=1e-5)
    assert stem_bn.momentum == 0.1          # restored after the cumulative average
    assert int(stem_bn.num_batches_tracked) == 3


def test_val_images_scores_on_a_prefix_of_the_validation_split(trained):
    a = asc.create_space("nb201").sample(np.random.default_rng(3))
    full = SupernetEvaluator(trained, cache=False)
    part = SupernetEvaluator(trained, cache=False, val_images=40)
    st = full._load()
    with torch.no_grad():
        model = full.extract(a)
        pred = model(st["X_val"][:40]).argmax(1)
    assert part.evaluate(a)["accuracy"] == pytest.approx(float((pred == st["y_val"][:40]).float().mean()))
    assert full.evaluate(a)["accuracy"] == pytest.approx(float((model(st["X_val"]).argmax(1) == st["y_val"])
                                                               .float().mean()))


def test_evaluator_is_deterministic_and_path_dependent(trained):
    ev = SupernetEvaluator(trained, recal_batches=2, recal_batch_size=50, cache=False)
    sp = ev.space
    a = sp.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    b = sp.parse("|none~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|")
    ra = ev.evaluate(a)
    rb = ev.evaluate(b)
    # recalibration leaves nothing behind between paths
    assert SupernetEvaluator(trained, recal_batches=2, recal_batch_size=50, cache=False).evaluate(a) == ra
    assert set(ra) == {"accuracy", "val_loss", "params_m"} and 0 <= ra["accuracy"] <= 1
    assert ra["params_m"] > rb["params_m"]
    import pickle
    ev2 = pickle.loads(pickle.dumps(ev))
    assert ev2.evaluate(a) == ra


def test_results_are_kept_in_the_folder_and_read_again(trained):
    sp = asc.create_space("nb201")
    a = sp.sample(np.random.default_rng(7))
    first = SupernetEvaluator(trained, recal_batches=3).evaluate(a)
    files = list(trained.glob("evals-*.jsonl"))
    assert len(files) == 1 and str(a) in files[0].read_text()
    lines = files[0].read_text().count("\n")
    assert SupernetEvaluator(trained, recal_batches=3).evaluate(a) == first
    assert files[0].read_text().count("\n") == lines           # read, not evaluated again
    with open(files[0], "a") as f:
        f.write('{"hash": "cut by a ki')     # a line cut by a kill is skipped
    assert SupernetEvaluator(trained, recal_batches=3).evaluate(a) == first


# --- training methods, resume, bad folders -------------------------------------------------------------------
def test_training_writes_plain_state_dicts_and_json(trained):
    meta = json.loads((trained / "supernet.json").read_text())
    assert meta["finished"] and meta["epochs_done"] == 2 and len(meta["history"]) == 2
    assert meta["settings"]["method"] == "spos" and meta["settings"]["sampling"] == "fair"
    state = torch.load(trained / "supernet.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_resume_follows_the_uninterrupted_trajectory(tmp_path):
    _train(tmp_path / "a", epochs=3)
    _train(tmp_path / "b", epochs=3, stop_after_epoch=1)
    assert json.loads((tmp_path / "b" / "supernet.json").read_text())["epochs_done"] == 1
    assert not (tmp_path / "b" / "supernet.pt").exists()
    _train(tmp_path / "b", epochs=3)
    sa = torch.load(tmp_path / "a" / "supernet.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "supernet.pt", weights_only=True)
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    _train(tmp_path / "a", epochs=1)
    _train(tmp_path / "b", epochs=1)
    _train(tmp_path / "c", epochs=1, seed=1)
    sa, sb, sc = (torch.load(tmp_path / d / "supernet.pt", weights_only=True) for d in "abc")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_other_settings_in_the_same_folder_are_refused(trained, tmp_path):
    import shutil
    d = tmp_path / "copy"
    shutil.copytree(trained, d)
    with pytest.raises(SupernetError, match="other settings"):
        _train(d, epochs=3)


@pytest.mark.parametrize("content", [b"not a checkpoint at all", b"PK\x03\x04garbage"])
def test_corrupt_checkpoint_gives_one_line_error(tmp_path, content):
    _train(tmp_path / "r", epochs=3, stop_after_epoch=1)
    (tmp_path / "r" / "checkpoint.pt").write_bytes(content)
    with pytest.raises(SupernetError, match="corrupt or foreign") as e:
        _train(tmp_path / "r", epochs=3)
    assert "\n" not in str(e.value)


def test_foreign_checkpoint_gives_one_line_error(tmp_path):
    _train(tmp_path / "r", epochs=3, stop_after_epoch=1)
    torch.save({"model": {"w": torch.zeros(3)}, "optimizer": {}, "epoch": 1}, tmp_path / "r" / "checkpoint.pt")
    with pytest.raises(SupernetError, match="another network") as e:
        _train(tmp_path / "r", epochs=3)
    assert "\n" not in str(e.value)
    torch.save([1, 2, 3], tmp_path / "r" / "checkpoint.pt")
    with pytest.raises(SupernetError, match="not a supernet checkpoint"):
        _train(tmp_path / "r", epochs=3)


def test_cli_reports_a_corrupt_checkpoint_in_one_line(tmp_path):
    _train(tmp_path / "r", epochs=3, stop_after_epoch=1)
    (tmp_path / "r" / "checkpoint.pt").write_bytes(b"\x00" * 64)
    cmd = [sys.executable, "-m", "archscout", "supernet", "train", "--space", "nb201", "--data", "digits",
           "--out", str(tmp_path / "r"), "--epochs", "3", "--train-subset", "300", "--val-size", "150",
           "--batch-size", "50", "--option", "C=4", "--option", "N=1", "--no-progress", "--threads", "1"]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "corrupt or foreign" in p.stderr
    assert "Traceback" not in p.stderr


def test_killed_training_resumes_from_its_last_checkpoint(tmp_path):
    out = tmp_path / "k"
    cmd = [sys.executable, "-m", "archscout", "supernet", "train", "--space", "nb201", "--data", "digits",
           "--out", str(out), "--epochs", "40", "--train-subset", "300", "--val-size", "150", "--batch-size", "50",
           "--option", "C=4", "--option", "N=1", "--no-progress", "--threads", "1"]
    done = kill_after_epochs(cmd, out, 2, ROOT)
    assert 2 <= done < 40
    r = subprocess.run([*cmd[:cmd.index("--epochs") + 1], "40", *cmd[cmd.index("--epochs") + 2:]],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    meta = json.loads((out / "supernet.json").read_text())
    assert meta["finished"] and [h["epoch"] for h in meta["history"]] == list(range(1, 41))


def test_bad_settings_fail_before_training(tmp_path):
    with pytest.raises(ConfigError, match="method"):
        _train(tmp_path / "x", method="enas")
    with pytest.raises(ConfigError, match="needs a supernet with a largest"):
        _train(tmp_path / "x", method="sandwich")
    with pytest.raises(ConfigError, match="epochs"):
        _train(tmp_path / "x", epochs=0)
    with pytest.raises(SupernetError, match="holds no supernet.json"):
        load_supernet(tmp_path / "nothing")


def test_unfinished_supernet_says_how_to_resume(tmp_path):
    _train(tmp_path / "u", epochs=3, stop_after_epoch=1)
    with pytest.raises(SupernetError, match="resume"):
        load_supernet(tmp_path / "u")
    _, meta = load_supernet(tmp_path / "u", checkpoint=True)
    assert meta["epochs_done"] == 1


def test_ofa_phases_add_one_dimension_at_a_time():
    assert ofa_phases(("kernel", "depth", "expand", "width"), 8) == [
        (0, ()), (2, ("kernel",)), (4, ("kernel", "depth")), (6, ("kernel", "depth", "expand", "width"))]


# --- eval, search, specialisation and export ---------------------------------------------------------------
def test_eval_maps_each_architecture_to_its_accuracy(trained, tmp_path):
    sp = asc.create_space("nb201")
    rng = np.random.default_rng(0)
    archs = [str(sp.sample(rng)) for _ in range(3)]
    f = tmp_path / "archs.txt"
    f.write_text("# three cells\n" + "\n".join(archs) + "\n\n")
    out = eval_supernet(trained, f, tmp_path / "acc.json")
    saved = json.loads((tmp_path / "acc.json").read_text())
    assert saved == out and list(saved) == archs
    ev = SupernetEvaluator(trained)
    assert saved[archs[0]] == ev.evaluate(sp.parse(archs[0]))["accuracy"]
    f.write_text(archs[0] + "\n|bogus~0|\n")
    with pytest.raises(InvalidArchitectureError, match="line 2"):
        eval_supernet(trained, f)


def test_search_cli_writes_best(trained, tmp_path):
    out = tmp_path / "s.json"
    cmd = [sys.executable, "-m", "archscout", "supernet", "search", str(trained), "--budget", "6", "--strategy",
           "rea", "--seed", "3", "--json", str(out), "--no-progress", "--threads", "1"]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    assert asc.create_space("nb201").parse(res["best"])
    assert res["n_evaluated"] == 6
    again = search_supernet(trained, 6, strategy="rea", seed=3)
    assert again["best"] == res["best"]


def test_search_refuses_a_latency_budget_without_device(trained):
    with pytest.raises(ConfigError, match="--device"):
        search_supernet(trained, 3, latency_budget_ms=1.0)


def test_specialised_front_exports_with_parity(trained, tmp_path):
    pytest.importorskip("onnxruntime")
    res = search_supernet(trained, 5, strategy="random", seed=0, device="cpu-ort", latency_budget_ms=1e6,
                          export=tmp_path / "dep")
    assert res["front"] and res["exported"]
    held = np.load(tmp_path / "dep" / "heldout.npz")
    X, y = held["X"], held["y"]
    import onnxruntime as ort
    for row in res["exported"]:
        assert row["exported"]
        name = row["name"]
        files = {ext: tmp_path / "dep" / "models" / f"{name}.{ext}" for ext in ("onnx", "pt", "json")}
        assert all(f.exists() for f in files.values())
        info = json.loads(files["json"].read_text())
        assert {"arch", "accuracy", "latency_ms_predicted", "latency_ms_measured", "latency_budget_ms"} <= set(info)
        sess = ort.InferenceSession(str(files["onnx"]), providers=["CPUExecutionProvider"])
        logits = np.concatenate([sess.run(None, {sess.get_inputs()[0].name: X[i:i + 1]})[0] for i in range(len(X))])
        assert abs(float(np.mean(logits.argmax(1) == y)) - info["accuracy"]) < 1e-9
        # the exported weights are the supernet's: the .pt loaded into the plain network gives the same logits
        ev = SupernetEvaluator(trained)
        model = ev.build(ev.space.parse(info["arch"]))
        model.load_state_dict(torch.load(files["pt"], weights_only=True))
        ref = ev.extract(ev.space.parse(info["arch"]))
        with torch.no_grad():
            assert torch.allclose(model.eval()(torch.from_numpy(X[:8])), ref(torch.from_numpy(X[:8])), atol=1e-5)


# --- stage spaces end to end -------------------------------------------------------------------------------
def _tiny_stages():
    return asc.Space({"width_mult": asc.Ordinal([1.0, 1.5]),
                      "stages": asc.Stages(n=2, depth=asc.Ordinal([1, 2]),
                                           layer={"kernel": asc.Ordinal([3, 5]), "expand": asc.Ordinal([2, 3])})},
                     name="tiny-stages")


@pytest.mark.parametrize("method", ["spos", "sandwich", "ofa"])
def test_stage_supernet_trains_with_each_method(tmp_path, method):
    meta = train_supernet(_tiny_stages(), "digits", tmp_path / method, method=method, epochs=4, train_subset=200,
                          val_size=100, settings={"batch_size": 50})
    assert meta["finished"] and meta["supernet"]["options"]["widths"] == [16, 24]
    if method == "ofa":
        assert [h.get("elastic") for h in meta["history"]] == [[], ["kernel"], ["kernel", "depth"],
                                                                ["kernel", "depth", "expand", "width"]]
    ev = SupernetEvaluator(tmp_path / method)
    net = ev.supernet
    for a in (net.largest(), net.smallest()):
        r = ev.evaluate(a)
        assert 0.0 <= r["accuracy"] <= 1.0
    x = torch.from_numpy(np.array(ev.heldout()[0][:6]))
    a = net.sample(np.random.default_rng(0))
    sub = ev.extract(a)
    with torch.no_grad():
        assert torch.allclose(sub(x), ev.activate(a)(x), atol=1e-5)


def test_fair_sampling_needs_a_cell_supernet(tmp_path):
    with pytest.raises(ConfigError, match="fair"):
        train_supernet(_tiny_stages(), "digits", tmp_path / "f", epochs=1, train_subset=200, val_size=100,
                       settings={"sampling": "fair"})


def test_stage_specialisation_exports_mbv3_networks(tmp_path):
    pytest.importorskip("onnxruntime")
    train_supernet(_tiny_stages(), "digits", tmp_path / "sn", epochs=1, train_subset=200, val_size=100,
                   settings={"batch_size": 50})
    res = search_supernet(tmp_path / "sn", 4, strategy="random", seed=1, device="cpu-ort", latency_budget_ms=1e6,
                          export=tmp_path / "dep")
    rows = [r for r in res["exported"] if r["exported"]]
    assert rows
    for r in rows:
        assert r["onnx_max_abs_diff"] < 1e-4
        assert (tmp_path / "dep" / "models" / f"{r['name']}.onnx").exists()
    assert (tmp_path / "sn" / "latency-cpu-ort.json").exists()   # a second specialisation measures nothing twice
    summary = json.loads((tmp_path / "dep" / "export.json").read_text())
    assert summary["exported"] == [r["name"] for r in rows]
    files = {p.name for p in (tmp_path / "dep" / "models").iterdir()}
    assert files == {f"{r['name']}.{ext}" for r in rows for ext in ("onnx", "pt", "json")}


def test_cli_train_defaults_parse(tmp_path):
    from archscout.cli import build_parser
    ns = build_parser().parse_args(["supernet", "train", "--space", "nb201", "--data", "digits", "--out", "x"])
    assert ns.train_subset is None and ns.method is None
    ns = build_parser().parse_args(["supernet", "train", "--space", "nb201", "--data", "digits", "--out", "x",
                                    "--train-subset", "all"])
    assert ns.train_subset == 0


def test_a_method_that_does_not_fit_fails_before_data_is_read_or_folders_written(tmp_path, monkeypatch):
    import archscout.data as data

    monkeypatch.setattr(data, "load_splits", lambda *a, **k: pytest.fail("data read before the settings were checked"))
    with pytest.raises(ConfigError, match="needs a supernet with a largest"):
        train_supernet("nb201", "digits", tmp_path / "never", method="ofa", epochs=1)
    assert not (tmp_path / "never").exists()
