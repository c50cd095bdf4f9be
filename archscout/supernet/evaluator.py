"""Evaluating sub-networks with inherited weights: an ordinary evaluator over a trained supernet.

For each architecture, :class:`SupernetEvaluator` activates its path, recomputes every batch-norm layer's
statistics on a few fixed training batches (the shared statistics belong to no sub-network), and computes
top-1 accuracy on the validation split drawn from the training set when the supernet was trained. The test
split is never used for selection: it is what :meth:`SupernetEvaluator.heldout` hands to the export.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import check_int
from ..errors import ConfigError, require
from ..space import Architecture

__all__ = ["ExtractedModel", "SupernetEvaluator", "recalibrate_bn"]

EVAL_VERSION = 2  # bumped when the evaluation itself changes, so cached results of older versions are not read


def recalibrate_bn(net: Any, batches: list[Any]) -> None:
    """Reset every batch-norm layer of ``net`` and recompute its running mean and variance as the plain
    average over ``batches`` (tensors ``(B, C, H, W)`` on the network's device) of the active sub-network;
    ``net`` is left in eval mode."""
    torch = require("torch", "nn")
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
    net.train()
    try:
        with torch.no_grad():
            for x in batches:
                net(x)
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom
        net.eval()


@dataclass(frozen=True, eq=False)
class ExtractedModel:
    """A sub-network extracted from the supernet (what ``export_front`` takes from ``train``).

    Attributes:
        model: the standalone plain module in eval mode, on the CPU.
        metrics: ``val_accuracy`` with inherited weights, then ``finetune_epochs`` and, after fine-tuning,
            ``val_accuracy_finetuned``.
    """

    model: Any
    metrics: dict[str, float]


class SupernetEvaluator:
    """Scores architectures with inherited weights from a trained supernet folder.

    ``evaluate(arch)`` returns ``accuracy`` (top-1 on the validation split, a fraction), ``val_loss`` (mean
    cross-entropy there) and ``params_m`` (parameters of the standalone sub-network, millions). Any strategy
    and any cost model search over it unchanged (``study.optimize(SupernetEvaluator(folder), budget)``).

    Args:
        supernet: the folder written by :func:`~archscout.supernet.train_supernet`.
        data: the dataset (name or path) when it is no longer where ``supernet.json`` says; None reads it from
            there.
        recal_batches: training batches that recompute the batch-norm statistics of each sub-network.
        recal_batch_size: images per recalibration batch.
        finetune_epochs: epochs of fine-tuning after extraction in :meth:`train` (0: inherited weights as they
            are).
        accelerator: ``"cpu"``, ``"cuda"`` or ``"auto"`` for the forward passes.
        threads: torch intra-op threads while evaluating (None: torch's default).
        cache: keep every result in ``evals-<settings digest>.jsonl`` inside the supernet folder, so that later
            evaluations (another search seed, ``supernet eval``) of an architecture read it instead of running
            it again; results do not depend on anything but the folder and these settings.
        val_images: score on the first ``val_images`` images of the validation split only (faster, noisier);
            None: all of them.

    Raises:
        ConfigError: bad settings. SupernetError: (when first used) an unusable folder.
    """

    def __init__(self, supernet: str | os.PathLike, *, data: str | os.PathLike | None = None, recal_batches: int = 2,
                 recal_batch_size: int = 256, finetune_epochs: int = 0, accelerator: str = "cpu",
                 threads: int | None = None, cache: bool = True, val_images: int | None = None) -> None:
        if not isinstance(supernet, (str, os.PathLike)):
            raise ConfigError(f"supernet must be a folder written by 'archscout supernet train', got {supernet!r}")
        self.path = os.fspath(supernet)
        self.data = None if data is None else os.fspath(data)
        self.recal_batches = check_int("recal_batches", recal_batches, 1)
        self.recal_batch_size = check_int("recal_batch_size", recal_batch_size, 2)
        self.finetune_epochs = check_int("finetune_epochs", finetune_epochs, 0)
        self.accelerator = accelerator
        self.threads = None if threads is None else check_int("threads", threads, 1)
        self.cache = bool(cache)
        self.val_images = None if val_images is None else check_int("val_images", val_images, 1)
        self._state: dict[str, Any] | None = None
        self._cache: dict[Any, dict[str, float]] = {}

    def _cache_file(self) -> Path:
        digest = hashlib.sha256(json.dumps([self.recal_batches, self.recal_batch_size, self.val_images,
                                            EVAL_VERSION]).encode())
        return Path(self.path) / f"evals-{digest.hexdigest()[:12]}.jsonl"

    def _read_cache(self) -> None:
        f = self._cache_file()
        if not self.cache or not f.exists():
            return
        for line in f.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                self._cache[rec["hash"]] = {k: float(v) for k, v in rec["metrics"].items()}
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a line cut by a kill: that architecture is evaluated again

    def _write_cache(self, arch: Architecture, key: str, metrics: dict[str, float]) -> None:
        if not self.cache:
            return
        line = json.dumps({"hash": key, "arch": str(arch), "metrics": metrics}) + "\n"
        with open(self._cache_file(), "a", encoding="utf-8") as f:
            f.write(line)

    # --- loading ------------------------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        if self._state is None:
            torch = require("torch", "nn")
            from ..data import load_splits
            from .build import load_supernet
            from .train import resolve_accelerator

            device = resolve_accelerator(self.accelerator)
            net, meta = load_supernet(self.path)
            ds = meta["data"]
            splits = load_splits(self.data or ds["data"], train_subset=ds["train_subset"], val_size=ds["val_size"],
                                 seed=ds["split_seed"])
            if tuple(splits.input_shape) != tuple(net.input_shape) or splits.num_classes != net.num_classes:
                raise ConfigError(f"the data has inputs {splits.input_shape} and {splits.num_classes} classes; the "
                                  f"supernet was trained on {tuple(net.input_shape)} and {net.num_classes}")
            rng = np.random.default_rng(0)
            n = len(splits.y_train)
            size = min(self.recal_batch_size, n)
            idx = rng.permutation(n)
            batches = [torch.from_numpy(np.ascontiguousarray(splits.X_train[np.sort(idx[i:i + size])])).to(device)
                       for i in range(0, min(n, size * self.recal_batches), size) if len(idx[i:i + size]) >= 2]
            parts = None
            if meta["settings"]["method"] == "few-shot":
                from .fewshot import load_parts
                parts = [(region, sub.to(device)) for region, sub in load_parts(self.path, meta)]
            self._state = {
                "net": net.to(device), "meta": meta, "splits": splits, "device": device, "recal": batches,
                "parts": parts,
                "X_val": torch.from_numpy(np.array(splits.X_val)),
                "y_val": torch.from_numpy(np.array(splits.y_val)),
            }
            self._read_cache()
        return self._state

    def __getstate__(self) -> dict:
        d = dict(self.__dict__)
        d["_state"] = None
        d["_cache"] = {}
        return d

    @property
    def supernet(self) -> Any:
        """The trained supernet (loaded when first used)."""
        return self._load()["net"]

    @property
    def meta(self) -> dict[str, Any]:
        return self._load()["meta"]

    @property
    def space(self) -> Any:
        return self.supernet.space

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.supernet.input_shape)

    @property
    def factory(self) -> Any:
        """A picklable ``arch -> nn.Module`` building the standalone sub-networks (fresh weights), for
        latency cost models."""
        from ..nn import ModelFactory

        net = self.supernet
        return ModelFactory(net.input_shape, net.num_classes, seed=0, builder="nb201" if net.kind == "cell" else "mbv3",
                            **{k: v for k, v in net.options().items() if k != "partial"})

    def build(self, arch: Architecture) -> Any:
        """The standalone network of ``arch`` with fresh weights (what :meth:`train` fills)."""
        return self.factory(arch)

    def heldout(self) -> tuple[np.ndarray, np.ndarray]:
        """The test split ``(X (N, C, H, W) float32, y (N,) int64)``: never used to select anything."""
        s = self._load()["splits"]
        return s.X_test, s.y_test

    # --- evaluation ---------------------------------------------------------------------------------------
    def _with_threads(self) -> Any:
        import contextlib

        from .._torch import torch_threads
        return torch_threads(self.threads) if self.threads is not None else contextlib.nullcontext()

    def activate(self, arch: Architecture) -> Any:
        """Activate ``arch`` in the supernet and recalibrate its batch norm; returns the supernet."""
        st = self._load()
        net = self._net_for(arch)
        net.set_active(arch)
        recalibrate_bn(net, st["recal"])
        return net

    def _net_for(self, arch: Architecture) -> Any:
        """The supernet that holds ``arch``: the one supernet, or a few-shot run's sub-supernet of its region."""
        st = self._load()
        if st["parts"] is None:
            return st["net"]
        from .fewshot import region_of
        path = st["net"].path_of(arch)
        return st["parts"][region_of(path, [r for r, _ in st["parts"]])][1]

    def evaluate(self, arch: Architecture, fidelity: float | None = None) -> dict[str, float]:
        """``{"accuracy", "val_loss", "params_m"}`` of ``arch`` with inherited weights (see the class docstring)."""
        torch = require("torch", "nn")
        F = require("torch.nn.functional", "nn")
        st = self._load()
        arch = self.space.validate(arch)
        key = str(arch)  # not the functional hash: isomorphic cells inherit different weights
        if key in self._cache:
            return dict(self._cache[key])
        with self._with_threads():
            model = self._subnet(arch)
            channels_last = st["device"] == "cpu"
            if channels_last:  # depthwise and 1x1 convolutions run about 1.5x faster so on CPUs
                model = model.to(memory_format=torch.channels_last)
            correct, loss_sum = 0, 0.0
            X, Y = st["X_val"], st["y_val"]
            if self.val_images is not None:
                X, Y = X[: self.val_images], Y[: self.val_images]
            with torch.no_grad():
                for i in range(0, len(Y), 1000):
                    x, y = X[i:i + 1000].to(st["device"]), Y[i:i + 1000].to(st["device"])
                    if channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    out = model(x)
                    loss_sum += float(F.cross_entropy(out, y, reduction="sum"))
                    correct += int((out.argmax(1) == y).sum())
            params = sum(p.numel() for p in model.parameters())
        metrics = {"accuracy": correct / len(Y), "val_loss": loss_sum / len(Y), "params_m": params / 1e6}
        self._cache[key] = metrics
        self._write_cache(arch, key, metrics)
        return dict(metrics)

    def __call__(self, arch: Architecture) -> dict[str, float]:
        return self.evaluate(arch)

    def _subnet(self, arch: Architecture) -> Any:
        """The standalone sub-network of ``arch`` (on the evaluator's device) with inherited weights and its own
        batch-norm statistics, recomputed on the fixed recalibration batches; eval mode."""
        st = self._load()
        model = self._net_for(arch).extract(arch)
        recalibrate_bn(model, st["recal"])
        return model

    def extract(self, arch: Architecture) -> Any:
        """The standalone sub-network of ``arch`` with inherited, recalibrated weights (eval mode, CPU): it
        computes what the supernet computes after :meth:`activate`."""
        with self._with_threads():
            return self._subnet(self.space.validate(arch)).cpu().eval()

    def train(self, arch: Architecture, epochs: int | None = None) -> ExtractedModel:
        """Extract ``arch`` (see :meth:`extract`) and fine-tune it for ``epochs`` (default
        ``finetune_epochs``) on the training split with SGD (lr 0.01, cosine), seeded; what the export takes."""
        torch = require("torch", "nn")
        F = require("torch.nn.functional", "nn")
        st = self._load()
        epochs = self.finetune_epochs if epochs is None else check_int("epochs", epochs, 0)
        model = self.extract(arch)
        metrics: dict[str, float] = {"val_accuracy": self.evaluate(arch)["accuracy"], "finetune_epochs": epochs}
        if epochs:
            with self._with_threads():
                s = st["splits"]
                X = torch.from_numpy(np.array(s.X_train))
                Y = torch.from_numpy(np.array(s.y_train))
                opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=4e-5)
                bs = 128
                steps = epochs * max(1, len(Y) // bs)
                sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
                model.train()
                for e in range(epochs):
                    order = torch.from_numpy(np.random.default_rng([0, e]).permutation(len(Y)))
                    for b in range(max(1, len(Y) // bs)):
                        idx = order[b * bs:(b + 1) * bs]
                        opt.zero_grad(set_to_none=True)
                        F.cross_entropy(model(X[idx]), Y[idx]).backward()
                        opt.step()
                        sched.step()
                model.eval()
                with torch.no_grad():
                    out = torch.cat([model(st["X_val"][i:i + 1000]) for i in range(0, len(st["y_val"]), 1000)])
                metrics["val_accuracy_finetuned"] = float((out.argmax(1) == st["y_val"]).float().mean())
        return ExtractedModel(model, metrics)

    def to_config(self) -> dict[str, Any]:
        return {"kind": "supernet", "path": self.path, "data": self.data, "recal_batches": self.recal_batches,
                "recal_batch_size": self.recal_batch_size, "finetune_epochs": self.finetune_epochs,
                "val_images": self.val_images}

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> SupernetEvaluator:
        c = {k: v for k, v in cfg.items() if k != "kind"}
        return cls(c.pop("path"), **c)

    def __repr__(self) -> str:
        return f"SupernetEvaluator({self.path!r})"
