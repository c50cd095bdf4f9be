"""SQLite storage: one embedded file, WAL journal, one committed transaction per event."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from .. import __version__
from ..errors import StorageError, StorageVersionError
from .base import SCHEMA_VERSION, Event, Storage, dumps, loads

__all__ = ["SQLiteStorage"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    study TEXT NOT NULL REFERENCES studies(name),
    kind TEXT NOT NULL,
    trial INTEGER NOT NULL,
    payload TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_study ON events (study, seq);
"""


class SQLiteStorage(Storage):
    """Records in a SQLite file.

    Args:
        path: the database file (created with its folder if missing).
        durability: ``"normal"`` (default: WAL with ``synchronous=NORMAL``; a committed event survives the
            process being killed at any moment) or ``"full"`` (also fsync every commit, surviving power loss).
        timeout_s: how long to wait for a lock held by another process.

    Raises:
        StorageError: the file is not an archscout SQLite storage or cannot be opened.
        StorageVersionError: the file was written with another schema version.
    """

    def __init__(self, path: str | os.PathLike, durability: str = "normal", timeout_s: float = 60.0) -> None:
        if durability not in ("normal", "full"):
            raise StorageError(f"durability must be 'normal' or 'full', got {durability!r}")
        self.path = os.fspath(path)
        self.url = f"sqlite:///{self.path}"
        exists = os.path.exists(self.path)
        if exists and os.path.isdir(self.path):
            raise StorageError(f"storage path {self.path!r} is a folder; give a file path such as runs/study.db")
        folder = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(folder, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._conn.execute("PRAGMA synchronous=" + ("FULL" if durability == "full" else "NORMAL"))
        except (sqlite3.DatabaseError, OSError) as e:
            raise StorageError(f"cannot open {self.path!r} as an archscout SQLite storage: {e}") from None
        if mode.lower() != "wal":
            self._conn.execute("PRAGMA synchronous=FULL")
        self._init_schema(exists and os.path.getsize(self.path) > 0)

    def _init_schema(self, existed: bool) -> None:
        try:
            tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as e:
            raise StorageError(f"{self.path!r} is not an archscout storage (not a SQLite database: {e})") from None
        if existed and tables and "meta" not in tables:
            raise StorageError(f"{self.path!r} is a SQLite database but not an archscout storage; use a new file")
        if "meta" in tables:
            row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            found = int(row[0]) if row else None
            if found != SCHEMA_VERSION:
                raise StorageVersionError(
                    f"{self.path!r} was written with storage schema version {found}, but this archscout "
                    f"({__version__}) reads version {SCHEMA_VERSION}; open it with a matching archscout or "
                    "start a new storage file"
                )
            return
        with self._tx():
            for stmt in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                self._conn.execute(stmt)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?), ('created_by', ?)",
                (str(SCHEMA_VERSION), f"archscout {__version__}"),
            )

    def _tx(self):
        return _Transaction(self._conn)

    def create_study(self, name: str, config: Mapping[str, Any]) -> None:
        with self._tx():
            if self._conn.execute("SELECT 1 FROM studies WHERE name=?", (name,)).fetchone():
                raise StorageError(
                    f"{self.path!r} already holds a study named {name!r}; continue it with "
                    f"`archscout resume {self.path}` or pick another storage or --study name"
                )
            self._conn.execute(
                "INSERT INTO studies (name, config, created_at) VALUES (?, ?, ?)", (name, dumps(config), time.time())
            )

    def study_names(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT name FROM studies ORDER BY created_at")]

    def study_config(self, name: str) -> dict:
        name = self.resolve_name(name)
        row = self._conn.execute("SELECT config FROM studies WHERE name=?", (name,)).fetchone()
        return loads(row[0])

    def append(self, name: str, kind: str, trial: int, payload: Mapping[str, Any]) -> int:
        text = dumps(payload)
        try:
            with self._tx():
                cur = self._conn.execute(
                    "INSERT INTO events (study, kind, trial, payload, time) VALUES (?, ?, ?, ?, ?)",
                    (name, kind, int(trial), text, time.time()),
                )
        except sqlite3.Error as e:
            raise StorageError(f"could not write to {self.path!r}: {e}; the run stopped, nothing recorded was lost") from None
        return int(cur.lastrowid)

    def events(self, name: str, after: int = 0) -> list[Event]:
        rows = self._conn.execute(
            "SELECT seq, kind, trial, payload, time FROM events WHERE study=? AND seq>? ORDER BY seq", (name, after)
        ).fetchall()
        return [Event(r[0], r[1], r[2], loads(r[3]), r[4]) for r in rows]

    def close(self) -> None:
        try:
            self._conn.close()
        except sqlite3.Error:  # pragma: no cover
            pass


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")
