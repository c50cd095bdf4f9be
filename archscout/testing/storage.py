"""Conformance checks of a storage backend: the contract of :class:`~archscout.storage.Storage`.

``check_storage("postgresql", url=...)`` checks that studies are created once and keep their config, that events
come back in order (``after=``) as strict JSON, that studies are isolated, that :meth:`~Storage.locked` commits,
joins, rolls back and excludes other threads (and, for a ``shared`` storage, other processes), that heartbeats
are kept per driver, and that a shared storage keeps everything when it is opened again.

Each rule works on studies of its own (names with a random suffix), so one store may serve every rule; given a
function that returns the URL of a fresh store, each rule gets its own.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..errors import ConfigError, StorageError, StudyExistsError
from ..storage import STORAGES, InMemoryStorage, Storage
from ._checks import Rule, Suite, expect, iter_checks, register_suite, run_all, setting_error

__all__ = ["check_storage", "iter_storage_checks"]

Opener = Callable[[str], Storage]


class StorageSubject:
    """A storage backend (a registered URL scheme or a Storage subclass) and where its records go."""

    def __init__(self, storage: type[Storage] | str, url: str | Callable[[], str] | None = None) -> None:
        if isinstance(storage, str):
            if storage not in STORAGES:
                STORAGES.get(storage)  # raises UnknownNameError with the registered schemes
            self.opener: Opener = STORAGES.get(storage)
            self.label = storage
        elif isinstance(storage, type) and issubclass(storage, Storage):
            self.opener = storage if storage is not InMemoryStorage else _memory
            self.label = storage.__name__
        else:
            raise ConfigError(f"check_storage needs a Storage subclass or a registered URL scheme, got {storage!r}")
        self.storage = storage
        self.temp: list[str] = []
        if url is None:
            if storage in ("memory", InMemoryStorage):
                url = "memory"
            elif storage == "sqlite":
                url = self._sqlite_url
            else:
                raise setting_error(f"check_storage({self.label}) needs url= the URL of a store it may write to "
                                    "(or a function returning the URL of a fresh one for each rule)")
        if not (isinstance(url, str) or callable(url)):
            raise setting_error(f"url must be a URL or a function returning one, got {url!r}")
        self.url_source = url
        self.url: str | None = None
        self.opened: list[Storage] = []
        self.first: Storage | None = None
        self.tag = uuid.uuid4().hex[:8]

    def _sqlite_url(self) -> str:
        folder = tempfile.mkdtemp(prefix="archscout-check-")
        self.temp.append(folder)
        return f"sqlite:///{os.path.join(folder, 'study.db')}"

    def store_url(self) -> str:
        """The URL this rule works on (a fresh one per rule when the source is a function)."""
        if self.url is None:
            self.url = self.url_source() if callable(self.url_source) else self.url_source
        return self.url

    def open(self) -> Storage:
        """A handle on the store: a new one (another connection) for a shared storage, the same object for one
        that lives in this process."""
        if self.first is not None and not self.first.shared:
            return self.first
        s = self.opener(self.store_url())
        if not isinstance(s, Storage):
            raise AssertionError(f"opening {self.store_url()!r} gave {s!r}, not a Storage")
        self.opened.append(s)
        if self.first is None:
            self.first = s
        return s

    def name(self, base: str) -> str:
        """A study name of this rule's own."""
        return f"{base}-{self.tag}"

    def traits(self) -> dict[str, bool | None]:
        if self.first is None:
            self.open()
        assert self.first is not None
        return {"shared": bool(self.first.shared)}

    def close(self) -> None:
        opened, self.opened = self.opened, []
        for s in opened:
            with contextlib.suppress(Exception):  # a storage that fails to close must not hide the rule's result
                s.close()
        self.first = None
        for folder in self.temp:
            shutil.rmtree(folder, ignore_errors=True)
        self.temp = []
        self.url = None


def _memory(url: str) -> Storage:
    return InMemoryStorage()


# --- studies and events --------------------------------------------------------------------------------------
def create_names_and_config_round_trip(sub: StorageSubject) -> None:
    """New studies are listed after the existing ones, in creation order; their config comes back as JSON (NaN
    as ``"nan"``, numpy numbers as numbers); an unknown study raises StorageError."""
    s = sub.open()
    before = s.study_names()
    first, second = sub.name("first"), sub.name("second")
    config = {"space": {"name": "nb201", "ops": ["a", "b"]}, "seed": 3, "ratio": 0.5, "none": None, "bad": float("nan")}
    s.create_study(first, config)
    s.create_study(second, {"n": np.int64(2)})
    expect(s.study_names() == before + [first, second],
           f"study_names() is {s.study_names()}, expected {before + [first, second]}")
    got = s.study_config(first)
    expect(got == {**config, "bad": "nan"}, f"study_config gave {got}")
    expect(s.study_config(second) == {"n": 2}, f"study_config gave {s.study_config(second)}")
    try:
        s.study_config(sub.name("third"))
    except StorageError as e:
        expect("no study" in str(e), f"the error for an unknown study says {str(e)!r}, not 'no study'")
    else:
        raise AssertionError("study_config of an unknown study did not raise StorageError")


