"""What a search from the shell evaluates, beyond tabular benchmarks: real training and supernets, and the cost
models of a device. :mod:`archscout.runs` stores these specs (plain dicts) in the study header and rebuilds
everything from them on resume and export.

Specs (``run["training"]``, ``run["supernet"]``, ``run["hardware"]``)::

    training = {"space": {"name": "mbv3", "builder": None, "options": {}},
                "data": {"data": "fashion-mnist", "train_subset": 2000, "val_size": 1000},
                "recipe": {"epochs": 2, "batch_size": 64, "optimizer": "sgd", "lr": None, "weight_decay": 5e-4,
                           "augment": False, "threads": 1}, "seed": 0}
    supernet = {"dir": "/abs/runs/sn", "data": None, "val_images": 1000}
    hardware = {"device": "cpu-ort", "latency": "predicted", "calibration": 40, "cache": "/abs/runs/x.latency.json"}

``latency = "predicted"`` (the default) measures ``calibration`` architectures on the device first, alone, and fits a
``learned-latency`` predictor that screens every candidate before dispatch (one over a latency constraint is never
trained); ``"measured"`` measures each trial's network in its worker, after training, while other workers may be
training beside it (noisier on a busy machine). Either way ``archscout export`` measures the front again.

A space is a registered name (``mbv3``) or a user's ``"package.module:attribute"`` (a :class:`~archscout.Space`
or a function returning one); its builder is the registered builder of the same name, or ``builder =
"package.module:function"`` with the signature ``builder(arch, input_shape, num_classes) -> torch.nn.Module``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ConfigError

__all__ = ["EVALUATOR_METRICS", "LATENCY_KINDS", "build_space", "cost_models_for", "import_object",
           "supernet_evaluator", "training_evaluator"]

#: metrics each kind of evaluator reports (objectives and constraints may name these, or a cost metric)
EVALUATOR_METRICS = {
    "training": ("accuracy", "val_accuracy", "train_loss", "train_time_s"),
    "supernet": ("accuracy", "val_loss", "params_m"),
}
#: metric -> the cheap analytic cost model that gives it
ANALYTIC_METRICS = {"params_m": "params", "mflops": "flops", "peak_mem_mb": "peak_mem_mb"}
LATENCY_KINDS = ("measured", "predicted")


def import_object(ref: str, what: str) -> Any:
    """The object ``"package.module:attribute"`` names (the working directory is importable, as for ``python -m``).

    Raises:
        ConfigError: ``ref`` is not of that form, or the module or attribute cannot be imported (the message says
            which).
    """
    mod, sep, qual = ref.partition(":")
    if not sep or not mod or not qual:
        raise ConfigError(f"{what} {ref!r} must be 'package.module:attribute'")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(mod)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except ImportError as e:
        raise ConfigError(f"cannot import {what} {ref!r}: {e}; run from the folder that holds the module or "
                          "install it") from None
    except AttributeError:
        raise ConfigError(f"cannot import {what} {ref!r}: module {mod!r} has no attribute {qual!r}") from None
    return obj


def build_space(spec: Mapping[str, Any]) -> Any:
    """The :class:`~archscout.Space` of a space spec (``{"name": ...}``).

    Raises:
        UnknownNameError: no registered space has that name. ConfigError: a ``module:attribute`` that does not
        import, or is neither a Space nor a function returning one.
    """
    from .space import Space, create_space

    name = spec["name"]
    if ":" not in name:
        return create_space(name)
    obj = import_object(name, "space")
    space = obj() if callable(obj) and not isinstance(obj, Space) else obj
    if not isinstance(space, Space):
        raise ConfigError(f"space {name!r} is a {type(space).__name__}, not an archscout Space (or a function "
                          "returning one)")
    return space


def _builder(spec: Mapping[str, Any]) -> Any:
    from .nn.builders import BUILDERS

    ref = spec.get("builder")
    if ref is None:
        name = spec["name"]
        if name in BUILDERS.names():
            return name
        raise ConfigError(f"space {name!r} has no registered builder; give one: [space] builder = "
                          "'package.module:function' (builder(arch, input_shape, num_classes) -> torch.nn.Module)")
    if ":" not in ref:
        BUILDERS.get(ref)  # UnknownNameError names the registered ones
        return ref
    fn = import_object(ref, "builder")
    if not callable(fn):
        raise ConfigError(f"builder {ref!r} is not callable")
    return fn


def training_evaluator(spec: Mapping[str, Any]) -> Any:
    """The :class:`~archscout.training.TrainingEvaluator` of a training spec (the space's builder compiles each
    architecture for the data's input shape and classes).

    Raises:
        ConfigError, UnknownNameError, DataError, BuildError: a bad recipe, an unknown dataset or builder, data
        that cannot be read.
    """
    from .data import dataset_info, list_datasets, load_splits
    from .nn import ModelFactory
    from .training import TrainingEvaluator

    data = dict(spec["data"])
    source = data.pop("data")
    if source in list_datasets():
        info = dataset_info(source)
        shape, classes = info.input_shape, info.num_classes
        if not info.official_test:
            data.pop("val_size", None)
    else:
        splits = load_splits(source, **data)  # reads the file now: a missing or malformed file fails here
        shape, classes = splits.input_shape, splits.num_classes
    seed = int(spec.get("seed") or 0)
    factory = ModelFactory(shape, classes, seed=seed, builder=_builder(spec["space"]),
                           **dict(spec["space"].get("options") or {}))
    recipe = {k: v for k, v in spec["recipe"].items() if v is not None}
    return TrainingEvaluator(source, seed=seed, factory=factory, **recipe, **data)


def supernet_evaluator(spec: Mapping[str, Any]) -> Any:
    """The :class:`~archscout.supernet.SupernetEvaluator` of a supernet spec."""
    from .supernet import SupernetEvaluator

    return SupernetEvaluator(spec["dir"], data=spec.get("data"), val_images=spec.get("val_images"))


def _calibrate(space: Any, meter: Any, n: int, seed: int, progress: bool) -> Any:
    """A ``learned-latency`` predictor fitted on ``n`` functionally distinct architectures (seeded) measured by
    ``meter``; measurements already in its cache are read, not repeated."""
    from tqdm import tqdm

    from .hardware import LearnedLatency

    rng = np.random.default_rng(seed + 10_000)
    archs, seen = [], set()
    for _ in range(100 * n):
        a = space.sample(rng)
        if a.functional_hash() not in seen:
            seen.add(a.functional_hash())
            archs.append(a)
        if len(archs) == n:
            break
    lat = [meter.predict(a) for a in tqdm(archs, desc="latency calibration", unit="arch", disable=not progress,
                                          file=sys.stderr)]
    return LearnedLatency(meter.device, factory=meter.factory, seed=seed).fit(archs, lat)


def cost_models_for(metrics: set[str], kind: str, space: Any, factory: Any, hardware: Mapping[str, Any] | None,
                    seed: int, progress: bool = True) -> dict[str, Any]:
    """The cost models behind the ``metrics`` that objectives and constraints name and the evaluator does not
    report: ``latency_ms`` on the hardware spec's device (a predictor calibrated now and used before dispatch, or
    measured with each evaluation), and ``params_m`` / ``mflops`` / ``peak_mem_mb`` (analytic, cheap).

    Raises:
        ConfigError: a metric nothing gives (the message lists what is available), ``latency_ms`` without a device.
    """
    from .hardware import create_cost_model

    out: dict[str, Any] = {}
    for metric in sorted(metrics - set(EVALUATOR_METRICS[kind])):
        if metric == "latency_ms":
            if not hardware or not hardware.get("device"):
                raise ConfigError("latency_ms needs a device: pass --device NAME (e.g. cpu-ort; see `archscout list "
                                  "devices`) or [hardware] device")
            meter: Any = create_cost_model("measured-latency", device=hardware["device"], factory=factory,
                                           cache_path=hardware.get("cache"))
            if meter.device.kind != "measured":
                raise ConfigError(f"device {hardware['device']!r} is a table device; a search that trains needs a "
                                  "measured device such as cpu-ort")
            latency = hardware.get("latency", "predicted")
            out[metric] = meter if latency == "measured" else _calibrate(
                space, meter, int(hardware.get("calibration") or 40), seed, progress)
        elif metric in ANALYTIC_METRICS:
            out[metric] = create_cost_model(ANALYTIC_METRICS[metric], factory=factory)
        else:
            known = sorted({*EVALUATOR_METRICS[kind], "latency_ms", *ANALYTIC_METRICS})
            raise ConfigError(f"no evaluator or cost model gives the metric {metric!r}; objectives and constraints "
                              f"may name {known}")
    return out
