"""Exact multi-objective metrics: hypervolume, hypervolume improvement, the true Pareto front of a table,
and the normalised measures the benchmark protocol reports (``hv_ratio``, ``front_recall``).

Conventions: the hypervolume functions take points of shape ``(n, m)`` whose every column is *minimised*
(the usual convention of the hypervolume literature); :func:`true_front`, :func:`hv_ratio` and
:func:`front_recall` take raw values together with a direction per column (``"max"`` / ``"min"``).

Two objectives, the common case, use exact ``O(n log n)`` numpy sweeps. Three or more objectives use
pymoo's exact hypervolume indicator (imported when first needed; ``pip install 'archscout[mo]'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .errors import ConfigError
from .objectives import pareto_mask

__all__ = [
    "ParetoFront",
    "front_recall",
    "hv_contributions",
    "hv_ratio",
    "hypervolume",
    "hypervolume_improvement",
    "normalize",
    "to_minimization",
    "true_front",
]

_RECALL_RTOL = 1e-12


# --- input checks -----------------------------------------------------------------------------------
def _points(points: object, what: str = "points", allow_nan: bool = False) -> np.ndarray:
    pts = np.asarray(points, dtype=float)
    if pts.ndim == 1 and pts.size == 0:
        return pts.reshape(0, 0)
    if pts.ndim != 2:
        raise ConfigError(f"{what} must be a 2-D array of shape (n, m), got shape {pts.shape}")
    if not allow_nan and np.isnan(pts).any():
        raise ConfigError(f"{what} contain NaN; drop failed evaluations before computing front metrics")
    return pts


def _ref(ref: object, m: int) -> np.ndarray:
    r = np.asarray(ref, dtype=float)
    if r.ndim == 0:
        r = np.full(m, float(r))
    if r.ndim != 1 or (m and len(r) != m):
        raise ConfigError(f"the reference point must have one coordinate per objective ({m}), got {ref!r}")
    if not np.isfinite(r).all():
        raise ConfigError(f"the reference point must be finite, got {ref!r}")
    return r


def _directions(directions: Sequence[str], m: int) -> np.ndarray:
    if isinstance(directions, str):
        directions = [directions]
    dirs = list(directions)
    if len(dirs) != m:
        raise ConfigError(f"give one direction per objective column ({m}), got {dirs!r}")
    bad = [d for d in dirs if d not in ("max", "min")]
    if bad:
        raise ConfigError(f"directions must be 'max' or 'min', got {bad!r}")
    return np.array([-1.0 if d == "max" else 1.0 for d in dirs])


def _hv_pymoo(pts: np.ndarray, ref: np.ndarray) -> float:
    from .errors import require

    require("pymoo", "mo")
    from pymoo.indicators.hv import HV

    return float(HV(ref_point=ref)(pts))


def _staircase(pts: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 2-D non-dominated staircase of the points strictly inside ``ref``: ``x`` strictly increasing,
    ``y`` strictly decreasing (weakly dominated points and copies dropped)."""
    inside = pts[np.all(pts < ref, axis=1)]
    if len(inside) == 0:
        return np.empty(0), np.empty(0)
    order = np.lexsort((inside[:, 1], inside[:, 0]))
    x, y = inside[order, 0], inside[order, 1]
    prev_min = np.concatenate(([np.inf], np.minimum.accumulate(y)[:-1]))
    keep = y < prev_min  # strictly below every point to the left (or at the same x, listed earlier)
    return x[keep], y[keep]


# --- hypervolume ------------------------------------------------------------------------------------
def hypervolume(points: object, ref: object) -> float:
    """Exact hypervolume dominated by ``points`` and bounded by ``ref`` (every column minimised).

    Args:
        points: shape ``(n, m)``; rows not strictly better than ``ref`` on every axis contribute nothing.
            ``+inf`` entries (e.g. failed evaluations) are allowed and contribute nothing.
        ref: reference point, shape ``(m,)`` (or a scalar used on every axis).

    Returns:
        the hypervolume (``0.0`` for an empty set).

    Raises:
        ConfigError: bad shapes, NaN values or a non-finite reference point.
        OptionalDependencyError: ``m >= 3`` and pymoo is not installed.
    """
    pts = _points(points)
    if pts.size == 0:
        return 0.0
    m = pts.shape[1]
    r = _ref(ref, m)
    if m == 1:
        inside = pts[pts[:, 0] < r[0], 0]
        return float(r[0] - inside.min()) if len(inside) else 0.0
    if m == 2:
        x, y = _staircase(pts, r)
        if len(x) == 0:
            return 0.0
        widths = np.diff(np.append(x, r[0]))
        return float(np.sum(widths * (r[1] - y)))
    inside = pts[np.all(pts < r, axis=1)]
    if len(inside) == 0:
        return 0.0
    return _hv_pymoo(inside, r)


