"""Tabular benchmarks: a table of (architecture, metrics) rows used as an exact, instant evaluator.

The loader takes every file path and column name as a parameter, so the same code reads any table of this
layout (one row per architecture, or per functional class of architectures, one column per metric, optional
cost tables joined by architecture).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, DataError, InvalidArchitectureError
from ..objectives import Objective
from ..space import Architecture, Space
from ..tables import KEYS, LINE, arch_fields, arch_strings, file_stamp, read_columns, table_path

if TYPE_CHECKING:
    from ..hardware.table import TableCost

__all__ = ["TabularBenchmark", "TabularEvaluator"]



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
        self.table = table_path(table)
        self.space = space
        self.name = name
        if key not in KEYS:
            raise ConfigError(f"unknown key {key!r}; use 'values' (one row per architecture) or 'functional' "
                              "(one row per functional class)")
        self.key = key
        self.where = {str(k): str(v) for k, v in (where or {}).items()}
        self.arch_column = arch_column
        self.cost_arch_column = cost_arch_column or arch_column
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
        self.cost_table = None if cost_table is None else table_path(cost_table)
        metric_cols = list(dict.fromkeys([objective] + ([report] if report else []) + list(metrics)))
        fid_cols = [c for cols in (fidelities or {}).values() for c in cols.values()]
        extra = [c for c in (time_column, epoch_time_column) if c]
        numeric = list(dict.fromkeys(metric_cols + fid_cols + extra))
        # cost columns of the table itself are read in the same pass
        same_file = self.cost_table is not None and os.path.abspath(self.cost_table) == os.path.abspath(self.table) \
            and self.cost_arch_column == arch_column
        self._joined = bool(self.cost_columns) and not same_file  # cost columns read from a second file
        joined = [c for c in self.cost_columns if c not in numeric] if same_file else []
        self._stamp = file_stamp(self.table)  # before reading: an edit during the read makes the cache miss
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
                    raise DataError(
                        f"{self.table}:{lines[i]}: architecture {text!r} appears twice (first on line {lines[j]})"
                    )
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
        self._cost_stamp: int | None = None
        self._cost_exact = False  # every cost-table row is one of the benchmark's rows, each once
        if self._joined:
            self._join_costs(self.cost_table, self.cost_arch_column)  # type: ignore[arg-type]
        self.fidelities: dict[float, _Fidelity] = {}
        for f, cols in (fidelities or {}).items():
            unknown = set(cols) - set(self.metric_names)
            if unknown:
                raise ConfigError(f"fidelity {f} maps unknown metrics {sorted(unknown)}; load them as metrics")
            self.fidelities[float(f)] = _Fidelity(dict(cols))
        self.max_fidelity = (
            max_fidelity if max_fidelity is not None else (max(self.fidelities) if self.fidelities else None)
        )
        if self.max_fidelity is not None and self.max_fidelity not in self.fidelities:
            self.fidelities[float(self.max_fidelity)] = _Fidelity({m: m for m in self.metric_names})

    def _key(self, arch: Architecture) -> Any:
        return arch.values if self.key == "values" else arch.functional_hash()

    def _join_costs(self, path: str, arch_column: str) -> None:
        fields = arch_fields(arch_column)
        self._cost_stamp = file_stamp(path)
        data = read_columns(path, list(dict.fromkeys(fields + list(self.cost_columns))), self.cost_columns,
                            with_lines=True)
        n = len(self.archs)
        for c in self.cost_columns:
            self.columns[c] = np.full(n, np.nan)
        matched: set[int] = set()
        texts = arch_strings(arch_column, data)
        for j, text in enumerate(texts):
            try:
                arch = self.space.parse(text)
            except InvalidArchitectureError as e:
                raise DataError(f"{path}:{data[LINE][j]}: column {arch_column!r}: {e}") from None
            i = self.keys.get(self._key(arch))
            if i is None:
                continue
            matched.add(i)
            for c in self.cost_columns:
                self.columns[c][i] = data[c][j]
        for c in self.cost_columns:
            missing = int(np.sum(~np.isfinite(self.columns[c])))
            if missing:
                raise DataError(
                    f"cost table {path!r} column {c!r} lacks a value for {missing} architectures of {self.table!r}"
                )
        self._cost_exact = len(matched) == len(texts)

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

    def cost_model(self, column: str, unit: str | None = None) -> TableCost:
        """The ``"table"`` cost model of ``column`` (e.g. a latency column), for
        ``create_study(..., cost_models={column: bench.cost_model(column)})``: it reads the file the column
        came from (the cost table for a joined cost column), with the benchmark's space and key (and row
        filter, for the benchmark's own table), so its config rebuilds it. The values the benchmark already
        holds are handed to the model's cache, so building it reads no file.

        Args:
            unit: unit of the column (default: the unit its name ends in, such as ``_ms``).

        Raises:
            ConfigError: the column was not loaded (load it as a cost column or a metric).
            DataError: the model reads the file afresh (it changed since the benchmark read it, or it is a cost
                table with rows the benchmark does not hold) and a row cannot be read.
        """
        from ..hardware.table import TableCost, preload_table

        if column not in self.columns:
            loaded = sorted(self.columns)
            raise ConfigError(f"column {column!r} was not loaded from {self.table!r}; load it as a cost "
                              f"column (cost_columns=[{column!r}]) or pick one of {loaded}")
        if self._joined and column in self.cost_columns:
            path, arch_column, where, stamp = self.cost_table, self.cost_arch_column, {}, self._cost_stamp
            exact = self._cost_exact  # else a fresh read holds rows the benchmark dropped
        else:
            path, arch_column, where, stamp, exact = self.table, self.arch_column, self.where, self._stamp, True
        if exact and stamp is not None:
            column_values = self.columns[column]

            def values() -> dict[Any, float]:
                listed = column_values.tolist()
                return {k: listed[i] for k, i in self.keys.items()}

            preload_table(path, stamp, column, arch_column, self.space, self.key, where, values)  # type: ignore[arg-type]
        return TableCost(path, column, self.space, arch_column=arch_column, key=self.key, where=where, unit=unit)

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
