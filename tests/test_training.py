"""Datasets, splits and the training evaluator (tiny models, 1-3 epochs: the whole file runs in seconds)."""

from __future__ import annotations

import dataclasses
import json
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
from torch import nn  # noqa: E402

import archscout as asc  # noqa: E402
from archscout.data import (  # noqa: E402
    ArrayDataset,
    as_splits,
    dataset_info,
    list_datasets,
    load_dataset,
    make_splits,
)
from archscout.errors import ConfigError, DataError, UnknownNameError  # noqa: E402
from archscout.training import TrainingDivergedError, TrainingEvaluator, TrainResult  # noqa: E402

SPACE = asc.Space({"width": asc.Choice([4, 8, 16]), "depth": asc.Choice([1, 2])})


class NaNOut(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * float("nan")


class TinyFactory:
    """Stand-in for a model factory: conv stack of the architecture's width and depth (picklable)."""

    def __init__(self, input_shape=(1, 8, 8), num_classes=10, seed=0, nan=False):
        self.input_shape, self.num_classes, self.seed, self.nan = tuple(input_shape), num_classes, seed, nan

    def __call__(self, arch) -> nn.Module:
        torch.manual_seed(self.seed)
        c, w = self.input_shape[0], arch["width"]
        layers: list[nn.Module] = []
        for _ in range(arch["depth"]):
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
            c = w
        layers += [nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * w, self.num_classes)]
        if self.nan:
            layers.append(NaNOut())
        return nn.Sequential(*layers)


def arch(width=16, depth=2):
    return SPACE.make({"width": width, "depth": depth})


# --- datasets and splits ---------------------------------------------------------------------------
def test_builtin_datasets_load_with_their_shapes():
    assert {"digits", "mnist5k"} <= set(list_datasets())
    d = load_dataset("digits")
    assert d.X.shape == (1797, 1, 8, 8) and d.X.dtype == np.float32 and d.y.dtype == np.int64
    assert d.X.min() == 0.0 and d.X.max() == 1.0
    assert d.input_shape == dataset_info("digits").input_shape == (1, 8, 8) and d.num_classes == 10
    with pytest.raises(UnknownNameError, match="did you mean 'digits'"):
        load_dataset("digit")


def test_splits_are_stratified_seeded_disjoint_and_frozen():
    d = load_dataset("digits")
    s = make_splits(d, seed=0)
    assert s.sizes() == {"train": 1079, "val": 359, "test": 359}
    assert s.input_shape == (1, 8, 8) and s.num_classes == 10
    full = np.bincount(d.y) / len(d.y)
    for _, y in (s.train, s.val, s.test):
        assert np.abs(np.bincount(y, minlength=10) / len(y) - full).max() < 0.01
    # disjoint: every image lands in exactly one split
    rows = lambda X: {x.tobytes() for x in X}  # noqa: E731
    assert len(rows(s.X_train) | rows(s.X_val) | rows(s.X_test)) == len(rows(d.X))
    assert not (rows(s.X_test) & rows(s.X_train) - rows(s.X_val))
    same, other = make_splits(d, seed=0), make_splits(d, seed=1)
    assert np.array_equal(same.X_test, s.X_test) and np.array_equal(same.y_train, s.y_train)
    assert not np.array_equal(other.y_test, s.y_test)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.X_test = s.X_train  # type: ignore[misc]
    with pytest.raises(ValueError):
        s.X_train[0, 0, 0, 0] = 5.0
    assert as_splits("digits").to_config()["sizes"] == s.sizes()