def hypervolume_improvement(front: object, candidates: object, ref: object) -> np.ndarray:
    """Hypervolume improvement of each candidate added alone to ``front``:
    ``HV(front + [c]) - HV(front)`` (every column minimised).

    Two objectives are vectorised: ``O((n_front + n_cand) log n_front)``. For ``m != 2`` each candidate
    costs one exact hypervolume computation.

    Args:
        front: current points, shape ``(n, m)`` (need not be non-dominated; may be empty).
        candidates: shape ``(k, m)``.
        ref: reference point, shape ``(m,)``.

    Returns:
        shape ``(k,)``, non-negative.

    Raises:
        ConfigError: shapes or reference point do not match.
    """
    cand = _points(candidates, "candidates")
    if cand.size == 0:
        return np.zeros(len(cand))
    m = cand.shape[1]
    r = _ref(ref, m)
    f = _points(front, "front")
    if f.size == 0:
        f = np.empty((0, m))
    if f.shape[1] != m:
        raise ConfigError(f"front has {f.shape[1]} objectives but candidates have {m}")
    if m != 2:
        base = hypervolume(f, r)
        return np.array([max(hypervolume(np.vstack([f, c[None]]), r) - base, 0.0) for c in cand])
    xs, ys = _staircase(f, r)
    # Lower boundary L(x) of the dominated region: ref_y left of xs[0], ys[i] on [xs[i], xs[i+1]).
    bx = np.concatenate(([-np.inf], xs, [r[0]]))  # breakpoints b_0 .. b_{k+1}
    lv = np.concatenate(([r[1]], ys))  # level on [b_i, b_{i+1})
    # tail[i] = integral of L from b_i to ref_x (b_0 = -inf is never used as an integration bound)
    seg = np.diff(bx[1:]) * lv[1:]
    tail = np.concatenate(([np.nan], np.cumsum(seg[::-1])[::-1], [0.0]))
    cx, cy = cand[:, 0], cand[:, 1]
    inside = (cx < r[0]) & (cy < r[1])
    cx_c = np.minimum(cx, r[0])  # candidates outside the box give 0 below; clipping keeps the sums finite
    cy = np.minimum(cy, r[1])
    # upper bound u of the integration: the first breakpoint whose level is <= cy (else ref_x)
    j = np.searchsorted(-ys, -cy, side="left")  # first staircase point with y <= cy
    u = bx[j + 1]
    tail_u = tail[j + 1]
    # integral of L from cx to ref_x
    s = np.searchsorted(xs, cx_c, side="right")  # segment of cx: [b_s, b_{s+1})
    tail_c = tail[s + 1] + (bx[s + 1] - cx_c) * lv[s]
    gain = (tail_c - tail_u) - (u - cx_c) * cy
    out = np.where(inside & (cx_c < u), gain, 0.0)
    return np.maximum(out, 0.0)


def hv_contributions(points: object, ref: object) -> np.ndarray:
    """Exclusive hypervolume contribution of each point: ``HV(points) - HV(points without it)``
    (every column minimised). Dominated points and points with an exact copy contribute 0.

    Two objectives cost one vectorised improvement per non-dominated point (``O(k n log n)``); more
    objectives cost one exact hypervolume per point.

    Args:
        points: shape ``(n, m)``.
        ref: reference point, shape ``(m,)``.

    Returns:
        shape ``(n,)``.
    """
    pts = _points(points)
    n = len(pts)
    if pts.size == 0:
        return np.zeros(n)
    m = pts.shape[1]
    r = _ref(ref, m)
    if m != 2:
        total = hypervolume(pts, r)
        idx = np.arange(n)
        return np.array([max(total - hypervolume(pts[idx != i], r), 0.0) for i in range(n)])
    out = np.zeros(n)
    inside = np.flatnonzero(np.all(pts < r, axis=1))
    p = pts[inside]
    # only non-dominated points can contribute; each one's contribution is its improvement over the rest
    for i in np.flatnonzero(pareto_mask(-p)):
        out[inside[i]] = hypervolume_improvement(np.delete(p, i, axis=0), p[i][None], r)[0]
    return out


# --- fronts of whole tables -------------------------------------------------------------------------
class ParetoFront(NamedTuple):
    """The exact Pareto front of a table.

    ``indices``: sorted row indices of every non-dominated row (copies of a front point all count);
    ``points``: the distinct non-dominated points in the table's own units, shape ``(k, m)``, sorted.
    """

    indices: np.ndarray
    points: np.ndarray


def to_minimization(values: object, directions: Sequence[str]) -> np.ndarray:
    """``values`` (shape ``(n, m)``) with every ``"max"`` column negated, so that all are minimised."""
    pts = _points(values, "values")
    if pts.size == 0:
        return pts
    return pts * _directions(directions, pts.shape[1])


