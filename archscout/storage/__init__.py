"""Storage backends: append-only study records (SQLite by default, in-memory for benchmarks)."""

from __future__ import annotations

import os

from ..errors import StorageError
from .base import SCHEMA_VERSION, Event, InMemoryStorage, Storage

__all__ = ["SCHEMA_VERSION", "Event", "Storage", "InMemoryStorage", "create_storage"]


def create_storage(url: str | os.PathLike | Storage | None) -> Storage:
    """Open a storage from a URL or path.

    ``None``/``"memory"`` gives in-memory storage; ``"sqlite:///path.db"`` or a plain file path gives SQLite.

    Raises:
        StorageError: the URL's scheme is not supported or the file cannot be used.
    """
    if isinstance(url, Storage):
        return url
    if url is None or url in ("memory", ":memory:", "memory://"):
        return InMemoryStorage()
    text = os.fspath(url)
    if not isinstance(text, str) or not text.strip():
        raise StorageError(f"storage must be a file path or sqlite:///path.db, got {url!r}")
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme == "sqlite":
            # sqlite:///relative/path.db and sqlite:////absolute/path.db, as in SQLAlchemy
            path = rest[1:] if rest.startswith("/") else rest
            if not path:
                raise StorageError(f"storage URL {text!r} names no file; write sqlite:///runs/study.db")
            from .sqlite import SQLiteStorage

            return SQLiteStorage(path)
        raise StorageError(
            f"unsupported storage URL scheme {scheme!r} in {text!r}; use a file path, sqlite:///path.db or 'memory'"
        )
    from .sqlite import SQLiteStorage

    return SQLiteStorage(text)
