"""The op library: named operations that map a ``(B, C_in, H, W)`` tensor to ``(B, C_out, H', W')``.

Every op is a family whose parameters are parsed from its name (``conv5x5``, ``mbconv_k3_e4_se``,
``attn2``). ``create_op(name, C_in, C_out, stride)`` builds one; with ``stride=2`` the spatial size
becomes ``ceil(H / 2)``. Every op trains, traces with ``torch.fx`` and exports to ONNX (opset 17).

Families (see :func:`list_ops`):

=====================  ===================================================================================
``conv{k}x{k}``        Conv(k, stride) - BN - ReLU
``nor_conv_{k}x{k}``   NB201's ReLUConvBN: ReLU - Conv(k, stride) - BN
``dwsep{k}x{k}``       depthwise Conv(k, stride) - BN - ReLU - pointwise 1x1 - BN
``mbconv_k{k}_e{e}``   inverted residual: expand 1x1 - BN - act - depthwise k x k - BN - act - [SE] -
                       project 1x1 - BN, residual when stride 1 and C_in == C_out. Suffix ``_se`` adds
                       squeeze-excitation, ``_hs`` uses hardswish instead of ReLU.
``maxpool3x3``         3x3 max pooling (1x1 Conv - BN first when the channels change)
``avgpool3x3``         3x3 average pooling, padding not counted (1x1 Conv - BN first when channels change)
``avg_pool_3x3``       NB201's pooling: ReLUConvBN 1x1 first when the channels change
``identity``           identity; FactorizedReduce when stride 2, 1x1 Conv - BN when only the channels change
                       (``skip_connect`` and ``skip`` are the same op under NB201's names)
``zero``               zeros of the output shape (``none`` is the same op under NB201's name)
``attn{h}``            light conv-attention block with ``h`` heads: depthwise 3x3 - BN (local mixing), then
                       multi-head self-attention over the H x W tokens (head dim 8), residual, then a 1x1 MLP
=====================  ===================================================================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import BuildError

__all__ = [
    "ConvAttention",
    "ConvBNReLU",
    "DWSepConv",
    "FactorizedReduce",
    "MBConv",
    "Pool",
    "ReLUConvBN",
    "ResNetBasicBlock",
    "SqueezeExcite",
    "Zero",
    "create_op",
    "list_ops",
    "make_divisible",
]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (never below ``divisor``, never more than 10 %
    below ``value``), as MobileNet does for channel counts."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def _bn(channels: int, affine: bool = True, track_running_stats: bool = True) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, affine=affine, track_running_stats=track_running_stats)


def _act(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=False)
    if name in ("hswish", "hardswish"):
        return nn.Hardswish()
    raise BuildError(f"unknown activation {name!r}; use 'relu' or 'hswish'")


class ConvBNReLU(nn.Sequential):
    """Conv(k x k, stride, padding k // 2, no bias) - BN - ReLU."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(C_in, C_out, kernel, stride, kernel // 2, bias=False), _bn(C_out), nn.ReLU(inplace=False)
        )


class ReLUConvBN(nn.Sequential):
    """NB201's ReLUConvBN: ReLU - Conv(k x k, stride, padding, dilation, no bias) - BN."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, dilation: int = 1,
                 affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel, stride, padding, dilation=dilation, bias=False),
            _bn(C_out, affine, track_running_stats),
        )


class DWSepConv(nn.Sequential):
    """Depthwise-separable conv: depthwise k x k (stride) - BN - ReLU - pointwise 1x1 - BN."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(C_in, C_in, kernel, stride, kernel // 2, groups=C_in, bias=False),
            _bn(C_in),
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, 1, 1, 0, bias=False),
            _bn(C_out),
        )