def true_front(values: object, directions: Sequence[str]) -> ParetoFront:
    """The exact Pareto front of a whole table (e.g. every architecture of a tabular benchmark).

    Two objectives use a sort-based sweep (``O(n log n)``; 15,625 rows take milliseconds); more use
    :func:`archscout.objectives.pareto_mask`.

    Args:
        values: shape ``(n, m)``, finite.
        directions: ``"max"`` or ``"min"`` per column.

    Raises:
        ConfigError: non-finite values, or directions that do not match the columns.
    """
    pts = _points(values, "values")
    if pts.size == 0:
        return ParetoFront(np.zeros(0, dtype=int), pts.reshape(0, pts.shape[1] if pts.ndim == 2 else 0))
    if not np.isfinite(pts).all():
        raise ConfigError("true_front needs finite values; drop rows with missing metrics first")
    mins = pts * _directions(directions, pts.shape[1])
    if pts.shape[1] == 2:
        order = np.lexsort((mins[:, 1], mins[:, 0]))
        x, y = mins[order, 0], mins[order, 1]
        n = len(x)
        new_group = np.ones(n, dtype=bool)
        new_group[1:] = x[1:] != x[:-1]
        start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
        cummin = np.minimum.accumulate(y)
        before = np.where(start > 0, cummin[np.maximum(start - 1, 0)], np.inf)  # best y at strictly smaller x
        keep = (y == y[start]) & (y < before)
        mask = np.zeros(n, dtype=bool)
        mask[order[keep]] = True
    else:
        mask = pareto_mask(-mins)
    idx = np.flatnonzero(mask)
    distinct = np.unique(pts[idx], axis=0)
    return ParetoFront(idx, distinct)


# --- normalised measures ----------------------------------------------------------------------------
def normalize(points: object, ideal: object, nadir: object) -> np.ndarray:
    """``(points - ideal) / (nadir - ideal)`` per column (minimisation form); a column where
    ``nadir == ideal`` is only shifted.

    Args:
        points: shape ``(n, m)``; ideal, nadir: shape ``(m,)``.
    """
    pts = _points(points)
    lo = np.asarray(ideal, dtype=float)
    hi = np.asarray(nadir, dtype=float)
    if pts.size == 0:
        return pts
    if lo.shape != (pts.shape[1],) or hi.shape != (pts.shape[1],):
        raise ConfigError(f"ideal and nadir need shape ({pts.shape[1]},), got {lo.shape} and {hi.shape}")
    span = hi - lo
    span = np.where(span > 0, span, 1.0)
    return (pts - lo) / span


def hv_ratio(evaluated_points: object, front_points: object, directions: Sequence[str],
             ref: object = (1.1, 1.1)) -> float:
    """Hypervolume of the evaluated points relative to the true front's, both normalised by the true
    front's ideal and nadir points (so the true front spans ``[0, 1]`` on each axis) with the reference
    point at ``ref`` (1.1 on each axis by default).

    Args:
        evaluated_points: raw objective values of the evaluated architectures, shape ``(n, m)``; rows with
            non-finite values (failed evaluations) are ignored.
        front_points: raw values of the true Pareto front (e.g. ``true_front(...).points``), shape ``(k, m)``.
        directions: ``"max"`` / ``"min"`` per column.
        ref: reference point in normalised units, shape ``(m,)`` or a scalar.

    Returns:
        a number in ``[0, 1]`` (1 when the true front was found).

    Raises:
        ConfigError: empty or mismatched inputs.
    """
    front = to_minimization(front_points, directions)
    if front.size == 0:
        raise ConfigError("hv_ratio needs a non-empty true front")
    ev = _points(evaluated_points, "evaluated points", allow_nan=True)
    m = front.shape[1]
    if ev.size == 0:
        return 0.0
    if ev.shape[1] != m:
        raise ConfigError(f"evaluated points have {ev.shape[1]} objectives but the front has {m}")
    ev = ev[np.isfinite(ev).all(axis=1)]
    if len(ev) == 0:
        return 0.0
    ev = to_minimization(ev, directions)
    ideal, nadir = front.min(axis=0), front.max(axis=0)
    r = _ref(ref, m)
    denom = hypervolume(normalize(front, ideal, nadir), r)
    if denom <= 0:
        raise ConfigError(f"the true front has zero hypervolume under the reference point {r.tolist()}")
    return float(hypervolume(normalize(ev, ideal, nadir), r) / denom)


def front_recall(evaluated_points: object, front_points: object) -> float:
    """Share of the true front's distinct points found among the evaluated points (equality of every
    coordinate up to a relative tolerance of 1e-12).

    Args:
        evaluated_points: shape ``(n, m)`` (rows with NaN match nothing); front_points: shape ``(k, m)``
            (duplicates are counted once).

    Returns:
        a number in ``[0, 1]``.
    """
    front = _points(front_points, "front points")
    if front.size == 0:
        raise ConfigError("front_recall needs a non-empty true front")
    front = np.unique(front, axis=0)
    ev = _points(evaluated_points, "evaluated points", allow_nan=True)
    if ev.size == 0:
        return 0.0
    if ev.shape[1] != front.shape[1]:
        raise ConfigError(f"evaluated points have {ev.shape[1]} objectives but the front has {front.shape[1]}")
    found = np.zeros(len(front), dtype=bool)
    chunk = max(1, 2_000_000 // max(len(front) * front.shape[1], 1))
    for s in range(0, len(ev), chunk):
        e = ev[s:s + chunk]
        close = np.abs(front[:, None, :] - e[None, :, :]) <= _RECALL_RTOL * np.abs(front[:, None, :])
        found |= close.all(axis=2).any(axis=1)
    return float(found.mean())
