"""SQLite storage: one embedded file, WAL journal, one committed transaction per event.

Several processes may share one file: writes take the database's write lock (``BEGIN IMMEDIATE``), wait for
it up to ``timeout_s`` (busy timeout) and are retried with backoff when SQLite still reports it busy, so
"database is locked" never reaches the user unless the lock is held for longer than ``timeout_s``.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from .._version import __version__
from ..errors import StorageError, StorageVersionError, StudyExistsError
from .base import SCHEMA_VERSION, DriverBeat, Event, Storage, dumps, loads

T = TypeVar("T")

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
CREATE TABLE IF NOT EXISTS drivers (
    study TEXT NOT NULL,
    driver TEXT NOT NULL,
    last_beat REAL NOT NULL,
    info TEXT NOT NULL,
    PRIMARY KEY (study, driver)
);
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
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
            raise StorageError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
        self.path = os.fspath(path)
        self.url = f"sqlite:///{self.path}"
        self.timeout_s = float(timeout_s)
        self._lock = threading.RLock()  # one connection, shared by the driver and its heartbeat thread
        self._in_tx = False
        self._known: set[str] = set()  # study names seen to exist
        exists = os.path.exists(self.path)
        if exists and os.path.isdir(self.path):
            raise StorageError(f"storage path {self.path!r} is a folder; give a file path such as runs/study.db")
        folder = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(folder, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
            mode = self._retry(lambda: self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
            self._conn.execute("PRAGMA synchronous=" + ("FULL" if durability == "full" else "NORMAL"))
        except (sqlite3.DatabaseError, OSError) as e:
            raise StorageError(f"cannot open {self.path!r} as an archscout SQLite storage: {e}") from None
        if mode.lower() != "wal":
            self._conn.execute("PRAGMA synchronous=FULL")
        self._init_schema(exists and os.path.getsize(self.path) > 0)

    def _retry(self, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying with jittered backoff while SQLite reports the database busy or locked
        (the busy timeout covers most waits; this covers the cases where SQLite gives up at once)."""
        deadline = time.monotonic() + self.timeout_s
        delay = 0.005
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as e:
                msg = str(e).lower()
                if ("locked" not in msg and "busy" not in msg) or time.monotonic() > deadline:
                    raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.25)

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
            if "drivers" in tables:
                return
        # a new file, or one written before heartbeats existed (the drivers table is only added)
        with self._write():
            for stmt in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                self._conn.execute(stmt)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?), ('created_by', ?)",
                (str(SCHEMA_VERSION), f"archscout {__version__}"),
            )

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``, ``ROLLBACK`` on error), or the enclosing
        one when called inside :meth:`locked`. Holds the connection lock throughout."""
        with self._lock:
            if self._in_tx:
                yield
                return
            self._retry(lambda: self._conn.execute("BEGIN IMMEDIATE"))
            self._in_tx = True
            try:
                yield
            except BaseException:
                self._in_tx = False
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            self._in_tx = False
            try:
                self._retry(lambda: self._conn.execute("COMMIT"))
            except sqlite3.Error:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise

    def _fail(self, what: str, e: Exception) -> StorageError:
        return StorageError(f"could not {what} {self.path!r}: {e}; the run stopped, nothing recorded was lost")

    def create_study(self, name: str, config: Mapping[str, Any]) -> None:
        try:
            with self._write():
                if self._conn.execute("SELECT 1 FROM studies WHERE name=?", (name,)).fetchone():
                    raise StudyExistsError(
                        f"{self.path!r} already holds a study named {name!r}; continue it with "
                        f"`archscout resume {self.path}` or pick another storage or --study name"
                    )
                self._conn.execute(
                    "INSERT INTO studies (name, config, created_at) VALUES (?, ?, ?)",
                    (name, dumps(config), time.time()),
                )
        except sqlite3.Error as e:
            raise self._fail("write to", e) from None

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            with self._lock:
                return self._retry(lambda: self._conn.execute(sql, args).fetchall())
        except sqlite3.Error as e:
            raise self._fail("read", e) from None

    def study_names(self) -> list[str]:
        return [r[0] for r in self._read("SELECT name FROM studies ORDER BY created_at")]

    def study_config(self, name: str) -> dict:
        name = self.resolve_name(name)
        return loads(self._read("SELECT config FROM studies WHERE name=?", (name,))[0][0])

    def append(self, name: str, kind: str, trial: int, payload: Mapping[str, Any]) -> int:
        text = dumps(payload)
        try:
            with self._write():
                cur = self._conn.execute(
                    "INSERT INTO events (study, kind, trial, payload, time) VALUES (?, ?, ?, ?, ?)",
                    (name, kind, int(trial), text, time.time()),
                )
        except sqlite3.Error as e:
            raise self._fail("write to", e) from None
        assert cur.lastrowid is not None  # set by every successful INSERT
        return int(cur.lastrowid)

    def events(self, name: str, after: int = 0) -> list[Event]:
        rows = self._read(
            "SELECT seq, kind, trial, payload, time FROM events WHERE study=? AND seq>? ORDER BY seq", (name, after)
        )
        return [Event(r[0], r[1], r[2], loads(r[3]), r[4]) for r in rows]

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[None]:
        with self._lock:
            if self._in_tx:
                raise StorageError("locked() is not reentrant: a transaction on this storage is already open")
            try:
                with self._write():
                    if name not in self._known:  # studies are never deleted: checked once per name
                        if not self._conn.execute("SELECT 1 FROM studies WHERE name=?", (name,)).fetchone():
                            raise StorageError(f"{self.path!r} has no study {name!r}; it has {self.study_names()}")
                        self._known.add(name)
                    yield
            except sqlite3.Error as e:
                raise self._fail("write to", e) from None

    def heartbeat(self, name: str, driver: str, info: Mapping[str, Any] | None = None) -> None:
        try:
            with self._write():
                if info is None:
                    cur = self._conn.execute("UPDATE drivers SET last_beat=? WHERE study=? AND driver=?",
                                             (time.time(), name, driver))
                    if cur.rowcount:
                        return
                self._conn.execute(
                    "INSERT INTO drivers (study, driver, last_beat, info) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (study, driver) DO UPDATE SET last_beat=excluded.last_beat, info=excluded.info",
                    (name, driver, time.time(), dumps(dict(info or {}))),
                )
        except sqlite3.Error as e:
            raise self._fail("write a heartbeat to", e) from None

    def end_driver(self, name: str, driver: str) -> None:
        try:
            with self._write():
                self._conn.execute("DELETE FROM drivers WHERE study=? AND driver=?", (name, driver))
        except sqlite3.Error as e:
            raise self._fail("write to", e) from None

    def drivers(self, name: str) -> dict[str, DriverBeat]:
        now = time.time()
        rows = self._read("SELECT driver, last_beat, info FROM drivers WHERE study=?", (name,))
        return {d: DriverBeat(d, max(0.0, now - t), loads(info)) for d, t, info in rows}

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()