def test_array_dataset_adds_a_channel_and_torch_datasets_convert():
    rng = np.random.default_rng(0)
    X, y = rng.random((30, 5, 6)), np.repeat(np.arange(3), 10)
    d = ArrayDataset(X, y.astype(float))
    assert d.X.shape == (30, 1, 5, 6) and d.y.dtype == np.int64 and d.num_classes == 3
    s = d.split((0.6, 0.2, 0.2), seed=3)
    assert s.sizes() == {"train": 18, "val": 6, "test": 6}
    tds = torch.utils.data.TensorDataset(torch.tensor(X[:, None], dtype=torch.float32), torch.tensor(y))
    s2 = as_splits(tds, seed=3)
    assert np.allclose(s2.X_test, s.X_test) and np.array_equal(s2.y_test, s.y_test)


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.zeros((10, 64)), np.arange(10) % 2, r"\(N, C, H, W\).*reshape"),
        (np.zeros((10, 8, 8)), np.arange(9) % 2, "10 samples but y has 9"),
        (np.zeros((10, 8, 8)), np.eye(2)[np.arange(10) % 2], "one-hot.*argmax"),
        (np.zeros((10, 8, 8)), np.arange(10) % 2 - 1, "must be >= 0"),
        (np.zeros((10, 8, 8)), (np.arange(10) % 2) * 2, "class 1 has no samples"),
        (np.zeros((10, 8, 8)), np.linspace(0, 1, 10), "non-integral"),
        (np.zeros((10, 8, 8)), np.zeros(10), "only one class"),
        (np.full((10, 8, 8), np.nan), np.arange(10) % 2, "NaN or infinite"),
        (np.array([["a"] * 4] * 10), np.arange(10) % 2, "must hold numbers"),
        (np.zeros((0, 8, 8)), np.zeros(0, dtype=int), "empty"),
    ],
)
def test_bad_arrays_raise_one_line_data_errors(X, y, match):
    with pytest.raises(DataError, match=match) as e:
        ArrayDataset(X, y)
    assert "\n" not in str(e.value)


def test_too_few_samples_per_class_and_bad_fractions():
    d = ArrayDataset(np.zeros((5, 4, 4)), [0, 0, 0, 1, 1])
    with pytest.raises(DataError, match="class 1 has only 2 samples"):
        d.split()
    with pytest.raises(ConfigError, match="summing to 1"):
        ArrayDataset(np.zeros((6, 4, 4)), [0, 0, 0, 1, 1, 1]).split((0.5, 0.5, 0.5))
    with pytest.raises(DataError, match="cannot use int"):
        as_splits(3)


# --- training ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def evaluator() -> TrainingEvaluator:
    return TrainingEvaluator("digits", epochs=3, factory=TinyFactory())


def test_training_learns_digits_and_reports_test_accuracy(evaluator):
    m = evaluator.evaluate(arch())
    assert set(m) == {"accuracy", "val_accuracy", "train_loss", "train_time_s", "epochs"}
    assert all(isinstance(v, float) for v in m.values())
    assert m["accuracy"] > 0.7 and m["val_accuracy"] > 0.7  # chance is 0.1
    assert m["epochs"] == 3.0 and m["train_time_s"] > 0
    res = evaluator.last_result
    assert isinstance(res, TrainResult) and len(res.val_curve) == len(res.loss_curve) == 3
    assert res.loss_curve[-1] < res.loss_curve[0]
    # "accuracy" is the accuracy on heldout(), in the exact layout the model takes
    X, y = evaluator.heldout()
    assert X.shape == (359, 1, 8, 8) and X.dtype == np.float32 and y.dtype == np.int64
    with torch.no_grad():
        pred = res.model(torch.from_numpy(np.array(X))).argmax(1).numpy()
    assert np.mean(pred == y) == pytest.approx(m["accuracy"])


def test_same_seed_same_result_and_fidelity_is_epochs(evaluator):
    a = arch(8, 1)
    m1 = evaluator.evaluate(a, 2)
    m2 = TrainingEvaluator("digits", epochs=3, factory=TinyFactory()).evaluate(a, 2.0)
    drop = lambda m: {k: v for k, v in m.items() if k != "train_time_s"}  # noqa: E731
    assert drop(m1) == drop(m2) and m1["epochs"] == 2.0
    m3 = TrainingEvaluator("digits", epochs=3, seed=1, factory=TinyFactory(seed=1)).evaluate(a, 2)
    assert drop(m3) != drop(m1)
    with pytest.raises(ConfigError, match="whole number of epochs"):
        evaluator.evaluate(a, 1.5)


