"""The demo's search space and its builder: a user's own space compiled with archscout's op library.

It is also the example of how few lines a custom space needs: a :class:`~archscout.space.Space` and a
function ``builder(arch, input_shape, num_classes) -> torch.nn.Module`` made of :func:`archscout.nn.create_op`
blocks.
"""

from __future__ import annotations

from typing import Any

from ..space import Choice, Ordinal, Space, Stages

__all__ = ["DEMO_OPS", "demo_builder", "demo_space"]

# one op per family of the library: convolution, depthwise-separable, MBConv (+SE), attention hybrid, pooling, identity
DEMO_OPS = ("conv3x3", "dwsep3x3", "mbconv_k3_e4", "mbconv_k5_e4_se", "attn2", "maxpool3x3", "identity")


def demo_space() -> Space:
    """Width, then two stages (full resolution, then half) of 1-3 blocks, one op per block."""
    return Space(
        {
            "width": Ordinal([8, 16, 32, 48]),
            "stages": Stages(n=2, depth=Ordinal([1, 2, 3]), layer={"op": Choice(list(DEMO_OPS))}),
        },
        name="digits-demo",
    )


def demo_builder(arch: Any, input_shape: tuple[int, int, int], num_classes: int) -> Any:
    """Stem conv (width channels), stage 1 at full resolution, stage 2 at half resolution with twice the
    width (its first block has stride 2), global average pooling, linear classifier."""
    import torch.nn as nn

    from ..nn import create_op

    w = int(arch["width"])
    layers: list[nn.Module] = [create_op("conv3x3", input_shape[0], w)]
    c = w
    for s, stage in enumerate(arch["stages"]):
        out = w * (2**s)
        for i, (op,) in enumerate(stage):
            layers.append(create_op(op, c, out, stride=2 if (s > 0 and i == 0) else 1))
            c = out
        if c != out:  # an empty stage cannot happen (depth >= 1); keep widths consistent anyway
            layers.append(create_op("conv3x3", c, out))
            c = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)
