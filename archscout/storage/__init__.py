"""Storage backends: append-only study records (SQLite by default, PostgreSQL for many machines, in-memory for
benchmarks)."""

from __future__ import annotations

import os

from ..errors import StorageError
from .base import SCHEMA_VERSION, Event, InMemoryStorage, Storage, mask_url

__all__ = ["SCHEMA_VERSION", "Event", "Storage", "InMemoryStorage", "create_storage"]


def create_storage(url: str | os.PathLike | Storage | None) -> Storage:
    """Open a storage from a URL or path.

    ``None``/``"memory"`` gives in-memory storage; ``"sqlite:///path.db"`` or a plain file path gives SQLite;
    ``"postgresql://user:password@host:5432/dbname"`` (or ``postgres://``) gives PostgreSQL (extra ``postgres``).

    Raises:
        StorageError: the URL's scheme is not supported, or the file or database cannot be used.
        OptionalDependencyError: a PostgreSQL URL without psycopg installed.
    """
    if isinstance(url, Storage):
        return url
    if url is None or url in ("memory", ":memory:", "memory://"):
        return InMemoryStorage()
    try:
        text = os.fspath(url)
    except TypeError:
        text = None
    if not isinstance(text, str) or not text.strip() or "\x00" in text:
        raise StorageError(f"storage must be a file path, sqlite:///path.db or postgresql://host/dbname, got {url!r}")
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme == "sqlite":
            # sqlite:///relative/path.db and sqlite:////absolute/path.db, as in SQLAlchemy
            path = rest[1:] if rest.startswith("/") else rest
            if not path:
                raise StorageError(f"storage URL {text!r} names no file; write sqlite:///runs/study.db")
            from .sqlite import SQLiteStorage

            return SQLiteStorage(path)
        if scheme.lower() in ("postgresql", "postgres"):
            from .postgres import PostgresStorage

            return PostgresStorage(text)
        raise StorageError(
            f"unsupported storage URL scheme {scheme!r} in {mask_url(text)!r}; use a file path, sqlite:///path.db, "
            "postgresql://user:password@host:5432/dbname or 'memory'"
        )
    from .sqlite import SQLiteStorage

    return SQLiteStorage(text)
