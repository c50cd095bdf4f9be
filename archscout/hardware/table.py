"""A numeric column of a CSV table of architectures as a cost model (latency per device as in HELP /
HW-NAS-Bench, parameters or latency of NAS-Bench-Graph, any cost column of a tabular benchmark).

The table path and the column are parameters; nothing is copied into the repository. Loaded columns are kept
in memory per (file, modification time, column, architecture column, space, key, row filter), so every cost
model of those settings, in as many studies as a process runs, shares one read; a tabular benchmark that has
already read a column hands its values over with :func:`preload_table` instead of reading the file again.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError, DataError, InvalidArchitectureError
from ..space import Architecture, Space, create_space
from ..tables import KEYS, LINE, arch_fields, arch_strings, file_stamp, read_columns, table_path
from .base import CostModel, register_cost_model
from .devices import DeviceProfile, get_device

__all__ = ["TableCost", "TableLatency", "preload_table", "table_stamp"]


_UNITS = {"ms": "ms", "us": "us", "s": "s", "mj": "mJ", "j": "J", "mw": "mW", "w": "W", "mb": "MB", "kb": "KB",
          "mflops": "MFLOPs", "gflops": "GFLOPs"}

_TABLES: dict[tuple, dict[Any, float]] = {}


def table_stamp(path: str | os.PathLike) -> int:
    """The file's modification time in ns: loaded tables are cached under it, so an edited file is read again.

    Raises:
        DataError: the file does not exist.
    """
    stamp = file_stamp(path)
    if stamp is None:
        raise DataError(f"table {os.fspath(path)!r} does not exist; pass table= the path of the CSV file")
    return stamp


def _cache_key(path: str, stamp: int, column: str, arch_column: str, space: Space, key: str,
               where: Mapping[str, str]) -> tuple:
    return (os.path.abspath(path), stamp, column, arch_column, space.signature, key, tuple(sorted(where.items())))


def preload_table(path: str | os.PathLike, stamp: int, column: str, arch_column: str, space: Space, key: str,
                  where: Mapping[str, str], values: Callable[[], Mapping[Any, float]]) -> None:
    """Put a column that was already read into the cache, as a :class:`TableCost` of these settings would load
    it, so that building the model does not read the file again (used by tabular benchmarks).

    Args:
        stamp: :func:`table_stamp` of the file taken *before* it was read.
        values: called only when the cache lacks the column; returns ``{row key: value}`` with the row keys
            of ``key`` (``arch.values`` or ``arch.functional_hash()``) and exactly the rows a fresh read keeps.
    """
    ck = _cache_key(table_path(path), stamp, column, arch_column, space, key, where)
    if ck not in _TABLES:
        _TABLES[ck] = {k: float(v) for k, v in values().items()}


def _row_key(arch: Architecture, key: str) -> Any:
    return arch.values if key == "values" else arch.functional_hash()


def _load(path: str, column: str, arch_column: str, space: Space, key: str,
          where: Mapping[str, str]) -> dict[Any, float]:
    ck = _cache_key(path, table_stamp(path), column, arch_column, space, key, where)
    hit = _TABLES.get(ck)
    if hit is not None:
        return hit
    fields = arch_fields(arch_column)
    data = read_columns(path, list(dict.fromkeys(fields + [column])), [column], where=where, with_lines=True)
    lines: list[int] = data[LINE]
    values: dict[Any, float] = {}
    first: dict[Any, int] = {}
    for i, text in enumerate(arch_strings(arch_column, data)):
        try:
            arch = space.parse(text)
        except InvalidArchitectureError as e:
            raise DataError(f"{path}:{lines[i]}: column {arch_column!r}: {e}") from None
        k = _row_key(arch, key)
        if k in first:
            if key == "values":
                raise DataError(f"{path}:{lines[i]}: architecture {text!r} appears twice (first on line "
                                f"{lines[first[k]]})")
            raise DataError(f"{path}:{lines[i]}: architecture {text!r} is functionally equal to the one on line "
                            f"{lines[first[k]]}; a table keyed by functional class must hold one row per class "
                            "(or use key='values')")
        first[k] = i
        values[k] = float(data[column][i])
    if not values:
        if where:
            raise DataError(f"table {path!r} has no row with {dict(where)}")
        raise DataError(f"table {path!r} has a header but no rows")
    _TABLES[ck] = values
    return values


def _space(space: str | Space | Mapping[str, Any] | None) -> Space:
    if isinstance(space, str):
        return create_space(space)
    if isinstance(space, Mapping):
        return Space.from_config(space)
    if not isinstance(space, Space):
        raise ConfigError(f"space must be a registered name, a Space or its config, got {space!r}")
    return space


def _unit(column: str) -> str:
    """The unit a column's name ends in (``pixel3_ms`` -> ``"ms"``, ``latency_s`` -> ``"s"``), else ``""``."""
    head, sep, tail = column.rpartition("_")
    return _UNITS.get(tail.lower(), "") if sep and head else ""


