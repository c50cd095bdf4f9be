"""NAS-Bench-Graph as a registered tabular benchmark (users bring a per-dataset table, e.g. ``nbg_cora.csv``).

The table holds one row per functional class (26,206 non-isomorphic architectures; 2,021 for
ogbn-proteins), with the architecture split over the columns ``link`` (e.g. ``0012``) and ``ops`` (e.g.
``gcn-gat-skip-fc``). The loader joins them into the space's string form ``0012:gcn-gat-skip-fc`` and keys
the rows by functional hash, so every one of the space's architectures finds the row of its class.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import DataError
from ..space import create_space
from ..space.linkops import NBGRAPH_OPS
from ..tables import read_columns, table_path
from .tabular import TabularBenchmark

__all__ = ["NBGRAPH_ARCH_COLUMN", "nbgraph"]

NBGRAPH_ARCH_COLUMN = "{link}:{ops}"


def _table_ops(path: str) -> tuple[str, ...]:
    """The NAS-Bench-Graph ops used in the table, in the official order."""
    used = {o for text in read_columns(path, ["ops"])["ops"] for o in text.split("-")}
    unknown = sorted(used - set(NBGRAPH_OPS))
    if unknown:
        raise DataError(f"table {path!r} uses ops {unknown} that are not NAS-Bench-Graph ops {list(NBGRAPH_OPS)}")
    return tuple(o for o in NBGRAPH_OPS if o in used)


def nbgraph(
    table: str | os.PathLike,
    objective: str = "valid_perf",
    report: str | None = None,
    direction: str = "max",
    metrics: Sequence[str] = (),
    cost_columns: Sequence[str] = ("latency_s", "params"),
    cost_table: str | os.PathLike | None = None,
    arch_column: str = NBGRAPH_ARCH_COLUMN,
    ops: Sequence[str] | None = None,
) -> TabularBenchmark:
    """NAS-Bench-Graph on one dataset (26,206 classes): validation/test performance, latency and params.

    Metrics ``valid_perf`` / ``test_perf`` are fractions; inference latency (``latency_s``, seconds) and
    parameter count (``params``, millions) are loaded as costs by default.

    Args:
        ops: the space's ops; default: those the table uses (all 9, or the 5 of ogbn-proteins).
        arch_column: a column or a template over columns (default ``"{link}:{ops}"``).

    Raises:
        DataError: a missing file or column, unknown ops, or two rows of one functional class.
    """
    path = table_path(table)
    if ops is None:
        ops = _table_ops(path)
    space = create_space("nbgraph", ops=tuple(ops))
    return TabularBenchmark(
        path, space, arch_column=arch_column, objective=objective, direction=direction, report=report,
        metrics=metrics, cost_table=cost_table, cost_columns=cost_columns, name="nbgraph", key="functional",
    )
