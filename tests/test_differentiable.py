"""Differentiable and few-shot search: DARTS, PC-DARTS, ProxylessNAS (with its latency term), RARTS and few-shot
supernets on tiny networks and digits: the direction of architecture steps on a toy problem, the exact
expected latency and its gradient, derivation, early stopping, resume after a kill, the study record, few-shot
splits and routing, and the errors."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from killing import kill_after_epochs  # noqa: E402

import archscout as asc  # noqa: E402
from archscout.errors import BuildError, ConfigError  # noqa: E402
from archscout.supernet import SupernetError, SupernetEvaluator, create_supernet, train_supernet  # noqa: E402
from archscout.supernet.cell import channel_shuffle  # noqa: E402
from archscout.supernet.differentiable import LatencyTerm, derive  # noqa: E402
from archscout.supernet.fewshot import _best_bipartition, plan, region_of  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = {"options": {"C": 4, "N": 1}, "train_subset": 400, "val_size": 150, "settings": {"batch_size": 40}}
METHODS = ["darts", "pc-darts", "proxylessnas", "rarts"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _toy_space():
    """One edge that either passes its input on or zeroes it: the cell sits on the network's only path, so
    any useful architecture gradient prefers the identity."""
    return asc.Space({"cell": asc.Cell(nodes=2, ops=["zero", "identity"])}, name="toy-cell")


class AdditiveLatency:
    """A cheap latency model: a per-(edge, op) cost table, summed; known exactly in closed form."""

    cheap = True

    def __init__(self, space, costs):
        self.space, self.costs = space, np.asarray(costs, dtype=float)
        self.cell = next(iter(space.params))
        self.ops = list(space.params[self.cell].ops)

    def predict(self, arch):
        return float(sum(self.costs[e, self.ops.index(o)] for e, o in enumerate(arch[self.cell])))


class ProductLatency(AdditiveLatency):
    """A non-additive latency (so only exact enumeration gets the expectation right)."""

    def predict(self, arch):
        return float(np.prod([1.0 + self.costs[e, self.ops.index(o)] for e, o in enumerate(arch[self.cell])]))


def _train(out, method, **kw):
    args = {**TINY, "epochs": 2, **kw}
    return train_supernet(args.pop("space", "nb201"), "digits", out, method=method, **args)


# --- architecture steps on a toy problem ------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_architecture_steps_prefer_the_op_that_carries_the_signal(tmp_path, method):
    search = {"arch_lr": 0.05, "warmup_epochs": 0}
    if method == "pc-darts":
        search["partial_k"] = 1  # with partial channels a zero edge still passes the bypassed channels
    meta = _train(tmp_path / method, method, space=_toy_space(), epochs=3, search=search)
    last = meta["history"][-1]["weights"][0]  # [zero, identity]
    assert last[1] > last[0] + 0.05, last
    assert meta["derived"].count("identity") == 1


def test_darts_second_order_runs_and_moves_the_same_way(tmp_path):
    meta = _train(tmp_path / "d2", "darts", space=_toy_space(), epochs=2, search={"arch_lr": 0.05, "order": 2})
    last = meta["history"][-1]["weights"][0]
    assert last[1] > last[0]


# --- the latency term -------------------------------------------------------------------------------------
def _small_cell_space():
    return asc.Space({"cell": asc.Cell(nodes=3, ops=["zero", "identity", "conv3x3"])}, name="small-cell")


def _brute_expectation(model, space, p):
    ops = list(space.params["cell"].ops)
    total = 0.0
    for combo in itertools.product(range(len(ops)), repeat=p.shape[0]):
        prob = np.prod([p[e, k] for e, k in enumerate(combo)])
        total += prob * model.predict(space.make({"cell": tuple(ops[k] for k in combo)}))
    return total


def test_expected_latency_is_exact_and_its_gradient_matches_a_finite_difference():
    sp = _small_cell_space()
    costs = np.random.default_rng(0).uniform(0.1, 2.0, (3, 3))
    model = ProductLatency(sp, costs)
    term = LatencyTerm(model, sp, "cell", sp.params["cell"].ops, 3)
    alpha = torch.tensor(np.random.default_rng(1).normal(size=(3, 3)), dtype=torch.float64, requires_grad=True)
    lat = term.expected(torch.softmax(alpha, dim=1))
    brute = _brute_expectation(model, sp, torch.softmax(alpha, 1).detach().numpy())
    assert float(lat.detach()) == pytest.approx(brute, rel=1e-9)
    (grad,) = torch.autograd.grad(lat, alpha)
    eps = 1e-6
    for e in range(3):
        for k in range(3):
            up, down = alpha.detach().clone(), alpha.detach().clone()
            up[e, k] += eps
            down[e, k] -= eps
            fd = (float(term.expected(torch.softmax(up, 1))) - float(term.expected(torch.softmax(down, 1)))) / (2 * eps)
            assert float(grad[e, k]) == pytest.approx(fd, rel=1e-5, abs=1e-8)


def test_large_spaces_use_the_expansion_which_is_exact_for_additive_models(monkeypatch):
    import archscout.supernet.differentiable as diff

    sp = _small_cell_space()
    model = AdditiveLatency(sp, np.random.default_rng(2).uniform(0.1, 2.0, (3, 3)))
    exact = LatencyTerm(model, sp, "cell", sp.params["cell"].ops, 3)
    monkeypatch.setattr(diff, "ENUMERATE_LIMIT", 1)
    approx = LatencyTerm(model, sp, "cell", sp.params["cell"].ops, 3)
    assert approx.table is None and exact.table is not None
    p = torch.softmax(torch.randn(3, 3, dtype=torch.float64), 1)
    assert float(approx.expected(p)) == pytest.approx(float(exact.expected(p)), rel=1e-9)
    for target in (1.0, 2.5, 4.0):
        a, b = approx.best_under(p, target), exact.best_under(p, target)
        assert (a is None) == (b is None)
        if b is not None:
            assert exact.of_path(a) <= target and exact.of_path(b) <= target


def test_proxylessnas_with_a_target_derives_a_cell_at_or_under_it(tmp_path):
    sp = _small_cell_space()
    model = AdditiveLatency(sp, [[0.0, 0.1, 3.0]] * 3)  # conv3x3 is slow
    free = _train(tmp_path / "free", "proxylessnas", space=sp, epochs=2, search={"arch_lr": 0.05, "warmup_epochs": 0})
    target = 1.0
    meta = _train(tmp_path / "lat", "proxylessnas", space=sp, epochs=2, latency_model=model,
                  search={"arch_lr": 0.05, "warmup_epochs": 0, "latency_target_ms": target})
    assert model.predict(sp.parse(meta["derived"])) <= target
    assert meta["history"][-1]["metrics"]["latency_ms"] <= target
    assert "expected_latency_ms" in meta["history"][-1]["metrics"]
    assert free["history"][-1]["metrics"].get("latency_ms") is None
    assert meta["latency_model"]["name"] == "AdditiveLatency"


def test_the_latency_weight_pushes_the_distribution_to_faster_ops(tmp_path):
    sp = _small_cell_space()
    model = AdditiveLatency(sp, [[0.0, 0.0, 5.0]] * 3)
    meta = _train(tmp_path / "w", "proxylessnas", space=sp, epochs=2, latency_model=model,
                  search={"arch_lr": 0.05, "warmup_epochs": 0, "latency_weight": 1.0})
    first, last = meta["history"][0]["metrics"], meta["history"][-1]["metrics"]
    assert last["expected_latency_ms"] < 5.0  # uniform start: 3 edges x 5/3 ms
    assert last["expected_latency_ms"] <= first["expected_latency_ms"] + 1e-9


# --- derivation, records, resume ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def darts_run(tmp_path_factory, one_torch_thread):
    out = tmp_path_factory.mktemp("darts") / "run"
    _train(out, "darts", epochs=3)
    return out


def test_derive_returns_the_cell_and_the_weights_per_edge(darts_run):
    d = derive(darts_run)
    sp = asc.create_space("nb201")
    arch = sp.parse(d["arch"])
    assert d["method"] == "darts" and d["finished"] and d["epochs_done"] == 3
    assert len(d["edges"]) == 6 and all(abs(sum(e["weights"].values()) - 1) < 1e-4 for e in d["edges"])
    # the derived cell is the op of largest weight on each edge
    assert list(arch["cell"]) == [max(e["weights"], key=e["weights"].get) for e in d["edges"]]
    assert [h["epoch"] for h in d["history"]] == [1, 2, 3]
    assert d["search_time_s"] > 0 and d["peak_rss_mb"] > 0


def test_derive_is_deterministic_for_a_seed(darts_run, tmp_path):
    _train(tmp_path / "again", "darts", epochs=3)
    a, b = derive(darts_run), derive(tmp_path / "again")
    assert a["arch"] == b["arch"] and a["edges"] == b["edges"]
    _train(tmp_path / "other", "darts", epochs=3, seed=1)
    assert derive(tmp_path / "other")["edges"] != a["edges"]


def test_each_epoch_is_a_trial_of_the_study(darts_run):
    study = asc.load_study(str(darts_run / "study.db"))
    trials = sorted(study.trials, key=lambda t: t.number)
    assert [t.metrics["epoch"] for t in trials] == [1.0, 2.0, 3.0]
    assert str(trials[-1].arch) == derive(darts_run)["arch"]
    assert {"accuracy", "skip_count", "entropy"} <= set(trials[-1].metrics)
    out = subprocess.run([sys.executable, "-m", "archscout", "show", str(darts_run / "study.db")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "3 complete" in out.stdout


def test_resume_after_a_stop_follows_the_uninterrupted_run(darts_run, tmp_path):
    for method in ("darts", "rarts"):
        _train(tmp_path / method, method, epochs=3, stop_after_epoch=1)
        assert not derive(tmp_path / method)["finished"]
        _train(tmp_path / method, method, epochs=3)
        if method == "darts":
            assert derive(tmp_path / method)["edges"] == derive(darts_run)["edges"]
        study = asc.load_study(str(tmp_path / method / "study.db"))
        assert sorted(t.metrics["epoch"] for t in study.trials) == [1.0, 2.0, 3.0]  # each epoch recorded once


def test_report_has_the_heat_map_and_the_curve(darts_run, tmp_path):
    pytest.importorskip("matplotlib")
    out = subprocess.run([sys.executable, "-m", "archscout", "supernet", "derive", str(darts_run), "--json",
                          str(tmp_path / "d.json"), "--report", str(tmp_path / "rep")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    d = json.loads((tmp_path / "d.json").read_text())
    assert d["arch"] == derive(darts_run)["arch"]
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "weights.png" in html and "curve.png" in html
    assert (tmp_path / "rep" / "weights.png").stat().st_size > 1000


def test_the_derived_cell_exports_with_the_supernets_weights(darts_run, tmp_path):
    pytest.importorskip("onnxruntime")
    from archscout.export import export_front

    study = asc.load_study(str(darts_run / "study.db"))
    ev = SupernetEvaluator(darts_run)
    rows = export_front(study, tmp_path / "models", ev, device="cpu-ort", heldout=ev.heldout(),
                        summary_file=None)
    assert rows and any(r.exported for r in rows)
    assert {r.arch for r in rows} <= {str(t.arch) for t in study.trials}


# --- remedies ---------------------------------------------------------------------------------------------
def test_skip_limit_stops_the_search_and_keeps_the_cell_before(tmp_path):
    meta = _train(tmp_path / "s", "darts", space=_toy_space(), epochs=4,
                  search={"arch_lr": 0.05, "skip_limit": 1})
    st = meta["stopped_early"]
    assert meta["finished"] and st["epoch"] < 4 and meta["epochs_done"] == st["epoch"]
    assert meta["derived"] == st["kept"]
    again = _train(tmp_path / "s", "darts", space=_toy_space(), epochs=4, search={"arch_lr": 0.05, "skip_limit": 1})
    assert again["epochs_done"] == st["epoch"]  # a finished (stopped) run stays finished


def test_pc_darts_builds_partial_channel_ops_with_edge_normalisation(tmp_path):
    meta = _train(tmp_path / "pc", "pc-darts", epochs=2)
    assert meta["supernet"]["options"]["partial"] == meta["search"]["partial_k"] > 1
    assert meta["search"]["edge_norm"] and meta["history"][-1]["edge_weights"] is not None
    ew = np.array(meta["history"][-1]["edge_weights"])  # softmax over the edges entering each node
    heads = [j for j in range(1, 4) for _ in range(j)]
    for j in (1, 2, 3):
        assert ew[[k for k, h in enumerate(heads) if h == j]].sum() == pytest.approx(1.0, abs=1e-5)
    net = create_supernet(asc.create_space("nb201"), (1, 8, 8), 10, C=4, N=1, partial=2)
    with pytest.raises(BuildError, match="partial channels"):
        net.extract(asc.create_space("nb201").sample(np.random.default_rng(0)))


def test_channel_shuffle_interleaves_the_groups():
    x = torch.arange(8.0).reshape(1, 8, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


# --- few-shot ---------------------------------------------------------------------------------------------
def test_gm_nas_protocol_trains_every_path_for_the_epochs(tmp_path):
    meta = _train(tmp_path / "gm", "few-shot", epochs=3, few_shot={"sub_epochs": 2, "gm_batches": 1})
    assert (meta["parent_epochs"], meta["sub_epochs"], meta["epochs_done"]) == (1, 2, 5)
    with pytest.raises(ConfigError, match="sub_epochs"):
        _train(tmp_path / "bad", "few-shot", epochs=3, few_shot={"sub_epochs": 3})


def test_few_shot_budget_and_partition_helpers():
    assert plan(10, 2, 0.5) == (6, 2) and plan(30, 5, 0.5) == (15, 3)
    with pytest.raises(ConfigError, match="at least"):
        plan(4, 5, 0.5)
    sim = np.array([[1, .9, .1], [.9, 1, .2], [.1, .2, 1]])
    a, b, cross = _best_bipartition(sim)
    assert sorted([sorted(a), sorted(b)]) == [[0, 1], [2]] and cross == pytest.approx(0.15)
    # five ops split 2 + 3 even where a lone op disagrees most
    sim5 = np.full((5, 5), 0.5) + 0.5 * np.eye(5)
    sim5[0, 1:] = sim5[1:, 0] = -0.9
    sim5[1, 2] = sim5[2, 1] = 0.95
    a, b, _ = _best_bipartition(sim5)
    assert sorted(map(len, (a, b))) == [2, 3]
    assert region_of([0, 2], [[[1], [0, 1, 2]], [[0, 2], [0, 1, 2]]]) == 1


@pytest.fixture(scope="module")
def few_shot_run(tmp_path_factory, one_torch_thread):
    out = tmp_path_factory.mktemp("fs") / "gm"
    _train(out, "few-shot", epochs=4, few_shot={"split_edges": 1, "gm_batches": 2})
    return out


def test_gradient_matching_splits_one_edge_into_two_fine_tuned_sub_supernets(few_shot_run):
    meta = json.loads((few_shot_run / "supernet.json").read_text())
    assert meta["finished"] and meta["epochs_done"] == 4 == meta["parent_epochs"] + 2 * meta["sub_epochs"]
    assert len(meta["gm"]) == 6 and len(meta["regions"]) == 2
    split = meta["split"][0]
    assert split["edge"] == min(meta["gm"], key=lambda r: r["cross_similarity"])["edge"]
    groups = split["groups"]
    assert sorted(groups[0] + groups[1]) == list(range(5)) and groups[0] and groups[1]
    for i in range(2):  # each sub-supernet started from the parent and trained its region only
        sub = json.loads((few_shot_run / f"sub-{i}" / "supernet.json").read_text())
        assert sub["region"] == meta["regions"][i] and sub["init"].endswith("parent")


def test_the_evaluator_scores_each_architecture_with_its_sub_supernet(few_shot_run):
    ev = SupernetEvaluator(few_shot_run, cache=False)
    meta = ev.meta
    sp = ev.space
    edge = meta["split"][0]["edge"]
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(8):
        a = sp.sample(rng)
        net = ev._net_for(a)
        k = ev.supernet.path_of(a)[edge]
        i = next(i for i, r in enumerate(meta["regions"]) if k in r[edge])
        assert net is ev._load()["parts"][i][1]
        seen.add(i)
        out = ev.evaluate(a)
        assert 0.0 <= out["accuracy"] <= 1.0
        x = torch.from_numpy(np.array(ev.heldout()[0][:4]))
        ev.activate(a)
        with torch.no_grad():
            assert torch.allclose(ev.extract(a)(x), net(x), atol=1e-5)
    assert seen == {0, 1}


def test_few_shot_resumes_part_by_part(tmp_path, few_shot_run):
    out = tmp_path / "fs"
    for stop in (1, 2, 1, 1):
        meta = _train(out, "few-shot", epochs=4, few_shot={"split_edges": 1, "gm_batches": 2}, stop_after_epoch=stop)
    assert meta["finished"] and meta["epochs_done"] == 4
    ref = json.loads((few_shot_run / "supernet.json").read_text())
    assert meta["split"] == ref["split"]


def test_few_shot_with_a_differentiable_base_derives_the_best_sub_supernets_cell(tmp_path):
    _train(tmp_path / "fd", "few-shot", epochs=6, search={"warmup_epochs": 0},
           few_shot={"base": "darts", "split_by": "exhaustive", "edges": [2], "parent_fraction": 0.15})
    d = derive(tmp_path / "fd")
    assert d["method"] == "few-shot" and d["base"] == "darts" and len(d["sub_supernets"]) == 5
    best = max(d["sub_supernets"], key=lambda s: s["accuracy"])
    assert d["arch"] == best["arch"]
    ops = asc.create_space("nb201").params["cell"].ops
    for s in d["sub_supernets"]:  # each sub-supernet derives a cell inside its region
        assert asc.create_space("nb201").parse(s["arch"])["cell"][2] == ops[s["region"][2][0]]


# --- errors -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, match", [
    ({"method": "proxylessnas", "search": {"latency_target_ms": 1.0}}, "needs a latency model"),
    ({"method": "darts", "search": {"latency_weight": 1.0}}, "ProxylessNAS"),
    ({"method": "proxylessnas", "search": {"order": 2}}, "order=2"),
    ({"method": "rarts", "search": {"partial_k": 2}}, "partial channels"),
    ({"method": "proxylessnas", "search": {"edge_norm": True}}, "edge normalisation"),
    ({"method": "darts", "search": {"warmup_epochs": 5}}, "warmup_epochs"),
    ({"method": "darts", "search": {"nonsense": 1}}, "unknown differentiable"),
    ({"method": "spos", "search": {"arch_lr": 0.1}}, "belong to darts"),
    ({"method": "few-shot", "few_shot": {"split_edges": 9}}, "exceeds"),
    ({"method": "few-shot", "few_shot": {"edges": [1]}}, "exhaustive"),
    ({"method": "few-shot", "few_shot": {"base": "ofa"}}, "base"),
])
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, kw, match):
    with pytest.raises(ConfigError, match=match):
        train_supernet("nb201", "digits", tmp_path / "x", epochs=2, **TINY, **kw)
    assert not (tmp_path / "x" / "checkpoint.pt").exists()


def test_darts_family_needs_a_cell_space(tmp_path):
    for method in ("darts", "pc-darts", "rarts", "few-shot"):
        with pytest.raises(ConfigError, match="searches the ops of a cell"):
            train_supernet("mbv3", "digits", tmp_path / "m", method=method, epochs=1)
    assert not (tmp_path / "m").exists()


def _tiny_stages():
    return asc.Space({"width_mult": asc.Ordinal([1.0, 1.5]),
                      "stages": asc.Stages(n=2, depth=asc.Ordinal([1, 2]),
                                           layer={"kernel": asc.Ordinal([3, 5]), "expand": asc.Ordinal([2, 3])})},
                     name="tiny-stages")


class StageLatency:
    cheap = True

    def predict(self, arch):
        return float(sum(k * e for stage in arch["stages"] for (k, e) in stage) * 0.1 * arch["width_mult"])


STAGE = {"train_subset": 400, "val_size": 150, "options": {"widths": [8, 16], "stem_width": 8},
         "settings": {"batch_size": 40}}


def test_proxylessnas_searches_stage_spaces_with_a_latency_target(tmp_path):
    sp = _tiny_stages()
    search = {"warmup_epochs": 1, "arch_lr": 0.05, "latency_target_ms": 1.6}
    meta = train_supernet(sp, "digits", tmp_path / "st", method="proxylessnas", epochs=3, search=search,
                          latency_model=StageLatency(), **STAGE)
    d = derive(tmp_path / "st")
    assert StageLatency().predict(sp.parse(d["arch"])) <= 1.6 and d["latency_ms"] <= 1.6
    labels = [e["edge"] for e in d["edges"]]
    assert labels[:3] == ["width_mult", "stage 1 depth", "stage 1 layer 1 kernel"] and len(labels) == 11
    assert all(abs(sum(e["weights"].values()) - 1) < 1e-4 for e in d["edges"])
    assert meta["history"][0]["search"] is False and meta["history"][1]["search"] is True
    # an ordinary stage supernet folder: the evaluator scores any sub-network with the trained weights
    ev = SupernetEvaluator(tmp_path / "st", cache=False)
    assert 0.0 <= ev.evaluate(sp.parse(d["arch"]))["accuracy"] <= 1.0
    # stopped after one epoch and resumed: the same trajectory
    train_supernet(sp, "digits", tmp_path / "st2", method="proxylessnas", epochs=3, search=search,
                   latency_model=StageLatency(), stop_after_epoch=2, **STAGE)
    again = train_supernet(sp, "digits", tmp_path / "st2", method="proxylessnas", epochs=3, search=search,
                           latency_model=StageLatency(), **STAGE)
    assert [h["weights"] for h in again["history"]] == [h["weights"] for h in meta["history"]]
    assert derive(tmp_path / "st2")["arch"] == d["arch"]


def test_a_measured_latency_model_is_refused_for_the_exact_cell_term(tmp_path):
    class Measured(StageLatency):
        cheap = False
        name = "measured-latency"

    with pytest.raises(ConfigError, match="cheap"):
        LatencyTerm(Measured(), _small_cell_space(), "cell", ["zero", "identity", "conv3x3"], 3)


def test_derive_refuses_a_spos_supernet_in_one_line(tmp_path):
    train_supernet("nb201", "digits", tmp_path / "spos", epochs=1, **TINY)
    with pytest.raises(SupernetError, match="supernet search"):
        derive(tmp_path / "spos")
    out = subprocess.run([sys.executable, "-m", "archscout", "supernet", "derive", str(tmp_path / "spos"), "--json",
                          str(tmp_path / "o.json")], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "supernet search" in out.stderr


def test_cli_trains_proxylessnas_against_a_latency_table(tmp_path):
    sp = asc.create_space("nb201")
    rng = np.random.default_rng(0)
    ops = list(sp.params["cell"].ops)
    slow = {"none": 0.0, "skip_connect": 0.01, "avg_pool_3x3": 0.2, "nor_conv_1x1": 0.5, "nor_conv_3x3": 1.5}
    lines = ["arch_str,toy_ms"]
    for combo in itertools.product(ops, repeat=6):
        lines.append(f"{sp.make({'cell': combo})},{sum(slow[o] for o in combo) + rng.uniform(0, 0.01):.5f}")
    (tmp_path / "lat.csv").write_text("\n".join(lines) + "\n")
    cmd = [sys.executable, "-m", "archscout", "supernet", "train", "--space", "nb201", "--data", "digits",
           "--method", "proxylessnas", "--cost-table", str(tmp_path / "lat.csv"), "--cost-column", "toy_ms",
           "--latency-target-ms", "1.0", "--out", str(tmp_path / "px"), "--epochs", "2", "--train-subset", "300",
           "--val-size", "100", "--option", "C=4", "--option", "N=1", "--batch-size", "30", "--warmup-epochs", "0",
           "--no-progress", "--threads", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    d = derive(tmp_path / "px")
    assert d["latency_ms"] <= 1.0
    bad_cmd = [{"toy_ms": "missing_ms", str(tmp_path / "px"): str(tmp_path / "bad")}.get(c, c) for c in cmd]
    bad = subprocess.run(bad_cmd, capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "missing_ms" in bad.stderr and "Traceback" not in bad.stderr


def test_init_from_starts_from_a_trained_supernet_of_the_same_shape(darts_run, tmp_path):
    spos = tmp_path / "spos"
    train_supernet("nb201", "digits", spos, epochs=1, **TINY)
    meta = _train(tmp_path / "px", "proxylessnas", epochs=1, init_from=spos, search={"warmup_epochs": 0})
    assert meta["init"] == str(spos.resolve())
    other = tmp_path / "other"
    train_supernet("nb201", "digits", other, epochs=1, **{**TINY, "options": {"C": 8, "N": 1}})
    with pytest.raises(SupernetError, match="other options"):
        _train(tmp_path / "bad", "darts", epochs=1, init_from=other)
    with pytest.raises(SupernetError, match="supernet.json"):
        _train(tmp_path / "bad2", "darts", epochs=1, init_from=tmp_path / "nowhere")
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad2").exists()


def test_a_killed_darts_search_resumes_and_records_each_epoch_once(tmp_path):
    out = tmp_path / "k"
    cmd = [sys.executable, "-m", "archscout", "supernet", "train", "--space", "nb201", "--data", "digits",
           "--method", "darts", "--out", str(out), "--epochs", "12", "--train-subset", "300", "--val-size", "100",
           "--batch-size", "30", "--option", "C=4", "--option", "N=1", "--no-progress", "--threads", "1"]
    assert 2 <= kill_after_epochs(cmd, out, 2, ROOT) < 12
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "derived:" in r.stdout
    study = asc.load_study(str(out / "study.db"))
    done = sorted(int(t.metrics["epoch"]) for t in study.trials if t.state == "complete")
    assert done == list(range(1, 13))


def test_few_shot_parts_share_one_learning_rate_schedule(few_shot_run):
    from archscout.supernet.train import cosine_lr

    parent = json.loads((few_shot_run / "parent" / "supernet.json").read_text())
    sub = json.loads((few_shot_run / "sub-1" / "supernet.json").read_text())
    top = json.loads((few_shot_run / "supernet.json").read_text())
    length = top["parent_epochs"] + top["sub_epochs"]
    assert parent["schedule"] == {"offset": 0, "length": length}
    assert sub["schedule"] == {"offset": top["parent_epochs"], "length": length}
    # the sub-supernet's first step takes the rate where the parent's schedule stopped
    per = 10
    end_of_parent = cosine_lr(0.05, top["parent_epochs"] * per - 1, per, top["parent_epochs"], parent["schedule"])
    start_of_sub = cosine_lr(0.05, 0, per, top["sub_epochs"], sub["schedule"])
    assert 0 < start_of_sub < end_of_parent < 0.05
    assert cosine_lr(0.05, 0, per, 3, None) == pytest.approx(0.05)