def test_on_epoch_and_train_model(evaluator):
    seen = []
    res = evaluator.train(arch(4, 1), 2, on_epoch=lambda e, m: seen.append((e, m["val_accuracy"])))
    assert [e for e, _ in seen] == [1, 2] and [v for _, v in seen] == list(res.val_curve)
    model, metrics = evaluator.train_model(arch(4, 1), 2)
    assert not model.training and metrics["accuracy"] == res.metrics["accuracy"]
    assert torch.get_num_threads() >= 1


def test_adam_and_user_arrays():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(2), 40)
    X = rng.normal(size=(80, 1, 4, 4)).astype(np.float32) + y[:, None, None, None] * 2.0  # separable
    ev = TrainingEvaluator((X, y), epochs=3, batch_size=16, optimizer="adam", lr=0.01,
                           factory=TinyFactory(input_shape=(1, 4, 4), num_classes=2))
    assert ev.input_shape == (1, 4, 4) and ev.num_classes == 2
    assert ev.evaluate(arch(4, 1))["accuracy"] >= 0.9
    json.dumps(ev.to_config())


def test_bad_settings_fail_at_construction():
    with pytest.raises(ConfigError, match="optimizer"):
        TrainingEvaluator(optimizer="rmsprop", factory=TinyFactory())
    with pytest.raises(ConfigError, match="epochs"):
        TrainingEvaluator(epochs=0, factory=TinyFactory())
    with pytest.raises(ConfigError, match="lr"):
        TrainingEvaluator(lr=-1.0, factory=TinyFactory())
    with pytest.raises(UnknownNameError):
        TrainingEvaluator("cifar", factory=TinyFactory())
    with pytest.raises(ConfigError, match="factory"):
        TrainingEvaluator(factory=42)


def test_pickle_drops_builtin_data_but_keeps_results_identical(evaluator):
    evaluator.heldout()
    state = pickle.loads(pickle.dumps(evaluator))
    assert state._splits is None and state._tensors is None
    assert len(pickle.dumps(evaluator)) < 10_000
    d = json.loads(json.dumps(evaluator.to_config()))
    assert d["dataset"] == "digits" and d["epochs"] == 3


def test_nan_loss_fails_the_trial_with_a_reason():
    with pytest.raises(TrainingDivergedError, match="loss became nan at epoch 1, step 1"):
        TrainingEvaluator("digits", epochs=1, factory=TinyFactory(nan=True)).evaluate(arch())
    study = asc.create_study(SPACE, objectives=[asc.Objective("accuracy", "max")], seed=0)
    study.optimize(TrainingEvaluator("digits", epochs=1, factory=TinyFactory(nan=True)), budget=2)
    assert [t.state for t in study.trials] == ["failed", "failed"]
    assert all("TrainingDivergedError" in t.error and "diverged" in t.error for t in study.trials)


def test_runs_in_the_process_executor_with_the_same_results():
    ev = TrainingEvaluator("digits", epochs=1, factory=TinyFactory())
    study = asc.create_study(SPACE, objectives=[asc.Objective("accuracy", "max")], seed=0)
    study.optimize(ev, budget=4, executor="process", workers=2)
    assert [t.state for t in study.trials] == ["complete"] * 4
    t = study.trials[0]
    inline = ev.evaluate(t.arch)
    assert inline["accuracy"] == t.metrics["accuracy"] and inline["train_loss"] == t.metrics["train_loss"]


def test_real_model_factory_options():
    nn_mod = pytest.importorskip("archscout.nn")
    space = asc.create_space("nb201")
    a = space.parse("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|")
    ev = TrainingEvaluator("digits", epochs=2, factory={"C": 4, "N": 1})
    assert isinstance(ev.factory, nn_mod.ModelFactory) and ev.factory.seed == ev.seed
    m = ev.evaluate(a)
    assert m["accuracy"] > 0.5
    assert ev.to_config()["factory"]["options"] == {"C": 4, "N": 1}
    again = TrainingEvaluator.from_config(json.loads(json.dumps(ev.to_config())))
    assert again.to_config() == ev.to_config()
    with pytest.raises(ConfigError, match="custom dataset"):
        TrainingEvaluator.from_config({**ev.to_config(), "dataset": {"sizes": {}}})