def create_existing_name_raises_study_exists(sub: StorageSubject) -> None:
    """Creating a study whose name exists raises StudyExistsError naming it (from another handle too, and inside
    a locked block, which stays usable); the first config is kept."""
    s = sub.open()
    a = sub.name("a")
    s.create_study(a, {"v": 1})
    for handle, v in ((s, 2), (sub.open(), 3)):
        try:
            handle.create_study(a, {"v": v})
        except StudyExistsError as e:
            expect(repr(a) in str(e), f"the StudyExistsError {str(e)!r} does not name {a!r}")
        else:
            raise AssertionError("creating an existing study did not raise StudyExistsError")
    expect(s.study_config(a) == {"v": 1}, f"the config became {s.study_config(a)}")
    with s.locked(a):
        try:
            s.create_study(a, {"v": 4})
        except StudyExistsError:
            pass
        else:
            raise AssertionError("creating an existing study inside locked() did not raise StudyExistsError")
        s.append(a, "ask", 0, {})
    expect(len(sub.open().events(a)) == 1, "the append after the refusal inside locked() was lost")


def append_and_events_in_order_with_after(sub: StorageSubject) -> None:
    """``append`` returns increasing sequence numbers; ``events`` gives kind, trial, payload and a wall-clock time
    in order, and only those after ``after``."""
    s = sub.open()
    a = sub.name("a")
    s.create_study(a, {})
    steps = [("ask", 0), ("ask", 1), ("tell", 0), ("tell", 1)]
    seqs = [s.append(a, kind, t, {"i": i}) for i, (kind, t) in enumerate(steps)]
    expect(seqs == sorted(seqs) and len(set(seqs)) == 4, f"append returned {seqs}, not increasing")
    evs = s.events(a)
    expect([e.seq for e in evs] == seqs, f"events have seq {[e.seq for e in evs]}, append returned {seqs}")
    got = [(e.kind, e.trial, e.payload) for e in evs]
    want = [("ask", 0, {"i": 0}), ("ask", 1, {"i": 1}), ("tell", 0, {"i": 2}), ("tell", 1, {"i": 3})]
    expect(got == want, f"events are {got}")
    expect(all(isinstance(e.time, float) and e.time > 1e9 for e in evs), "event times are not epoch seconds")
    expect([e.seq for e in s.events(a, after=seqs[1])] == seqs[2:], "events(after=) returned the wrong events")
    expect(s.events(a, after=seqs[-1]) == [], "events after the last one are not []")


def records_are_strict_json(sub: StorageSubject) -> None:
    """Payloads come back as strict JSON: non-finite floats as strings, numpy values as numbers and lists, keys as
    strings; a payload that is not JSON raises TypeError and stores nothing."""
    s = sub.open()
    a = sub.name("a")
    s.create_study(a, {})
    payload: dict[Any, Any] = {
        "nan": float("nan"), "inf": float("inf"), "-inf": -np.inf, "f32": np.float32(1.5), "i64": np.int64(7),
        "b": np.bool_(True), "arr": np.arange(3), "nested": {"x": [float("nan"), 1]}, 4: "int key",
    }
    s.append(a, "tell", 0, payload)
    (ev,) = s.events(a)
    want = {"nan": "nan", "inf": "inf", "-inf": "-inf", "f32": 1.5, "i64": 7, "b": True, "arr": [0, 1, 2],
            "nested": {"x": ["nan", 1]}, "4": "int key"}
    expect(ev.payload == want, f"the payload came back as {ev.payload}")
    try:
        s.append(a, "tell", 1, {"obj": object()})
    except TypeError as e:
        expect("cannot store" in str(e), f"the TypeError says {str(e)!r}, not 'cannot store'")
    else:
        raise AssertionError("appending an object() did not raise TypeError")
    expect(len(s.events(a)) == 1, "the refused payload was stored")


