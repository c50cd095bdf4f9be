"""A column of a latency table as a cost model (e.g. NB201 latencies on six devices, HELP / HW-NAS-Bench).

The table path and the column are parameters; nothing is copied into the repository. Loaded tables are kept
in memory per (path, modification time, columns, space), so several cost models share one read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..tables import read_columns
from ..errors import ConfigError, DataError, InvalidArchitectureError
from ..space import Architecture, Space, create_space
from .base import CostModel, register_cost_model
from .devices import DeviceProfile, get_device

__all__ = ["TableLatency"]

_TABLES: dict[tuple, dict[tuple, float]] = {}


def _load(path: str, column: str, arch_column: str, space: Space) -> dict[tuple, float]:
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        raise DataError(f"latency table {path!r} does not exist; pass table= the path of the CSV file") from None
    key = (path, stamp, column, arch_column, space)
    hit = _TABLES.get(key)
    if hit is not None:
        return hit
    data = read_columns(path, [arch_column, column], [column])
    values: dict[tuple, float] = {}
    for i, (text, v) in enumerate(zip(data[arch_column], data[column])):
        try:
            arch = space.parse(text)
        except InvalidArchitectureError as e:
            raise DataError(f"{path}:{i + 2}: column {arch_column!r}: {e}") from None
        if arch.values in values:
            raise DataError(f"{path}:{i + 2}: architecture {text!r} appears twice")
        values[arch.values] = float(v)
    if not values:
        raise DataError(f"latency table {path!r} has a header but no rows")
    _TABLES[key] = values
    return values


@register_cost_model
class TableLatency(CostModel):
    """Latency read from a table column, in ms. ``cheap=True``.

    Args:
        table: CSV path (default: the device profile's ``table``).
        column: latency column in milliseconds (default: the device profile's column).
        device: a table device profile or its name (``"nb201-pixel3"``, ...); optional when ``column`` is given.
        arch_column: column of architecture strings.
        space: the space of the table's architectures: a registered name (default: the device's, else
            ``"nb201"``), a ``Space`` or its config dict.

    Raises:
        UnknownNameError: unknown device. ConfigError: no table path or column, or a measured device.
        DataError: the file or column is missing, or a row cannot be read.
    """

    name, unit, cheap = "table-latency", "ms", True

    def __init__(self, table: str | os.PathLike | None = None, column: str | None = None,
                 device: str | DeviceProfile | Mapping[str, Any] | None = None, arch_column: str | None = None,
                 space: str | Space | Mapping[str, Any] | None = None) -> None:
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
        self.table = os.fspath(table)
        self.column = column
        self.arch_column = arch_column or (dev.arch_column if dev is not None else "arch_str")
        if space is None:
            space = (dev.space if dev is not None else None) or "nb201"
        if isinstance(space, str):
            space = create_space(space)
        elif isinstance(space, Mapping):
            space = Space.from_config(space)
        if not isinstance(space, Space):
            raise ConfigError(f"space must be a registered name, a Space or its config, got {space!r}")
        self.space = space
        self.values = _load(self.table, self.column, self.arch_column, self.space)

    def predict(self, arch: Architecture) -> float:
        """The table's latency of ``arch`` (ms). Raises DataError when the table lacks it."""
        v = self.values.get(arch.values)
        if v is None:
            raise DataError(f"latency table {self.table!r} has no row for {str(arch)!r}")
        return v

    def to_config(self) -> dict[str, Any]:
        return {"name": self.name, "table": self.table, "column": self.column,
                "device": None if self.device is None else self.device.name, "arch_column": self.arch_column,
                "space": self.space.to_config()}
