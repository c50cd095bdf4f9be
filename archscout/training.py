"""Train architectures for real with PyTorch on the CPU: the evaluator behind accuracy objectives.

:class:`TrainingEvaluator` compiles an architecture into a ``torch.nn.Module`` (with
:class:`archscout.nn.ModelFactory` or any picklable ``factory(arch) -> Module``), trains it on the train
split of a dataset and reports, as plain floats:

=================  ==========================================================================================
``accuracy``       top-1 accuracy, a fraction in [0, 1], on the held-out **test** split (never used for training
                   or for choosing anything inside the evaluator; :meth:`TrainingEvaluator.heldout` returns it)
``val_accuracy``   top-1 accuracy on the validation split after the last epoch
``train_loss``     mean cross-entropy over the last epoch's training batches (nats)
``train_time_s``   wall-clock seconds spent in the training epochs (evaluation excluded)
``epochs``         epochs trained (the fidelity)
=================  ==========================================================================================

Per-epoch validation accuracy and training loss are in :class:`TrainResult` (``val_curve``, ``loss_curve``)
and reach an optional ``on_epoch(epoch, metrics)`` callback of :meth:`TrainingEvaluator.train`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ArchscoutError, ConfigError, require

require("torch", "nn")
import torch  # noqa: E402
from torch import nn  # noqa: E402

from ._torch import resolve_factory, torch_threads  # noqa: E402
from ._validate import check_int  # noqa: E402
from .data import SPLIT_SEED, Splits, as_splits, dataset_info, list_datasets  # noqa: E402
from .space import Architecture  # noqa: E402

__all__ = ["OPTIMIZERS", "TrainResult", "TrainingDivergedError", "TrainingEvaluator", "to_tensors"]

OPTIMIZERS = ("sgd", "adam")
_DEFAULT_LR = {"sgd": 0.05, "adam": 0.003}


class TrainingDivergedError(ArchscoutError, FloatingPointError):
    """The training loss became NaN or infinite (a study records the trial as failed with this reason)."""


@dataclass(frozen=True, eq=False)
class TrainResult:
    """One training run.

    Attributes:
        model: the trained module, in eval mode, on the CPU.
        metrics: ``accuracy`` (test split), ``val_accuracy``, ``train_loss``, ``train_time_s``, ``epochs``.
        val_curve: validation accuracy after each epoch, fractions in [0, 1].
        loss_curve: mean training cross-entropy of each epoch.
    """

    model: nn.Module
    metrics: dict[str, float]
    val_curve: tuple[float, ...] = field(default_factory=tuple)
    loss_curve: tuple[float, ...] = field(default_factory=tuple)


def to_tensors(X: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 images ``(N, C, H, W)`` and int64 labels ``(N,)`` as CPU tensors (sharing memory when possible)."""
    return torch.from_numpy(np.array(X, dtype=np.float32)), torch.from_numpy(np.array(y, dtype=np.int64))


