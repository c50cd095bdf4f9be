"""Accelerator designs as architectures: the ``systolic`` space's evaluator and the ``systolic`` cost model.

An architecture of the ``systolic`` space (or of a joint network x accelerator space, see
:mod:`archscout.hardware.codesign`) names a design through the parameters of
:func:`archscout.space.builtin.accelerator_params` (``rows``, ``cols``, ``dataflow``, ``ifmap_sram_kb``,
``filter_sram_kb``, ``ofmap_sram_kb``, ``bandwidth``, each optionally behind a prefix). :func:`accelerator_of`
turns it into an :class:`~archscout.hardware.systolic.Accelerator`; parameters a space does not have come from a
base design. The workload is a SCALE-Sim topology file, a built-in topology (``"resnet18"``, ``"mobilenetv2"``),
a list of layers, or, in a joint space, the network of the architecture itself, traced once per functional class.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError
from ..space import Architecture
from ..space.builtin import ACCELERATOR_PARAMS
from .base import CostModel, factory_config, register_cost_model
from .systolic import Accelerator, ConvLayer, simulate
from .workloads import builtin_workload, read_topology, workload_of

__all__ = ["ACCEL_METRICS", "AcceleratorEvaluator", "SystolicCost", "accelerator_of", "resolve_workload",
           "simulate_cached"]

ACCEL_METRICS: dict[str, str] = {
    "cycles": "cycles",
    "compute_cycles": "cycles",
    "stall_cycles": "cycles",
    "latency_ms": "ms",
    "energy_mj": "mJ",
    "area_mm2": "mm2",
    "overall_utilization": "%",
}
"""The metrics an accelerator evaluation reports, with their units (totals over the workload's layers)."""

_FIELDS = {"ifmap_sram_kb": 0, "filter_sram_kb": 1, "ofmap_sram_kb": 2}


_REPORTS: OrderedDict[tuple, Any] = OrderedDict()
_REPORTS_SIZE = 8192


def simulate_cached(accel: Accelerator, layers: Sequence[ConvLayer]) -> Any:
    """:func:`~archscout.hardware.systolic.simulate`, remembered per (accelerator, layers) for the last 8,192
    pairs: the cost models of one study (latency, energy...) and a strategy's candidate pools ask for the same
    design again and again."""
    key = (json.dumps(accel.to_config(), sort_keys=True), tuple(layers))
    hit = _REPORTS.get(key)
    if hit is None:
        hit = _REPORTS[key] = simulate(accel, layers)
        if len(_REPORTS) > _REPORTS_SIZE:
            _REPORTS.popitem(last=False)
    else:
        _REPORTS.move_to_end(key)
    return hit


def _base(base: Accelerator | Mapping[str, Any] | None) -> Accelerator:
    if base is None:
        return Accelerator(rows=32, cols=32, dataflow="os")
    if isinstance(base, Accelerator):
        return base
    if isinstance(base, Mapping):
        return Accelerator.from_config(base)
    raise ConfigError(f"base must be an Accelerator or its config dict, got {base!r}")


def accelerator_of(arch: Architecture, base: Accelerator | Mapping[str, Any] | None = None,
                   prefix: str = "") -> Accelerator:
    """The accelerator an architecture names: each of :data:`~archscout.space.builtin.ACCELERATOR_PARAMS` found
    in the space as ``prefix + name`` replaces the base design's value (default base: 32 x 32, output-stationary,
    the model's default SRAM, clock and CALC bandwidth).

    Raises:
        ConfigError: the space has none of the accelerator parameters under that prefix.
    """
    acc = _base(base)
    names = set(arch.space.names)
    found = [p for p in ACCELERATOR_PARAMS if prefix + p in names]
    if not found:
        raise ConfigError(f"space {arch.space.name!r} has no accelerator parameters named {prefix!r} + "
                          f"{list(ACCELERATOR_PARAMS)}; add archscout.space.builtin.accelerator_params({prefix!r})")
    cfg = acc.to_config()
    sram = list(cfg["sram_kb"])
    for p in found:
        v = arch[prefix + p]
        if v is None:
            continue
        if p in _FIELDS:
            sram[_FIELDS[p]] = v
        else:
            cfg[p] = v
    cfg["sram_kb"] = sram
    return Accelerator.from_config(cfg)


def resolve_workload(workload: str | os.PathLike | Sequence[ConvLayer]) -> tuple[ConvLayer, ...]:
    """Layers of a workload: a built-in topology name (``"resnet18"``, ``"mobilenetv2"``), a SCALE-Sim topology
    CSV file, or a sequence of :class:`~archscout.hardware.systolic.ConvLayer`.

    Raises:
        ConfigError / DataError: an unknown name, an unreadable file, an empty list.
    """
    if isinstance(workload, (str, os.PathLike)):
        text = os.fspath(workload)
        if text.endswith(".csv") or os.sep in text or os.path.exists(text):
            layers = tuple(read_topology(text))
        else:
            layers = tuple(builtin_workload(text))
    else:
        layers = tuple(workload)
        if not all(isinstance(x, ConvLayer) for x in layers):
            raise ConfigError("a workload must be a topology name, a SCALE-Sim CSV path or a list of ConvLayer")
    if not layers:
        raise ConfigError(f"workload {workload!r} has no layers")
    return layers


def _workload_config(workload: Any) -> Any:
    if workload is None or isinstance(workload, (str, os.PathLike)):
        return None if workload is None else os.fspath(workload)
    return [vars(x) if not hasattr(x, "to_config") else x.to_config() for x in workload]


class _Simulated:
    """Shared by the evaluator and the cost model: a workload (fixed, or the traced network of a joint space)
    simulated on the accelerator an architecture names."""

    def _setup(self, workload: Any, base: Any, prefix: str, factory: Any, input_shape: Sequence[int] | None,
               network: str | None = None, network_prefix: str = "") -> None:
        for what, v in (("prefix", prefix), ("network_prefix", network_prefix)):
            if not isinstance(v, str):
                raise ConfigError(f"{what} must be a string, got {v!r}")
        if network is not None:
            from ..space import create_space

            create_space(network)  # an unknown name fails now
        self.prefix = prefix
        self.network, self.network_prefix = network, network_prefix
        self.base = _base(base)
        self.workload = workload
        self._layers = None if workload is None else resolve_workload(
            [ConvLayer(**d) for d in workload] if _is_layer_dicts(workload) else workload)
        self._net_factory = factory
        self._net_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        if workload is None and factory is None and input_shape is None:
            raise ConfigError("give a workload (a topology name, a SCALE-Sim CSV or layers), or factory/input_shape "
                              "to trace the network of each architecture (co-design)")

    def layers(self, arch: Architecture) -> tuple[ConvLayer, ...]:
        """The workload of ``arch``: the fixed one, or its network traced (its network parameters only)."""
        if self._layers is not None:
            return self._layers
        from .codesign import network_arch, part_of  # the network part of a joint architecture

        net = network_arch(arch) if self.network is None else part_of(arch, self.network, self.network_prefix)
        if self._net_factory is None:
            from .._torch import default_factory

            self._net_factory = default_factory(self._net_shape)
        shape = self._net_shape or tuple(self._net_factory.input_shape)
        return tuple(workload_of(net, self._net_factory, shape))

    def report(self, arch: Architecture) -> Any:
        """The full :class:`~archscout.hardware.systolic.AccelReport` of ``arch``."""
        return simulate_cached(accelerator_of(arch, self.base, self.prefix), self.layers(arch))

    def _config(self) -> dict[str, Any]:
        return {"workload": _workload_config(self.workload), "base": self.base.to_config(), "prefix": self.prefix,
                "network": self.network, "network_prefix": self.network_prefix,
                "factory": factory_config(self._net_factory),
                "input_shape": None if self._net_shape is None else list(self._net_shape)}


def _is_layer_dicts(workload: Any) -> bool:
    return isinstance(workload, Sequence) and not isinstance(workload, str) and bool(workload) and all(
        isinstance(x, Mapping) for x in workload)


class AcceleratorEvaluator(_Simulated):
    """Evaluates accelerator designs (architectures of the ``systolic`` space, or joint spaces) on a workload.

    ``evaluate(arch)`` returns the totals of :data:`ACCEL_METRICS`: ``cycles`` (compute plus stall), ``latency_ms``
    at the clock, ``energy_mj``, ``area_mm2``, ``overall_utilization`` (percent: MACs over PEs x cycles),
    ``compute_cycles`` and ``stall_cycles``.

    Args:
        workload: a topology name (``"resnet18"``, ``"mobilenetv2"``), a SCALE-Sim topology CSV or a list of
            ``ConvLayer``; ``None`` traces each architecture's network (joint spaces; give ``factory`` or
            ``input_shape``).
        base: the accelerator whose settings the space does not search (an ``Accelerator`` or its config).
        prefix: the accelerator parameters' prefix in the space.
        factory / input_shape: how networks are built for tracing (an ``archscout.nn.ModelFactory``).
        network / network_prefix: the network part of a joint space with several networks (its registered
            space name and prefix); default: the first part of a ``net+...`` joint space.

    Raises:
        ConfigError / DataError: bad settings, checked at once.
    """

    def __init__(self, workload: Any = "resnet18", base: Accelerator | Mapping[str, Any] | None = None,
                 prefix: str = "", factory: Any = None, input_shape: Sequence[int] | None = None,
                 network: str | None = None, network_prefix: str = "") -> None:
        self._setup(workload, base, prefix, factory, input_shape, network, network_prefix)

    def evaluate(self, arch: Architecture, fidelity: float | None = None) -> dict[str, float]:
        total = self.report(arch).total
        return {m: float(total[m]) for m in ACCEL_METRICS}

    def to_config(self) -> dict[str, Any]:
        return {"type": "accelerator", **self._config()}


@register_cost_model
class SystolicCost(_Simulated, CostModel):
    """One metric of the systolic-array model as a cheap cost model (e.g. ``latency_ms`` of a network on a fixed
    accelerator, or of a network x accelerator design in a joint space).

    ``create_cost_model("systolic", metric="energy_mj", accelerator={...}, factory=...)``: with ``accelerator``
    (an ``Accelerator`` config) every architecture runs on that fixed design and the space needs no accelerator
    parameters; without it the architecture's accelerator parameters (``prefix``) choose the design over
    ``base``.

    Args:
        metric: one of :data:`ACCEL_METRICS`.
        workload / factory / input_shape / prefix / base / network / network_prefix: as
            :class:`AcceleratorEvaluator`; the default
            workload ``None`` traces each architecture's network.
        accelerator: a fixed design (its config dict or an ``Accelerator``).

    Raises:
        ConfigError: an unknown metric or bad settings.
    """

    name = "systolic"
    cheap = True

    def __init__(self, metric: str = "latency_ms", workload: Any = None, accelerator: Any = None,
                 base: Any = None, prefix: str = "", factory: Any = None,
                 input_shape: Sequence[int] | None = None, network: str | None = None,
                 network_prefix: str = "") -> None:
        if metric not in ACCEL_METRICS:
            raise ConfigError(f"unknown accelerator metric {metric!r}; choose one of {list(ACCEL_METRICS)}")
        self.metric = metric
        self.unit = ACCEL_METRICS[metric]
        self.fixed = None if accelerator is None else _base(accelerator)
        if workload is None and factory is None and input_shape is None:
            input_shape = (3, 32, 32)
        self._setup(workload, base, prefix, factory, input_shape, network, network_prefix)
        if self._net_factory is not None:
            from .._torch import resolve_factory

            self._net_factory = resolve_factory(self._net_factory)

    def report(self, arch: Architecture) -> Any:
        if self.fixed is not None:
            return simulate_cached(self.fixed, self.layers(arch))
        return super().report(arch)

    def predict(self, arch: Architecture) -> float:
        if self.metric == "area_mm2":  # the design alone decides it: no network to trace, nothing to simulate
            acc = self.fixed if self.fixed is not None else accelerator_of(arch, self.base, self.prefix)
            return float(acc.area.area_mm2(acc))
        return float(self.report(arch).total[self.metric])

    def to_config(self) -> dict[str, Any]:
        return {"name": self.name, "metric": self.metric,
                "accelerator": None if self.fixed is None else self.fixed.to_config(), **self._config()}
