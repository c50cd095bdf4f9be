"""PostgreSQL storage: the records of :class:`~archscout.storage.sqlite.SQLiteStorage` in a database server,
for many drivers on many machines.

Needs the ``postgres`` extra (``pip install 'archscout[postgres]'``, psycopg 3); psycopg is imported only
when a :class:`PostgresStorage` is opened.

Concurrency. Every append runs in a transaction that first locks its study's row in ``studies``
(``SELECT ... FOR UPDATE``), so the appends of one study are serialised and their sequence numbers are taken
in commit order: a reader polling ``events(name, after=last_seq)`` never skips an event. :meth:`locked` holds
that row lock for a whole block. Heartbeats use a second connection, so a heartbeat thread is never held up
by (and never joins) the main thread's transaction. Every clock reading behind a heartbeat age is the
server's, so drivers on machines with skewed clocks agree on which driver is stale.

Failures. A connection that drops is reopened and the statement retried a few times with backoff when
that is safe (reads, idempotent writes, and any write whose commit was not yet sent); deadlocks and
serialization failures are retried likewise. Otherwise a :class:`StorageError` names the URL (password
masked) and how to fix it, and the transaction is rolled back: nothing is half-written.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from .._version import __version__
from ..errors import StorageError, StorageVersionError, StudyExistsError, require
from .base import SCHEMA_VERSION, DriverBeat, Event, Storage, dumps, loads, mask_url

__all__ = ["PostgresStorage"]

T = TypeVar("T")

_TABLES = ("meta", "studies", "events", "drivers")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS studies (name TEXT PRIMARY KEY, config TEXT NOT NULL,"
    " created_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS events (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " study TEXT NOT NULL REFERENCES studies(name), kind TEXT NOT NULL, trial BIGINT NOT NULL,"
    " payload TEXT NOT NULL, time DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS events_by_study ON events (study, seq)",
    # last_beat: seconds since the epoch on the server's clock
    "CREATE TABLE IF NOT EXISTS drivers (study TEXT NOT NULL, driver TEXT NOT NULL,"
    " last_beat DOUBLE PRECISION NOT NULL, info TEXT NOT NULL, PRIMARY KEY (study, driver))",
)
_SCHEMA_LOCK = 0x61726368_73636F75  # pg_advisory_xact_lock key that serialises schema creation ("archscou")
_NOW = "EXTRACT(EPOCH FROM clock_timestamp())::double precision"
_ATTEMPTS = 5  # tries of a retryable operation
_BACKOFF_S = 0.1  # first wait between tries; doubles each time (with jitter)


class PostgresStorage(Storage):
    """Records in a PostgreSQL database (tables ``meta``, ``studies``, ``events``, ``drivers``), created on
    first use; several processes may open a fresh database at once.

    Args:
        url: ``postgresql://user:password@host:port/dbname`` (``postgres://`` also works; libpq parameters
            such as ``?sslmode=require`` pass through). The database must exist and the user must be able to
            create tables in it the first time.
        timeout_s: seconds to wait for a study locked by another driver, and (up to 10 s) to connect.

    Attributes:
        url: the URL with its password masked (safe to print and to store in reports).

    Raises:
        OptionalDependencyError: psycopg is not installed.
        StorageError: the URL names no database, the server cannot be reached, the login fails, or the
            database holds tables that are not an archscout storage.
        StorageVersionError: the database was written with another storage schema version.
    """

    def __init__(self, url: str, timeout_s: float = 60.0) -> None:
        self._pg = require("psycopg", "postgres")
        self.url = mask_url(url)
        if not timeout_s > 0:
            raise StorageError(f"timeout_s must be > 0 seconds, got {timeout_s!r}")
        self.timeout_s = float(timeout_s)
        from psycopg.conninfo import conninfo_to_dict

        try:
            params = conninfo_to_dict(url)
        except self._pg.Error as e:
            raise StorageError(
                f"cannot parse PostgreSQL URL {self.url}: {self._clean(e)}; "
                "write postgresql://user:password@host:5432/dbname"
            ) from None
        if not params.get("dbname"):
            raise StorageError(
                f"PostgreSQL URL {self.url} names no database; write postgresql://user:password@host:5432/dbname"
            )
        self._dbname = str(params["dbname"])
        self._password = str(params.get("password") or "")
        self._conninfo = url
        self._kwargs: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in params:
            self._kwargs["connect_timeout"] = max(2, round(min(self.timeout_s, 10.0)))
        if "application_name" not in params:
            self._kwargs["application_name"] = "archscout"
        self._closed = False
        self._in_tx = False  # a locked() block is open on the main connection
        self._main = _Link(self)
        self._beat = _Link(self)  # heartbeats: never inside the main connection's transaction
        self._run(self._main, self._init_schema, retry=True)

    # --- connections ---------------------------------------------------------------------------------
    def _clean(self, err: BaseException) -> str:
        """The first line of a driver error, without the password."""
        text = (str(err).strip().splitlines() or [type(err).__name__])[0]
        text = re.sub(r"\s+", " ", re.sub(r"^connection failed:\s*", "", text))
        return text.replace(self._password, "***") if self._password else text

    def _connect(self) -> Any:
        if self._closed:
            raise StorageError(f"storage {self.url} was closed; open it again with create_storage(url)")
        pg = self._pg
        try:
            conn = pg.connect(self._conninfo, **self._kwargs)
        except pg.Error as e:
            raise StorageError(self._connect_message(e)) from None
        try:
            conn.execute(f"SET lock_timeout = {int(self.timeout_s * 1000)}")
        except pg.Error as e:
            conn.close()
            raise StorageError(f"cannot configure the connection to {self.url}: {self._clean(e)}") from None
        return conn

    def _connect_message(self, err: BaseException) -> str:
        reason = self._clean(err)
        low = reason.lower()
        if "does not exist" in low and "database" in low:
            fix = f"create it first (createdb {self._dbname}, or CREATE DATABASE {self._dbname}; in psql)"
        elif "password" in low or "authentication" in low:
            fix = "check the user name and password in the URL"
        elif "role" in low and "does not exist" in low:
            fix = "check the user name in the URL, or create that role on the server"
        elif any(w in low for w in ("timeout", "refused", "could not", "resolve host", "translate host")):
            fix = "check that the server runs and that the host and port in the URL are right"
        else:
            fix = "check the URL and that the server accepts connections"
        return f"cannot connect to PostgreSQL storage {self.url}: {reason}; {fix}"

    def _run(self, link: _Link, fn: Callable[[Any], T], *, retry: bool, write: bool = False) -> T:
        """Call ``fn(conn)`` under ``link``'s lock; in a transaction of its own when ``write`` (unless a
        :meth:`locked` block is open on that connection, which it then joins).

        ``retry``: whether ``fn`` may run again after a lost connection or a transient error. A write is
        retried also when not ``retry`` if its commit had not been sent yet (the server then rolled it back).
        """
        pg = self._pg
        with link.lock:
            if self._closed:
                raise StorageError(f"storage {self.url} was closed; open it again with create_storage(url)")
            if link is self._main and self._in_tx:
                conn = link.conn  # the block's transaction: never reconnect (and leave it) in the middle
                if conn is None or conn.closed or conn.broken:
                    raise StorageError(
                        f"lost the connection to {self.url} inside a locked block; its writes were rolled back"
                    )
                try:
                    return fn(conn)
                except pg.Error as e:
                    raise self._error(e, "inside a locked block (its writes were rolled back)") from None
            for attempt in range(_ATTEMPTS):
                try:
                    conn = link.get()
                except StorageError:
                    # a connection that was lost is reopened a few times (the server may be restarting);
                    # a first connection that fails fails at once
                    if not link.connected_once or attempt == _ATTEMPTS - 1:
                        raise
                    _sleep(attempt)
                    continue
                committing = False
                try:
                    if not write:
                        return fn(conn)
                    conn.execute("BEGIN")
                    try:
                        out = fn(conn)
                    except BaseException:
                        _rollback(conn)
                        raise
                    committing = True
                    conn.execute("COMMIT")
                    return out
                except pg.Error as e:
                    lost = _lost(conn, e, pg)
                    if lost:
                        link.drop()
                    transient = lost or getattr(e, "sqlstate", None) in _TRANSIENT
                    if not transient or attempt == _ATTEMPTS - 1 or (committing and lost and not retry):
                        if committing and lost and not retry:
                            raise StorageError(
                                f"lost the connection to {self.url} while committing a write; it may or may not "
                                "be recorded (the storage is consistent either way); resume the study to go on"
                            ) from None
                        raise self._error(e, "") from None
                    _sleep(attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(self, err: BaseException, where: str) -> StorageError:
        pg = self._pg
        reason = self._clean(err)
        where = f" {where}" if where else ""
        if isinstance(err, pg.errors.LockNotAvailable):
            return StorageError(
                f"waited more than {self.timeout_s:g} s for a study of {self.url} that another driver holds locked; "
                "check for a hung driver or raise timeout_s"
            )
        if isinstance(err, pg.errors.InsufficientPrivilege):
            return StorageError(
                f"the user of {self.url} lacks a privilege{where}: {reason}; grant it "
                f"(GRANT ALL ON SCHEMA public TO <user>) or use a database that user owns"
            )
        if isinstance(err, pg.OperationalError) and (getattr(err, "sqlstate", None) or "08").startswith(("08", "57P")):
            return StorageError(
                f"lost the connection to PostgreSQL storage {self.url}{where}: {reason}; "
                "check the server and resume the study (every committed record is kept)"
            )
        return StorageError(f"PostgreSQL storage {self.url} failed{where}: {reason}")

    # --- schema ----------------------------------------------------------------------------------------
    def _init_schema(self, conn: Any) -> None:
        pg = self._pg
        conn.execute("BEGIN")
        try:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            tables = {
                r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            }
            if "meta" in tables:
                self._check_version(conn)
            elif tables & set(_TABLES):
                raise StorageError(
                    f"database {self.url} has tables {sorted(tables & set(_TABLES))} but is not an archscout "
                    "storage; use a new database"
                )
            else:
                for stmt in _SCHEMA:
                    conn.execute(stmt)
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', %s), ('created_by', %s)"
                    " ON CONFLICT (key) DO NOTHING",
                    (str(SCHEMA_VERSION), f"archscout {__version__}"),
                )
        except pg.errors.InsufficientPrivilege as e:
            _rollback(conn)
            raise StorageError(
                f"the user of {self.url} cannot create the archscout tables: {self._clean(e)}; grant it "
                "(GRANT CREATE ON SCHEMA public TO <user>) or use a database that user owns"
            ) from None
        except BaseException:
            _rollback(conn)
            raise
        conn.execute("COMMIT")

    def _check_version(self, conn: Any) -> None:
        pg = self._pg
        try:
            rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except pg.errors.UndefinedColumn:
            rows = {}
        if not str(rows.get("created_by", "")).startswith("archscout"):
            raise StorageError(
                f"database {self.url} has a table 'meta' but is not an archscout storage; use a new database"
            )
        try:
            found: int | None = int(rows["schema_version"])
        except (KeyError, ValueError):
            found = None
        if found != SCHEMA_VERSION:
            raise StorageVersionError(
                f"{self.url} was written with storage schema version {found}, but this archscout "
                f"({__version__}) reads version {SCHEMA_VERSION}; open it with a matching archscout or "
                "use a new database"
            )

    # --- studies and events ----------------------------------------------------------------------------
    def create_study(self, name: str, config: Mapping[str, Any]) -> None:
        """Write the header of a new study.

        Raises:
            StudyExistsError: a study of that name exists (also when another process just created it).
        """
        text = dumps(config)
        pg = self._pg

        exists = StudyExistsError(
            f"{self.url} already holds a study named {name!r}; continue it with "
            f"`archscout resume {self.url}` or pick another --study name"
        )

        def insert(conn: Any) -> None:
            # look first so that a locked() block stays usable; the unique key settles a race
            if conn.execute("SELECT 1 FROM studies WHERE name=%s", (name,)).fetchone() is not None:
                raise exists
            try:
                conn.execute(f"INSERT INTO studies (name, config, created_at) VALUES (%s, %s, {_NOW})", (name, text))
            except pg.errors.UniqueViolation:
                raise exists from None

        self._run(self._main, insert, retry=False, write=True)

    def study_names(self) -> list[str]:
        sql = "SELECT name FROM studies ORDER BY created_at, name"
        rows = self._run(self._main, lambda c: c.execute(sql).fetchall(), retry=True)
        return [r[0] for r in rows]

    def study_config(self, name: str) -> dict:
        name = self.resolve_name(name)
        row = self._run(self._main, lambda c: c.execute("SELECT config FROM studies WHERE name=%s", (name,)).fetchone(),
                        retry=True)
        if row is None:  # removed between the two reads
            raise StorageError(f"{self.url} has no study {name!r}")
        return loads(row[0])

    def _lock_study(self, conn: Any, name: str) -> None:
        if conn.execute("SELECT 1 FROM studies WHERE name=%s FOR UPDATE", (name,)).fetchone() is None:
            raise StorageError(f"{self.url} has no study {name!r}; create it first")

    def append(self, name: str, kind: str, trial: int, payload: Mapping[str, Any]) -> int:
        """Append one event in a committed transaction (or in the open :meth:`locked` block); returns its
        sequence number.

        Raises:
            StorageError: the study does not exist or the write failed (nothing was recorded).
            TypeError: ``payload`` holds a value that is not JSON (nothing was recorded).
        """
        text = dumps(payload)
        stamp = time.time()

        def insert(conn: Any) -> int:
            self._lock_study(conn, name)
            row = conn.execute(
                "INSERT INTO events (study, kind, trial, payload, time) VALUES (%s, %s, %s, %s, %s) RETURNING seq",
                (name, kind, int(trial), text, stamp),
            ).fetchone()
            return int(row[0])

        return self._run(self._main, insert, retry=False, write=True)

    def events(self, name: str, after: int = 0) -> list[Event]:
        rows = self._run(
            self._main,
            lambda c: c.execute(
                "SELECT seq, kind, trial, payload, time FROM events WHERE study=%s AND seq>%s ORDER BY seq",
                (name, int(after)),
            ).fetchall(),
            retry=True,
        )
        return [Event(int(r[0]), r[1], int(r[2]), loads(r[3]), float(r[4])) for r in rows]

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[None]:
        """One transaction holding study ``name``'s row lock: appends of other drivers to that study wait
        until the block ends; :meth:`events` and :meth:`append` called in it (from this thread) join it. It
        commits when the block ends and rolls back if the block raises. Not reentrant.

        Raises:
            StorageError: the study does not exist, another driver held it longer than ``timeout_s``, the
                connection was lost (the block's writes were rolled back), or the block is nested.
        """
        pg = self._pg
        link = self._main
        with link.lock:
            if self._in_tx:
                raise StorageError("Storage.locked() is not reentrant; do all the block's work in one locked() block")

            def begin(conn: Any) -> Any:
                conn.execute("BEGIN")
                try:
                    self._lock_study(conn, name)
                except BaseException:
                    _rollback(conn)
                    raise
                return conn

            conn = self._run(link, begin, retry=True)  # a stale connection is reopened before the block starts
            self._in_tx = True
            try:
                yield
            except BaseException:
                self._in_tx = False
                _rollback(conn)
                if conn.broken:
                    link.drop()
                raise
            self._in_tx = False
            if conn.closed or conn.broken:  # the block swallowed the error of a lost connection
                link.drop()
                raise StorageError(
                    f"lost the connection to {self.url} during a locked block on study {name!r}; its writes were "
                    "rolled back; check the server and resume the study"
                )
            if conn.info.transaction_status == pg.pq.TransactionStatus.INERROR:  # it swallowed a failed statement
                _rollback(conn)
                raise StorageError(
                    f"a statement failed in a locked block on study {name!r} of {self.url}; its writes were rolled back"
                )
            try:
                conn.execute("COMMIT")
            except pg.Error as e:
                if conn.broken or conn.closed:
                    link.drop()
                    raise StorageError(
                        f"lost the connection to {self.url} while committing a locked block on study {name!r}; "
                        "its writes may or may not be recorded (the storage is consistent either way); resume the "
                        "study to go on"
                    ) from None
                _rollback(conn)
                raise self._error(e, f"committing a locked block on study {name!r} (rolled back)") from None

    # --- heartbeats ------------------------------------------------------------------------------------
    def heartbeat(self, name: str, driver: str, info: Mapping[str, Any] | None = None) -> None:
        """Upsert ``driver``'s row with the server's time now; ``info`` replaces the stored one when given."""
        text = dumps(info) if info is not None else None
        self._run(
            self._beat,
            lambda c: c.execute(
                "INSERT INTO drivers (study, driver, last_beat, info)"
                f" VALUES (%s, %s, {_NOW}, COALESCE(%s::text, '{{}}'))"
                f" ON CONFLICT (study, driver) DO UPDATE SET last_beat = {_NOW},"
                " info = COALESCE(%s::text, drivers.info)",
                (name, driver, text, text),
            ),
            retry=True,
        )

    def end_driver(self, name: str, driver: str) -> None:
        self._run(
            self._beat, lambda c: c.execute("DELETE FROM drivers WHERE study=%s AND driver=%s", (name, driver)),
            retry=True,
        )

    def drivers(self, name: str) -> dict[str, DriverBeat]:
        """Heartbeat rows of study ``name``; ``age_s`` is measured on the server's clock."""
        rows = self._run(
            self._beat,
            lambda c: c.execute(
                f"SELECT driver, GREATEST(0.0, {_NOW} - last_beat), info FROM drivers WHERE study=%s ORDER BY driver",
                (name,),
            ).fetchall(),
            retry=True,
        )
        return {r[0]: DriverBeat(r[0], float(r[1]), loads(r[2])) for r in rows}

    def close(self) -> None:
        """Close both connections (an open :meth:`locked` block in another thread is waited for)."""
        self._closed = True
        for link in (self._beat, self._main):
            with link.lock:
                link.drop()

    def __repr__(self) -> str:
        return f"PostgresStorage({self.url!r})"


class _Link:
    """One lazily opened connection of a :class:`PostgresStorage` and the lock that serialises its use."""

    def __init__(self, owner: PostgresStorage) -> None:
        self.owner = owner
        self.lock = threading.RLock()
        self.conn: Any = None
        self.connected_once = False
        self.pid = os.getpid()

    def get(self) -> Any:
        if self.pid != os.getpid():  # a forked child: the parent's session is not ours to use or to close
            self.conn, self.pid = None, os.getpid()
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.drop()
            self.conn = self.owner._connect()
            self.connected_once = True
        return self.conn

    def drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


_TRANSIENT = ("40001", "40P01")  # serialization failure, deadlock detected: the transaction may run again


def _lost(conn: Any, err: BaseException, pg: Any) -> bool:
    """Whether ``err`` means the connection is gone (closed, broken, or the server shut the session down)."""
    if conn.closed or conn.broken:
        return True
    state = getattr(err, "sqlstate", None)
    if state is None:
        return isinstance(err, pg.OperationalError)  # raised by the client library, e.g. a dropped socket
    return state.startswith("08") or state in ("57P01", "57P02", "57P03")


def _rollback(conn: Any) -> None:
    with contextlib.suppress(Exception):
        if not (conn.closed or conn.broken):
            conn.execute("ROLLBACK")


def _sleep(attempt: int) -> None:
    time.sleep(_BACKOFF_S * (2**attempt) * (0.5 + random.random()))