def studies_are_isolated(sub: StorageSubject) -> None:
    """Events of one study never show in another."""
    s = sub.open()
    a, b = sub.name("a"), sub.name("b")
    s.create_study(a, {"k": "a"})
    s.create_study(b, {"k": "b"})
    a1 = s.append(a, "ask", 0, {"s": "a"})
    b1 = s.append(b, "ask", 0, {"s": "b"})
    a2 = s.append(a, "ask", 1, {"s": "a"})
    expect([e.seq for e in s.events(a)] == [a1, a2], "study a shows events of another study")
    expect([e.seq for e in s.events(b)] == [b1], "study b shows events of another study")
    expect(all(e.payload == {"s": "b"} for e in s.events(b, after=0)), "study b shows payloads of study a")
    expect([e.seq for e in s.events(a, after=a1)] == [a2], "events(after=) mixes studies")


# --- locked() ------------------------------------------------------------------------------------------------
def locked_commits_and_joins(sub: StorageSubject) -> None:
    """Inside ``locked``, ``events`` sees the block's own appends; they are committed when it ends."""
    s = sub.open()
    a = sub.name("a")
    s.create_study(a, {})
    s.append(a, "ask", 0, {})
    with s.locked(a):
        n = len(s.events(a))
        seq = s.append(a, "ask", n, {})
        expect([e.seq for e in s.events(a)][-1] == seq, "a locked block does not see its own append")
    trials = [e.trial for e in sub.open().events(a)]
    expect(trials == [0, 1], f"after the block another handle sees trials {trials}, not [0, 1]")


def locked_rolls_back_when_the_block_raises(sub: StorageSubject) -> None:
    """A block that raises leaves none of its appends; the storage and ``locked`` stay usable."""
    s = sub.open()
    a = sub.name("a")
    s.create_study(a, {})
    first = s.append(a, "ask", 0, {})
    try:
        with s.locked(a):
            s.append(a, "ask", 1, {})
            s.append(a, "tell", 1, {})
            raise RuntimeError("boom")
    except RuntimeError as e:
        expect(str(e) == "boom", f"the block's error came out as {e!r}")
    else:
        raise AssertionError("the block's RuntimeError did not propagate")
    expect([e.seq for e in s.events(a)] == [first], "appends of a block that raised were kept")
    later = s.append(a, "ask", 1, {})
    expect(later > first and [e.seq for e in sub.open().events(a)] == [first, later],
           "the storage is not usable after a block that raised")
    with s.locked(a):
        s.append(a, "tell", 1, {})
    expect(len(s.events(a)) == 3, "locked() is not usable after a block that raised")


def locked_on_missing_study_raises(sub: StorageSubject) -> None:
    """``locked`` on a study that does not exist raises StorageError ('no study')."""
    s = sub.open()
    try:
        with s.locked(sub.name("nope")):
            pass
    except StorageError as e:
        expect("no study" in str(e), f"the error says {str(e)!r}, not 'no study'")
    else:
        raise AssertionError("locked() on a missing study did not raise StorageError")


def cycles(storage: Storage, name: str, n: int, tag: str) -> None:
    """``n`` times: in one locked block, count the asks and append the next trial number."""
    for _ in range(n):
        with storage.locked(name):
            count = sum(e.kind == "ask" for e in storage.events(name))
            storage.append(name, "ask", count, {"by": tag})


def expect_exact(storage: Storage, name: str, total: int) -> None:
    """The asks are numbered 0..total-1, in sequence order (nothing lost, duplicated or reordered)."""
    trials = [e.trial for e in storage.events(name) if e.kind == "ask"]
    expect(sorted(trials) == list(range(total)), f"lost or duplicated trials: {sorted(trials)}")
    expect(trials == list(range(total)), "sequence order differs from commit order")


def locked_excludes_other_threads(sub: StorageSubject) -> None:
    """Three threads (two sharing one handle, one with another handle) each append 25 counted trials under
    ``locked``: exactly 75, numbered in order."""
    s = sub.open()
    a = sub.name("a")
    s.create_study(a, {})
    n, errors = 25, []
    handles = [s, sub.open()]

    def work(storage: Storage, tag: str) -> None:
        try:
            cycles(storage, a, n, tag)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(handles[i % 2], f"t{i}")) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    expect(not errors, f"a thread failed: {errors!r}")
    expect_exact(s, a, 3 * n)


def append_waits_for_a_locked_block(sub: StorageSubject) -> None:
    """An append from another handle made during a locked block commits after it, with a later seq."""
    s, other = sub.open(), sub.open()
    a = sub.name("a")
    s.create_study(a, {})
    seqs: list[int] = []
    started = threading.Event()

    def append() -> None:
        started.set()
        seqs.append(other.append(a, "tell", 9, {}))

    with s.locked(a):
        inside = [s.append(a, "ask", 0, {})]
        t = threading.Thread(target=append)
        t.start()
        started.wait(10)
        t.join(timeout=0.3)  # blocked on the study lock (whether or not it got this far in 0.3 s)
        inside.append(s.append(a, "ask", 1, {}))
    t.join(timeout=60)
    expect(seqs and seqs[0] > max(inside), f"the waiting append got seq {seqs}, the block {inside}")
    trials = [e.trial for e in s.events(a)]
    expect(trials == [0, 1, 9], f"trials in order {trials}, not [0, 1, 9]")