@torch.inference_mode()
def _accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(y), batch_size):
        correct += int((model(X[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
    return correct / max(1, len(y))


class TrainingEvaluator:
    """Trains each architecture from scratch and returns its accuracy (see the module docstring).

    Recipe: cross-entropy, SGD with Nesterov momentum 0.9 (or Adam), cosine learning-rate decay to 0 over the
    epochs of the run, shuffled minibatches (a final batch of one sample is skipped). The data order and any
    randomness inside the model come from ``seed``; the same architecture, settings and seed give the same
    metrics (on one thread; more threads may change the last digits).

    Args:
        dataset: a built-in dataset name (``"digits"``, ``"mnist5k"``: split 60/20/20 with a fixed seed 0;
            ``"fashion-mnist"``, ``"cifar10"``: the official test split; loaded lazily in each worker), a path
            (an ``.npz``, an IDX or CIFAR-10 binary folder; see :func:`archscout.data.load_splits`), a
            :class:`~archscout.data.Splits`, an
            :class:`~archscout.data.ArrayDataset`, a map-style torch ``Dataset`` or an ``(X, y)`` pair (split
            60/20/20 with seed 0 once, here).
        epochs: epochs per evaluation when the fidelity is ``None``.
        batch_size: training minibatch size.
        lr: peak learning rate; ``None`` picks 0.05 for SGD and 0.003 for Adam.
        optimizer: ``"sgd"`` or ``"adam"``.
        weight_decay: L2 penalty (coupled, as in ``torch.optim``).
        seed: seeds the data order (and the model's initialisation when the factory is built here).
        threads: ``torch.set_num_threads`` while training (restored afterwards).
        factory: a :class:`archscout.nn.ModelFactory` or any picklable ``factory(arch) -> torch.nn.Module``; a
            mapping is taken as ModelFactory options (e.g. ``{"C": 8, "N": 1}``); ``None``: default options.
        train_subset: keep this many training images (stratified, seeded by the split seed 0); None: all.
            Only for a dataset given by name or path (see :func:`archscout.data.load_splits`).
        val_size: validation images drawn from the official training set (a dataset with an official test
            split, by name or path); None: the loader's default.
        augment: training augmentation: None / False (none), True or ``"crop-flip"`` (random crops with 4 pixels
            of padding and horizontal flips), or an :class:`archscout.data.Augment` (or its config dict).

    Raises:
        ConfigError: an invalid setting. UnknownNameError / DataError: an unknown dataset name or bad data.
    """

    def __init__(
        self,
        dataset: Any = "digits",
        epochs: int = 10,
        batch_size: int = 64,
        lr: float | None = None,
        optimizer: str = "sgd",
        weight_decay: float = 5e-4,
        seed: int = 0,
        threads: int = 1,
        factory: Any = None,
        *,
        train_subset: int | None = None,
        val_size: int | float | None = None,
        augment: Any = None,
    ) -> None:
        self.epochs = check_int("epochs", epochs)
        self.batch_size = check_int("batch_size", batch_size)
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        self.optimizer = optimizer
        lr = _DEFAULT_LR[optimizer] if lr is None else lr
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (0 < lr < math.inf):
            raise ConfigError(f"lr must be a positive number, got {lr!r}")
        self.lr = float(lr)
        wd_ok = isinstance(weight_decay, (int, float)) and not isinstance(weight_decay, bool)
        if not wd_ok or not 0 <= weight_decay < math.inf:
            raise ConfigError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
        self.weight_decay = float(weight_decay)
        self.seed = check_int("seed", seed, 0)
        self.threads = check_int("threads", threads)
        self.augment = _augment(augment)
        self.train_subset = None if train_subset is None else check_int("train_subset", train_subset)
        self.val_size = val_size
        self._load: dict[str, Any] = {k: v for k, v in (("train_subset", self.train_subset), ("val_size", val_size))
                                      if v is not None}
        self.dataset_name: str | None
        self._splits: Splits | None
        if isinstance(dataset, os.PathLike) or (isinstance(dataset, str) and dataset not in list_datasets()
                                                 and os.path.exists(dataset)):
            path = os.path.abspath(os.fspath(dataset))  # a file or folder: load_splits reads it (and again in workers)
            self._splits = self._load_splits(path)
            self.dataset_name = path
            shape, classes = self._splits.input_shape, self._splits.num_classes
        elif isinstance(dataset, str):
            info = dataset_info(dataset)  # raises UnknownNameError at once
            self.dataset_name = dataset
            self._splits = None
            shape, classes = info.input_shape, info.num_classes
            if self._load and not info.official_test and "val_size" in self._load:
                raise ConfigError(f"val_size applies to datasets with an official test split; {dataset!r} is split "
                                  "60/20/20, so leave it out")
        else:
            if self._load:
                raise ConfigError("train_subset and val_size apply to a dataset given by name or path; cut your "
                                  "arrays yourself (or pass archscout.data.load_splits(...))")
            self._splits = as_splits(dataset, seed=SPLIT_SEED)
            self.dataset_name = None
            shape, classes = self._splits.input_shape, self._splits.num_classes
        self.input_shape: tuple[int, int, int] = tuple(shape)  # type: ignore[assignment]
        self.num_classes: int = classes
        self.factory = resolve_factory(factory, self.input_shape, self.num_classes, self.seed)
        self.last_result: TrainResult | None = None
        self._tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None

    # --- data ----------------------------------------------------------------------------------------
    def _load_splits(self, data: str) -> Splits:
        if not self._load:
            return as_splits(data, seed=SPLIT_SEED)
        from .data import load_splits

        return load_splits(data, seed=SPLIT_SEED, **self._load)

    @property
    def splits(self) -> Splits:
        """The train / validation / test splits (a built-in dataset is loaded on first use)."""
        if self._splits is None:
            assert self.dataset_name is not None
            self._splits = self._load_splits(self.dataset_name)
        return self._splits

    def _data(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        if self._tensors is None:
            s = self.splits
            self._tensors = {k: to_tensors(*getattr(s, k)) for k in ("train", "val", "test")}
        return self._tensors

    def heldout(self) -> tuple[np.ndarray, np.ndarray]:
        """The test split that ``accuracy`` is measured on: float32 images ``(N, C, H, W)`` exactly as the
        model takes them, and int64 labels ``(N,)``."""
        return self.splits.X_test, self.splits.y_test

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_tensors"] = None
        state["last_result"] = None
        if self.dataset_name is not None:
            state["_splits"] = None  # a built-in dataset is reloaded in the worker, not pickled
        return state

    # --- training ------------------------------------------------------------------------------------
    def _fidelity_epochs(self, fidelity: float | None) -> int:
        if fidelity is None:
            return self.epochs
        try:
            e = float(fidelity)
        except (TypeError, ValueError):
            raise ConfigError(f"the fidelity is a number of epochs, got {fidelity!r}") from None
        if not e.is_integer() or e < 1:
            raise ConfigError(f"the fidelity is a whole number of epochs >= 1, got {fidelity!r}")
        return int(e)

    def build(self, arch: Architecture) -> nn.Module:
        """A freshly initialised model of ``arch`` (deterministic: the torch RNG is seeded with ``seed``
        around the factory call). Raises whatever the factory raises, e.g. :class:`~archscout.errors.BuildError`."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return self.factory(arch)

    def train(
        self,
        arch: Architecture,
        epochs: float | None = None,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    ) -> TrainResult:
        """Build ``arch`` and train it for ``epochs`` (``None``: the evaluator's ``epochs``).

        Args:
            arch: the architecture to build with the factory.
            epochs: a whole number of epochs; the learning rate decays to 0 over exactly these epochs.
            on_epoch: called after each epoch as ``on_epoch(epoch, {"val_accuracy": ..., "train_loss": ...})``
                with ``epoch`` counted from 1; an exception it raises stops training and propagates.

        Raises:
            TrainingDivergedError: the loss became NaN or infinite.
            ConfigError: ``epochs`` is not a whole number >= 1.
            BuildError: the factory cannot build ``arch``.
        """
        n_epochs = self._fidelity_epochs(epochs)
        data = self._data()
        Xtr, ytr = data["train"]
        with torch_threads(self.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = self.factory(arch)
            if not isinstance(model, nn.Module):
                raise ConfigError(f"the factory returned {type(model).__name__}, not a torch.nn.Module")
            params = [p for p in model.parameters() if p.requires_grad]
            if self.optimizer == "sgd":
                opt: torch.optim.Optimizer = torch.optim.SGD(params, lr=self.lr, momentum=0.9, nesterov=True,
                                                             weight_decay=self.weight_decay)
            else:
                opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
            n = len(ytr)
            steps_per_epoch = n // self.batch_size + (1 if n % self.batch_size > 1 else 0)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps_per_epoch * n_epochs))
            gen = torch.Generator().manual_seed(self.seed)
            aug_gen = torch.Generator().manual_seed(self.seed + 1)
            loss_fn = nn.CrossEntropyLoss()
            val_curve: list[float] = []
            loss_curve: list[float] = []
            train_time = 0.0
            for epoch in range(1, n_epochs + 1):
                t0 = time.perf_counter()
                model.train()
                perm = torch.randperm(n, generator=gen)
                total, seen = 0.0, 0
                for step, i in enumerate(range(0, n, self.batch_size)):
                    idx = perm[i:i + self.batch_size]
                    if len(idx) < 2:  # BatchNorm cannot train on one sample
                        continue
                    xb = Xtr[idx] if self.augment is None else self.augment(Xtr[idx], aug_gen)
                    loss = loss_fn(model(xb), ytr[idx])
                    if not torch.isfinite(loss):
                        raise TrainingDivergedError(
                            f"training diverged: the loss became {float(loss.detach())} at epoch {epoch}, "
                            f"step {step + 1} (optimizer {self.optimizer}, lr {self.lr}); lower the learning rate "
                            "or check the model and data")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    total += float(loss.detach()) * len(idx)
                    seen += len(idx)
                train_time += time.perf_counter() - t0
                loss_curve.append(total / max(1, seen))
                val_curve.append(_accuracy(model, *data["val"]))
                if on_epoch is not None:
                    on_epoch(epoch, {"val_accuracy": val_curve[-1], "train_loss": loss_curve[-1]})
            test_acc = _accuracy(model, *data["test"])
        model.eval()
        metrics = {
            "accuracy": test_acc,
            "val_accuracy": val_curve[-1],
            "train_loss": loss_curve[-1],
            "train_time_s": train_time,
            "epochs": float(n_epochs),
        }
        return TrainResult(model, metrics, tuple(val_curve), tuple(loss_curve))

    def evaluate(self, arch: Architecture, fidelity: float | None = None) -> dict[str, float]:
        """Train ``arch`` for ``fidelity`` epochs (``None``: ``epochs``) and return its metrics: ``accuracy``
        (test split), ``val_accuracy``, ``train_loss``, ``train_time_s``, ``epochs``. The full
        :class:`TrainResult` of the latest call stays in ``last_result`` (in the process that ran it).

        Raises:
            TrainingDivergedError, ConfigError, BuildError: see :meth:`train`.
        """
        res = self.train(arch, fidelity)
        self.last_result = res
        return dict(res.metrics)

    def train_model(self, arch: Architecture, epochs: float | None = None) -> tuple[nn.Module, dict[str, float]]:
        """Train ``arch`` (as :meth:`evaluate` does, same seed and result) and return ``(model, metrics)``: the
        trained module in eval mode, ready for export, with its metrics."""
        res = self.train(arch, epochs)
        return res.model, dict(res.metrics)

    def to_config(self) -> dict:
        """The settings as a JSON-safe dict (a custom dataset is described by its splits' shape and sizes)."""
        fac = self.factory
        fconf = fac.to_config() if hasattr(fac, "to_config") else {"callable": getattr(
            type(fac), "__qualname__", repr(fac))}
        return {
            "type": "training",
            "dataset": self.dataset_name if self.dataset_name is not None else self.splits.to_config(),
            "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr, "optimizer": self.optimizer,
            "weight_decay": self.weight_decay, "seed": self.seed, "threads": self.threads, "factory": fconf,
            "train_subset": self.train_subset, "val_size": self.val_size,
            "augment": None if self.augment is None else self.augment.to_config(),
        }

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> TrainingEvaluator:
        """Rebuild an evaluator from :meth:`to_config` output (built-in datasets and ModelFactory configs only).

        Raises:
            ConfigError: the config names a custom dataset or a factory that is not a ModelFactory config.
        """
        if not isinstance(cfg.get("dataset"), str):
            raise ConfigError("this config was made with a custom dataset; pass the data again: "
                              "TrainingEvaluator(dataset=..., **settings)")
        fconf = cfg.get("factory")
        factory = None
        if fconf is not None:
            if "input_shape" not in fconf:
                raise ConfigError(f"cannot rebuild the factory {fconf!r}; pass factory=... yourself")
            from .nn import ModelFactory

            factory = ModelFactory.from_config(fconf)
        keys = ("epochs", "batch_size", "lr", "optimizer", "weight_decay", "seed", "threads", "train_subset",
                "val_size", "augment")
        return cls(cfg["dataset"], factory=factory, **{k: cfg[k] for k in keys if k in cfg})

    def __repr__(self) -> str:
        ds = self.dataset_name or (self._splits.name if self._splits is not None else "custom")
        return (f"TrainingEvaluator(dataset={ds!r}, epochs={self.epochs}, batch_size={self.batch_size}, "
                f"lr={self.lr}, optimizer={self.optimizer!r}, seed={self.seed})")


def _augment(augment: Any) -> Any:
    """An :class:`~archscout.data.Augment` or None from the ``augment`` argument (see TrainingEvaluator)."""
    from .data import Augment

    if augment is None or augment is False:
        return None
    if augment is True:
        return Augment()
    if isinstance(augment, Augment):
        return augment
    if isinstance(augment, (str, Mapping)):
        return Augment.from_config(augment)
    raise ConfigError(f"augment must be None, True/False, 'crop-flip', an Augment or its config, got {augment!r}")
