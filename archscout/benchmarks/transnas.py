"""TransNAS-Bench-101 as two registered tabular benchmarks: its micro (cell) and macro (skeleton) spaces.

One CSV per Taskonomy task holds both spaces (column ``search_space``: ``micro`` or ``macro``; column
``arch_str``: the official strings ``64-41414-3_13_020`` and ``64-41414-basic``). Each loader keeps the
rows of its space. Users bring the table and point at its path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..space import create_space
from ..tables import table_path
from .tabular import TabularBenchmark

__all__ = ["default_direction", "transnas_macro", "transnas_micro"]


def default_direction(objective: str) -> str:
    """``"min"`` for loss columns (``*_loss``, ``*_l1_loss``), ``"max"`` for the others (accuracies, SSIM,
    mIoU, ``*_neg_loss``)."""
    if not isinstance(objective, str):
        return "max"  # TabularBenchmark reports the bad objective name
    return "min" if objective.endswith("loss") and not objective.endswith("neg_loss") else "max"


def _load(
    space_name: str,
    space,
    table: str | os.PathLike,
    objective: str,
    report: str | None,
    direction: str | None,
    metrics: Sequence[str],
    time_column: str | None,
    arch_column: str,
    cost_table: str | os.PathLike | None,
    cost_columns: Sequence[str],
) -> TabularBenchmark:
    return TabularBenchmark(
        table_path(table), space, arch_column=arch_column, objective=objective,
        direction=direction or default_direction(objective), report=report, metrics=metrics,
        time_column=time_column, cost_table=cost_table, cost_columns=cost_columns,
        name=f"transnas-{space_name}", where={"search_space": space_name},
    )


def transnas_micro(
    table: str | os.PathLike,
    objective: str = "valid_top1",
    report: str | None = None,
    direction: str | None = None,
    metrics: Sequence[str] = (),
    time_column: str | None = "time_elapsed",
    arch_column: str = "arch_str",
    cost_table: str | os.PathLike | None = None,
    cost_columns: Sequence[str] = (),
    hash_rule: str = "nb201",
) -> TabularBenchmark:
    """TransNAS-Bench-101 micro cells (4,096 rows of any task table, e.g. ``tnb101_class_object.csv``).

    ``direction`` defaults to ``"min"`` for loss columns and ``"max"`` otherwise (see
    :func:`default_direction`); ``time_column`` (training seconds) prices trials on the simulated clock;
    ``hash_rule`` is the space's functional-hash rule (see the ``transnas-micro`` space).

    Raises:
        DataError: a missing file or column, or rows that are not micro cells.
    """
    space = create_space("transnas-micro", hash_rule=hash_rule)
    return _load("micro", space, table, objective, report, direction, metrics, time_column, arch_column,
                 cost_table, cost_columns)


def transnas_macro(
    table: str | os.PathLike,
    objective: str = "valid_top1",
    report: str | None = None,
    direction: str | None = None,
    metrics: Sequence[str] = (),
    time_column: str | None = "time_elapsed",
    arch_column: str = "arch_str",
    cost_table: str | os.PathLike | None = None,
    cost_columns: Sequence[str] = (),
) -> TabularBenchmark:
    """TransNAS-Bench-101 macro skeletons (3,256 rows of any task table, e.g. ``tnb101_room_layout.csv``).

    Parameters as for :func:`transnas_micro` (for room layout use ``objective="valid_neg_loss"``).

    Raises:
        DataError: a missing file or column, or rows that are not valid skeletons.
    """
    space = create_space("transnas-macro")
    return _load("macro", space, table, objective, report, direction, metrics, time_column, arch_column,
                 cost_table, cost_columns)
