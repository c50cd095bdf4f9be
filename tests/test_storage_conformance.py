"""Storage backends beyond the shared contract: schema versions, bad paths and URLs, and PostgreSQL's own failure
modes (a throwaway server from ``pg_server.py``; skipped when none can be started unless
``ARCHSCOUT_REQUIRE_POSTGRES=1``).

The contract every backend follows (studies, ordered strict-JSON events, ``locked`` against threads and
processes, heartbeats, reopening) is ``archscout.testing.check_storage``, run over every registered backend,
PostgreSQL included, in ``test_conformance.py``."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from archscout.errors import StorageError, StorageVersionError
from archscout.storage import Storage, create_storage

PERSISTENT = ["sqlite", "postgresql"]


@dataclass
class Backend:
    """One store of one persistent backend; :meth:`open` gives a new handle on it."""

    kind: str
    url: str
    _opened: list[Storage] = field(default_factory=list)

    def open(self) -> Storage:
        storage = create_storage(self.url)
        self._opened.append(storage)
        return storage

    def close(self) -> None:
        for storage in self._opened:
            storage.close()


@pytest.fixture(params=PERSISTENT)
def persistent(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    b = Backend(request.param, url)
    yield b
    b.close()


# --- schema version and bad input ------------------------------------------------------------------------------
def _tamper_version(b: Backend, version: str) -> None:
    if b.kind == "sqlite":
        con = sqlite3.connect(b.url.removeprefix("sqlite:///"))
        con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (version,))
        con.commit()
        con.close()
    else:
        import psycopg

        with psycopg.connect(b.url, autocommit=True) as con:
            con.execute("UPDATE meta SET value=%s WHERE key='schema_version'", (version,))


def test_other_schema_version_is_refused(persistent):
    persistent.open().close()
    _tamper_version(persistent, "999")
    with pytest.raises(StorageVersionError, match="schema version 999.*reads version"):
        create_storage(persistent.url)


def test_bad_sqlite_paths(tmp_path):
    with pytest.raises(StorageError, match="folder"):
        create_storage(tmp_path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match="not .*(archscout|SQLite)"):
        create_storage(junk)
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("CREATE TABLE x (a)").connection.commit()
    with pytest.raises(StorageError, match="not an archscout storage"):
        create_storage(foreign)


def test_bad_urls():
    with pytest.raises(StorageError, match="postgresql://"):
        create_storage("mysql://user:hunter2@host/db")
    try:
        create_storage("mysql://user:hunter2@host/db")
    except StorageError as e:
        assert "hunter2" not in str(e)
    with pytest.raises(StorageError, match="names no file"):
        create_storage("sqlite:///")


def test_import_does_not_load_psycopg():
    code = (
        "import sys, archscout, archscout.storage\n"
        "archscout.storage.create_storage('memory')\n"
        "assert 'psycopg' not in sys.modules\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


# --- PostgreSQL specifics ------------------------------------------------------------------------------------
def test_postgres_bad_urls_are_clear(postgres_server):
    with pytest.raises(StorageError, match="names no database"):
        create_storage(postgres_server.url_for("").rstrip("/"))
    with pytest.raises(StorageError, match="names no database"):
        create_storage("postgres://127.0.0.1:5432/")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    with pytest.raises(StorageError, match="cannot connect.*server runs"):
        create_storage(f"postgresql://u:topsecret@127.0.0.1:{closed_port}/db")
    with pytest.raises(StorageError, match="does not exist.*createdb archscout_no_such_db"):
        create_storage(postgres_server.url_for("archscout_no_such_db"))
    if postgres_server.password_user:
        user, _ = postgres_server.password_user
        wrong = postgres_server.url_for("postgres", user, "wrong-password")
        with pytest.raises(StorageError, match="password") as info:
            create_storage(wrong)
        assert "wrong-password" not in str(info.value) and "***" in str(info.value)


def test_postgres_url_masks_password(postgres_server):
    from archscout.storage.base import mask_url

    assert mask_url("postgresql://bob:pw%40x@h:5/db?sslmode=require") == "postgresql://bob:***@h:5/db?sslmode=require"
    assert mask_url("postgres://h/db?password=abc&x=1") == "postgres://h/db?password=***&x=1"
    assert mask_url("postgresql://bob@h/db") == "postgresql://bob@h/db"
    if postgres_server.password_user:
        user, password = postgres_server.password_user
        url = postgres_server.new_database()
        postgres_server.admin(f"GRANT ALL ON DATABASE {url.rsplit('/', 1)[1]} TO {user}")
        postgres_server.admin(f"ALTER DATABASE {url.rsplit('/', 1)[1]} OWNER TO {user}")
        s = create_storage(postgres_server.url_for(url.rsplit("/", 1)[1], user, password))
        try:
            assert password not in s.url and s.url.startswith(f"postgresql://{user}:***@")
            s.create_study("a", {})
            assert s.study_names() == ["a"]
        finally:
            s.close()


def test_postgres_database_of_something_else_is_refused(postgres_server):
    import psycopg

    foreign = postgres_server.new_database()
    with psycopg.connect(foreign, autocommit=True) as con:
        con.execute("CREATE TABLE events (a int)")
    with pytest.raises(StorageError, match="not an archscout storage"):
        create_storage(foreign)
    other_meta = postgres_server.new_database()
    with psycopg.connect(other_meta, autocommit=True) as con:
        con.execute("CREATE TABLE meta (name text, n int)")
    with pytest.raises(StorageError, match="not an archscout storage"):
        create_storage(other_meta)
    unrelated = postgres_server.new_database()  # tables of another application
    with psycopg.connect(unrelated, autocommit=True) as con:
        con.execute("CREATE TABLE customers (a int)")
    create_storage(unrelated).close()


def kill_connections(url: str) -> None:
    """Terminate every other session on the database of ``url`` (as a server restart or a network cut would)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        con.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def test_postgres_survives_a_dropped_connection(postgres_url):
    s = create_storage(postgres_url)
    s.create_study("a", {})
    s.append("a", "ask", 0, {})
    s.heartbeat("a", "d")

    kill_connections(postgres_url)
    assert len(s.events("a")) == 1  # a read reconnects
    kill_connections(postgres_url)
    s.append("a", "tell", 0, {})  # a write whose commit was never sent is retried
    kill_connections(postgres_url)
    with s.locked("a"):  # a locked block reconnects before it starts
        s.append("a", "ask", 1, {})
    kill_connections(postgres_url)
    s.heartbeat("a", "d")
    assert [e.trial for e in s.events("a")] == [0, 0, 1] and set(s.drivers("a")) == {"d"}
    s.close()
    with pytest.raises(StorageError, match="closed"):
        s.events("a")


