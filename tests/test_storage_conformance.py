"""Conformance suite of the storage backends: every test runs on memory, SQLite and PostgreSQL (a throwaway
server from ``pg_server.py``; skipped when none can be started unless ``ARCHSCOUT_REQUIRE_POSTGRES=1``)."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass, field

import numpy as np
import pytest

from archscout.errors import StorageError, StorageVersionError, StudyExistsError
from archscout.storage import InMemoryStorage, Storage, create_storage

BACKENDS = ["memory", "sqlite", "postgresql"]
PERSISTENT = ["sqlite", "postgresql"]


@dataclass
class Backend:
    """One store of one backend; :meth:`open` gives a new handle on it (memory: the same object)."""

    kind: str
    url: str | None
    _memory: InMemoryStorage | None = None
    _opened: list[Storage] = field(default_factory=list)

    def open(self) -> Storage:
        if self._memory is not None:
            return self._memory
        storage = create_storage(self.url)
        self._opened.append(storage)
        return storage

    def close(self) -> None:
        for storage in self._opened:
            storage.close()


def _make(kind: str, request: pytest.FixtureRequest, tmp_path) -> Backend:
    if kind == "memory":
        return Backend(kind, None, InMemoryStorage())
    if kind == "sqlite":
        return Backend(kind, f"sqlite:///{tmp_path / 'study.db'}")
    return Backend(kind, request.getfixturevalue("postgres_url"))


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    b = _make(request.param, request, tmp_path)
    yield b
    b.close()


@pytest.fixture(params=PERSISTENT)
def persistent(request, tmp_path):
    b = _make(request.param, request, tmp_path)
    yield b
    b.close()


# --- studies and events ------------------------------------------------------------------------------------
def test_create_names_and_config_round_trip(backend):
    s = backend.open()
    assert s.study_names() == []
    config = {"space": {"name": "nb201", "ops": ["a", "b"]}, "seed": 3, "ratio": 0.5, "none": None, "bad": float("nan")}
    s.create_study("first", config)
    s.create_study("second", {"n": np.int64(2)})
    assert s.study_names() == ["first", "second"]
    assert s.study_config("first") == {**config, "bad": "nan"}
    assert s.study_config("second") == {"n": 2}
    with pytest.raises(StorageError, match="no study"):
        s.study_config("third")


def test_create_existing_name_raises_study_exists(backend):
    s = backend.open()
    s.create_study("a", {"v": 1})
    with pytest.raises(StudyExistsError, match="'a'"):
        s.create_study("a", {"v": 2})
    other = backend.open()  # another handle (another connection) sees it too
    with pytest.raises(StudyExistsError):
        other.create_study("a", {"v": 3})
    assert s.study_config("a") == {"v": 1}
    with s.locked("a"):  # the refusal leaves a locked block usable
        with pytest.raises(StudyExistsError):
            s.create_study("a", {"v": 4})
        s.append("a", "ask", 0, {})
    assert len(other.events("a")) == 1


def test_append_and_events_in_order_with_after(backend):
    s = backend.open()
    s.create_study("a", {})
    steps = [("ask", 0), ("ask", 1), ("tell", 0), ("tell", 1)]
    seqs = [s.append("a", kind, t, {"i": i}) for i, (kind, t) in enumerate(steps)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    evs = s.events("a")
    assert [e.seq for e in evs] == seqs
    assert [(e.kind, e.trial, e.payload) for e in evs] == [
        ("ask", 0, {"i": 0}), ("ask", 1, {"i": 1}), ("tell", 0, {"i": 2}), ("tell", 1, {"i": 3})
    ]
    assert all(isinstance(e.time, float) and e.time > 1e9 for e in evs)
    assert [e.seq for e in s.events("a", after=seqs[1])] == seqs[2:]
    assert s.events("a", after=seqs[-1]) == []


def test_records_are_strict_json(backend):
    s = backend.open()
    s.create_study("a", {})
    payload = {
        "nan": float("nan"), "inf": float("inf"), "-inf": -np.inf, "f32": np.float32(1.5), "i64": np.int64(7),
        "b": np.bool_(True), "arr": np.arange(3), "nested": {"x": [float("nan"), 1]}, 4: "int key",
    }
    s.append("a", "tell", 0, payload)
    (ev,) = s.events("a")
    assert ev.payload == {
        "nan": "nan", "inf": "inf", "-inf": "-inf", "f32": 1.5, "i64": 7, "b": True, "arr": [0, 1, 2],
        "nested": {"x": ["nan", 1]}, "4": "int key",
    }
    with pytest.raises(TypeError, match="cannot store"):
        s.append("a", "tell", 1, {"obj": object()})
    assert len(s.events("a")) == 1


def test_studies_are_isolated(backend):
    s = backend.open()
    s.create_study("a", {"k": "a"})
    s.create_study("b", {"k": "b"})
    a1 = s.append("a", "ask", 0, {"s": "a"})
    b1 = s.append("b", "ask", 0, {"s": "b"})
    a2 = s.append("a", "ask", 1, {"s": "a"})
    assert [e.seq for e in s.events("a")] == [a1, a2]
    assert [e.seq for e in s.events("b")] == [b1]
    assert all(e.payload == {"s": "b"} for e in s.events("b", after=0))
    assert [e.seq for e in s.events("a", after=a1)] == [a2]


# --- locked() ------------------------------------------------------------------------------------------------
def test_locked_commits_and_joins(backend):
    s = backend.open()
    s.create_study("a", {})
    s.append("a", "ask", 0, {})
    with s.locked("a"):
        n = len(s.events("a"))
        seq = s.append("a", "ask", n, {})
        assert [e.seq for e in s.events("a")][-1] == seq  # the block sees its own write
    assert [e.trial for e in backend.open().events("a")] == [0, 1]


def test_locked_rolls_back_when_the_block_raises(backend):
    s = backend.open()
    s.create_study("a", {})
    first = s.append("a", "ask", 0, {})
    with pytest.raises(RuntimeError, match="boom"):
        with s.locked("a"):
            s.append("a", "ask", 1, {})
            s.append("a", "tell", 1, {})
            raise RuntimeError("boom")
    assert [e.seq for e in s.events("a")] == [first]  # nothing half-written
    later = s.append("a", "ask", 1, {})  # the storage is usable afterwards
    assert later > first and [e.seq for e in backend.open().events("a")] == [first, later]
    with s.locked("a"):  # and so is locked()
        s.append("a", "tell", 1, {})
    assert len(s.events("a")) == 3


def test_locked_on_missing_study_raises(backend):
    s = backend.open()
    with pytest.raises(StorageError, match="no study"):
        with s.locked("nope"):
            pass


def _cycles(storage: Storage, name: str, n: int, tag: str) -> None:
    """``n`` times: in one locked block, count the asks and append the next trial number."""
    for _ in range(n):
        with storage.locked(name):
            count = sum(e.kind == "ask" for e in storage.events(name))
            storage.append(name, "ask", count, {"by": tag})


def _check_exact(storage: Storage, name: str, total: int) -> None:
    trials = [e.trial for e in storage.events(name) if e.kind == "ask"]
    assert sorted(trials) == list(range(total)), "lost or duplicated trials"
    assert trials == list(range(total)), "sequence order differs from commit order"


def test_locked_excludes_other_threads(backend):
    s = backend.open()
    s.create_study("a", {})
    n, errors = 25, []
    handles = [s, backend.open()]  # one handle shared by two threads, and a second handle

    def work(storage: Storage, tag: str) -> None:
        try:
            _cycles(storage, "a", n, tag)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(handles[i % 2], f"t{i}")) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    _check_exact(s, "a", 3 * n)


def test_append_waits_for_a_locked_block(backend):
    """An append from another handle made during a locked block commits after it, with a later seq."""
    s, other = backend.open(), backend.open()
    s.create_study("a", {})
    seqs: list[int] = []
    started = threading.Event()

    def append() -> None:
        started.set()
        seqs.append(other.append("a", "tell", 9, {}))

    with s.locked("a"):
        inside = [s.append("a", "ask", 0, {})]
        t = threading.Thread(target=append)
        t.start()
        started.wait(10)
        t.join(timeout=0.3)  # blocked on the study lock (whether or not it got this far in 0.3 s)
        inside.append(s.append("a", "ask", 1, {}))
    t.join(timeout=60)
    assert seqs and seqs[0] > max(inside)
    assert [e.trial for e in s.events("a")] == [0, 1, 9]


def _process_worker(url: str, name: str, n: int, barrier) -> None:
    barrier.wait(60)  # open the (possibly fresh) storage at the same moment
    storage = create_storage(url)
    try:
        try:
            storage.create_study(name, {"by": os.getpid()})
        except StudyExistsError:
            pass
        _cycles(storage, name, n, str(os.getpid()))
    finally:
        storage.close()


def test_locked_excludes_other_processes(persistent):
    """Two processes open a fresh storage at once, race to create the study, then each appends n trials
    under locked(): exactly 2n trials, numbered 0..2n-1 in sequence order."""
    n = 20
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_process_worker, args=(persistent.url, "a", n, barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    _check_exact(persistent.open(), "a", 2 * n)


# --- heartbeats ----------------------------------------------------------------------------------------------
def test_heartbeat_drivers_and_end_driver(backend):
    s = backend.open()
    s.create_study("a", {})
    s.create_study("b", {})
    assert s.drivers("a") == {}
    s.heartbeat("a", "d1", {"pid": 1, "host": "h", "started_at": 1.5})
    s.heartbeat("a", "d2")
    beats = s.drivers("a")
    assert set(beats) == {"d1", "d2"}
    assert beats["d1"].driver == "d1" and beats["d1"].info == {"pid": 1, "host": "h", "started_at": 1.5}
    assert beats["d2"].info == {}
    assert all(0.0 <= b.age_s < 30.0 for b in beats.values())
    s.heartbeat("a", "d1")  # no info: the stored one is kept
    assert s.drivers("a")["d1"].info["pid"] == 1
    s.heartbeat("a", "d1", {"pid": 2})  # new info replaces it
    assert backend.open().drivers("a")["d1"].info == {"pid": 2}
    assert s.drivers("b") == {}
    s.end_driver("a", "d2")
    s.end_driver("a", "never-beat")  # no error
    assert set(s.drivers("a")) == {"d1"}


def test_heartbeat_age_grows_until_the_next_beat(backend):
    s = backend.open()
    s.create_study("a", {})
    s.heartbeat("a", "d")
    threading.Event().wait(0.25)
    old = s.drivers("a")["d"].age_s
    assert old >= 0.2
    s.heartbeat("a", "d")
    assert s.drivers("a")["d"].age_s < old


def test_heartbeat_thread_alongside_locked_appends(backend):
    s = backend.open()
    s.create_study("a", {})
    stop, errors = threading.Event(), []

    def beat() -> None:
        try:
            while not stop.is_set():
                s.heartbeat("a", "d", {"pid": 1})
                s.drivers("a")
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=beat)
    t.start()
    try:
        _cycles(s, "a", 20, "main")
    finally:
        stop.set()
        t.join(timeout=60)
    assert not errors, errors
    _check_exact(s, "a", 20)
    assert s.drivers("a")["d"].info == {"pid": 1}


# --- persistence and bad input -------------------------------------------------------------------------------
def test_reopen_keeps_everything(persistent):
    s = persistent.open()
    s.create_study("a", {"x": [1, 2]})
    seqs = [s.append("a", "ask", i, {"i": i}) for i in range(3)]
    s.heartbeat("a", "d", {"pid": 5})
    s.close()
    again = create_storage(persistent.url)
    try:
        assert again.study_names() == ["a"] and again.study_config("a") == {"x": [1, 2]}
        assert [(e.seq, e.payload) for e in again.events("a")] == [(q, {"i": i}) for i, q in enumerate(seqs)]
        assert again.append("a", "tell", 0, {}) > seqs[-1]
        assert again.drivers("a")["d"].info == {"pid": 5}
    finally:
        again.close()


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
def test_postgres_bad_urls_are_clear(postgres_server):  # noqa: F811
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
        user, password = postgres_server.password_user
        wrong = postgres_server.url_for("postgres", user, "wrong-password")
        with pytest.raises(StorageError, match="password") as info:
            create_storage(wrong)
        assert "wrong-password" not in str(info.value) and "***" in str(info.value)


def test_postgres_url_masks_password(postgres_server):  # noqa: F811
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


def test_postgres_database_of_something_else_is_refused(postgres_server):  # noqa: F811
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


def test_postgres_survives_a_dropped_connection(postgres_url):  # noqa: F811
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


def test_postgres_lost_connection_inside_locked_rolls_back(postgres_url):  # noqa: F811
    s = create_storage(postgres_url)
    s.create_study("a", {})
    with pytest.raises(StorageError, match="lost the connection"):
        with s.locked("a"):
            s.append("a", "ask", 0, {})
            kill_connections(postgres_url)
            s.append("a", "ask", 1, {})
    assert s.events("a") == []
    with pytest.raises(StorageError, match="lost the connection.*rolled back"):
        with s.locked("a"):  # a block that swallows the error does not commit half of its writes
            s.append("a", "ask", 0, {})
            kill_connections(postgres_url)
            with pytest.raises(StorageError):
                s.append("a", "ask", 1, {})
    assert s.events("a") == []
    s.close()


def test_postgres_lock_timeout(postgres_url):  # noqa: F811
    from archscout.storage.postgres import PostgresStorage

    s = create_storage(postgres_url)
    s.create_study("a", {})
    impatient = PostgresStorage(postgres_url, timeout_s=0.2)
    try:
        with s.locked("a"):
            with pytest.raises(StorageError, match="waited more than 0.2 s"):
                impatient.append("a", "ask", 0, {})
        assert impatient.append("a", "ask", 0, {}) > 0
    finally:
        impatient.close()
        s.close()
