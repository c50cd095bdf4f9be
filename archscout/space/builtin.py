"""Built-in spaces: ``nb201`` (NAS-Bench-201 cells), ``mbv3`` (MobileNetV3 / OFA-style stages),
``transnas-micro`` / ``transnas-macro`` (TransNAS-Bench-101), ``nbgraph`` (NAS-Bench-Graph) and ``systolic``
(systolic-array accelerators, searched alone or joined to a network space for co-design)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .cell import Cell
from .digit_cell import DigitCell
from .linkops import NBGRAPH_LINKS, NBGRAPH_OPS, LinkOps
from .params import Choice, Ordinal, Param
from .registry import register_space
from .skeleton import Skeleton
from .space import Space
from .stages import Stages

__all__ = ["ACCELERATOR_PARAMS", "NB201_OPS", "TRANSNAS_MICRO_OPS", "accelerator_params", "mbv3", "nb201", "nbgraph",
           "systolic", "transnas_macro", "transnas_micro"]

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# TransNAS-Bench-101 micro op digits 0 to 3: zero, identity, ReLU-conv1x1-BN, ReLU-conv3x3-BN (NB201's ops)
TRANSNAS_MICRO_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3")


@register_space("nb201")
def nb201(hash_rule: str = "nb201") -> Space:
    """NAS-Bench-201: a 4-node cell, 6 edges, 5 ops (15,625 cells; 6,466 functional classes)."""
    return Space({"cell": Cell(nodes=4, ops=NB201_OPS, zero="none", identity="skip_connect", hash_rule=hash_rule)},
                 name="nb201")


@register_space("mbv3")
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


@register_space("transnas-micro")
def transnas_micro(hash_rule: str = "nb201", input_identity: bool = False) -> Space:
    """TransNAS-Bench-101 micro: a 4-node cell, 6 edges, 4 ops (4,096 cells), e.g. ``64-41414-3_13_020``.

    The network stacks the cell in the fixed skeleton ``41414``, where every ``4`` module starts with a
    reduction cell: there an identity on an edge leaving the cell input is a learned factorised reduction,
    so by default (``input_identity=False``) the functional hash treats it as an op of its own (1,696
    classes under the ``"nb201"`` rule, 1,229 under ``"strict"``; with ``input_identity=True``, 1,236 and
    871). See :class:`~archscout.space.digit_cell.DigitCell`.
    """
    return Space({"cell": DigitCell(nodes=4, ops=TRANSNAS_MICRO_OPS, prefix="64-41414-", zero="none",
                                    identity="skip_connect", hash_rule=hash_rule, input_identity=input_identity)},
                 name="transnas-micro")


@register_space("transnas-macro")
def transnas_macro() -> Space:
    """TransNAS-Bench-101 macro: 4-6 ResNet modules, 1-3 doublings, 1-4 downsamplings (3,256 skeletons).

    Strings like ``64-41414-basic``; each skeleton is its own functional class (see
    :class:`~archscout.space.skeleton.Skeleton`)."""
    return Space({"skeleton": Skeleton(modules=(4, 6), doublings=(1, 3), downsamplings=(1, 4))},
                 name="transnas-macro")


@register_space("nbgraph")
def nbgraph(ops: Sequence[str] = NBGRAPH_OPS) -> Space:
    """NAS-Bench-Graph: 9 links x 4 node ops from 9 GNN layers (59,040 architectures; 26,206 classes).

    Strings like ``0012:gcn-gat-skip-fc``; the 9 all-skip architectures compute nothing and are left out.
    ``ops=NBGRAPH_PROTEINS_OPS`` gives the 5-op ogbn-proteins space (5,616 architectures; 2,021 classes).
    See :class:`~archscout.space.linkops.LinkOps`."""
    return Space({"gnn": LinkOps(links=NBGRAPH_LINKS, ops=tuple(ops), identity="skip")}, name="nbgraph")


ACCELERATOR_PARAMS = ("rows", "cols", "dataflow", "ifmap_sram_kb", "filter_sram_kb", "ofmap_sram_kb", "bandwidth")
"""The parameters of an accelerator design, as ``archscout.hardware.Accelerator`` reads them from an architecture."""


def accelerator_params(
    prefix: str = "",
    rows: Sequence[int] = (8, 16, 32, 64, 128),
    cols: Sequence[int] = (8, 16, 32, 64, 128),
    dataflows: Sequence[str] = ("os", "ws", "is"),
    ifmap_sram_kb: Sequence[int] = (32, 64, 128, 256, 512),
    filter_sram_kb: Sequence[int] = (32, 64, 128, 256, 512),
    ofmap_sram_kb: Sequence[int] = (16, 32, 64, 128, 256),
    bandwidth: Sequence[int] = (4, 8, 16, 32, 64),
) -> dict[str, Param]:
    """The parameters of a systolic-array design, named ``prefix + name`` for each of :data:`ACCELERATOR_PARAMS`:
    array rows and columns (PEs), dataflow (output-, weight- or input-stationary), SRAM sizes of the three
    operand buffers (KB) and DRAM bandwidth (words per cycle). Join them to a network space's parameters for
    co-design (``archscout.hardware.joint_space``); a prefix keeps two accelerators apart (``"acc0_"``). An empty
    list leaves that parameter out of the space: the evaluator's base design decides it (e.g. ``bandwidth=()``
    with the default base: no DRAM limit, SCALE-Sim's CALC mode)."""
    options: dict[str, tuple[type[Choice] | type[Ordinal], Sequence[Any]]] = {
        "rows": (Ordinal, rows), "cols": (Ordinal, cols), "dataflow": (Choice, dataflows),
        "ifmap_sram_kb": (Ordinal, ifmap_sram_kb), "filter_sram_kb": (Ordinal, filter_sram_kb),
        "ofmap_sram_kb": (Ordinal, ofmap_sram_kb), "bandwidth": (Ordinal, bandwidth),
    }
    return {f"{prefix}{name}": kind(list(values)) for name, (kind, values) in options.items() if len(values)}


@register_space("systolic")
def systolic(
    rows: Sequence[int] = (8, 16, 32, 64, 128),
    cols: Sequence[int] = (8, 16, 32, 64, 128),
    dataflows: Sequence[str] = ("os", "ws", "is"),
    ifmap_sram_kb: Sequence[int] = (32, 64, 128, 256, 512),
    filter_sram_kb: Sequence[int] = (32, 64, 128, 256, 512),
    ofmap_sram_kb: Sequence[int] = (16, 32, 64, 128, 256),
    bandwidth: Sequence[int] = (4, 8, 16, 32, 64),
) -> Space:
    """Systolic-array accelerators: rows x columns of PEs, dataflow, three SRAM sizes (KB) and DRAM bandwidth
    (words per cycle); 5 x 5 x 3 x 5 x 5 x 5 x 5 = 46,875 designs by default. Evaluate them with
    ``archscout.hardware.AcceleratorEvaluator`` on a workload (a SCALE-Sim topology or a traced network)."""
    return Space(accelerator_params("", rows, cols, dataflows, ifmap_sram_kb, filter_sram_kb, ofmap_sram_kb,
                                    bandwidth), name="systolic")
