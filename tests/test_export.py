"""export_front: real training on digits, ONNX export, parity, held-out accuracy, a fake-clock latency budget."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import archscout as asc
from archscout.demo.space import demo_builder
from archscout.errors import ConfigError, ConstraintError, DataError
from archscout.export import ROW_COLUMNS, ExportedModel, export_front
from archscout.hardware import MeasuredLatency


def _space() -> asc.Space:
    return asc.Space({"width": asc.Ordinal([8, 16]),
                      "stages": asc.Stages(n=2, depth=asc.Ordinal([1]),
                                           layer={"op": asc.Choice(["conv3x3", "dwsep3x3", "identity"])})},
                     name="export-test")


class GrowingClock:
    """A fake clock that advances k ms at its k-th reading: every timed run takes longer than the one before,
    so the second model measured is slower than the first, on any machine."""

    def __init__(self) -> None:
        self.now, self.k = 0.0, 0

    def __call__(self) -> float:
        self.k += 1
        self.now += self.k / 1000.0
        return self.now


class StepClock:
    """A fake clock that advances ``step_s`` seconds per reading: every timed run lasts exactly ``step_s``."""

    def __init__(self, step_s: float) -> None:
        self.step_s, self.now = step_s, 0.0

    def __call__(self) -> float:
        self.now += self.step_s
        return self.now


def _device(factory, timer=None) -> MeasuredLatency:
    return MeasuredLatency("cpu-ort", factory=factory, warmup=0, repeats=3, reference=None,
                           timer=timer or GrowingClock())


@pytest.fixture(scope="module")
def searched():
    """A study of 3 trials trained for 1 epoch on digits, and its evaluator."""
    ev = asc.TrainingEvaluator("digits", epochs=1, seed=0, threads=1,
                               factory=asc.ModelFactory(input_shape=(1, 8, 8), num_classes=10, seed=0,
                                                        builder=demo_builder))
    study = asc.create_study(_space(), objectives=[asc.Objective("accuracy", "max"),
                                                   asc.Objective("params_m", "min")],
                             strategy="random", seed=0,
                             cost_models={"params_m": asc.create_cost_model("params", factory=ev.factory)})
    study.optimize(ev, budget=3)
    assert study.n_evaluated == 3
    return study, ev


@pytest.fixture(scope="module")
def exported(searched, tmp_path_factory):
    study, ev = searched
    out = tmp_path_factory.mktemp("export")
    seen = []
    rows = export_front(study, out, ev, trials=[0, 1], device=_device(ev.factory), latency_budget_ms=1000.0,
                        on_model=seen.append)
    assert seen == rows
    return out, rows


def test_files_parity_and_heldout_accuracy(searched, exported):
    import onnxruntime as ort

    study, ev = searched
    out, rows = exported
    X, y = ev.heldout()
    assert [r.trial for r in rows] == [0, 1] and all(isinstance(r, ExportedModel) for r in rows)
    for r in rows:
        assert r.exported and r.latency_budget_ms == 1000.0
        for ext in ("onnx", "pt", "json"):
            assert (out / f"{r.name}.{ext}").is_file()
        assert set(r.files) == {str(out / f"{r.name}.{ext}") for ext in ("onnx", "pt", "json")}
        assert r.onnx_max_abs_diff < 1e-4
        # the same split as the study's accuracy, and the model trained again with the same seed
        assert r.accuracy_study == study.trials[r.trial].metrics["accuracy"]
        assert abs(r.accuracy - r.accuracy_study) <= 1 / len(y)
        sess = ort.InferenceSession(str(out / f"{r.name}.onnx"), providers=["CPUExecutionProvider"])
        acc = float(np.mean(sess.run(None, {sess.get_inputs()[0].name: X})[0].argmax(1) == y))
        assert acc == r.accuracy
        assert json.loads((out / f"{r.name}.json").read_text()) == r.to_dict()
        assert r.params_m == study.trials[r.trial].metrics["params_m"] and r.latency_ms_predicted is None
    summary = json.loads((out / "export.json").read_text())
    assert summary["front"] == [r.to_dict() for r in rows] and summary["exported"] == [r.name for r in rows]
    assert summary["heldout_size"] == len(y) and summary["device"]["name"] == "cpu-ort"
    assert list(rows[0].to_dict()) == list(ROW_COLUMNS) and "files" not in ROW_COLUMNS


def test_latency_is_remeasured_from_the_file_with_the_devices_timer(exported):
    _, rows = exported
    # GrowingClock: the first model's runs last 2, 4, 6 ms (median 4), the second's 8, 10, 12 ms (median 10)
    assert [r.latency_ms_measured for r in rows] == pytest.approx([4.0, 10.0])
    assert [r.latency_spread_ms for r in rows] == pytest.approx([2.0, 2.0])


class BuildOnly:
    """An evaluator that can build models but not train them (so the weights must come from the files)."""

    def __init__(self, ev, with_heldout: bool = True) -> None:
        self.ev, self.input_shape, self.factory = ev, ev.input_shape, ev.factory
        if with_heldout:
            self.heldout = ev.heldout

    def build(self, arch):
        return self.ev.build(arch)


def test_a_model_over_the_budget_is_reported_and_not_exported(searched, exported, tmp_path):
    study, ev = searched
    src, first = exported
    out = tmp_path / "again"
    # weights loaded from the first export, nothing trained; 6 ms sits between the two models' 4 and 10 ms
    rows = export_front(study, out, BuildOnly(ev), trials=[0, 1], weights=src, device=_device(ev.factory),
                        latency_budget_ms=6.0, summary_file="s.json")
    assert [r.exported for r in rows] == [True, False]
    assert [r.accuracy for r in rows] == [r.accuracy for r in first]  # the same weights
    assert rows[1].files == () and rows[1].latency_ms_measured > 6.0
    assert sorted(p.name for p in out.iterdir()) == ["s.json", "trial0000.json", "trial0000.onnx", "trial0000.pt"]
    summary = json.loads((out / "s.json").read_text())
    assert summary["exported"] == ["trial0000"] and len(summary["front"]) == 2
    assert summary["front"][1]["exported"] is False
    # over the budget in the folder it was exported to before: its files are removed, the source weights kept
    rows = export_front(study, src, BuildOnly(ev), trials=[1], weights={1: src / "trial0001.pt"},
                        device=_device(ev.factory, timer=StepClock(0.010)), latency_budget_ms=6.0)
    assert not rows[0].exported
    assert not (src / "trial0001.onnx").exists() and not (src / "trial0001.json").exists()
    assert (src / "trial0001.pt").exists()


def test_front_and_budget_from_the_study(searched, tmp_path):
    _, ev = searched
    constrained = asc.create_study(_space(), objectives=[asc.Objective("accuracy", "max")],
                                   constraints=["latency_ms<=2.5"], strategy="random", seed=0)
    constrained.tell(constrained.ask(), {"accuracy": 0.5, "latency_ms": 1.0})
    rows = export_front(constrained, tmp_path, ev, device=_device(ev.factory))
    assert len(rows) == 1 and rows[0].latency_budget_ms == 2.5 and rows[0].latency_ms_predicted == 1.0
    assert rows[0].latency_ms_measured == pytest.approx(4.0) and not rows[0].exported  # 4 ms > 2.5 ms
    assert list(tmp_path.iterdir()) == [tmp_path / "export.json"]


@pytest.mark.parametrize("kwargs,error,words", [
    ({"latency_budget_ms": -1}, ConfigError, "latency_budget_ms"),
    ({"latency_budget_ms": math.nan}, ConfigError, "latency_budget_ms"),
    ({"latency_budget_ms": True}, ConfigError, "latency_budget_ms"),
    ({"trials": [7]}, ConfigError, "no trial 7"),
    ({"trials": []}, ConfigError, "non-empty"),
    ({"heldout": (np.zeros((4, 3, 8, 8), np.float32), np.zeros(4, np.int64))}, DataError, "shape"),
    ({"heldout": (np.zeros((4, 1, 8, 8), np.float32), np.zeros(3, np.int64))}, DataError, "labels"),
    ({"device": "cpu-torch"}, ConfigError, "onnxruntime"),
    ({"device": "nb201-pixel3"}, ConfigError, "table device"),
    ({"device": 3}, ConfigError, "measured device"),
    ({"weights": "no/such/folder"}, DataError, "does not exist"),
    ({"weights": {0: "a.pt"}}, ConfigError, "no file for trial(s) [1]"),
])
def test_bad_settings_fail_before_any_work(searched, tmp_path, kwargs, error, words):
    study, ev = searched
    out = tmp_path / "out"
    kwargs = {"trials": [0, 1], **kwargs}
    with pytest.raises(error) as e:
        export_front(study, out, ev, **kwargs)
    assert words in str(e.value) and "\n" not in str(e.value)
    assert not out.exists()


def test_what_the_study_and_evaluator_must_provide(searched, tmp_path):
    study, ev = searched
    other = asc.create_study(_space(), objectives=["score"], strategy="random", seed=0)
    other.tell(other.ask(), {"score": 1.0})
    with pytest.raises(ConfigError, match="objectives \\['score'\\]"):
        export_front(other, tmp_path / "a", ev)
    empty = asc.create_study(_space(), objectives=[asc.Objective("accuracy", "max")], constraints=["latency_ms<=1"],
                             strategy="random", seed=0)
    empty.tell(empty.ask(), {"accuracy": 0.9, "latency_ms": 2.0})  # complete, but over the constraint
    with pytest.raises(ConstraintError, match="no feasible complete trial.*1 complete"):
        export_front(empty, tmp_path / "b", ev)
    with pytest.raises(ConfigError, match="held-out set"):
        export_front(study, tmp_path / "c", BuildOnly(ev, with_heldout=False), trials=[0], weights={0: "x.pt"})
    with pytest.raises(ConfigError, match="train\\(arch\\)"):
        export_front(study, tmp_path / "d", BuildOnly(ev), trials=[0])
    assert not any((tmp_path / d).exists() for d in "abcd")


def test_lazy_name():
    import archscout

    assert archscout.export_front is export_front and archscout.ExportedModel is ExportedModel
