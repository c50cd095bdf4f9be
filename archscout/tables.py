"""Reading CSV tables of architectures (benchmark tables, latency tables): the one reader that
benchmarks and cost models share. Every path and column name is a parameter; nothing is copied."""

from __future__ import annotations

import csv
import math
import os
import string
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ConfigError, DataError

__all__ = ["KEYS", "LINE", "arch_fields", "arch_strings", "file_stamp", "read_columns", "table_path"]

KEYS = ("values", "functional")
"""How a table's rows are looked up: by the architecture's values (one row per architecture) or by its functional
hash (one row per functional class)."""

LINE = "#line"
"""Key of the line numbers in ``read_columns(..., with_lines=True)``."""


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
    path = table_path(path)
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


def table_path(path: Any) -> str:
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
        raise ConfigError(
            f"arch_column must be a column name or a template like '{{link}}:{{ops}}', got {arch_column!r}"
        )
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


def file_stamp(path: str | os.PathLike) -> int | None:
    """The file's modification time in ns, under which tables read from it are cached (an edited file is read
    again); ``None`` when it cannot be read (the reader then says why)."""
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None