class SqueezeExcite(nn.Module):
    """MobileNetV3 squeeze-excitation: global pool - 1x1 (C/4, rounded to 8) - ReLU - 1x1 - hard sigmoid,
    multiplied onto the input."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        mid = make_divisible(channels / reduction, 8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, mid, 1, bias=True)
        self.act = nn.ReLU(inplace=False)
        self.expand = nn.Conv2d(mid, channels, 1, bias=True)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class MBConv(nn.Module):
    """Inverted residual block (MobileNetV2/V3, Once-for-All).

    expand 1x1 (skipped when ``expand == 1``) - BN - act - depthwise k x k (stride) - BN - act - [SE] -
    project 1x1 - BN; the input is added when ``stride == 1`` and ``C_in == C_out``.

    Args:
        kernel: depthwise kernel size (odd).
        expand: expansion ratio; the hidden width is ``make_divisible(C_in * expand)``.
        se: add squeeze-excitation on the hidden features.
        act: ``"relu"`` or ``"hswish"``.
    """

    def __init__(self, C_in: int, C_out: int, kernel: int, expand: float, stride: int = 1,
                 se: bool = False, act: str = "relu") -> None:
        super().__init__()
        hidden = C_in if expand == 1 else make_divisible(C_in * expand, 8)
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(C_in, hidden, 1, bias=False), _bn(hidden), _act(act)]
        layers += [nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
                   _bn(hidden), _act(act)]
        if se:
            layers.append(SqueezeExcite(hidden))
        layers += [nn.Conv2d(hidden, C_out, 1, bias=False), _bn(C_out)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and C_in == C_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class Pool(nn.Module):
    """3x3 max or average pooling (padding 1, padding not counted in averages), preceded by ``pre`` (a 1x1
    projection) when the channels change."""

    def __init__(self, kind: str, C_in: int, C_out: int, stride: int = 1, nb201: bool = False) -> None:
        super().__init__()
        if C_in == C_out:
            self.pre: nn.Module = nn.Identity()
        elif nb201:
            self.pre = ReLUConvBN(C_in, C_out, 1, 1, 0)
        else:
            self.pre = nn.Sequential(nn.Conv2d(C_in, C_out, 1, bias=False), _bn(C_out))
        if kind == "avg":
            self.pool: nn.Module = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        else:
            self.pool = nn.MaxPool2d(3, stride=stride, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.pre(x))


class FactorizedReduce(nn.Module):
    """NB201's FactorizedReduce. Stride 2: ReLU, then two 1x1 stride-2 convs (on the input and on the input
    shifted by one pixel) concatenated along channels, then BN. Stride 1: 1x1 conv - BN."""

    def __init__(self, C_in: int, C_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.relu = nn.ReLU(inplace=False)
        if stride == 2:
            half = C_out // 2
            self.conv_a = nn.Conv2d(C_in, half, 1, stride=2, bias=False)
            self.conv_b = nn.Conv2d(C_in, C_out - half, 1, stride=2, bias=False)
            self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0.0)
        elif stride == 1:
            self.conv_a = nn.Conv2d(C_in, C_out, 1, stride=1, bias=False)
        else:
            raise BuildError(f"FactorizedReduce supports stride 1 or 2, got {stride}")
        self.bn = _bn(C_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            x = self.relu(x)
            y = self.pad(x)
            out = torch.cat([self.conv_a(x), self.conv_b(y[:, :, 1:, 1:])], dim=1)
        else:
            out = self.conv_a(x)
        return self.bn(out)


class Zero(nn.Module):
    """Outputs zeros of shape ``(B, C_out, ceil(H / stride), ceil(W / stride))`` (gradients flow as zeros)."""

    def __init__(self, C_in: int, C_out: int, stride: int = 1) -> None:
        super().__init__()
        self.C_in, self.C_out, self.stride = C_in, C_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        if self.C_in == self.C_out:
            return x[:, :, ::s, ::s] * 0.0
        return (x[:, :1, ::s, ::s] * 0.0).expand(-1, self.C_out, -1, -1)


class ConvAttention(nn.Module):
    """Light conv-attention block (AsCAN / LowFormer style).

    1. local mixing: depthwise 3x3 (stride) - BN, a 1x1 Conv - BN when the channels change, residual when
       the shape is kept;
    2. multi-head self-attention over the ``H * W`` tokens (1x1 conv for q, k, v, ``heads`` heads of
       ``head_dim`` channels, softmax(q k^T / sqrt(head_dim)) v with plain matmuls), 1x1 projection - BN,
       residual;
    3. MLP: 1x1 (``mlp_ratio`` x) - ReLU - 1x1 - BN, residual.

    Attention costs O((H W)^2) memory per head; use it on small feature maps.
    """

    def __init__(self, C_in: int, C_out: int, heads: int, stride: int = 1, head_dim: int = 8,
                 mlp_ratio: int = 2) -> None:
        super().__init__()
        if heads < 1:
            raise BuildError(f"attention needs at least one head, got {heads}")
        self.heads, self.head_dim = heads, head_dim
        self.scale = 1.0 / math.sqrt(head_dim)
        self.local = nn.Sequential(nn.Conv2d(C_in, C_in, 3, stride, 1, groups=C_in, bias=False), _bn(C_in))
        self.local_residual = stride == 1
        self.proj_in: nn.Module = (
            nn.Identity() if C_in == C_out else nn.Sequential(nn.Conv2d(C_in, C_out, 1, bias=False), _bn(C_out))
        )
        inner = heads * head_dim
        self.qkv = nn.Conv2d(C_out, 3 * inner, 1, bias=False)
        self.proj = nn.Sequential(nn.Conv2d(inner, C_out, 1, bias=False), _bn(C_out))
        hidden = C_out * mlp_ratio
        self.mlp = nn.Sequential(
            nn.Conv2d(C_out, hidden, 1, bias=False), nn.ReLU(inplace=False),
            nn.Conv2d(hidden, C_out, 1, bias=False), _bn(C_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.local(x)
        if self.local_residual:
            y = y + x
        x = self.proj_in(y)
        h, w = x.shape[2], x.shape[3]
        qkv = self.qkv(x).reshape(-1, 3, self.heads, self.head_dim, h * w)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]                       # (B, heads, d, N)
        attn = torch.softmax(torch.matmul(q.transpose(-2, -1), k) * self.scale, dim=-1)   # (B, heads, N, N)
        out = torch.matmul(v, attn.transpose(-2, -1))                    # (B, heads, d, N)
        x = x + self.proj(out.reshape(-1, self.heads * self.head_dim, h, w))
        return x + self.mlp(x)


class ResNetBasicBlock(nn.Module):
    """NB201's ResNetBasicblock: ReLUConvBN 3x3 (stride) - ReLUConvBN 3x3, plus a shortcut (2x2 average
    pooling then 1x1 conv when stride 2; ReLUConvBN 1x1 when only the channels change).

    On odd sizes the shortcut's pooling uses ``ceil_mode`` so both branches give ``ceil(H / 2)``.
    """

    def __init__(self, C_in: int, C_out: int, stride: int, odd: bool = False) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise BuildError(f"ResNetBasicBlock supports stride 1 or 2, got {stride}")
        self.conv_a = ReLUConvBN(C_in, C_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1)
        if stride == 2:
            self.downsample: nn.Module = nn.Sequential(
                nn.AvgPool2d(2, 2, 0, ceil_mode=odd), nn.Conv2d(C_in, C_out, 1, bias=False)
            )
        elif C_in != C_out:
            self.downsample = ReLUConvBN(C_in, C_out, 1, 1, 0)
        else:
            self.downsample = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


# --- the registry of families -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Family:
    name: str
    pattern: re.Pattern
    example: str
    doc: str
    build: Callable[..., nn.Module]


def _kernel(text: str, name: str) -> int:
    k = int(text)
    if k < 1 or k % 2 == 0:
        raise BuildError(f"op {name!r}: the kernel size must be odd and >= 1, got {k}")
    return k


def _identity(m: re.Match, C_in: int, C_out: int, stride: int) -> nn.Module:
    if stride == 1 and C_in == C_out:
        return nn.Identity()
    return FactorizedReduce(C_in, C_out, stride)


def _mbconv(m: re.Match, C_in: int, C_out: int, stride: int) -> nn.Module:
    expand = int(m["e"])
    if expand < 1:
        raise BuildError(f"op {m.string!r}: the expand ratio must be >= 1, got {expand}")
    return MBConv(C_in, C_out, _kernel(m["k"], m.string), expand, stride, se=bool(m["se"]),
                  act="hswish" if m["hs"] else "relu")


def _attn(m: re.Match, C_in: int, C_out: int, stride: int) -> nn.Module:
    return ConvAttention(C_in, C_out, int(m["h"]), stride)


_FAMILIES: list[_Family] = [
    _Family("conv", re.compile(r"conv(?P<k>\d+)x(?P=k)"), "conv3x3", "Conv - BN - ReLU",
            lambda m, ci, co, s: ConvBNReLU(ci, co, _kernel(m["k"], m.string), s)),
    _Family("nor_conv", re.compile(r"nor_conv_(?P<k>\d+)x(?P=k)"), "nor_conv_3x3",
            "NB201 ReLU - Conv - BN",
            lambda m, ci, co, s: ReLUConvBN(ci, co, _kernel(m["k"], m.string), s, int(m["k"]) // 2)),
    _Family("dwsep", re.compile(r"dwsep(?P<k>\d+)x(?P=k)"), "dwsep3x3",
            "depthwise k x k - BN - ReLU - pointwise 1x1 - BN",
            lambda m, ci, co, s: DWSepConv(ci, co, _kernel(m["k"], m.string), s)),
    _Family("mbconv", re.compile(r"mbconv_k(?P<k>\d+)_e(?P<e>\d+)(?P<se>_se)?(?P<hs>_hs)?"), "mbconv_k3_e4_se",
            "inverted residual (suffix _se: squeeze-excitation, _hs: hardswish)", _mbconv),
    _Family("maxpool", re.compile(r"maxpool3x3"), "maxpool3x3", "3x3 max pooling",
            lambda m, ci, co, s: Pool("max", ci, co, s)),
    _Family("avgpool", re.compile(r"avgpool3x3"), "avgpool3x3", "3x3 average pooling",
            lambda m, ci, co, s: Pool("avg", ci, co, s)),
    _Family("avg_pool", re.compile(r"avg_pool_3x3"), "avg_pool_3x3", "NB201 3x3 average pooling",
            lambda m, ci, co, s: Pool("avg", ci, co, s, nb201=True)),
    _Family("identity", re.compile(r"identity|skip_connect|skip"), "skip_connect",
            "identity (FactorizedReduce when stride 2 or channels change)", _identity),
    _Family("zero", re.compile(r"zero|none"), "none", "zeros of the output shape",
            lambda m, ci, co, s: Zero(ci, co, s)),
    _Family("attn", re.compile(r"attn(?P<h>\d+)"), "attn2", "depthwise conv + multi-head self-attention + MLP",
            _attn),
]


def list_ops() -> dict[str, str]:
    """The op families: ``{example name: description}`` (e.g. ``"mbconv_k3_e4_se"``); names follow the
    family's pattern (``conv{k}x{k}``, ``mbconv_k{k}_e{e}[_se][_hs]``, ``attn{heads}``, ...)."""
    return {f.example: f"{f.name}: {f.doc}" for f in _FAMILIES}


