"""A storage read into JSON-safe dicts for the dashboard: trials, the Pareto front, the anytime curve (best value
or hypervolume), parallel-coordinates axes and what to draw of an architecture.

Nothing here writes: a study is rebuilt by replaying its events (as :class:`~archscout.records.TrialLog` does, but
without a strategy, which a viewer does not need) and kept current by reading only the events appended since the
last look. Every value returned is plain JSON (numbers, strings, lists, dicts); text from a study (names,
architecture strings, messages) is returned as it is, and the browser shows it as text.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ArchscoutError, OptionalDependencyError, StorageError
from ..objectives import Objective, parse_constraints, parse_objectives
from ..pareto import hypervolume, to_minimization
from ..results import TrialState
from ..space import Architecture, Space
from ..storage import Storage, create_storage
from ..storage.base import Event
from .arch import ParamAxes, describe_arch

__all__ = ["REFRESH_S", "DashboardData", "StudyView", "open_storage"]

REFRESH_S = 0.25
"""Requests within this many seconds of the last read of the storage are answered from memory."""

_SQLITE_MAGIC = b"SQLite format 3\x00"


def open_storage(storage: str | os.PathLike | Storage) -> tuple[Storage, bool]:
    """Open ``storage`` for reading, never creating it.

    Args:
        storage: a SQLite file path, ``sqlite:///path.db``, ``postgresql://...`` URL, or an open :class:`Storage`.

    Returns:
        ``(storage, owned)``: ``owned`` is true when this call opened it (the caller closes it).

    Raises:
        StorageError: a SQLite file that does not exist, is a folder, is empty or is not a SQLite database, or a
            storage that cannot be opened.
    """
    if isinstance(storage, Storage):
        return storage, False
    try:
        text = os.fspath(storage)
    except TypeError:
        raise StorageError(f"storage must be a file path, sqlite:///path.db or postgresql://host/dbname, "
                           f"got {storage!r}") from None
    scheme = text.partition("://")[0].lower() if "://" in text else "sqlite"
    if scheme == "sqlite":
        path = text if "://" not in text else text.partition("://")[2]
        if "://" in text and path.startswith("/"):
            path = path[1:]  # sqlite:///relative.db and sqlite:////absolute.db, as create_storage reads them
        _check_sqlite_file(path)
    return create_storage(text), True


def _check_sqlite_file(path: str) -> None:
    """Raise StorageError unless ``path`` is an existing, non-empty SQLite file (so opening it creates nothing)."""
    if not path:
        raise StorageError("the storage URL names no file; give a path such as runs/search.db")
    if not os.path.exists(path):
        raise StorageError(f"storage file {path!r} does not exist; check the path (the dashboard only reads "
                           "storages written by `archscout search` or a study)")
    if os.path.isdir(path):
        raise StorageError(f"storage path {path!r} is a folder; give the study's .db file")
    try:
        with open(path, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except OSError as e:
        raise StorageError(f"cannot read storage file {path!r}: {e.strerror or e}") from None
    if head != _SQLITE_MAGIC:
        raise StorageError(f"{path!r} is not an archscout storage (not a SQLite database)")
    # the SQLite backend adds its tables to a database that lacks them: look first, read-only
    try:
        conn = sqlite3.connect(f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro", uri=True, timeout=10)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise StorageError(f"cannot read {path!r} as an archscout storage: {e}") from None
    if not {"meta", "studies", "events"} <= tables:
        raise StorageError(f"{path!r} is a SQLite database but not an archscout storage")
    if "drivers" not in tables:
        raise StorageError(f"{path!r} was written by an older archscout; `archscout show {path}` upgrades it, "
                           "then open the dashboard")


def _num(v: Any) -> float | None:
    """``v`` as a finite float, else None (metrics are stored as numbers, non-finite ones as strings)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _num_or_nan(v: Any) -> float:
    f = _num(v)
    return math.nan if f is None else f


def _last_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[-1].strip() if lines else ""