@register_cost_model
class TableCost(CostModel):
    """A numeric column of a CSV table of architectures, looked up per architecture. ``cheap=True``.

    Args:
        table: CSV path.
        column: the numeric column to read.
        space: the space of the table's architectures: a registered name, a ``Space`` or its config dict.
        arch_column: column of architecture strings (``space.parse`` reads them), or a template over several
            columns, e.g. ``"{link}:{ops}"``.
        key: ``"values"``: one row per architecture; ``"functional"``: one row per functional class, looked up
            by :meth:`Architecture.functional_hash` (tables such as NAS-Bench-Graph's).
        where: keep only the rows whose column equals the given text, e.g. ``{"search_space": "micro"}``.
        unit: unit of the column; default: the unit its name ends in (``_ms``, ``_s``, ``_mj``, ``_mb``...),
            else ``""``.

    Raises:
        ConfigError: a missing or malformed setting. UnknownNameError: an unknown space name.
        DataError: the file or a column is missing, a row cannot be read, an architecture appears twice
            (with ``key="functional"``: two rows of one functional class), or no row is left.
    """

    name, unit, cheap = "table", "", True

    def __init__(self, table: str | os.PathLike | None = None, column: str | None = None,
                 space: str | Space | Mapping[str, Any] | None = None, arch_column: str = "arch_str",
                 key: str = "values", where: Mapping[str, str] | None = None, unit: str | None = None) -> None:
        if table is None:
            raise ConfigError(f"{self.name} needs table= the path of the CSV file")
        if not column or not isinstance(column, str):
            raise ConfigError(f"{self.name} needs column= the name of a numeric column, got {column!r}")
        if space is None:
            raise ConfigError(f"{self.name} needs space= the space of the table's architectures (e.g. 'nb201')")
        if key not in KEYS:
            raise ConfigError(f"unknown key {key!r}; use 'values' (one row per architecture) or 'functional' "
                              "(one row per functional class)")
        if where is not None and not isinstance(where, Mapping):
            raise ConfigError(f"where must map column names to text, e.g. {{'search_space': 'micro'}}, got {where!r}")
        if unit is not None and not isinstance(unit, str):
            raise ConfigError(f"unit must be a string such as 'ms', got {unit!r}")
        arch_fields(arch_column)  # validates a template
        self.table = table_path(table)
        self.column = column
        self.space = _space(space)
        self.arch_column = arch_column
        self.key = key
        self.where = {str(k): str(v) for k, v in (where or {}).items()}
        self.unit = _unit(column) if unit is None else unit
        self.values = _load(self.table, self.column, self.arch_column, self.space, self.key, self.where)

    def predict(self, arch: Architecture) -> float:
        """The table's value of :attr:`column` for ``arch`` (in :attr:`unit`).

        Raises:
            DataError: the table has no row for ``arch`` or its cell is empty.
        """
        v = self.values.get(arch.values if self.key == "values" else arch.functional_hash())
        if v is None:
            raise DataError(f"table {self.table!r} has no row for architecture {str(arch)!r}")
        if math.isnan(v):
            raise DataError(f"table {self.table!r} has no value in column {self.column!r} for architecture "
                            f"{str(arch)!r}")
        return v

    def to_config(self) -> dict[str, Any]:
        return {"name": self.name, "table": self.table, "column": self.column, "space": self.space.to_config(),
                "arch_column": self.arch_column, "key": self.key, "where": dict(self.where), "unit": self.unit}


@register_cost_model
class TableLatency(TableCost):
    """Latency read from a table column, in ms, optionally through a table device profile. ``cheap=True``.

    Args:
        table: CSV path (default: the device profile's ``table``).
        column: latency column in milliseconds (default: the device profile's column).
        device: a table device profile or its name (``"nb201-pixel3"``, ...); optional when ``column`` is given.
        arch_column: column of architecture strings (default: the device's, else ``"arch_str"``).
        space: the space of the table's architectures: a registered name (default: the device's, else
            ``"nb201"``), a ``Space`` or its config dict.
        key, where: as for :class:`TableCost`.

    Raises:
        UnknownNameError: unknown device. ConfigError: no table path or column, or a measured device.
        DataError: the file or column is missing, or a row cannot be read.
    """

    name, unit = "table-latency", "ms"

    def __init__(self, table: str | os.PathLike | None = None, column: str | None = None,
                 device: str | DeviceProfile | Mapping[str, Any] | None = None, arch_column: str | None = None,
                 space: str | Space | Mapping[str, Any] | None = None, key: str = "values",
                 where: Mapping[str, str] | None = None) -> None:
        dev = None if device is None else get_device(device)
        if dev is not None and dev.kind != "table":
            raise ConfigError(f"device {dev.name!r} is measured, not a table; use the 'measured-latency' cost model")
        table = table if table is not None else (dev.table if dev is not None else None)
        column = column if column is not None else (dev.column if dev is not None else None)
        if table is None:
            raise ConfigError("table-latency needs table= the path of the latency CSV file")
        if not column or not isinstance(column, str):
            raise ConfigError(f"table-latency needs column= the latency column (ms), got {column!r}")
        self.device = dev.replace(table=table, column=column) if dev is not None else None
        if space is None:
            space = (dev.space if dev is not None else None) or "nb201"
        super().__init__(table, column, space, arch_column=arch_column or (dev.arch_column if dev is not None
                                                                               else "arch_str"),
                         key=key, where=where, unit="ms")

    def to_config(self) -> dict[str, Any]:
        cfg = {"name": self.name, "table": self.table, "column": self.column,
               "device": None if self.device is None else self.device.name, "arch_column": self.arch_column,
               "space": self.space.to_config()}
        if self.key != "values":
            cfg["key"] = self.key
        if self.where:
            cfg["where"] = dict(self.where)
        return cfg