def create_op(name: str, C_in: int, C_out: int, stride: int = 1) -> nn.Module:
    """Build the op ``name`` mapping ``(B, C_in, H, W)`` to ``(B, C_out, ceil(H / stride), ceil(W / stride))``.

    Args:
        name: an op name, e.g. ``"conv3x3"``, ``"nor_conv_1x1"``, ``"mbconv_k5_e6_se"``, ``"attn2"``
            (see :func:`list_ops`).
        C_in, C_out: input and output channels (>= 1).
        stride: 1 or 2.

    Raises:
        BuildError: unknown op name, bad parameters in the name, bad channels or stride.
    """
    if isinstance(C_in, bool) or isinstance(C_out, bool) or not isinstance(C_in, int) or not isinstance(C_out, int) \
            or C_in < 1 or C_out < 1:
        raise BuildError(f"op {name!r}: channels must be integers >= 1, got C_in={C_in!r}, C_out={C_out!r}")
    if stride not in (1, 2):
        raise BuildError(f"op {name!r}: stride must be 1 or 2, got {stride!r}")
    for fam in _FAMILIES:
        m = fam.pattern.fullmatch(str(name))
        if m is not None:
            return fam.build(m, C_in, C_out, stride)
    raise BuildError(
        f"unknown op {name!r}; known op families (examples): {', '.join(f.example for f in _FAMILIES)} "
        "(patterns: conv{k}x{k}, nor_conv_{k}x{k}, dwsep{k}x{k}, mbconv_k{k}_e{e}[_se][_hs], attn{heads})"
    )
