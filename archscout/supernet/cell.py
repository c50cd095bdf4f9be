"""Cell supernets: every op of the cell on every edge, weights shared per edge and op.

The macro network is NB201's (see :mod:`archscout.nn.nb201`): stem, three stages of ``N`` cells with
``C, 2C, 4C`` channels joined by ResNet basic blocks, pooling, classifier. Each cell of the supernet holds
one module per (edge, op); the active architecture picks one op per edge, exactly as the NB201 builder
wires it, so :meth:`CellSupernet.extract` gives the ordinary ``nb201`` network with inherited weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import BuildError, ConfigError
from ..nn.nb201 import build_nb201
from ..nn.ops import ResNetBasicBlock, create_op
from ..space import Architecture, Cell, Space
from .base import Supernet

__all__ = ["CellSupernet", "MixedCell", "cell_param", "channel_shuffle"]


def cell_param(space: Space) -> str:
    """The name of the space's only parameter, a Cell.

    Raises:
        ConfigError: the space is not made of exactly one Cell parameter.
    """
    params = space.params
    cells = [n for n, p in params.items() if getattr(p, "kind", None) == "cell"]
    if len(cells) != 1 or len(params) != 1:
        raise ConfigError(
            f"a cell supernet needs a space made of exactly one Cell parameter (like 'nb201'); space "
            f"{space.name!r} has parameters {list(params)}; supported shapes: one Cell of library ops, or stage "
            "spaces ('stages' with layers 'kernel' and 'expand', optional 'width_mult')"
        )
    return cells[0]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: interleave ``groups`` groups of channels (PC-DARTS, after each edge)."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class MixedCell(nn.Module):
    """A cell with every op on every edge.

    ``forward`` runs the ops of ``self.path`` (one index per edge), unless a differentiable method set a
    mixture: then each edge computes ``sum_k mix[e, k] * op_k(x)`` over the ops ``active_ops[e]`` (all ops when
    ``active_ops`` is None; ProxylessNAS computes two), each edge's output scaled by ``edge_weights[e]``
    when set (PC-DARTS's edge normalisation). With ``partial = K > 1`` (PC-DARTS's partial channels) the ops
    see the first ``C / K`` channels only; the others bypass the edge, and the two parts are concatenated and
    channel-shuffled.
    """

    def __init__(self, ops: Sequence[str], nodes: int, C: int, partial: int = 1) -> None:
        super().__init__()
        self.nodes = nodes
        self.partial = partial
        self.edges = [(i, j) for j in range(1, nodes) for i in range(j)]
        c = C // partial
        self.candidates = nn.ModuleList(
            nn.ModuleList(create_op(op, c, c, 1) for op in ops) for _ in self.edges
        )
        self.path: tuple[int, ...] = (0,) * len(self.edges)
        self.mix: torch.Tensor | None = None
        self.active_ops: Sequence[Sequence[int]] | None = None
        self.edge_weights: torch.Tensor | None = None

    def _op(self, edge: int) -> nn.Module:
        ops = self.candidates[edge]
        assert isinstance(ops, nn.ModuleList)
        return ops[self.path[edge]]

    def _edge(self, e: int, x: torch.Tensor) -> torch.Tensor:
        if self.mix is None and self.partial == 1 and self.edge_weights is None:
            return self._op(e)(x)
        xa, xb = x, None
        if self.partial > 1:
            c = x.shape[1] // self.partial
            xa, xb = x[:, :c], x[:, c:]
        if self.mix is None:
            out = self._op(e)(xa)
        else:
            ops = self.candidates[e]
            assert isinstance(ops, nn.ModuleList)
            active = range(len(ops)) if self.active_ops is None else self.active_ops[e]
            terms = [self.mix[e, k] * ops[k](xa) for k in active]
            out = terms[0]
            for t in terms[1:]:
                out = out + t
        if xb is not None:
            out = channel_shuffle(torch.cat([out, xb], dim=1), self.partial)
        if self.edge_weights is not None:
            out = out * self.edge_weights[e]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = [x]
        k = 0
        for j in range(1, self.nodes):
            total = self._edge(k, states[0])
            k += 1
            for i in range(1, j):
                total = total + self._edge(k, states[i])
                k += 1
            states.append(total)
        return states[-1]


class CellSupernet(Supernet):
    """The supernet of a space made of one :class:`~archscout.space.Cell` of library ops (``nb201`` and any
    user cell): NB201's macro network with a :class:`MixedCell` in place of every cell.

    Args:
        space: a space with exactly one Cell parameter.
        input_shape: ``(C, H, W)``, at least 4x4.
        num_classes: number of logits.
        C: channels of the first stage (then ``2C``, ``4C``); NB201 uses 16.
        N: cells per stage; NB201 uses 5.
        partial: PC-DARTS's partial channels: the ops of each edge see ``C / partial`` channels (1: all). Such a
            supernet searches only (:func:`~archscout.supernet.train_supernet` with ``pc-darts``): its ops are
            narrower than the cell's, so :meth:`extract` cannot give a sub-network its weights.

    Raises:
        ConfigError: the space is not a one-Cell space, ``C`` / ``N`` / ``partial`` are not positive integers,
            or ``partial`` does not divide ``C``.
        BuildError: an op of the cell is not a library op, or the input is smaller than 4x4.
    """

    kind = "cell"

    def __init__(self, space: Space, input_shape: Sequence[int], num_classes: int, C: int = 16, N: int = 5,
                 partial: int = 1) -> None:
        super().__init__(space, input_shape, num_classes)
        self.cell_name = cell_param(space)
        cell = space.params[self.cell_name]
        assert isinstance(cell, Cell)
        for name, v, low in (("C", C, 1), ("N", N, 1), ("partial", partial, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ConfigError(f"cell supernet option {name} must be an integer >= {low}, got {v!r}")
        if C % partial:
            raise ConfigError(f"cell supernet option partial={partial} must divide C={C} (each edge's ops see "
                              "C/partial channels); choose C or the PC-DARTS fraction K so that it does")
        c_in, h, w = self.input_shape
        if min(h, w) < 4:
            raise BuildError(f"the cell supernet halves the resolution twice and needs inputs of at least 4x4; "
                             f"got {h}x{w}")
        self.C, self.N, self.partial = C, N, partial
        self.op_names: tuple[str, ...] = tuple(cell.ops)
        self._op_index = {o: k for k, o in enumerate(self.op_names)}
        self.stem = nn.Sequential(nn.Conv2d(c_in, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        c_prev = C
        for stage, c in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                layers.append(ResNetBasicBlock(c_prev, c, 2, odd=(h % 2 == 1 or w % 2 == 1)))
                h, w = (h + 1) // 2, (w + 1) // 2
            for _ in range(N):
                layers.append(MixedCell(self.op_names, cell.nodes, c, partial))
            c_prev = c
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        self.n_edges = len(cell.edges)

    def options(self) -> dict[str, Any]:
        return {"C": self.C, "N": self.N, **({"partial": self.partial} if self.partial != 1 else {})}

    def mixed_cells(self) -> list[MixedCell]:
        return [m for m in self.cells if isinstance(m, MixedCell)]

    def set_mixture(self, mix: torch.Tensor | None, active_ops: Sequence[Sequence[int]] | None = None,
                    edge_weights: torch.Tensor | None = None) -> None:
        """Make every cell compute a mixture of its ops (differentiable methods): ``mix`` is ``(edges, ops)``, the
        weight of each op on each edge, shared by all cells; ``active_ops`` limits each edge to some ops (the
        others weigh 0 and are not computed); ``edge_weights`` scales each edge. ``None`` returns to the
        single path of :meth:`set_path`."""
        for m in self.mixed_cells():
            m.mix, m.active_ops, m.edge_weights = mix, active_ops, edge_weights

    def path_of(self, arch: Architecture) -> tuple[int, ...]:
        """The op index per edge of ``arch``'s cell."""
        arch = self.space.validate(arch)
        return tuple(self._op_index[o] for o in arch[self.cell_name])

    def arch_of(self, path: Sequence[int]) -> Architecture:
        """The architecture whose cell has the op indices ``path`` (one per edge); the inverse of :meth:`path_of`."""
        return self.space.make({self.cell_name: tuple(self.op_names[int(k)] for k in path)})

    def set_path(self, path: Sequence[int]) -> None:
        """Activate the op indices ``path`` (one per edge) in every cell; used by fair sampling."""
        p = tuple(int(i) for i in path)
        for m in self.cells:
            if isinstance(m, MixedCell):
                m.path = p

    def set_active(self, arch: Architecture) -> None:
        self.set_path(self.path_of(arch))
        self.active = self.space.validate(arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pooling(x), 1))

    def extract(self, arch: Architecture) -> nn.Module:
        if self.partial != 1:
            raise BuildError(f"this supernet's ops see C/{self.partial} channels (PC-DARTS partial channels), so a "
                             "sub-network cannot inherit its weights; train the derived cell instead (its string is in "
                             "'archscout supernet derive')")
        arch = self.space.validate(arch)
        path = self.path_of(arch)
        c_in, h, w = self.input_shape
        net = build_nb201(arch, (c_in, h, w), self.num_classes, C=self.C, N=self.N)
        source = self.state_dict()
        target = net.state_dict()
        prefixes = {str(i) for i, m in enumerate(self.cells) if isinstance(m, MixedCell)}
        for key in target:
            parts = key.split(".")
            if parts[0] == "cells" and parts[1] in prefixes and parts[2] == "ops":
                edge = int(parts[3])
                src = ".".join(["cells", parts[1], "candidates", str(edge), str(path[edge]), *parts[4:]])
            else:
                src = key
            target[key] = source[src].detach().clone()
        net.load_state_dict(target)
        return net
