"""MobileNetV3 / Once-for-All macro network for the ``mbv3`` space.

stem 3x3 conv - BN - hardswish; a fixed MBConv(k3, e1) as in OFA; per stage its layers, each an MBConv
with the layer's kernel and expand ratio (the first layer of a stage may downsample); final 1x1 conv
(6 x the last width) - BN - hardswish; global average pooling; [1x1 feature mix - hardswish]; linear.

Strides adapt to the input (:func:`stride_schedule`): the first layers of stages 0, 1, 2 downsample, in
that order, while the feature map keeps at least 2 pixels on its short side; inputs of 64 pixels or more
also downsample in the stem (first) and in stage 4 (last), as MobileNetV3 does. Hence 224x224 gets OFA's
schedule (stem, stages 0, 1, 2, 4: 7x7 at the end), 32x32 and 28x28 end at 4x4, 8x8 digits at 2x2, and a
1x1 input is not downsampled at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import BuildError
from .ops import MBConv, make_divisible

__all__ = ["BASE_WIDTHS", "STAGE_ACTS", "STAGE_SE", "MBV3Network", "build_mbv3", "out_size", "per_stage",
           "resolve_strides", "stage_blocks", "stride_schedule"]

BASE_WIDTHS = (24, 40, 80, 112, 160)
STAGE_SE = (False, True, False, True, True)            # MobileNetV3-Large / OFA, per stage
STAGE_ACTS = ("relu", "relu", "hswish", "hswish", "hswish")
_STRIDE_ORDER = (0, 1, 2, 4)                      # stages whose first layer may downsample, in order


def out_size(size: int, stride: int) -> int:
    return (size + stride - 1) // stride


def stride_schedule(height: int, width: int, n_stages: int, min_size: int = 2, large: int = 64) -> tuple[int, ...]:
    """Strides ``(stem, stage 0, ..., stage n-1)`` for a ``height x width`` input (see the module docstring).

    Args:
        min_size: a downsampling is applied only if the short side stays >= ``min_size`` pixels.
        large: inputs whose short side is >= ``large`` pixels also downsample in the stem and in stage 4,
            as MobileNetV3 does on ImageNet.
    """
    size = min(height, width)
    strides = [1] * (n_stages + 1)
    slots = (-1, *_STRIDE_ORDER) if size >= large else _STRIDE_ORDER[:3]
    for s in slots:
        if s < n_stages and size >= 2 and out_size(size, 2) >= min_size:
            strides[s + 1] = 2
            size = out_size(size, 2)
    return tuple(strides)


class MBV3Network(nn.Module):
    """The network described in the module docstring.

    Args:
        stages: per stage, a sequence of ``(kernel, expand)`` layers (a stage may be empty).
        in_channels, num_classes: input channels and logits.
        widths: output channels per stage (already rounded).
        stem_width: channels of the stem (and of the fixed first block).
        strides: ``(stem, stage 0, ...)``, each 1 or 2; a stage's stride applies to its first layer (to the
            next stage's first layer when the stage is empty).
        se, acts: per stage, squeeze-excitation and activation.
        head_width: channels of the final 1x1 feature mix after pooling (``None``: no feature mix).
    """

    def __init__(self, stages: Sequence[Sequence[tuple[int, int]]], in_channels: int, num_classes: int,
                 widths: Sequence[int], stem_width: int, strides: Sequence[int], se: Sequence[bool],
                 acts: Sequence[str], head_width: int | None = None) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_width, 3, strides[0], 1, bias=False), nn.BatchNorm2d(stem_width), nn.Hardswish()
        )
        blocks: list[nn.Module] = [MBConv(stem_width, stem_width, 3, 1, 1, se=False, act="relu")]
        c = stem_width
        pending = 1
        for i, layers in enumerate(stages):
            pending = max(pending, strides[i + 1])
            for kernel, expand in layers:
                blocks.append(MBConv(c, widths[i], kernel, expand, pending, se=se[i], act=acts[i]))
                c, pending = widths[i], 1
        self.blocks = nn.Sequential(*blocks)
        last = make_divisible(6 * c, 8)
        self.final_expand = nn.Sequential(nn.Conv2d(c, last, 1, bias=False), nn.BatchNorm2d(last), nn.Hardswish())
        self.pool = nn.AdaptiveAvgPool2d(1)
        if head_width is None:
            self.feature_mix: nn.Module = nn.Identity()
            feat = last
        else:
            self.feature_mix = nn.Sequential(nn.Conv2d(last, head_width, 1, bias=False), nn.Hardswish())
            feat = head_width
        self.classifier = nn.Linear(feat, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.final_expand(self.blocks(self.stem(x))))
        return self.classifier(torch.flatten(self.feature_mix(x), 1))


def per_stage(value: Any, default: Sequence, n: int, name: str) -> list:
    if value is None:
        if n > len(default):
            raise BuildError(f"mbv3: the architecture has {n} stages; pass {name}= with {n} values")
        return list(default[:n])
    if isinstance(value, bool) or not isinstance(value, (list, tuple)):
        return [value] * n
    if len(value) != n:
        raise BuildError(f"mbv3 option {name} needs one value per stage ({n}), got {value!r}")
    return list(value)


def _layers(arch: Any) -> tuple[list[list[tuple[int, int]]], float]:
    try:
        stages_param = arch.space.params["stages"]
        keys = list(stages_param.layer)
        stages, width_mult = arch["stages"], arch["width_mult"]
    except (AttributeError, KeyError, TypeError):
        raise BuildError(
            f"the mbv3 builder needs an architecture with 'width_mult' and 'stages' (layers with 'kernel' and "
            f"'expand'), got {arch!r}"
        ) from None
    if "kernel" not in keys or "expand" not in keys:
        raise BuildError(f"the mbv3 builder needs layers with 'kernel' and 'expand', the space has {keys}")
    ki, ei = keys.index("kernel"), keys.index("expand")
    return [[(int(layer[ki]), layer[ei]) for layer in stage] for stage in stages], float(width_mult)


def stage_blocks(n: int, use_se: bool | Sequence[bool] = True) -> tuple[list[bool], list[str]]:
    """Per stage of an ``n``-stage network: squeeze-excitation (``use_se``: True for MobileNetV3's, False for
    none, or one bool per stage) and activation (MobileNetV3's, then hardswish)."""
    if use_se is True:
        se = list(STAGE_SE[:n]) + [True] * max(0, n - len(STAGE_SE))
    elif use_se is False:
        se = [False] * n
    else:
        se = [bool(v) for v in per_stage(use_se, STAGE_SE, n, "use_se")]
    return se, list(STAGE_ACTS[:n]) + ["hswish"] * max(0, n - len(STAGE_ACTS))


def resolve_strides(strides: Sequence[int] | None, n: int, height: int, width: int) -> tuple[int, ...]:
    """``(stem, stage 0, ..., stage n-1)`` strides: :func:`stride_schedule` when ``strides`` is None, else
    ``strides`` checked.

    Raises:
        BuildError: not ``n + 1`` values of 1 or 2, or so many stride-2 entries that a 1x1 map is downsampled.
    """
    if strides is None:
        return stride_schedule(height, width, n)
    sched = tuple(strides)
    if len(sched) != n + 1 or any(s not in (1, 2) for s in sched):
        raise BuildError(
            f"mbv3 option strides needs {n + 1} values of 1 or 2 (stem, then each stage), got {strides!r}"
        )
    size = min(height, width)
    for s in sched:
        if s == 2 and size < 2:
            raise BuildError(
                f"for {height}x{width} inputs, strides {sched} downsample {sched.count(2)} times, which would "
                "downsample a 1x1 feature map; use fewer stride-2 entries or strides=None (adaptive)"
            )
        size = out_size(size, s)
    return sched


def build_mbv3(
    arch: Any,
    input_shape: tuple[int, int, int],
    num_classes: int,
    widths: Sequence[int] | None = None,
    stem_width: int = 16,
    use_se: bool | Sequence[bool] = True,
    head_width: int | None = None,
    strides: Sequence[int] | None = None,
) -> nn.Module:
    """Builder ``mbv3``: the MobileNetV3 / OFA network of an ``mbv3`` architecture.

    Args:
        arch: an architecture with ``width_mult`` and ``stages`` (layers with ``kernel`` and ``expand``).
        input_shape: ``(channels, height, width)``; any size >= 1x1 (strides adapt, see the module docstring).
        num_classes: number of logits.
        widths: base output channels per stage (default ``BASE_WIDTHS``, its first n for n < 5 stages),
            multiplied by ``width_mult`` and rounded to multiples of 8.
        stem_width: base stem channels (times ``width_mult``, rounded to 8).
        use_se: squeeze-excitation as in MobileNetV3 (stages 1, 3, 4) when True, none when False, or one
            bool per stage.
        head_width: channels of a 1x1 feature mix after pooling (OFA uses 1280); ``None``: none.
        strides: ``(stem, stage 0, ..., stage n-1)`` strides (1 or 2) instead of the adaptive schedule.

    Raises:
        BuildError: malformed architecture or options, or ``strides`` that would downsample a 1x1 feature map.
    """
    stages, wm = _layers(arch)
    n = len(stages)
    c_in, h, w = input_shape
    widths = [make_divisible(b * wm, 8) for b in per_stage(widths, BASE_WIDTHS, n, "widths")]
    se, acts = stage_blocks(n, use_se)
    try:
        sched = resolve_strides(strides, n, h, w)
    except BuildError as err:
        raise BuildError(f"cannot build {str(arch)!r}: {err}") from None
    if head_width is not None and (isinstance(head_width, bool) or not isinstance(head_width, int) or head_width < 1):
        raise BuildError(f"mbv3 option head_width must be an integer >= 1 or None, got {head_width!r}")
    for k, e in (layer for stage in stages for layer in stage):
        if k < 1 or k % 2 == 0 or e < 1:
            raise BuildError(
                f"cannot build {str(arch)!r}: kernel must be odd and expand >= 1, got kernel={k}, expand={e}"
            )
    return MBV3Network(stages, c_in, num_classes, widths, make_divisible(stem_width * wm, 8), sched, se, acts,
                       head_width)
