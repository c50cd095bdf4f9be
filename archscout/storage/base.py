"""Append-only study records.

A storage holds studies; a study is a header (its config, written once) and a log of events. Events are
only ever appended, never updated: the state of a study is rebuilt by replaying its events in order.
Every payload is JSON (nothing is ever unpickled).

Event kinds:
    ``ask``  ``{"cand": id, "arch": str, "fidelity": f|None, "driver": id}``: a trial started (trial number in
    ``trial``); a second ``ask`` of the same trial number hands a trial whose driver stopped to another driver;
    ``tell`` ``{"state": ..., "metrics": {...}, "error": str|None, "started_at": t, "finished_at": t}``.

Several drivers (processes, possibly on several machines) may work on one study at once. Each appends
under :meth:`Storage.locked`, which serialises the appends of one study, and beats a heartbeat row
(:meth:`Storage.heartbeat`) so that the trials of a driver that died can be told apart from running ones.
"""

from __future__ import annotations

import abc
import contextlib
import json
import math
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from ..errors import StorageError, StudyExistsError

__all__ = ["SCHEMA_VERSION", "DriverBeat", "Event", "InMemoryStorage", "Storage", "dumps", "loads", "mask_url"]

SCHEMA_VERSION = 1


def _clean(obj: Any) -> Any:
    """Non-finite floats become strings so that records stay strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(_clean(obj), separators=(",", ":"), allow_nan=False, default=_default)


def _default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return _clean(obj.item())
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    raise TypeError(f"cannot store a {type(obj).__name__} in a record: {obj!r}")


def loads(text: str) -> Any:
    return json.loads(text)


def mask_url(url: str) -> str:
    """``url`` with its password (in the user part or a ``password=`` parameter) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", url)
    if "@" not in parts.netloc and not re.search(r"(?i)(^|&)password=", parts.query):
        return url  # nothing to hide (and urlunsplit would rewrite sqlite:////abs.db as sqlite://abs.db)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        if ":" in user:
            user = user.split(":", 1)[0] + ":***"
        netloc = f"{user}@{host}"
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@dataclass(frozen=True)
class Event:
    """One appended record of a study."""

    seq: int
    kind: str
    trial: int
    payload: dict
    time: float


@dataclass(frozen=True)
class DriverBeat:
    """The last heartbeat of one driver: ``age_s`` seconds ago on the storage's clock, with the ``info`` it
    gave (``pid``, ``host``, ``started_at``)."""

    driver: str
    age_s: float
    info: dict