def process_worker(opener: Opener, url: str, name: str, n: int, barrier: Any) -> None:
    """Body of the processes of :func:`locked_excludes_other_processes`."""
    barrier.wait(60)  # open the (possibly fresh) storage at the same moment
    storage = opener(url)
    try:
        with contextlib.suppress(StudyExistsError):  # the other process created it first
            storage.create_study(name, {"by": os.getpid()})
        cycles(storage, name, n, str(os.getpid()))
    finally:
        storage.close()


def locked_excludes_other_processes(sub: StorageSubject) -> None:
    """Shared: two processes open the store at once, race to create a study, then each appends 20 counted
    trials under ``locked``: exactly 40, numbered in sequence order."""
    n, a = 20, sub.name("a")
    url = sub.store_url()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=process_worker, args=(sub.opener, url, a, n, barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    for p in procs:
        if p.exitcode is None:
            p.kill()
            p.join()
    expect([p.exitcode for p in procs] == [0, 0], f"the processes exited with {[p.exitcode for p in procs]}")
    expect_exact(sub.open(), a, 2 * n)


# --- heartbeats ----------------------------------------------------------------------------------------------
def heartbeat_drivers_and_end_driver(sub: StorageSubject) -> None:
    """Heartbeats are kept per study and driver with their info (kept when a beat gives none, replaced when it
    gives some); ``end_driver`` removes one (an unknown one quietly)."""
    s = sub.open()
    a, b = sub.name("a"), sub.name("b")
    s.create_study(a, {})
    s.create_study(b, {})
    expect(s.drivers(a) == {}, f"a new study has drivers {s.drivers(a)}")
    s.heartbeat(a, "d1", {"pid": 1, "host": "h", "started_at": 1.5})
    s.heartbeat(a, "d2")
    beats = s.drivers(a)
    expect(set(beats) == {"d1", "d2"}, f"drivers are {sorted(beats)}")
    expect(beats["d1"].driver == "d1" and beats["d1"].info == {"pid": 1, "host": "h", "started_at": 1.5},
           f"d1's beat is {beats['d1']}")
    expect(beats["d2"].info == {}, f"d2's info is {beats['d2'].info}")
    expect(all(0.0 <= x.age_s < 30.0 for x in beats.values()), f"ages {[x.age_s for x in beats.values()]}")
    s.heartbeat(a, "d1")
    expect(s.drivers(a)["d1"].info.get("pid") == 1, "a beat without info lost the stored info")
    s.heartbeat(a, "d1", {"pid": 2})
    expect(sub.open().drivers(a)["d1"].info == {"pid": 2}, "a beat with info did not replace the stored info")
    expect(s.drivers(b) == {}, "beats of one study show in another")
    s.end_driver(a, "d2")
    s.end_driver(a, "never-beat")
    expect(set(s.drivers(a)) == {"d1"}, f"after end_driver the drivers are {sorted(s.drivers(a))}")


def heartbeat_age_grows_until_the_next_beat(sub: StorageSubject) -> None:
    """A beat's age grows with time (0.25 s) and drops at the next beat."""
    s = sub.open()
    a = sub.name("a")
    s.create_study(a, {})
    s.heartbeat(a, "d")
    threading.Event().wait(0.25)
    old = s.drivers(a)["d"].age_s
    expect(old >= 0.2, f"0.25 s after a beat its age is {old}")
    s.heartbeat(a, "d")
    expect(s.drivers(a)["d"].age_s < old, "the age did not drop at the next beat")


def heartbeat_thread_alongside_locked_appends(sub: StorageSubject) -> None:
    """A thread beating and reading heartbeats while the main thread appends under ``locked`` disturbs
    neither."""
    s = sub.open()
    a = sub.name("a")
    s.create_study(a, {})
    stop, errors = threading.Event(), []

    def beat() -> None:
        try:
            while not stop.is_set():
                s.heartbeat(a, "d", {"pid": 1})
                s.drivers(a)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=beat)
    t.start()
    try:
        cycles(s, a, 20, "main")
    finally:
        stop.set()
        t.join(timeout=60)
    expect(not errors, f"the heartbeat thread failed: {errors!r}")
    expect_exact(s, a, 20)
    expect(s.drivers(a)["d"].info == {"pid": 1}, "the beat's info was lost")


