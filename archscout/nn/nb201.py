"""The NAS-Bench-201 cell network (NB201's TinyNetwork with InferCells).

stem 3x3 conv (C channels) - BN; three stages of N cells with C, 2C, 4C channels, joined by NB201's
ResNet basic block with stride 2; BN - ReLU; global average pooling; linear classifier.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import BuildError
from .ops import ResNetBasicBlock, create_op

__all__ = ["InferCell", "NB201Network", "build_nb201", "cell_of"]


class InferCell(nn.Module):
    """NB201's InferCell: node 0 is the input; node ``j`` is the sum over ``i < j`` of ``op_{i->j}(node i)``;
    the last node is the output.

    Args:
        ops: one op name per edge, edges in NB201 order ``(0,1), (0,2), (1,2), (0,3), (1,3), (2,3), ...``.
        nodes: number of nodes (the edge count must be ``nodes * (nodes - 1) / 2``).
        C_in, C_out: channels of the input and of every other node.
        stride: stride of the edges leaving node 0.

    Raises:
        BuildError: wrong number of ops, an unknown op name.
    """

    def __init__(self, ops: tuple[str, ...], nodes: int, C_in: int, C_out: int, stride: int = 1) -> None:
        super().__init__()
        edges = [(i, j) for j in range(1, nodes) for i in range(j)]
        if len(ops) != len(edges):
            raise BuildError(f"a {nodes}-node cell has {len(edges)} edges, got {len(ops)} ops: {ops}")
        self.edges = [(i, j) for i, j in edges]
        self.nodes = nodes
        self.ops = nn.ModuleList(
            create_op(op, C_in if i == 0 else C_out, C_out, stride if i == 0 else 1) for op, (i, j) in zip(ops, edges)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = [x]
        k = 0
        for j in range(1, self.nodes):  # node j sums the edges from every earlier node (at least one)
            total = self.ops[k](states[0])
            k += 1
            for i in range(1, j):
                y = self.ops[k](states[i])
                total = total + y
                k += 1
            states.append(total)
        return states[-1]


class NB201Network(nn.Module):
    """NB201's TinyNetwork (see the module docstring); ``cell_ops`` is the cell's op per edge."""

    def __init__(self, cell_ops: tuple[str, ...], nodes: int, in_channels: int, num_classes: int,
                 C: int = 16, N: int = 5, sizes: tuple[int, int] = (32, 32)) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        c_prev = C
        h, w = sizes
        for stage, c in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                layers.append(ResNetBasicBlock(c_prev, c, 2, odd=(h % 2 == 1 or w % 2 == 1)))
                h, w = (h + 1) // 2, (w + 1) // 2
            for _ in range(N):
                layers.append(InferCell(cell_ops, nodes, c, c, 1))
            c_prev = c
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pooling(x), 1))


def cell_of(arch: Any) -> tuple[tuple[str, ...], int]:
    """The cell's op per edge and node count: ``arch["cell"]``, or the only Cell parameter of the space.

    Raises:
        BuildError: the architecture has no (or several) Cell parameters.
    """
    space = getattr(arch, "space", None)
    params = getattr(space, "params", None)
    if params is None:
        raise BuildError(f"the nb201 builder needs an archscout Architecture with a Cell parameter, got {arch!r}")
    cells = [n for n, p in params.items() if getattr(p, "kind", None) == "cell"]
    name = "cell" if "cell" in cells else (cells[0] if len(cells) == 1 else None)
    if name is None:
        raise BuildError(
            f"the nb201 builder needs a space with one Cell parameter (or one named 'cell'); {str(arch)!r} has "
            f"{len(cells)}"
        )
    return tuple(arch[name]), params[name].nodes


def build_nb201(arch: Any, input_shape: tuple[int, int, int], num_classes: int, C: int = 16, N: int = 5) -> nn.Module:
    """Builder ``nb201``: the NB201 cell network for ``arch``'s cell (any op of the op library may appear).

    Args:
        arch: an architecture of the ``nb201`` space (or any space with one Cell parameter).
        input_shape: ``(channels, height, width)``; height and width >= 4 (two stride-2 blocks).
        num_classes: number of logits.
        C: channels of the first stage (then 2C, 4C); NB201 uses 16.
        N: cells per stage; NB201 uses 5.

    Raises:
        BuildError: bad C or N, input smaller than 4x4, unknown op.
    """
    for name, v in (("C", C), ("N", N)):
        if isinstance(v, bool) or not isinstance(v, int) or v < (1 if name == "C" else 0):
            raise BuildError(f"nb201 option {name} must be an integer >= {1 if name == 'C' else 0}, got {v!r}")
    c_in, h, w = input_shape
    if min(h, w) < 4:
        raise BuildError(
            f"the nb201 network halves the resolution twice and needs inputs of at least 4x4; got {h}x{w}"
        )
    ops, nodes = cell_of(arch)
    try:
        return NB201Network(ops, nodes, c_in, num_classes, C=C, N=N, sizes=(h, w))
    except BuildError as e:
        raise BuildError(f"cannot build {str(arch)!r}: {e}") from None
