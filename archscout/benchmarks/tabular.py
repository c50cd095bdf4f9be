"""Tabular benchmarks: a table of (architecture, metrics) rows used as an exact, instant evaluator.

The loader takes every file path and column name as a parameter, so the same code reads any table of this
layout (one row per architecture, or per functional class of architectures, one column per metric, optional
cost tables joined by architecture).
"""

from __future__ import annotations

import csv
import math
import os
import string
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError, InvalidArchitectureError
from ..objectives import Objective
from ..space import Architecture, Space

__all__ = ["TabularBenchmark", "TabularEvaluator", "TableCostModel", "read_columns", "LINE"]

LINE = "#line"  # key of the line numbers in read_columns(..., with_lines=True)
KEYS = ("values", "functional")


def read_columns(
    path: str | os.PathLike,
    columns: Sequence[str],
    numeric: Sequence[str] = (),
    where: Mapping[str, str] | None = None,
    with_lines: bool = False,
) -> dict[str, list]:
    """Read the named columns of a CSV file (``numeric`` ones as floats).

    Args:
        where: keep only the rows whose column equals the given text, e.g. ``{"search_space": "micro"}``.
        with_lines: also return the file line number of every kept row, under the key :data:`LINE`.

    Raises:
        DataError: the file is missing or unreadable, or lacks a named column, or a numeric cell is not a number.
    """
    where = dict(where or {})
    path = _table_path(path)
    if os.path.isdir(path):
        raise DataError(f"table {path!r} is a folder, not a CSV file; pass the path of the benchmark CSV file")
    if not os.path.isfile(path):
        raise DataError(f"table {path!r} does not exist; pass the path of the benchmark CSV file")
    try:
        # utf-8-sig: a byte-order mark (spreadsheet exports) must not become part of the first column's name
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            try:
                header = next(reader)
            except StopIteration:
                raise DataError(f"table {path!r} is empty; expected a CSV file with a header row") from None
            missing = [c for c in list(dict.fromkeys(list(columns) + list(where))) if c not in header]
            if missing:
                raise DataError(
                    f"table {path!r} has no column {', '.join(map(repr, missing))}; its columns are {header}"
                )
            idx = [header.index(c) for c in columns]
            filters = [(header.index(c), str(v)) for c, v in where.items()]
            out: dict[str, list] = {c: [] for c in columns}
            lines: list[int] = []
            for lineno, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataError(f"{path}:{lineno}: {len(row)} fields, but the header has {len(header)}")
                if filters and any(row[i] != v for i, v in filters):
                    continue
                for c, i in zip(columns, idx):
                    out[c].append(row[i])
                lines.append(lineno)
    except UnicodeDecodeError as e:
        raise DataError(f"table {path!r} is not a UTF-8 CSV file ({e})") from None
    except OSError as e:
        raise DataError(f"cannot read table {path!r}: {e.strerror or e}") from None
    except csv.Error as e:
        raise DataError(f"table {path!r} is not a valid CSV file ({e})") from None
    for c in numeric:
        vals = out[c]
        try:
            out[c] = [float(v) if v != "" else math.nan for v in vals]
        except ValueError:
            bad = next(i for i, v in enumerate(vals) if not _is_float(v))
            raise DataError(f"{path}:{lines[bad]}: column {c!r} holds {vals[bad]!r}, not a number") from None
    if with_lines:
        out[LINE] = lines
    return out


def _table_path(path: Any) -> str:
    """``path`` as a string, or ConfigError when it is not a path."""
    try:
        text = os.fspath(path)
    except TypeError:
        raise ConfigError(f"a table must be the path of a CSV file, got {path!r}") from None
    if not isinstance(text, str):
        text = os.fsdecode(text)
    return text


def arch_fields(arch_column: str) -> list[str]:
    """Columns an ``arch_column`` setting reads: the column itself, or the fields of a template such as
    ``"{link}:{ops}"``.

    Raises:
        ConfigError: a malformed template.
    """
    if not isinstance(arch_column, str) or not arch_column:
        raise ConfigError(f"arch_column must be a column name or a template like '{{link}}:{{ops}}', got {arch_column!r}")
    if "{" not in arch_column and "}" not in arch_column:
        return [arch_column]
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(arch_column) if f is not None]
    except ValueError as e:
        raise ConfigError(f"arch_column template {arch_column!r} is malformed ({e})") from None
    if not fields or any(not f or f.isdigit() for f in fields):
        raise ConfigError(f"arch_column template {arch_column!r} must name its columns, e.g. '{{link}}:{{ops}}'")
    return list(dict.fromkeys(fields))


