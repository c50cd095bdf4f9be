"""Built-in spaces: ``nb201`` (NAS-Bench-201 cells) and ``mbv3`` (MobileNetV3 / OFA-style stages)."""

from __future__ import annotations

from collections.abc import Sequence

from .._registry import Registry
from .cell import Cell
from .params import Choice, Ordinal
from .space import Space
from .stages import Stages

__all__ = ["SPACES", "create_space", "list_spaces", "NB201_OPS"]

SPACES: Registry[Space] = Registry("space")

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


@SPACES.register("nb201")
def nb201(hash_rule: str = "nb201") -> Space:
    """NAS-Bench-201: a 4-node cell, 6 edges, 5 ops (15,625 cells; 6,466 functional classes)."""
    return Space({"cell": Cell(nodes=4, ops=NB201_OPS, zero="none", identity="skip_connect", hash_rule=hash_rule)},
                 name="nb201")


@SPACES.register("mbv3")
def mbv3(
    stages: int = 5,
    depths: Sequence[int] = (2, 3, 4),
    kernels: Sequence[int] = (3, 5, 7),
    expands: Sequence[int] = (3, 4, 6),
    width_mults: Sequence[float] = (1.0, 1.2),
) -> Space:
    """MobileNetV3 / Once-for-All macro space: per stage depth, per layer kernel and expand ratio, width."""
    return Space(
        {
            "width_mult": Ordinal(list(width_mults)),
            "stages": Stages(
                n=stages,
                depth=Ordinal(list(depths)),
                layer={"kernel": Ordinal(list(kernels)), "expand": Ordinal(list(expands))},
            ),
        },
        name="mbv3",
    )


def list_spaces() -> list[str]:
    """Names of the registered spaces."""
    return SPACES.names()


def create_space(name: str, **params) -> Space:
    """Build a registered space by name (see :func:`list_spaces`).

    Raises:
        UnknownNameError: no space has that name.
    """
    return SPACES.create(name, **params)