class StudyView:
    """One study of a storage, replayed from its events and kept current by :meth:`refresh`.

    Attributes:
        name: the study's name.
        seq: the last event applied (the storage's sequence number).
        trials: ``{number: trial dict}`` (see :meth:`_new_trial` for the fields).
    """

    def __init__(self, storage: Storage, name: str) -> None:
        self.name = name
        self.config = storage.study_config(name)
        cfg = self.config
        self.objectives: tuple[Objective, ...] = parse_objectives(cfg.get("objectives") or ("score",))
        self.constraints = parse_constraints(cfg.get("constraints") or ())
        fids = cfg.get("fidelities")
        self.full_fidelity: float | None = max(float(f) for f in fids) if fids else None
        self.space: Space | None = None
        self.axes: ParamAxes | None = None
        self.space_error: str | None = None
        try:
            self.space = Space.from_config(cfg["space"])
            self.axes = ParamAxes(self.space)
        except (ArchscoutError, KeyError, TypeError, ValueError) as e:  # e.g. a plug-in parameter not importable
            self.space_error = f"the study's space cannot be rebuilt here ({e}); architectures are shown as text"
        self.seq = 0
        self.trials: dict[int, dict[str, Any]] = {}
        self._archs: dict[int, Architecture | None] = {}
        self._errors: dict[int, str] = {}  # full failure messages (trial dicts hold the last line)
        self._finished: list[int] = []  # trial numbers in the order they finished
        self._summary: tuple[int, dict[str, Any]] | None = None

    # --- replay -------------------------------------------------------------------------------------
    def refresh(self, storage: Storage) -> bool:
        """Apply the events appended since the last call; returns whether any was."""
        events = storage.events(self.name, after=self.seq)
        for ev in events:
            self._apply(ev)
            self.seq = max(self.seq, ev.seq)
        return bool(events)

    def _apply(self, ev: Event) -> None:
        p = ev.payload
        t = self.trials.get(ev.trial)
        if ev.kind == "ask":
            if t is None:
                self.trials[ev.trial] = self._new_trial(ev)
            elif t["state"] == TrialState.RUNNING:  # another driver took over an orphaned trial
                t.update(driver=p.get("driver"), seq=ev.seq)
        elif ev.kind == "tell" and t is not None and t["state"] == TrialState.RUNNING:
            metrics = dict(p.get("metrics") or {})
            state = p.get("state", TrialState.FAILED)
            t.update(state=state, metrics=metrics, failure=p.get("failure"), seq=ev.seq,
                     started_at=p.get("started_at", t["started_at"]), finished_at=p.get("finished_at"),
                     error=_last_line(p.get("error")),
                     feasible=state == TrialState.COMPLETE and all(
                         c.satisfied(_num_or_nan(metrics.get(c.name))) for c in self.constraints))
            if p.get("error"):
                self._errors[ev.trial] = str(p["error"])
            self._finished.append(ev.trial)

    def _new_trial(self, ev: Event) -> dict[str, Any]:
        """A running trial from its ``ask`` event: ``number``, ``state``, ``arch`` (its string), ``fidelity``,
        ``full`` (at full fidelity), ``metrics``, ``error`` (last line of the failure message), ``failure`` (kind),
        ``feasible``, ``started_at`` / ``finished_at`` (seconds), ``driver``, ``attempt``, ``retry_of``, ``seq``
        (the last event of the trial) and ``p`` (its position on each parameter axis, or None)."""
        p = ev.payload
        text = str(p.get("arch", ""))
        arch: Architecture | None = None
        if self.space is not None:
            try:
                arch = self.space.parse(text)
            except ArchscoutError:
                arch = None
        self._archs[ev.trial] = arch
        fid = _num(p.get("fidelity"))
        return {
            "number": ev.trial, "state": TrialState.RUNNING, "arch": text, "fidelity": fid,
            "full": fid is None or self.full_fidelity is None or fid >= self.full_fidelity,
            "metrics": {}, "error": "", "failure": None, "feasible": False, "started_at": ev.time,
            "finished_at": None, "driver": p.get("driver"), "attempt": int(p.get("attempt", 1) or 1),
            "retry_of": p.get("retry_of"), "seq": ev.seq,
            "p": self.axes.values(arch) if self.axes is not None and arch is not None else None,
        }

    # --- derived values -------------------------------------------------------------------------------
    def _values(self, t: Mapping[str, Any]) -> list[float] | None:
        """The trial's objective values when it counts for the front (complete, feasible, full fidelity)."""
        if t["state"] != TrialState.COMPLETE or not t["feasible"] or not t["full"]:
            return None
        vals = [_num(t["metrics"].get(o.name)) for o in self.objectives]
        return None if any(v is None for v in vals) else vals  # type: ignore[return-value]

    def _front(self) -> list[int]:
        """Numbers of the non-dominated trials among those that count (equal points all kept), ascending.

        An archive updated point by point (``O(n * front size)``, where :func:`~archscout.objectives.pareto_mask`
        compares every pair); the points are visited best first on the first objective, so most are rejected
        against a small archive."""
        nums, pts = [], []
        for n, t in sorted(self.trials.items()):
            v = self._values(t)
            if v is not None:
                nums.append(n)
                pts.append([o.sign * x for o, x in zip(self.objectives, v)])  # larger is better
        if not nums:
            return []
        signed = np.array(pts)
        order = np.lexsort(signed.T[::-1] * -1)  # best first on the first objective, then the next ones
        archive = np.empty((0, signed.shape[1]))
        members: list[int] = []
        for i in order:
            p = signed[i]
            if len(archive) and np.any(np.all(archive >= p, axis=1) & np.any(archive > p, axis=1)):
                continue
            keep = ~(np.all(p >= archive, axis=1) & np.any(p > archive, axis=1))
            archive = np.vstack([archive[keep], p])
            members = [m for m, k in zip(members, keep) if k] + [int(i)]
        return sorted(nums[i] for i in members)

    def _anytime(self) -> dict[str, Any]:
        """The best value (one objective) or the hypervolume (several) after each finished trial."""
        dirs = [o.direction for o in self.objectives]
        x: list[int] = []
        y: list[float | None] = []
        if len(self.objectives) == 1:
            o = self.objectives[0]
            best: float | None = None
            for i, n in enumerate(self._finished, start=1):
                v = self._values(self.trials[n])
                if v is not None and (best is None or o.better(v[0], best)):
                    best = v[0]
                x.append(i)
                y.append(best)
            return {"kind": "best", "label": f"best {o.name}", "x": x, "y": y, "ref": None, "note": None}
        points = {n: v for n in self._finished if (v := self._values(self.trials[n])) is not None}
        out: dict[str, Any] = {"kind": "hypervolume", "label": "hypervolume", "x": x, "y": y, "ref": None,
                               "note": None}
        if not points:
            return out
        mins = to_minimization(np.array(list(points.values())), dirs)
        lo, hi = mins.min(axis=0), mins.max(axis=0)
        span = np.where(hi > lo, hi - lo, np.maximum(np.abs(hi), 1.0))
        ref = hi + 0.1 * span
        out["ref"] = [float(o.sign * -r) for o, r in zip(self.objectives, ref)]  # in the objectives' own units
        out["note"] = ("reference point: the worst value seen on each objective plus 10% of its range; "
                       "feasible full-fidelity trials only")
        front = np.empty((0, len(dirs)))
        hv = 0.0
        by_number = dict(zip(points, mins))
        try:
            for i, n in enumerate(self._finished, start=1):
                p = by_number.get(n)
                if p is not None and not (len(front) and np.any(np.all(front <= p, axis=1))):
                    front = np.vstack([front[~np.all(p <= front, axis=1)], p])
                    hv = hypervolume(front, ref)
                x.append(i)
                y.append(hv)
        except OptionalDependencyError as e:
            out.update(x=[], y=[], note=str(e))
        return out

    def summary(self) -> dict[str, Any]:
        """The study at a glance: settings, counts by state and failure kind, the front (trial numbers), the
        anytime curve, the parameter axes and every metric name; recomputed only when events arrived."""
        if self._summary is not None and self._summary[0] == self.seq:
            return self._summary[1]
        counts: dict[str, int] = {}
        failures: dict[str, int] = {}
        metric_names = [o.name for o in self.objectives]
        for t in self.trials.values():
            counts[t["state"]] = counts.get(t["state"], 0) + 1
            if t["state"] == TrialState.FAILED:
                failures[t["failure"] or "error"] = failures.get(t["failure"] or "error", 0) + 1
            metric_names += [k for k in t["metrics"] if k not in metric_names]
        front = self._front()
        o = self.objectives[0]
        best = None
        for n in front:
            v = self.trials[n]["metrics"][o.name]
            if best is None or o.better(v, self.trials[best]["metrics"][o.name]):
                best = n
        strategy = self.config.get("strategy")
        out = {
            "name": self.name,
            "n_trials": len(self.trials),
            "seq": self.seq,
            "objectives": [o.to_config() for o in self.objectives],
            "constraints": [c.to_config() for c in self.constraints],
            "space": (self.config.get("space") or {}).get("name") or "custom",
            "space_error": self.space_error,
            "strategy": strategy.get("name") if isinstance(strategy, Mapping) else None,
            "seed": self.config.get("seed"),
            "fidelities": self.config.get("fidelities"),
            "metadata": self.config.get("metadata") or {},
            "archscout": self.config.get("archscout"),
            "counts": counts,
            "failures": failures,
            "front": front,
            "best": best,
            "metric_names": metric_names,
            "axes": self.axes.axes if self.axes is not None else [],
            "anytime": self._anytime(),
        }
        self._summary = (self.seq, out)
        return out

    def trials_after(self, after: int) -> list[dict[str, Any]]:
        """Trials changed by events after sequence number ``after`` (every trial for 0), by number."""
        return [t for _, t in sorted(self.trials.items()) if t["seq"] > after]

    def trial_detail(self, number: int) -> dict[str, Any]:
        """Trial ``number`` with its full failure message, whether it is on the front, its functional hash, the
        parts of its architecture to draw (:func:`~archscout.dashboard.arch.describe_arch`) and its fidelity curve:
        every trial of the same architecture, by fidelity.

        Raises:
            KeyError: no such trial.
        """
        t = self.trials[number]
        arch = self._archs.get(number)
        same = sorted((u for u in self.trials.values() if u["arch"] == t["arch"]),
                      key=lambda u: (u["fidelity"] if u["fidelity"] is not None else math.inf, u["number"]))
        return {
            **t,
            "error_full": self._errors.get(number, ""),
            "on_front": number in self.summary()["front"],
            "functional_hash": arch.functional_hash() if arch is not None else None,
            "drawing": describe_arch(self.space, arch) if self.space is not None and arch is not None else [],
            "fidelity_curve": [{"number": u["number"], "fidelity": u["fidelity"], "state": u["state"],
                                "metrics": u["metrics"]} for u in same],
            "study": self.name,
        }


