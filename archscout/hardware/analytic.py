"""Analytic cost models counted on the real ``torch.nn.Module``: parameters, FLOPs, peak activation memory.

Definitions (batch 1, float32 unless the factory's model says otherwise):

- ``params``: trainable and frozen parameters of the module, in millions (``"M"``; shared tensors counted once).
- ``flops``: floating-point operations of one forward pass counted by ``torch.utils.flop_counter.FlopCounterMode``,
  in millions (``"MFLOPs"``). One multiply-accumulate counts as **2 FLOPs** (so MFLOPs = 2 x MMACs). Only
  the operations the counter knows are counted: convolutions, matrix products and attention; element-wise
  operations, normalisation, activations and pooling count 0.
- ``peak_mem_mb``: peak activation memory, in MB (1 MB = 10^6 bytes): the maximum over *leaf* modules (modules
  without children) of the bytes of the tensors going into and coming out of that module in one forward pass
  (a tensor shared by input and output, as with in-place activations, counts once). Weights, tensors kept
  alive for later (e.g. residual inputs) and functional operations between modules are not counted. It is
  the smallest working set a layer-by-layer executor needs.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._torch import torch_threads
from ..errors import BuildError, require
from ..space import Architecture
from .base import (
    CostModel,
    factory_config,
    factory_key,
    register_cost_model,
)

__all__ = [
    "AnalyticCostModel",
    "FlopsModel",
    "LayerRecord",
    "ModuleStats",
    "ParamsModel",
    "PeakMemModel",
    "analyze_module",
    "model_stats",
]


@dataclass(frozen=True)
class LayerRecord:
    """One call of a leaf module during a forward pass.

    Attributes:
        name: qualified module name (``""`` for the root).
        op: class name (``"Conv2d"``, ``"Linear"``, ...).
        in_shape / out_shape: shape of the first input / output tensor, batch included.
        macs: multiply-accumulates of a convolution or linear layer (0 for other modules).
        groups: convolution groups (1 for other modules); ``groups == in_channels`` marks a depthwise conv.
        kernel: kernel height of a convolution (1 for other modules).
        act_bytes: bytes of the distinct input and output tensors.
    """

    name: str
    op: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    macs: int
    groups: int
    kernel: int
    act_bytes: int


@dataclass(frozen=True)
class ModuleStats:
    """What :func:`analyze_module` counts. Counts are raw (parameters, FLOPs, bytes)."""

    params: int
    flops: int
    peak_activation_bytes: int
    layers: tuple[LayerRecord, ...]

    @property
    def params_m(self) -> float:
        """Parameters in millions."""
        return self.params / 1e6

    @property
    def mflops(self) -> float:
        """FLOPs in millions (1 MAC = 2 FLOPs)."""
        return self.flops / 1e6

    @property
    def peak_mem_mb(self) -> float:
        """Peak activation memory in MB (10^6 bytes)."""
        return self.peak_activation_bytes / 1e6


def _tensors(obj: Any, torch) -> list:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o, torch)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o, torch)]
    return []


def _layer_record(name: str, module: Any, inputs: Any, output: Any, torch) -> LayerRecord:
    ins, outs = _tensors(inputs, torch), _tensors(output, torch)
    seen: dict[tuple[int, int], int] = {}
    for t in ins + outs:
        seen[(t.data_ptr(), t.numel())] = t.numel() * t.element_size()
    in_shape = tuple(ins[0].shape) if ins else ()
    out_shape = tuple(outs[0].shape) if outs else ()
    macs, groups, kernel = 0, 1, 1
    nn = torch.nn
    if isinstance(module, nn.modules.conv._ConvNd) and outs:
        groups = int(module.groups)
        kernel = int(module.kernel_size[0])
        per_out = (module.in_channels // module.groups) * math.prod(module.kernel_size)
        macs = int(outs[0].numel() * per_out)
    elif isinstance(module, nn.Linear) and outs:
        macs = int(outs[0].numel() * module.in_features)
    return LayerRecord(name, type(module).__name__, in_shape, out_shape, macs, groups, kernel, sum(seen.values()))


def analyze_module(module: Any, input_shape: Sequence[int], batch_size: int = 1) -> ModuleStats:
    """Count parameters, FLOPs and peak activation memory of ``module`` on one forward pass.

    Args:
        module: a ``torch.nn.Module`` (put in eval mode).
        input_shape: per-sample input shape, e.g. ``(3, 32, 32)``.
        batch_size: samples in the forward pass.

    Raises:
        OptionalDependencyError: torch is missing. BuildError: the forward pass fails on that input.
    """
    torch = require("torch", "nn")
    from torch.utils.flop_counter import FlopCounterMode

    module.eval()
    params = sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())
    records: list[LayerRecord] = []
    handles = []
    for name, m in module.named_modules():
        if next(m.children(), None) is None:
            def hook(mod, inputs, output, _name=name):
                records.append(_layer_record(_name, mod, inputs, output, torch))

            handles.append(m.register_forward_hook(hook))
    x = torch.zeros((batch_size, *tuple(input_shape)))
    try:
        counter = FlopCounterMode(display=False)
        with torch_threads(1), torch.no_grad(), counter:
            module(x)
    except Exception as e:  # any failure of a user's network is reported the same way
        raise BuildError(f"forward pass on input {tuple(x.shape)} failed: {type(e).__name__}: {e}") from e
    finally:
        for h in handles:
            h.remove()
    peak = max((r.act_bytes for r in records), default=0)
    return ModuleStats(int(params), int(counter.get_total_flops()), int(peak), tuple(records))


_STATS_CACHE: OrderedDict[tuple, ModuleStats] = OrderedDict()
_STATS_CACHE_SIZE = 2048


def model_stats(arch: Architecture, factory: Callable[[Architecture], Any], input_shape: Sequence[int]) -> ModuleStats:
    """:func:`analyze_module` of ``factory(arch)`` at batch 1, cached per (factory config, input shape,
    functional hash) so several analytic models share one build."""
    key = (factory_key(factory), tuple(input_shape), arch.functional_hash())
    hit = _STATS_CACHE.get(key)
    if hit is not None:
        _STATS_CACHE.move_to_end(key)
        return hit
    with torch_threads(1):
        stats = analyze_module(factory(arch), input_shape)
    _STATS_CACHE[key] = stats
    if len(_STATS_CACHE) > _STATS_CACHE_SIZE:
        _STATS_CACHE.popitem(last=False)
    return stats


class AnalyticCostModel(CostModel):
    """Base of the analytic models: builds ``factory(arch)`` (an ``archscout.nn.ModelFactory`` by default) and
    counts on it. ``cheap=True``.

    Args:
        factory: ``ModelFactory`` (or its config dict, or any callable ``arch -> torch.nn.Module``); None builds
            ``archscout.nn.ModelFactory(input_shape or (3, 32, 32), num_classes=10)`` when first needed.
        input_shape: per-sample input shape; defaults to ``factory.input_shape``.

    Raises:
        ConfigError: no input shape can be found, or the factory is not callable.
    """

    cheap = True

    def __init__(self, factory: Any = None, input_shape: Sequence[int] | None = None) -> None:
        self._set_source(factory, input_shape)

    def stats(self, arch: Architecture) -> ModuleStats:
        """Every analytic count of ``arch`` (cached)."""
        factory, shape = self._ready()
        return model_stats(arch, factory, shape)

    def to_config(self) -> dict[str, Any]:
        return {"name": self.name, "factory": factory_config(self.factory),
                "input_shape": None if self._input_shape is None else list(self._input_shape)}


@register_cost_model
class ParamsModel(AnalyticCostModel):
    """Parameters of the compiled model, in millions (``"M"``)."""

    name, unit = "params", "M"

    def predict(self, arch: Architecture) -> float:
        return self.stats(arch).params_m


@register_cost_model
class FlopsModel(AnalyticCostModel):
    """FLOPs of one forward pass at batch 1, in millions (``"MFLOPs"``; 1 MAC = 2 FLOPs)."""

    name, unit = "flops", "MFLOPs"

    def predict(self, arch: Architecture) -> float:
        return self.stats(arch).mflops


@register_cost_model
class PeakMemModel(AnalyticCostModel):
    """Peak activation memory at batch 1, in MB (max over leaf modules of input + output bytes)."""

    name, unit = "peak_mem_mb", "MB"

    def predict(self, arch: Architecture) -> float:
        return self.stats(arch).peak_mem_mb