class Storage(abc.ABC):
    """Interface of every storage backend.

    Every method may be called from several threads of one process (a driver beats its heartbeat from a
    thread). A failed write raises :class:`StorageError` and leaves nothing half-written. Register a new
    backend with :func:`archscout.register_storage` (by URL scheme); check it with
    ``archscout.testing.check_storage``.

    Attributes:
        url: where the records live (passwords masked), as :func:`~archscout.create_storage` takes it.
        shared: other processes (and machines) can open the same records, so drivers beat heartbeats and
            lock appends; ``False`` for in-process storage.
    """

    url: str = ""
    shared: ClassVar[bool] = True

    @abc.abstractmethod
    def create_study(self, name: str, config: Mapping[str, Any]) -> None:
        """Write the header of a new study.

        Raises:
            StorageError: a study of that name exists.
        """

    @abc.abstractmethod
    def study_names(self) -> list[str]:
        """Names of the studies the storage holds, in the order they were created."""

    @abc.abstractmethod
    def study_config(self, name: str) -> dict:
        """The header (config) of study ``name``.

        Raises:
            StorageError: no such study.
        """

    @abc.abstractmethod
    def append(self, name: str, kind: str, trial: int, payload: Mapping[str, Any]) -> int:
        """Append one event durably; returns its sequence number."""

    @abc.abstractmethod
    def events(self, name: str, after: int = 0) -> list[Event]:
        """Events with ``seq > after``, in order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files (the records stay)."""

    # --- several drivers on one study ----------------------------------------------------------------
    @abc.abstractmethod
    def locked(self, name: str) -> contextlib.AbstractContextManager[None]:
        """An exclusive write transaction on study ``name``: while the block runs, no other driver (process,
        machine or thread) appends to that study; :meth:`events` and :meth:`append` called inside it join the
        transaction, which commits when the block ends and rolls back if it raises. Not reentrant."""

    @abc.abstractmethod
    def heartbeat(self, name: str, driver: str, info: Mapping[str, Any] | None = None) -> None:
        """Record that ``driver`` is alive now (insert or update its row; ``info`` replaces the stored one
        when given)."""

    @abc.abstractmethod
    def end_driver(self, name: str, driver: str) -> None:
        """Remove ``driver``'s heartbeat row: it stopped cleanly, and any trial it still held is orphaned."""

    @abc.abstractmethod
    def drivers(self, name: str) -> dict[str, DriverBeat]:
        """The heartbeat rows of study ``name``, by driver id."""

    def resolve_name(self, name: str | None) -> str:
        """``name`` itself, or the only study of the storage when ``name`` is None."""
        names = self.study_names()
        if name is None:
            if len(names) == 1:
                return names[0]
            if not names:
                raise StorageError(f"{self.url} holds no study; start one with `archscout search`")
            raise StorageError(f"{self.url} holds several studies {names}; name one with --study")
        if name not in names:
            raise StorageError(f"{self.url} has no study {name!r}; it has {names}")
        return name

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class InMemoryStorage(Storage):
    """Events in process memory: the fastest backend, for benchmarks and tests; lost at exit."""

    url = "memory"
    shared = False

    def __init__(self) -> None:
        self._configs: dict[str, dict] = {}
        self._events: dict[str, list[Event]] = {}
        self._beats: dict[str, dict[str, tuple[float, dict]]] = {}
        self._seq = 0
        self._lock = threading.RLock()

    def create_study(self, name: str, config: Mapping[str, Any]) -> None:
        if name in self._configs:
            raise StudyExistsError(f"a study named {name!r} already exists in memory storage; pick another name")
        self._configs[name] = loads(dumps(config))
        self._events[name] = []

    def study_names(self) -> list[str]:
        return list(self._configs)

    def study_config(self, name: str) -> dict:
        return self._configs[self.resolve_name(name)]

    def append(self, name: str, kind: str, trial: int, payload: Mapping[str, Any]) -> int:
        with self._lock:
            self._seq += 1
            # round-trip through JSON so that memory and SQLite behave identically
            self._events[name].append(Event(self._seq, kind, trial, loads(dumps(payload)), time.time()))
            return self._seq

    def events(self, name: str, after: int = 0) -> list[Event]:
        with self._lock:
            evs = self._events[self.resolve_name(name)]
            return [e for e in evs if e.seq > after] if after else list(evs)

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[None]:
        with self._lock:
            n = len(self._events[self.resolve_name(name)])
            try:
                yield
            except BaseException:
                del self._events[name][n:]  # roll back what the block appended
                raise

    def heartbeat(self, name: str, driver: str, info: Mapping[str, Any] | None = None) -> None:
        with self._lock:
            rows = self._beats.setdefault(name, {})
            old = rows.get(driver, (0.0, {}))[1]
            rows[driver] = (time.time(), loads(dumps(info)) if info is not None else old)

    def end_driver(self, name: str, driver: str) -> None:
        with self._lock:
            self._beats.get(name, {}).pop(driver, None)

    def drivers(self, name: str) -> dict[str, DriverBeat]:
        with self._lock:
            now = time.time()
            return {
                d: DriverBeat(d, max(0.0, now - t), dict(info)) for d, (t, info) in self._beats.get(name, {}).items()
            }