class DashboardData:
    """Every study of a storage (or one), read on demand and shared by the server's threads.

    Args:
        storage: an open storage (read only; closed by :meth:`close` when ``owned``).
        study: show only this study (None: every study).
        owned: whether :meth:`close` closes the storage.

    Raises:
        StorageError: the storage holds no study, or not ``study``.
    """

    def __init__(self, storage: Storage, study: str | None = None, owned: bool = False) -> None:
        self.storage = storage
        self.owned = owned
        self._lock = threading.RLock()
        self._views: dict[str, StudyView] = {}
        self._last = -math.inf
        names = storage.study_names()
        if study is not None:
            if study not in names:
                raise StorageError(f"{storage.url} has no study {study!r}; it has {names}")
        elif not names:
            raise StorageError(f"{storage.url} holds no study yet; start one with `archscout search` or a study's "
                               "optimize(), then open the dashboard")
        self.only = study
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        """Read what was appended since the last read (at most once per :data:`REFRESH_S` unless ``force``)."""
        with self._lock:
            now = time.monotonic()
            if not force and now - self._last < REFRESH_S:
                return
            self._last = now
            names = [self.only] if self.only is not None else self.storage.study_names()
            for name in names:
                view = self._views.get(name)
                if view is None:
                    view = self._views[name] = StudyView(self.storage, name)
                view.refresh(self.storage)

    def view(self, name: str) -> StudyView:
        """The study ``name``, current.

        Raises:
            KeyError: no such study (or not the one shown).
        """
        self.refresh()
        with self._lock:
            return self._views[name]

    def counts(self) -> dict[str, Any]:
        """``{"total": trials in the storage (or the shown study), "studies": {name: trials}}``."""
        self.refresh()
        with self._lock:
            return self._counts()

    def studies(self) -> list[dict[str, Any]]:
        """Every shown study: name, trials, counts by state, objectives, space, strategy, front size, best trial."""
        self.refresh()
        with self._lock:
            out = []
            for v in self._views.values():
                s = v.summary()
                best = v.trials[s["best"]] if s["best"] is not None else None
                out.append({k: s[k] for k in ("name", "n_trials", "counts", "objectives", "constraints", "space",
                                              "strategy", "seq")}
                           | {"front_size": len(s["front"]),
                              "best": None if best is None else {"number": best["number"], "arch": best["arch"],
                                                                 "metrics": best["metrics"]}})
            return out

    def poll(self, name: str, after: int) -> dict[str, Any]:
        """What changed in study ``name`` since sequence number ``after``: the trial counts, and when anything
        changed the changed trials and the new summary.

        Raises:
            KeyError: no such study.
        """
        view = self.view(name)
        with self._lock:
            out: dict[str, Any] = {"seq": view.seq, **self._counts()}
            if view.seq != after:
                out["trials"] = view.trials_after(after)
                out["summary"] = view.summary()
            return out

    def summary(self, name: str) -> dict[str, Any]:
        """:meth:`StudyView.summary` of study ``name``, current.

        Raises:
            KeyError: no such study.
        """
        view = self.view(name)
        with self._lock:
            return view.summary()

    def trials(self, name: str, after: int = 0) -> dict[str, Any]:
        """``{"seq": last event, "trials": trials of study name changed after event after}``.

        Raises:
            KeyError: no such study.
        """
        view = self.view(name)
        with self._lock:
            return {"seq": view.seq, "trials": view.trials_after(after)}

    def trial(self, name: str, number: int) -> dict[str, Any]:
        """:meth:`StudyView.trial_detail` of trial ``number`` of study ``name``.

        Raises:
            KeyError: no such study or trial.
        """
        view = self.view(name)
        with self._lock:
            return view.trial_detail(number)

    def _counts(self) -> dict[str, Any]:
        per = {n: len(v.trials) for n, v in self._views.items()}
        return {"total": sum(per.values()), "studies": per}

    def close(self) -> None:
        """Close the storage if this object opened it."""
        if self.owned:
            self.storage.close()
