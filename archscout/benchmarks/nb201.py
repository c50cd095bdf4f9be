"""NAS-Bench-201 as a registered tabular benchmark (users bring the table and point at its path)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..space import create_space
from ..tables import table_path
from .tabular import TabularBenchmark

__all__ = ["nb201"]


def _header(path: str) -> list[str]:
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def nb201(
    table: str | os.PathLike,
    objective: str = "valid_acc_200ep",
    report: str | None = None,
    direction: str = "max",
    metrics: Sequence[str] = (),
    cost_table: str | os.PathLike | None = None,
    cost_columns: Sequence[str] = (),
    arch_column: str = "arch_str",
    epoch_time_column: str | None = "nats_train_time_per_epoch_s",
    hash_rule: str | None = None,
) -> TabularBenchmark:
    """NAS-Bench-201 (15,625 cells): fidelities 12 and 200 epochs; costs joinable from a latency table.

    ``hash_rule``: which cells count as one function for dedup (see the ``nb201`` space). By default
    ``"nb201"``, or ``"none"`` when cost columns are loaded: cells of one functional class differ in latency
    (their dead branches still run on the device), so with a cost each cell is its own candidate and the
    table's true Pareto front stays reachable.

    A ``*_200ep`` metric is read at fidelity 12 from its ``*_12ep`` column when the table has it (CIFAR-10's
    test column at 12 epochs is ``test_acc_12ep_trainval``). The simulated clock prices a trial at
    ``epoch_time_column`` times the epochs when the table has that column (CIFAR-10 does).
    """
    if hash_rule is None:
        hash_rule = "none" if cost_columns else "nb201"
    path = table_path(table)
    header = _header(path) if os.path.isfile(path) else []
    wanted = list(dict.fromkeys([objective] + ([report] if report else []) + list(metrics)))
    low: dict[str, str] = {}
    for m in wanted:
        if isinstance(m, str) and m.endswith("_200ep"):
            base = m[: -len("_200ep")]
            for cand in (base + "_12ep", base + "_12ep_trainval"):
                if cand in header:
                    low[m] = cand
                    break
    fidelities: dict[float, dict[str, str]] | None = {200: {m: m for m in wanted}, 12: low} if low else None
    if epoch_time_column and header and epoch_time_column not in header:
        epoch_time_column = None
    return TabularBenchmark(
        path, create_space("nb201", hash_rule=hash_rule), arch_column=arch_column, objective=objective,
        direction=direction, report=report, metrics=metrics, epoch_time_column=epoch_time_column,
        fidelities=fidelities, max_fidelity=200 if fidelities else None, cost_table=cost_table,
        cost_columns=cost_columns, name="nb201",
    )


