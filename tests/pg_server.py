"""A throwaway PostgreSQL server for the tests of the PostgreSQL storage.

``postgres_server`` (session fixture) starts one server per test session: ``initdb`` into a fresh temporary
folder, listening only on 127.0.0.1 on a free port (its unix socket in that folder), trust authentication
for loopback, ``fsync`` off (the tests never cut the power). As root, the server runs as the ``postgres``
OS user. It is stopped and its folder deleted when the session ends. ``postgres_url`` (function fixture)
gives each test a fresh, empty database on it.

Environment:
    ``ARCHSCOUT_TEST_POSTGRES_URL``: use this server instead (``postgresql://user:pw@host:port/db``, a user
        allowed to ``CREATE DATABASE``); each test gets a database of a random name, dropped at the end.
    ``ARCHSCOUT_REQUIRE_POSTGRES=1``: fail (instead of skip) when no server can be started (CI sets it).

Install the server binaries with ``scripts/postgres.sh``.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

__all__ = ["PostgresServer", "postgres_server", "postgres_url"]

PASSWORD_USER = "archscout_pw"  # a role that must log in with PASSWORD (to test wrong passwords)
PASSWORD = "s3cret-pw"


class ServerUnavailable(RuntimeError):
    """No PostgreSQL server could be started or reached; the message says why."""


class PostgresServer:
    """A PostgreSQL server the tests may create databases on.

    Attributes:
        admin_url: URL of a database to run ``CREATE DATABASE`` from.
        password_user: ``(user, password)`` of a role that logs in with a password over TCP, or None
            (external servers).
    """

    def __init__(self, admin_url: str, password_user: tuple[str, str] | None = None) -> None:
        self.admin_url = admin_url
        self.password_user = password_user
        self._created: list[str] = []
        self._stop_fn = None  # set for servers started here

    def admin(self, sql: str) -> None:
        """Run one statement (outside a transaction) on the admin database."""
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)

    def url_for(self, dbname: str, user: str | None = None, password: str | None = None) -> str:
        """The admin URL with another database name (and optionally another login)."""
        parts = urlsplit(self.admin_url)
        netloc = parts.netloc
        if user is not None:
            host = netloc.rpartition("@")[2]
            netloc = f"{user}:{password}@{host}" if password is not None else f"{user}@{host}"
        return urlunsplit((parts.scheme, netloc, "/" + dbname, parts.query, ""))

    def new_database(self) -> str:
        """Create an empty database of a random name; returns its URL."""
        name = "archscout_test_" + uuid.uuid4().hex[:12]
        self.admin(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        return self.url_for(name)

    def stop(self) -> None:
        if self._stop_fn is not None:
            fn, self._stop_fn = self._stop_fn, None
            fn()
            return
        for name in self._created:  # external server: drop what the tests created
            with contextlib.suppress(Exception):
                self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._created.clear()


def _find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_key)
    return candidates[-1] if candidates else None


def _version_key(path: str) -> tuple[int, ...]:
    version = path.split("/")[4]
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(argv: list[str]) -> list[str]:
    """``argv`` run as the ``postgres`` OS user when we are root (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *argv]
    import shlex

    return ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(argv)]


def _run(argv: list[str], what: str, timeout: float = 120.0) -> None:
    try:
        proc = subprocess.run(_as_server_user(argv), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ServerUnavailable(f"{what} failed: {e}") from None
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise ServerUnavailable(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")


def start_local_server() -> PostgresServer:
    """Start a server in a fresh temporary folder; raises :class:`ServerUnavailable` with the reason."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ServerUnavailable("psycopg is not installed (pip install 'archscout[postgres]')") from None
    initdb, pg_ctl = _find_binary("initdb"), _find_binary("pg_ctl")
    if not initdb or not pg_ctl:
        raise ServerUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found; run scripts/postgres.sh")
    root = os.geteuid() == 0
    if root:
        import pwd

        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            raise ServerUnavailable("running as root but there is no 'postgres' OS user to run the server") from None
    folder = tempfile.mkdtemp(prefix="archscout-pg-", dir="/tmp" if root and os.path.isdir("/tmp") else None)
    data = os.path.join(folder, "data")
    if root:
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    stopped = threading.Event()

    def stop() -> None:
        if stopped.is_set():
            return
        stopped.set()
        if os.path.isdir(data):
            with contextlib.suppress(ServerUnavailable):
                _run([pg_ctl, "stop", "-D", data, "-m", "immediate", "-w", "-t", "30"], "pg_ctl stop", timeout=60)
        shutil.rmtree(folder, ignore_errors=True)

    try:
        _run([initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"], "initdb")
        with open(os.path.join(data, "pg_hba.conf"), "w") as f:
            f.write(
                "local all all trust\n"
                f"host all {PASSWORD_USER} 127.0.0.1/32 scram-sha-256\n"
                "host all all 127.0.0.1/32 trust\n"
            )
        last = ""
        for _ in range(3):  # the free port may be taken between choosing and binding it
            port = _free_port()
            opts = (
                f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            try:
                _run([pg_ctl, "start", "-D", data, "-w", "-t", "60", "-l", os.path.join(folder, "log"), "-o", opts],
                     "pg_ctl start")
                break
            except ServerUnavailable as e:
                last = str(e)
        else:
            raise ServerUnavailable(last)
        server = PostgresServer(f"postgresql://postgres@127.0.0.1:{port}/postgres", (PASSWORD_USER, PASSWORD))
        server._stop_fn = stop
        atexit.register(stop)
        server.admin(f"CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD '{PASSWORD}'")
        return server
    except BaseException:
        stop()
        raise


def external_server(url: str) -> PostgresServer:
    try:
        import psycopg
    except ImportError:
        raise ServerUnavailable("psycopg is not installed (pip install 'archscout[postgres]')") from None
    server = PostgresServer(url)
    try:
        server.admin("SELECT 1")
    except psycopg.Error as e:
        raise ServerUnavailable(f"cannot reach ARCHSCOUT_TEST_POSTGRES_URL: {str(e).strip().splitlines()[0]}") from None
    return server


# one server per process, shared by every fixture that asks (conftest.py and test modules may both import
# the fixtures below)
_lock = threading.Lock()
_server: PostgresServer | None = None
_failure: str | None = None
_users = 0


def _acquire() -> PostgresServer:
    global _server, _failure, _users
    with _lock:
        if _server is None and _failure is None:
            url = os.environ.get("ARCHSCOUT_TEST_POSTGRES_URL", "").strip()
            try:
                _server = external_server(url) if url else start_local_server()
            except ServerUnavailable as e:
                _failure = str(e)
        if _server is None:
            reason = f"no PostgreSQL server for the tests: {_failure}"
            if os.environ.get("ARCHSCOUT_REQUIRE_POSTGRES") == "1":
                pytest.fail(reason + " (ARCHSCOUT_REQUIRE_POSTGRES=1)", pytrace=False)
            pytest.skip(reason)
        _users += 1
        return _server


def _release() -> None:
    global _server, _users
    with _lock:
        _users -= 1
        if _users == 0 and _server is not None:
            _server.stop()
            _server = None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (skips, or fails under ARCHSCOUT_REQUIRE_POSTGRES=1, if none)."""
    server = _acquire()
    try:
        yield server
    finally:
        _release()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """URL of a fresh, empty database (``postgresql://user@127.0.0.1:port/archscout_test_<random>``)."""
    return postgres_server.new_database()