# --- persistence ---------------------------------------------------------------------------------------------
def reopen_keeps_everything(sub: StorageSubject) -> None:
    """Shared: closed and opened again, the store has the study, its config, events, sequence and heartbeats."""
    s = sub.open()
    a = sub.name("a")
    before = s.study_names()
    s.create_study(a, {"x": [1, 2]})
    seqs = [s.append(a, "ask", i, {"i": i}) for i in range(3)]
    s.heartbeat(a, "d", {"pid": 5})
    s.close()
    again = sub.opener(sub.store_url())
    try:
        expect(again.study_names() == before + [a], f"reopened, study_names() is {again.study_names()}")
        expect(again.study_config(a) == {"x": [1, 2]}, f"reopened, the config is {again.study_config(a)}")
        got = [(e.seq, e.payload) for e in again.events(a)]
        expect(got == [(q, {"i": i}) for i, q in enumerate(seqs)], f"reopened, the events are {got}")
        expect(again.append(a, "tell", 0, {}) > seqs[-1], "reopened, a new append got an older seq")
        expect(again.drivers(a)["d"].info == {"pid": 5}, "reopened, the heartbeat was lost")
    finally:
        again.close()


RULES = (
    Rule("create_names_and_config_round_trip", create_names_and_config_round_trip),
    Rule("create_existing_name_raises_study_exists", create_existing_name_raises_study_exists),
    Rule("append_and_events_in_order_with_after", append_and_events_in_order_with_after),
    Rule("records_are_strict_json", records_are_strict_json),
    Rule("studies_are_isolated", studies_are_isolated),
    Rule("locked_commits_and_joins", locked_commits_and_joins),
    Rule("locked_rolls_back_when_the_block_raises", locked_rolls_back_when_the_block_raises),
    Rule("locked_on_missing_study_raises", locked_on_missing_study_raises),
    Rule("locked_excludes_other_threads", locked_excludes_other_threads),
    Rule("append_waits_for_a_locked_block", append_waits_for_a_locked_block),
    Rule("locked_excludes_other_processes", locked_excludes_other_processes, {"shared": True}),
    Rule("heartbeat_drivers_and_end_driver", heartbeat_drivers_and_end_driver),
    Rule("heartbeat_age_grows_until_the_next_beat", heartbeat_age_grows_until_the_next_beat),
    Rule("heartbeat_thread_alongside_locked_appends", heartbeat_thread_alongside_locked_appends),
    Rule("reopen_keeps_everything", reopen_keeps_everything, {"shared": True}),
)


def _static_traits(storage: type[Storage] | str) -> dict[str, bool | None]:
    if isinstance(storage, type) and issubclass(storage, Storage):
        return {"shared": bool(storage.shared)}
    return {"shared": None}  # known once a store is opened


SUITE = register_suite(Suite("storage", RULES, StorageSubject, _static_traits))


def iter_storage_checks(storage: type[Storage] | str,
                        url: str | Callable[[], str] | None = None) -> Iterator[tuple[str, Any]]:
    """``(rule name, check)`` for every rule that applies to ``storage`` (chosen by ``shared``, read from a
    store opened once); calling a check runs its rule (see :func:`check_storage`).

    Raises:
        UnknownNameError: no storage has that scheme. ConfigError: not a Storage subclass, or no ``url`` where
            one is needed.
    """
    return iter_checks("storage", storage, {"url": url})


def check_storage(storage: type[Storage] | str, url: str | Callable[[], str] | None = None) -> None:
    """Check a storage backend against the Storage contract, rule by rule.

    Every rule opens the store at ``url`` (``storage(url)``, or the factory registered for the scheme) and works
    on studies of its own, whose names end in a random tag; it closes its handles afterwards. A shared
    storage is also opened from two other processes (``spawn``), which must be able to import the backend.

    Args:
        storage: a URL scheme registered with :func:`~archscout.storage.register_storage` (``"sqlite"``,
            ``"postgresql"``, ...) or a :class:`~archscout.storage.Storage` subclass whose constructor takes the
            URL.
        url: where the records go: a URL, or a function returning the URL of a fresh, empty store for each
            rule. Not needed for ``"memory"``, nor for ``"sqlite"`` (a temporary file per rule).

    Raises:
        AssertionError: a rule is broken; the message names it, e.g.
            ``check_storage(postgresql): rule locked_excludes_other_processes: ...``.
        UnknownNameError: no storage has that scheme. ConfigError: not a Storage subclass, or no ``url``.
    """
    run_all("storage", storage, {"url": url})