def arch_strings(arch_column: str, data: Mapping[str, list]) -> list[str]:
    """Architecture strings of the rows of ``data`` (read with the columns of :func:`arch_fields`)."""
    fields = arch_fields(arch_column)
    if fields == [arch_column]:
        return list(data[arch_column])
    cols = [data[f] for f in fields]
    return [arch_column.format(**dict(zip(fields, vals))) for vals in zip(*cols)]


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return v == ""


@dataclass(frozen=True)
class _Fidelity:
    columns: Mapping[str, str]  # metric name (column at full fidelity) -> column at this fidelity


class TabularBenchmark:
    """A table of architectures and their metrics.

    Args:
        table: CSV path.
        space: the space the architecture strings belong to.
        arch_column: column holding architecture strings (``space.parse`` must read them), or a template
            that builds them from several columns, e.g. ``"{link}:{ops}"``.
        key: ``"values"`` (default): one row per architecture, looked up by its values. ``"functional"``:
            one row per functional class, looked up by :meth:`Architecture.functional_hash`, so every
            member of a class finds its representative's row (tables that store only non-isomorphic
            architectures, such as NAS-Bench-Graph).
        where: keep only the rows whose column equals the given text, e.g. ``{"search_space": "micro"}``.
        objective: metric column to optimise; ``direction``: ``"max"`` or ``"min"``.
        report: optional metric column reported for the best-objective architecture (e.g. test accuracy).
        metrics: further metric columns to load.
        time_column: training time in seconds at full fidelity (the simulated clock's cost); optional.
        epoch_time_column: training time per epoch; with fidelities in epochs it prices each fidelity.
        fidelities: ``{fidelity: {metric column: column at that fidelity}}``; the full fidelity maps to itself.
        max_fidelity: the full fidelity (default: the largest key of ``fidelities``).
        cost_table / cost_columns / cost_arch_column: a second CSV joined by architecture, whose columns
            (e.g. latency per device) are loaded as costs.
        name: benchmark name used in reports.

    Raises:
        DataError: missing files or columns, unreadable rows, duplicated architectures (or, with
            ``key="functional"``, two rows of one functional class), uncovered cost rows.
        ConfigError: an unknown ``key`` or a malformed ``arch_column`` template.
    """

    def __init__(
        self,
        table: str | os.PathLike,
        space: Space,
        arch_column: str = "arch_str",
        objective: str = "accuracy",
        direction: str = "max",
        report: str | None = None,
        metrics: Sequence[str] = (),
        time_column: str | None = None,
        epoch_time_column: str | None = None,
        fidelities: Mapping[float, Mapping[str, str]] | None = None,
        max_fidelity: float | None = None,
        cost_table: str | os.PathLike | None = None,
        cost_columns: Sequence[str] = (),
        cost_arch_column: str | None = None,
        name: str = "tabular",
        key: str = "values",
        where: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(space, Space):
            raise ConfigError(f"a tabular benchmark needs a Space (or a registered space name), got {space!r}")
        self.table = _table_path(table)
        self.space = space
        self.name = name
        if key not in KEYS:
            raise ConfigError(f"unknown key {key!r}; use 'values' (one row per architecture) or 'functional' "
                              "(one row per functional class)")
        self.key = key
        self.where = {str(k): str(v) for k, v in (where or {}).items()}
        self.arch_column = arch_column
        fields = arch_fields(arch_column)
        self.objective = Objective(objective, direction)
        self.report = report
        self.time_column = time_column
        self.epoch_time_column = epoch_time_column
        if isinstance(cost_columns, str):
            cost_columns = [cost_columns]
        self.cost_columns = tuple(cost_columns)
        if self.cost_columns and cost_table is None:
            cost_table = self.table
        self.cost_table = None if cost_table is None else _table_path(cost_table)
        metric_cols = list(dict.fromkeys([objective] + ([report] if report else []) + list(metrics)))
        fid_cols = [c for cols in (fidelities or {}).values() for c in cols.values()]
        extra = [c for c in (time_column, epoch_time_column) if c]
        numeric = list(dict.fromkeys(metric_cols + fid_cols + extra))
        # cost columns of the table itself are read in the same pass
        same_file = self.cost_table is not None and os.path.abspath(self.cost_table) == os.path.abspath(self.table) \
            and (cost_arch_column or arch_column) == arch_column
        joined = [c for c in self.cost_columns if c not in numeric] if same_file else []
        data = read_columns(self.table, list(dict.fromkeys(fields + numeric + joined)), numeric + joined,
                            where=self.where, with_lines=True)
        lines: list[int] = data[LINE]
        self.metric_names = tuple(metric_cols)
        self.keys: dict[Any, int] = {}
        self.archs: list[Architecture] = []
        texts = arch_strings(arch_column, data)
        for i, text in enumerate(texts):
            try:
                arch = space.parse(text)
            except InvalidArchitectureError as e:
                raise DataError(f"{self.table}:{lines[i]}: column {arch_column!r}: {e}") from None
            k = self._key(arch)
            j = self.keys.get(k)
            if j is not None:
                if self.key == "values":
                    raise DataError(f"{self.table}:{lines[i]}: architecture {text!r} appears twice (first on line {lines[j]})")
                raise DataError(
                    f"{self.table}:{lines[i]}: architecture {text!r} is functionally equal to {texts[j]!r} on line "
                    f"{lines[j]}; a table keyed by functional class must hold one row per class (or use key='values')"
                )
            self.keys[k] = i
            self.archs.append(arch)
        if not self.archs:
            if self.where:
                raise DataError(f"table {self.table!r} has no row with {self.where}")
            raise DataError(f"table {self.table!r} has a header but no rows")
        self.columns: dict[str, np.ndarray] = {c: np.asarray(data[c], dtype=float) for c in numeric + joined}
        for c in metric_cols:
            bad = np.flatnonzero(~np.isfinite(self.columns[c]))
            if len(bad):
                raise DataError(f"{self.table}:{lines[bad[0]]}: column {c!r} is empty or not finite")
        if same_file:
            for c in self.cost_columns:
                bad = np.flatnonzero(~np.isfinite(self.columns[c]))
                if len(bad):
                    raise DataError(f"{self.table}:{lines[bad[0]]}: cost column {c!r} is empty or not finite")
        elif self.cost_columns:
            self._join_costs(self.cost_table, cost_arch_column or arch_column)  # type: ignore[arg-type]
        self.fidelities: dict[float, _Fidelity] = {}
        for f, cols in (fidelities or {}).items():
            unknown = set(cols) - set(self.metric_names)
            if unknown:
                raise ConfigError(f"fidelity {f} maps unknown metrics {sorted(unknown)}; load them as metrics")
            self.fidelities[float(f)] = _Fidelity(dict(cols))
        self.max_fidelity = max_fidelity if max_fidelity is not None else (max(self.fidelities) if self.fidelities else None)
        if self.max_fidelity is not None and self.max_fidelity not in self.fidelities:
            self.fidelities[float(self.max_fidelity)] = _Fidelity({m: m for m in self.metric_names})

    def _key(self, arch: Architecture) -> Any:
        return arch.values if self.key == "values" else arch.functional_hash()

    def _join_costs(self, path: str, arch_column: str) -> None:
        fields = arch_fields(arch_column)
        data = read_columns(path, list(dict.fromkeys(fields + list(self.cost_columns))), self.cost_columns,
                            with_lines=True)
        n = len(self.archs)
        for c in self.cost_columns:
            self.columns[c] = np.full(n, np.nan)
        for j, text in enumerate(arch_strings(arch_column, data)):
            try:
                arch = self.space.parse(text)
            except InvalidArchitectureError as e:
                raise DataError(f"{path}:{data[LINE][j]}: column {arch_column!r}: {e}") from None
            i = self.keys.get(self._key(arch))
            if i is None:
                continue
            for c in self.cost_columns:
                self.columns[c][i] = data[c][j]
        for c in self.cost_columns:
            missing = int(np.sum(~np.isfinite(self.columns[c])))
            if missing:
                raise DataError(f"cost table {path!r} column {c!r} lacks a value for {missing} architectures of {self.table!r}")

    # --- queries -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.archs)

    def row(self, arch: Architecture) -> int:
        """Row of ``arch`` (of its functional class's representative with ``key="functional"``).
        Raises KeyError with a clear message when the table lacks it."""
        try:
            return self.keys[self._key(arch)]
        except KeyError:
            raise KeyError(f"architecture {str(arch)!r} is not in table {self.table!r}") from None

    def value(self, arch: Architecture, column: str, fidelity: float | None = None) -> float:
        """The table's ``column`` for ``arch`` (at ``fidelity``, when the benchmark has fidelities).

        Raises:
            KeyError: the table lacks ``arch`` or ``column``.
            ConfigError: ``fidelity`` is not one of the benchmark's fidelities.
        """
        col = column
        if fidelity is not None and self.fidelities:
            f = self.fidelities.get(float(fidelity))
            if f is None:
                raise ConfigError(f"fidelity {fidelity} is not one of {sorted(self.fidelities)}")
            col = f.columns.get(column, column)
        return float(self.columns[col][self.row(arch)])

    def optimum(self, column: str | None = None, direction: str | None = None) -> float:
        col = column or self.objective.name
        d = direction or (self.objective.direction if col == self.objective.name else "max")
        v = self.columns[col]
        return float(v.max() if d == "max" else v.min())

    def mean(self, column: str) -> float:
        """Mean over every row: the expected value of a uniformly random architecture."""
        return float(self.columns[column].mean())

    def duration(self, arch: Architecture, fidelity: float | None = None) -> float | None:
        """Recorded training seconds at ``fidelity`` (full fidelity when None)."""
        i = self.row(arch)
        if self.epoch_time_column is not None:
            f = fidelity if fidelity is not None else self.max_fidelity
            if f is not None:
                return float(self.columns[self.epoch_time_column][i] * f)
        if self.time_column is not None:
            full = float(self.columns[self.time_column][i])
            if fidelity is not None and self.max_fidelity:
                return full * float(fidelity) / float(self.max_fidelity)
            return full
        return None

    def evaluator(self, metrics: Sequence[str] | None = None, replay_time_scale: float = 0.0) -> TabularEvaluator:
        return TabularEvaluator(self, metrics, replay_time_scale)

    def cost_model(self, column: str) -> TableCostModel:
        """A cheap cost model reading ``column`` of this table (e.g. a latency column), for
        ``create_study(..., cost_models={column: bench.cost_model(column)})``.

        Raises:
            ConfigError: the column was not loaded (load it as a cost column or a metric).
        """
        return TableCostModel(self, column)

    def to_config(self) -> dict:
        return {
            "table": self.table, "space": self.space.to_config(), "arch_column": self.arch_column,
            "objective": self.objective.name, "direction": self.objective.direction, "report": self.report,
            "cost_table": self.cost_table, "cost_columns": list(self.cost_columns), "name": self.name,
            "key": self.key, "where": dict(self.where),
        }


class TabularEvaluator:
    """Evaluates an architecture by looking it up in a :class:`TabularBenchmark`.

    Returns the benchmark's metric columns (objective, report, extra metrics; at the requested fidelity,
    under their full-fidelity names) and its cost columns.

    Args:
        replay_time_scale: when > 0, ``evaluate`` really sleeps for the recorded training time times this
            factor, so parallelism and crash/resume can be exercised with real processes.
    """

    def __init__(self, benchmark: TabularBenchmark, metrics: Sequence[str] | None = None,
                 replay_time_scale: float = 0.0) -> None:
        try:
            scale = float(replay_time_scale)
        except (TypeError, ValueError):
            scale = -1.0
        if not (scale >= 0 and math.isfinite(scale)):
            raise ConfigError(f"replay_time_scale must be a number >= 0, got {replay_time_scale!r}")
        self.benchmark = benchmark
        self.metrics = tuple(metrics) if metrics is not None else benchmark.metric_names + benchmark.cost_columns
        for m in self.metrics:
            if m not in benchmark.columns:
                raise ConfigError(f"metric {m!r} was not loaded from {benchmark.table!r}")
        self.replay_time_scale = scale

    def lookup(self, arch: Architecture, fidelity: float | None = None) -> dict[str, float]:
        b = self.benchmark
        return {m: b.value(arch, m, fidelity) for m in self.metrics}

    def duration(self, arch: Architecture, fidelity: float | None = None) -> float | None:
        return self.benchmark.duration(arch, fidelity)

    def evaluate(self, arch: Architecture, fidelity: float | None = None) -> dict[str, float]:
        out = self.lookup(arch, fidelity)
        if self.replay_time_scale > 0:
            d = self.duration(arch, fidelity)
            if d:
                time.sleep(d * self.replay_time_scale)
        return out

    def to_config(self) -> dict[str, Any]:
        return {"type": "tabular", "replay_time_scale": self.replay_time_scale, "metrics": list(self.metrics)}


class TableCostModel:
    """A cheap cost model that looks a column of a :class:`TabularBenchmark` up (full-fidelity value), so a
    table's cost (e.g. latency in ms) is known before evaluation.

    Raises:
        ConfigError: the column was not loaded from the table.
    """

    cheap = True

    def __init__(self, benchmark: TabularBenchmark, column: str) -> None:
        if column not in benchmark.columns:
            loaded = sorted(benchmark.columns)
            raise ConfigError(f"column {column!r} was not loaded from {benchmark.table!r}; load it as a cost "
                              f"column (cost_columns=[{column!r}]) or pick one of {loaded}")
        self.benchmark = benchmark
        self.column = column

    def predict(self, arch: Architecture) -> float:
        """The table's value of the column for ``arch``. Raises KeyError when the table lacks ``arch``."""
        return self.benchmark.value(arch, self.column)

    def to_config(self) -> dict[str, Any]:
        return {"type": "table", "table": self.benchmark.cost_table or self.benchmark.table, "column": self.column}