def test_postgres_lost_connection_inside_locked_rolls_back(postgres_url):
    s = create_storage(postgres_url)
    s.create_study("a", {})
    with pytest.raises(StorageError, match="lost the connection"), s.locked("a"):
        s.append("a", "ask", 0, {})
        kill_connections(postgres_url)
        s.append("a", "ask", 1, {})
    assert s.events("a") == []
    # a block that swallows the error does not commit half of its writes
    with pytest.raises(StorageError, match="lost the connection.*rolled back"), s.locked("a"):
        s.append("a", "ask", 0, {})
        kill_connections(postgres_url)
        with pytest.raises(StorageError):
            s.append("a", "ask", 1, {})
    assert s.events("a") == []
    s.close()


def test_postgres_lock_timeout(postgres_url):
    from archscout.storage.postgres import PostgresStorage

    s = create_storage(postgres_url)
    s.create_study("a", {})
    impatient = PostgresStorage(postgres_url, timeout_s=0.2)
    try:
        with s.locked("a"), pytest.raises(StorageError, match="waited more than 0.2 s"):
            impatient.append("a", "ask", 0, {})
        assert impatient.append("a", "ask", 0, {}) > 0
    finally:
        impatient.close()
        s.close()


@pytest.mark.parametrize("url,masked", [
    ("sqlite:////tmp/abs.db", "sqlite:////tmp/abs.db"),
    ("sqlite:///runs/rel.db", "sqlite:///runs/rel.db"),
    ("runs/search.db", "runs/search.db"),
    ("postgresql://me:secret@host:5432/db", "postgresql://me:***@host:5432/db"),
    ("postgresql://host/db?user=me&password=secret", "postgresql://host/db?user=me&password=***"),
])
def test_mask_url_hides_passwords_and_leaves_other_urls_as_they_are(url, masked):
    from archscout.storage.base import mask_url

    assert mask_url(url) == masked
