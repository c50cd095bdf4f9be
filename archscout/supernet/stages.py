"""Once-for-All supernet for stage spaces (``mbv3`` and spaces shaped like it).

:class:`StageSupernet` holds the largest network of the space (per stage its largest depth, each layer with
the largest kernel and expand ratio, every width at the largest ``width_mult``) and runs any architecture by
weight slicing, as Once-for-All does:

- elastic kernel: a depthwise conv stores the largest kernel; a smaller kernel ``k`` takes the centre
  ``k x k`` crop of the next larger kernel's (already transformed) weight and multiplies it by a learned
  ``k*k x k*k`` matrix per (from, to) kernel pair, shared by all channels and initialised to the identity
  (OFA's ``DynamicSeparableConv2d`` with ``KERNEL_TRANSFORM_MODE=1``);
- elastic expand: a block's hidden width is ``make_divisible(C_in * expand, 8)`` (``C_in`` the active
  input width); the first hidden channels of its convs, batch norms and squeeze-excitation are used;
- elastic width: ``width_mult`` changes the stem and stage widths; convs and batch norms use their first
  output channels and the next layer its first input channels;
- elastic depth: a stage of depth ``d`` runs its first ``d`` layers (a stride of an empty stage moves to
  the next stage's first layer, exactly as :class:`~archscout.nn.macro.MBV3Network` does).

:meth:`StageSupernet.extract` copies the active slices (kernels already transformed) and batch-norm statistics
into the plain network :func:`~archscout.nn.macro.build_mbv3` builds, so ``extract(a)`` computes in eval mode
what the supernet computes with ``a`` active.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BuildError, ConfigError
from ..nn.macro import BASE_WIDTHS, MBV3Network, build_mbv3, per_stage, resolve_strides, stage_blocks
from ..nn.ops import MBConv, SqueezeExcite, make_divisible
from ..space import Architecture, Space, Stages
from ..space.params import Discrete
from .base import ELASTIC_DIMS, Supernet

__all__ = ["StageSupernet"]

_SHAPES = (
    "StageSupernet supports stage spaces only: a Stages parameter 'stages' whose layers have exactly 'kernel' "
    "(odd integers) and 'expand' (numbers >= 1), and optionally a 'width_mult' Choice or Ordinal of positive "
    "numbers (as the mbv3 space); cell spaces (e.g. nb201) are handled by the cell supernet (kind 'cell')"
)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _hidden(c_in: int, expand: float) -> int:
    """The hidden width of an MBConv, as :class:`~archscout.nn.ops.MBConv` computes it."""
    return c_in if expand == 1 else make_divisible(c_in * expand, 8)


# --- dynamic modules ------------------------------------------------------------------------------------
class _DynamicBatchNorm2d(nn.BatchNorm2d):
    """A batch norm over the first ``C`` channels of its ``num_features`` (``C`` = the input's channels).

    Uses the first ``C`` entries of the affine parameters and running statistics; in training mode the
    running statistics of those channels are updated in place (sliced views share the storage), with
    momentum or, for ``momentum=None``, the cumulative average (BN recalibration)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        use_stats = not self.training or self.track_running_stats
        mean = self.running_mean[:c] if self.running_mean is not None and use_stats else None
        var = self.running_var[:c] if self.running_var is not None and use_stats else None
        weight = self.weight[:c] if self.weight is not None else None
        bias = self.bias[:c] if self.bias is not None else None
        return F.batch_norm(x, mean, var, weight, bias, bn_training, factor, self.eps)

    def copy_to(self, dst: nn.Module) -> None:
        """Copy the first ``dst.num_features`` channels' parameters and statistics (and the settings) into
        ``dst``, a plain batch norm."""
        assert isinstance(dst, nn.BatchNorm2d)
        c = dst.num_features
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                src, out = getattr(self, name), getattr(dst, name)
                if src is not None and out is not None:
                    out.copy_(src[:c])
            if self.num_batches_tracked is not None and dst.num_batches_tracked is not None:
                dst.num_batches_tracked.copy_(self.num_batches_tracked)
        dst.eps, dst.momentum = self.eps, self.momentum

    def permute(self, idx: torch.Tensor) -> None:
        """Reorder the first ``len(idx)`` channels by ``idx``."""
        n = len(idx)
        with torch.no_grad():
            for t in (self.weight, self.bias, self.running_mean, self.running_var):
                if t is not None:
                    t[:n] = t[:n][idx]


class _DynamicPointConv(nn.Module):
    """A 1x1 conv whose active weight is ``weight[:out, :C_in]`` (``C_in`` = the input's channels)."""

    def __init__(self, max_in: int, max_out: int, bias: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(max_in, max_out, 1, bias=bias)

    def active(self, c_in: int, out: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The weight and bias of the ``c_in -> out`` sub-conv."""
        bias = self.conv.bias[:out] if self.conv.bias is not None else None
        return self.conv.weight[:out, :c_in], bias

    def forward(self, x: torch.Tensor, out: int) -> torch.Tensor:
        weight, bias = self.active(x.shape[1], out)
        return F.conv2d(x, weight, bias)

    def copy_to(self, dst: nn.Module) -> None:
        """Copy the active slices into ``dst``, a plain conv of the active shape."""
        assert isinstance(dst, nn.Conv2d)
        weight, bias = self.active(dst.in_channels, dst.out_channels)
        with torch.no_grad():
            dst.weight.copy_(weight)
            if dst.bias is not None and bias is not None:
                dst.bias.copy_(bias)


class _DynamicDepthwise(nn.Module):
    """An elastic-kernel depthwise conv (OFA's kernel transformation).

    Stores the largest kernel's weight in ``conv``; kernel ``k`` crops the centre ``k x k`` of the next
    larger kernel's transformed weight and multiplies it by ``transforms["{from}to{k}"]`` (``k*k x k*k``,
    shared by all channels, initialised to the identity). Padding is ``k // 2``.
    """

    def __init__(self, channels: int, kernels: Sequence[int]) -> None:
        super().__init__()
        self.kernels = sorted({int(k) for k in kernels})
        kmax = self.kernels[-1]
        self.conv = nn.Conv2d(channels, channels, kmax, padding=kmax // 2, groups=channels, bias=False)
        self.transforms = nn.ParameterDict({
            f"{src}to{dst}": nn.Parameter(torch.eye(dst * dst))
            for src, dst in zip(self.kernels[1:], self.kernels[:-1])
        })

    def active(self, channels: int, kernel: int) -> torch.Tensor:
        """The ``(channels, 1, kernel, kernel)`` weight of the sub-conv."""
        weight = self.conv.weight[:channels]
        for i in range(len(self.kernels) - 1, 0, -1):
            src, dst = self.kernels[i], self.kernels[i - 1]
            if src <= kernel:
                break
            start = (src - dst) // 2
            crop = weight[:, :, start:start + dst, start:start + dst].reshape(channels, dst * dst)
            weight = F.linear(crop, self.transforms[f"{src}to{dst}"]).reshape(channels, 1, dst, dst)
        return weight

    def forward(self, x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
        c = x.shape[1]
        return F.conv2d(x, self.active(c, kernel), None, stride, kernel // 2, 1, c)


class _DynamicSE(nn.Module):
    """:class:`~archscout.nn.ops.SqueezeExcite` over the first ``C`` channels: its reduce conv is
    ``[:mid, :C]`` with ``mid = make_divisible(C / 4, 8)``, its expand conv ``[:C, :mid]``."""

    def __init__(self, max_channels: int, max_mid: int) -> None:
        super().__init__()
        self.reduce = _DynamicPointConv(max_channels, max_mid, bias=True)
        self.expand = _DynamicPointConv(max_mid, max_channels, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        s = F.relu(self.reduce(F.adaptive_avg_pool2d(x, 1), make_divisible(c / 4, 8)))
        return x * F.hardsigmoid(self.expand(s, c))

    def copy_to(self, dst: nn.Module) -> None:
        assert isinstance(dst, SqueezeExcite)
        self.reduce.copy_to(dst.reduce)
        self.expand.copy_to(dst.expand)


def _act(name: str) -> nn.Module:
    return nn.ReLU() if name == "relu" else nn.Hardswish()


class _DynamicMBConv(nn.Module):
    """An elastic inverted residual block: expand 1x1 (absent for expand 1) - BN - act - depthwise (elastic
    kernel, given stride) - BN - act - [SE] - project 1x1 - BN, residual when the stride is 1 and the active
    input and output widths are equal (as :class:`~archscout.nn.ops.MBConv`)."""

    def __init__(self, max_in: int, max_out: int, max_expand_hidden: int, max_hidden: int, max_mid: int,
                 kernels: Sequence[int], se: bool, act: str) -> None:
        super().__init__()
        self.expand_conv: _DynamicPointConv | None = None
        self.expand_bn: _DynamicBatchNorm2d | None = None
        if max_expand_hidden:
            self.expand_conv = _DynamicPointConv(max_in, max_expand_hidden)
            self.expand_bn = _DynamicBatchNorm2d(max_expand_hidden)
        self.dw = _DynamicDepthwise(max_hidden, kernels)
        self.dw_bn = _DynamicBatchNorm2d(max_hidden)
        self.se = _DynamicSE(max_hidden, max_mid) if se else None
        self.project = _DynamicPointConv(max_hidden, max_out)
        self.project_bn = _DynamicBatchNorm2d(max_out)
        self.act = _act(act)

    def forward(self, x: torch.Tensor, kernel: int, expand: float, out: int, stride: int) -> torch.Tensor:
        c_in = x.shape[1]
        h = x
        if expand != 1:
            assert self.expand_conv is not None and self.expand_bn is not None
            h = self.act(self.expand_bn(self.expand_conv(h, _hidden(c_in, expand))))
        h = self.act(self.dw_bn(self.dw(h, kernel, stride)))
        if self.se is not None:
            h = self.se(h)
        y = self.project_bn(self.project(h, out))
        return x + y if stride == 1 and c_in == out else y

    def copy_to(self, dst: nn.Module, kernel: int, expand: float) -> None:
        """Copy the active slices into ``dst``, an MBConv of the same kernel and expand ratio."""
        assert isinstance(dst, MBConv)
        layers = list(dst.block)
        pos = 0
        if expand != 1:
            assert self.expand_conv is not None and self.expand_bn is not None
            self.expand_conv.copy_to(layers[0])
            self.expand_bn.copy_to(layers[1])
            pos = 3
        dw = layers[pos]
        assert isinstance(dw, nn.Conv2d)
        with torch.no_grad():
            dw.weight.copy_(self.dw.active(dw.out_channels, kernel))
        self.dw_bn.copy_to(layers[pos + 1])
        pos += 3
        if self.se is not None:
            self.se.copy_to(layers[pos])
            pos += 1
        self.project.copy_to(layers[pos])
        self.project_bn.copy_to(layers[pos + 1])

    def reorganize(self) -> None:
        """Sort the hidden channels by the L1 norm of the project conv's weight per input channel (and the
        SE's middle channels by the L1 norm of its expand conv's weight), descending (OFA)."""
        if self.expand_conv is None or self.expand_bn is None:
            return
        n = self.expand_conv.conv.out_channels
        with torch.no_grad():
            proj = self.project.conv.weight
            idx = torch.argsort(proj[:, :n].abs().sum(dim=(0, 2, 3)), descending=True, stable=True)
            proj[:, :n] = proj[:, :n][:, idx]
            w = self.expand_conv.conv.weight
            w.copy_(w[idx])
            self.expand_bn.permute(idx)
            dw = self.dw.conv.weight
            dw[:n] = dw[:n][idx]
            self.dw_bn.permute(idx)
            if self.se is not None:
                red, exp = self.se.reduce.conv, self.se.expand.conv
                red.weight[:, :n] = red.weight[:, :n][:, idx]
                exp.weight[:n] = exp.weight[:n][idx]
                assert exp.bias is not None and red.bias is not None
                exp.bias[:n] = exp.bias[:n][idx]
                mid = torch.argsort(exp.weight.abs().sum(dim=(0, 2, 3)), descending=True, stable=True)
                exp.weight.copy_(exp.weight[:, mid])
                red.weight.copy_(red.weight[mid])
                red.bias.copy_(red.bias[mid])


# --- the supernet ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layer:
    stage: int
    index: int
    kernel: int
    expand: float
    out: int
    stride: int


@dataclass(frozen=True)
class _Plan:
    """What a sub-network computes: stem width, its layers, the width of the last feature map."""

    stem: int
    layers: tuple[_Layer, ...]
    last: int


def _check_space(space: Any) -> tuple[Stages, Discrete | None]:
    if not isinstance(space, Space):
        raise ConfigError(f"{_SHAPES}; got {space!r}")
    extra = [n for n in space.names if n not in ("stages", "width_mult")]
    if "stages" not in space.params or extra:
        raise ConfigError(f"{_SHAPES}; the space has parameters {list(space.names)}")
    stages, wm = space.params["stages"], space.params.get("width_mult")
    if not isinstance(stages, Stages) or stages.when:
        raise ConfigError(f"{_SHAPES}; its 'stages' is {stages!r}")
    if set(stages.layer) != {"kernel", "expand"}:
        raise ConfigError(f"{_SHAPES}; its layers have {list(stages.layer)}")
    kernels = stages.layer["kernel"].options
    if not all(_number(k) and int(k) == k and k >= 1 and int(k) % 2 == 1 for k in kernels):
        raise ConfigError(f"{_SHAPES}; its kernels are {list(kernels)}")
    expands = stages.layer["expand"].options
    if not all(_number(e) and e >= 1 for e in expands):
        raise ConfigError(f"{_SHAPES}; its expand ratios are {list(expands)}")
    if wm is not None and (not isinstance(wm, Discrete) or wm.when
                           or not all(_number(v) and v > 0 for v in wm.options)):
        raise ConfigError(f"{_SHAPES}; its 'width_mult' is {wm!r}")
    return stages, wm if isinstance(wm, Discrete) else None


class StageSupernet(Supernet):
    """The Once-for-All supernet of a stage space (see the module docstring); starts with the largest
    sub-network active.

    Args:
        space: a space shaped like ``mbv3``: a :class:`~archscout.space.Stages` parameter ``stages`` whose
            layers have ``kernel`` (odd integers) and ``expand`` (numbers >= 1), optionally a ``width_mult``
            Choice/Ordinal (absent: 1.0); any number of stages and depth options.
        input_shape: ``(C, H, W)`` of one input image.
        num_classes: number of logits.
        widths, stem_width, use_se, head_width, strides: as for :func:`~archscout.nn.macro.build_mbv3`
            (extracted sub-networks are built with them).

    Raises:
        ConfigError: a space of another shape, or an ``input_shape`` that is not ``(C, H, W)``.
        BuildError: options the ``mbv3`` builder would reject (as :func:`~archscout.nn.macro.build_mbv3`).
    """

    kind = "stages"

    def __init__(self, space: Space, input_shape: Sequence[int], num_classes: int,
                 widths: int | Sequence[int] | None = None, stem_width: int = 16,
                 use_se: bool | Sequence[bool] = True, head_width: int | None = None,
                 strides: Sequence[int] | None = None) -> None:
        stages_param, wm_param = _check_space(space)
        super().__init__(space, input_shape, num_classes)
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ConfigError(f"StageSupernet needs input_shape (C, H, W), got {input_shape!r}")
        self._stages = stages_param
        self._wm = wm_param
        self._keys = list(stages_param.layer)
        self._ki, self._ei = self._keys.index("kernel"), self._keys.index("expand")
        self._stem_width = int(stem_width)
        self._head_width = head_width
        self._opts: dict[str, Any] = {
            "widths": None if widths is None else widths if isinstance(widths, int) else [int(w) for w in widths],
            "stem_width": int(stem_width),
            "use_se": use_se if isinstance(use_se, bool) else [bool(v) for v in use_se],
            "head_width": head_width,
            "strides": None if strides is None else [int(s) for s in strides],
        }
        n = stages_param.n
        c_in, h, w = self.input_shape
        self._base_widths = [int(b) for b in per_stage(widths, BASE_WIDTHS, n, "widths")]
        se, acts = stage_blocks(n, use_se)
        self._sched = resolve_strides(strides, n, h, w)
        if head_width is not None and (isinstance(head_width, bool) or not isinstance(head_width, int)
                                       or head_width < 1):
            raise BuildError(f"mbv3 option head_width must be an integer >= 1 or None, got {head_width!r}")
        if any(b < 1 for b in self._base_widths) or stem_width < 1:
            raise BuildError(f"StageSupernet widths and stem_width must be >= 1, got {widths!r}, {stem_width!r}")
        self._se, self._acts = se, acts

        # the largest widths every slot can see (over width multipliers and empty stages)
        kernels = [int(k) for k in stages_param.layer["kernel"].options]
        expands = list(stages_param.layer["expand"].options)
        depths = stages_param.depth.options
        max_depth = max(depths)
        in_sets: list[list[set[int]]] = [[set() for _ in range(max_depth)] for _ in range(n)]
        last_set: set[int] = set()
        stem_set: set[int] = set()
        for wm in self._wm_options():
            cur = {make_divisible(stem_width * wm, 8)}
            stem_set |= cur
            for i in range(n):
                width = make_divisible(self._base_widths[i] * wm, 8)
                if max_depth > 0:
                    in_sets[i][0] |= cur
                for j in range(1, max_depth):
                    in_sets[i][j].add(width)
                cur = (cur | {width}) if 0 in depths else {width} if max_depth > 0 else cur
            last_set |= cur
        stem_max = max(stem_set)
        self.stem_conv = nn.Conv2d(c_in, stem_max, 3, self._sched[0], 1, bias=False)
        self.stem_bn = _DynamicBatchNorm2d(stem_max)
        self.stem_act = nn.Hardswish()
        self.first = _DynamicMBConv(stem_max, stem_max, 0, stem_max, 0, [3], se=False, act="relu")
        self.stages = nn.ModuleList()
        for i in range(n):
            out_max = max(make_divisible(self._base_widths[i] * wm, 8) for wm in self._wm_options())
            blocks = nn.ModuleList()
            for j in range(max_depth):
                ins = in_sets[i][j]
                hid_expand = [_hidden(c, e) for c in ins for e in expands if e != 1]
                hid = [_hidden(c, e) for c in ins for e in expands]
                blocks.append(_DynamicMBConv(
                    max(ins), out_max, max(hid_expand, default=0), max(hid),
                    max(make_divisible(x / 4, 8) for x in hid), kernels, se=se[i], act=acts[i],
                ))
            self.stages.append(blocks)
        last_max = max(make_divisible(6 * c, 8) for c in last_set)
        self.final_conv = _DynamicPointConv(max(last_set), last_max)
        self.final_bn = _DynamicBatchNorm2d(last_max)
        self.final_act = nn.Hardswish()
        self.feature_mix: _DynamicPointConv | None = None
        if head_width is not None:
            self.feature_mix = _DynamicPointConv(last_max, head_width)
        self.classifier = nn.Linear(last_max if head_width is None else head_width, self.num_classes)
        self._plan: _Plan = self._make_plan(self.largest())
        self.active = self.largest()

    # --- configuration ------------------------------------------------------------------------------------
    def _wm_options(self) -> list[float]:
        return [1.0] if self._wm is None else [float(v) for v in self._wm.options]

    def options(self) -> dict[str, Any]:
        """The constructor's keyword options (JSON values)."""
        return dict(self._opts)

    def _make_plan(self, arch: Architecture) -> _Plan:
        wm = 1.0 if self._wm is None else float(arch["width_mult"])
        stem = make_divisible(self._stem_width * wm, 8)
        layers, c, pending = [], stem, 1
        for i, stage in enumerate(arch["stages"]):
            pending = max(pending, self._sched[i + 1])
            width = make_divisible(self._base_widths[i] * wm, 8)
            for j, layer in enumerate(stage):
                layers.append(_Layer(i, j, int(layer[self._ki]), layer[self._ei], width, pending))
                c, pending = width, 1
        return _Plan(stem, tuple(layers), c)

    def _block(self, layer: _Layer) -> _DynamicMBConv:
        stage = self.stages[layer.stage]
        assert isinstance(stage, nn.ModuleList)
        block = stage[layer.index]
        assert isinstance(block, _DynamicMBConv)
        return block

    # --- the active sub-network ---------------------------------------------------------------------------
    def set_active(self, arch: Architecture | Any) -> None:
        """Make ``arch`` (an architecture, its string form or a value mapping) the sub-network ``forward``
        computes.

        Raises:
            InvalidArchitectureError: ``arch`` is not an architecture of the space.
        """
        arch = self.space.validate(arch)
        self._plan = self._make_plan(arch)
        self.active = arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plan = self._plan
        x = F.conv2d(x, self.stem_conv.weight[:plan.stem], None, self._sched[0], 1)
        x = self.stem_act(self.stem_bn(x))
        x = self.first(x, 3, 1, plan.stem, 1)
        for layer in plan.layers:
            x = self._block(layer)(x, layer.kernel, layer.expand, layer.out, layer.stride)
        x = self.final_act(self.final_bn(self.final_conv(x, make_divisible(6 * plan.last, 8))))
        x = F.adaptive_avg_pool2d(x, 1)
        if self.feature_mix is not None:
            x = F.hardswish(self.feature_mix(x, self.feature_mix.conv.out_channels))
        x = torch.flatten(x, 1)
        return F.linear(x, self.classifier.weight[:, :x.shape[1]], self.classifier.bias)

    def extract(self, arch: Architecture | Any) -> nn.Module:
        """The plain :class:`~archscout.nn.macro.MBV3Network` of ``arch`` (built by
        :func:`~archscout.nn.macro.build_mbv3` with this supernet's options) holding copies of the active
        weights, transformed kernels and batch-norm statistics; on the supernet's device and dtype, in its
        training mode.

        Raises:
            InvalidArchitectureError: ``arch`` is not an architecture of the space.
        """
        arch = self.space.validate(arch)
        plan = self._make_plan(arch)
        opts = self._opts
        if self._wm is not None:
            c, h, w = self.input_shape
            net = build_mbv3(arch, (c, h, w), self.num_classes, **opts)
        else:  # build_mbv3 needs a width_mult: the same network at width 1.0
            stages = [[(int(la[self._ki]), la[self._ei]) for la in stage] for stage in arch["stages"]]
            widths = [make_divisible(b, 8) for b in self._base_widths]
            net = MBV3Network(stages, self.input_shape[0], self.num_classes, widths,
                              make_divisible(self._stem_width, 8), self._sched, self._se, self._acts,
                              self._head_width)
        assert isinstance(net, MBV3Network)
        with torch.no_grad():
            stem_conv, stem_bn = net.stem[0], net.stem[1]
            assert isinstance(stem_conv, nn.Conv2d) and isinstance(stem_bn, nn.BatchNorm2d)
            stem_conv.weight.copy_(self.stem_conv.weight[:plan.stem, :stem_conv.in_channels])
            self.stem_bn.copy_to(stem_bn)
            blocks = list(net.blocks)
            self.first.copy_to(blocks[0], 3, 1)
            for layer, block in zip(plan.layers, blocks[1:]):
                self._block(layer).copy_to(block, layer.kernel, layer.expand)
            self.final_conv.copy_to(net.final_expand[0])
            self.final_bn.copy_to(net.final_expand[1])
            if self.feature_mix is not None:
                assert isinstance(net.feature_mix, nn.Sequential)
                self.feature_mix.copy_to(net.feature_mix[0])
            net.classifier.weight.copy_(self.classifier.weight[:, :net.classifier.in_features])
            net.classifier.bias.copy_(self.classifier.bias)
        ref = self.classifier.weight
        return net.to(device=ref.device, dtype=ref.dtype).train(self.training)

    # --- sampling -----------------------------------------------------------------------------------------
    def elastic_dims(self) -> tuple[str, ...]:
        """The dimensions of ``("kernel", "depth", "expand", "width")`` with more than one option."""
        sizes = {
            "kernel": len(self._stages.layer["kernel"].options),
            "depth": len(self._stages.depth.options),
            "expand": len(self._stages.layer["expand"].options),
            "width": 1 if self._wm is None else len(self._wm.options),
        }
        return tuple(d for d in ELASTIC_DIMS if sizes[d] > 1)

    def choices(self) -> dict[str, Any]:
        """The options of each decision: ``stages`` (their number), ``depth``, ``kernel``, ``expand`` and
        ``width_mult`` (None when the space has no width multiplier)."""
        st = self._stages
        return {"stages": st.n, "depth": list(st.depth.options), "kernel": list(st.layer["kernel"].options),
                "expand": list(st.layer["expand"].options),
                "width_mult": None if self._wm is None else list(self._wm.options)}

    def make_arch(self, wm: Any, stages: list[list[tuple[Any, Any]]]) -> Architecture:
        """The architecture of width multiplier ``wm`` (ignored without one) and per stage ``(kernel, expand)``
        layers."""
        return self._make(wm, stages)

    def _make(self, wm: Any, stages: list[list[tuple[Any, Any]]]) -> Architecture:
        """An architecture from a width multiplier and per stage ``(kernel, expand)`` layers."""
        rows = []
        for stage in stages:
            layers = []
            for k, e in stage:
                layer = [None, None]
                layer[self._ki], layer[self._ei] = k, e
                layers.append(tuple(layer))
            rows.append(tuple(layers))
        values: dict[str, Any] = {"stages": tuple(rows)}
        if self._wm is not None:
            values["width_mult"] = wm
        return self.space.make(values)

    def _extreme(self, pick: Any) -> Architecture:
        k = pick(self._stages.layer["kernel"].options)
        e = pick(self._stages.layer["expand"].options)
        d = pick(self._stages.depth.options)
        wm = None if self._wm is None else pick(self._wm.options)
        return self._make(wm, [[(k, e)] * d for _ in range(self._stages.n)])

    def sample(self, rng: np.random.Generator, elastic: Sequence[str] | None = None) -> Architecture:
        """A random architecture: each option of an elastic dimension equally likely (per stage its depth,
        per layer its kernel and expand ratio, the width multiplier), the other dimensions at their largest
        value. ``elastic=None``: every dimension is elastic.

        Raises:
            ConfigError: ``elastic`` names a dimension outside ``("kernel", "depth", "expand", "width")``.
        """
        dims = set(ELASTIC_DIMS if elastic is None else elastic)
        if isinstance(elastic, str) or not dims <= set(ELASTIC_DIMS):
            raise ConfigError(f"elastic dimensions must be a subset of {list(ELASTIC_DIMS)}, got {elastic!r}")

        def draw(options: Sequence[Any], dim: str) -> Any:
            return options[int(rng.integers(len(options)))] if dim in dims else max(options)

        kernels = self._stages.layer["kernel"].options
        expands = self._stages.layer["expand"].options
        wm = None if self._wm is None else draw(self._wm.options, "width")
        stages = []
        for _ in range(self._stages.n):
            d = draw(self._stages.depth.options, "depth")
            stages.append([(draw(kernels, "kernel"), draw(expands, "expand")) for _ in range(d)])
        return self._make(wm, stages)

    def largest(self) -> Architecture:
        """Every stage at its largest depth, every layer with the largest kernel and expand ratio, the
        largest width multiplier."""
        return self._extreme(max)

    def smallest(self) -> Architecture:
        """Everything at its smallest value."""
        return self._extreme(min)

    def reorganize_channels(self) -> None:
        """Sort every block's hidden (expand) channels by importance, the L1 norm of the project conv's weight
        per input channel, descending; the expand conv, its BN, the depthwise conv, its BN, the SE and the
        project conv are permuted alike (the SE's middle channels sorted by its expand weight's L1 norm), so
        the largest network computes the same function (OFA's ``re_organize_middle_weights``)."""
        for block in self.modules():
            if isinstance(block, _DynamicMBConv):
                block.reorganize()
