"""Storage backends: append-only study records (SQLite by default, PostgreSQL for many machines, in-memory for
benchmarks), chosen by the URL scheme."""

from __future__ import annotations

import os
from collections.abc import Callable

from .._registry import Registry
from ..errors import ConfigError, StorageError
from .base import SCHEMA_VERSION, Event, InMemoryStorage, Storage, mask_url

__all__ = [
    "SCHEMA_VERSION", "STORAGES", "Event", "InMemoryStorage", "Storage", "create_storage", "list_storages",
    "register_storage",
]

STORAGES: Registry[Storage] = Registry("storage")
"""Storage backends by URL scheme; each factory takes the whole URL (or path) and returns a :class:`Storage`."""


def register_storage(scheme: str, factory: Callable[[str], Storage] | None = None):
    """Register a storage backend for URLs ``scheme://...``: ``factory(url) -> Storage`` (usable as a
    decorator). :func:`create_storage` then opens such URLs, and ``archscout.testing.check_storage(scheme,
    url=...)`` checks the backend.

    Raises:
        ConfigError: the scheme is taken or not a plain lowercase word.
    """
    if not isinstance(scheme, str) or not scheme.isidentifier() or scheme != scheme.lower():
        raise ConfigError(f"a storage scheme must be a lowercase word such as 'redis', got {scheme!r}")
    return STORAGES.register(scheme, factory) if factory is not None else STORAGES.register(scheme)


def list_storages() -> list[str]:
    """URL schemes of the registered storage backends."""
    return STORAGES.names()


@register_storage("memory")
def _memory(url: str) -> Storage:
    """In process memory: the fastest, for benchmarks and tests; lost at exit (``None`` or ``"memory"``)."""
    return InMemoryStorage()


@register_storage("sqlite")
def _sqlite(url: str) -> Storage:
    """A SQLite file: ``path/to/study.db`` or ``sqlite:///path/to/study.db`` (the default)."""
    from .sqlite import SQLiteStorage

    if "://" not in url:
        return SQLiteStorage(url)
    rest = url.partition("://")[2]
    # sqlite:///relative/path.db and sqlite:////absolute/path.db, as in SQLAlchemy
    path = rest[1:] if rest.startswith("/") else rest
    if not path:
        raise StorageError(f"storage URL {url!r} names no file; write sqlite:///runs/study.db")
    return SQLiteStorage(path)


@register_storage("postgresql")
def _postgresql(url: str) -> Storage:
    """A PostgreSQL database, for many machines: ``postgresql://user:password@host:5432/dbname`` (extra
    ``postgres``)."""
    from .postgres import PostgresStorage

    return PostgresStorage(url)


_ALIASES = {"postgres": "postgresql", "memory": "memory"}


def create_storage(url: str | os.PathLike | Storage | None) -> Storage:
    """Open a storage from a URL or path.

    ``None``/``"memory"`` gives in-memory storage; ``"sqlite:///path.db"`` or a plain file path gives SQLite;
    ``"postgresql://user:password@host:5432/dbname"`` (or ``postgres://``) gives PostgreSQL (extra ``postgres``);
    any other scheme, a backend registered with :func:`register_storage`.

    Raises:
        StorageError: the URL's scheme is not supported, or the file or database cannot be used.
        OptionalDependencyError: a PostgreSQL URL without psycopg installed.
    """
    if isinstance(url, Storage):
        return url
    if url is None or url in ("memory", ":memory:", "memory://"):
        return STORAGES.get("memory")("memory")
    try:
        text = os.fspath(url)
    except TypeError:
        text = None
    if not isinstance(text, str) or not text.strip() or "\x00" in text:
        raise StorageError(f"storage must be a file path, sqlite:///path.db or postgresql://host/dbname, got {url!r}")
    if "://" not in text:
        return STORAGES.get("sqlite")(text)
    scheme = text.partition("://")[0].lower()
    scheme = _ALIASES.get(scheme, scheme)
    if scheme not in STORAGES:
        raise StorageError(
            f"unsupported storage URL scheme {scheme!r} in {mask_url(text)!r}; use a file path, sqlite:///path.db, "
            f"postgresql://user:password@host:5432/dbname or 'memory' "
            f"(registered schemes: {', '.join(list_storages())})"
        )
    return STORAGES.get(scheme)(text)
