"""Statistics of the benchmark protocol: the summary of strategy x seed runs, reported fairly.

Following "NAS evaluation is frustratingly hard" (Yang et al., 2020) and the NAS best-practice checklist:
anytime curves of the best objective, regret to the table optimum, hit rate, queries to the optimum, the
report metric of the best-found architecture, and the relative improvement over the average random
architecture, ``RI = 100 * (acc - acc_rand) / acc_rand``, all as mean and std over seeds.

Two-objective runs (the objective and a cost column such as latency, minimised) report the hypervolume ratio
and the recall of the table's exact Pareto front; multi-fidelity runs count only full-fidelity results for
the incumbent and report the simulated time to reach regret levels; every checkpoint carries a two-sided
Mann-Whitney U test over seeds against a baseline strategy.

The runs come from :func:`archscout.benchmarks.runner.run_protocol`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from .runner import RunResult
from .tabular import TabularBenchmark

__all__ = ["DEFAULT_CHECKPOINTS", "DEFAULT_REGRET_LEVELS", "summarize"]

DEFAULT_CHECKPOINTS = (10, 25, 50, 100, 150, 200, 300, 500, 1000)
DEFAULT_REGRET_LEVELS = (1.0, 0.5, 0.3, 0.1, 0.05, 0.0)
_TOL = 1e-9
_CURVE_POINTS = 30  # query counts of the multi-objective anytime curve


def _curve(values: np.ndarray, budget: int, sign: float) -> np.ndarray:
    """Best-so-far (in the objective's own units) after each of ``budget`` queries; padded at the end
    when a run stopped early."""
    if len(values) == 0:
        return np.full(budget, np.nan)
    best = sign * np.maximum.accumulate(sign * values)
    if len(best) < budget:
        best = np.concatenate([best, np.full(budget - len(best), best[-1])])
    return best[:budget]


def _best_report(obj: np.ndarray, rep: np.ndarray, budget: int, sign: float) -> np.ndarray:
    """Report value of the best-objective architecture found so far (earliest among ties)."""
    out = np.empty(budget)
    best_i = 0
    for k in range(budget):
        if k < len(obj) and sign * obj[k] > sign * obj[best_i]:
            best_i = k
        out[k] = rep[best_i] if len(rep) else np.nan
    return out


def _full_mask(r: RunResult, max_fidelity: float | None) -> np.ndarray:
    """Which queries of ``r`` were at full fidelity (all of them outside multi-fidelity runs)."""
    n = len(r.objective)
    if r.fidelity is None or max_fidelity is None:
        return np.ones(n, dtype=bool)
    f = np.asarray(r.fidelity, dtype=float)
    return np.isnan(f) | (np.abs(f - float(max_fidelity)) <= _TOL * max(1.0, abs(float(max_fidelity))))


def _mann_whitney(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value of two samples; 1.0 when they cannot be told apart (identical
    values, or too few to test)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) == 0 or len(b) == 0:
        return 1.0
    both = np.concatenate([a, b])
    if np.all(both == both[0]):
        return 1.0
    import warnings

    from scipy.stats import mannwhitneyu

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    return 1.0 if not math.isfinite(p) else min(max(p, 0.0), 1.0)


def _first_time(reg: np.ndarray, times: np.ndarray, level: float) -> float | None:
    """Simulated time of the first query whose incumbent regret is <= ``level`` (None if never)."""
    hit = np.flatnonzero(reg <= level + _TOL)
    return float(times[hit[0]]) if len(hit) else None


def _mean_regret_vs_time(regrets: Sequence[np.ndarray], times: Sequence[np.ndarray],
                         start: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds of the step functions ``regret(t)`` (the regret after the last result that arrived
    by ``t``; ``start`` before the first), on the union of the seeds' arrival times."""
    grid = np.unique(np.concatenate([t for t in times if len(t)] or [np.zeros(0)]))
    if len(grid) == 0:
        return grid, grid
    vals = np.empty((len(regrets), len(grid)))
    for i, (reg, t) in enumerate(zip(regrets, times)):
        if len(t) == 0:
            vals[i] = start
            continue
        order = np.argsort(t, kind="stable")
        ts = t[order]
        rs = np.minimum.accumulate(reg[order])
        k = np.searchsorted(ts, grid, side="right") - 1
        vals[i] = np.where(k >= 0, rs[np.maximum(k, 0)], start)
    return grid, vals.mean(axis=0)


def summarize(runs: Sequence[RunResult], benchmark: TabularBenchmark, budget: int,
              checkpoints: Sequence[int] | None = None, cost_column: str | None = None,
              cost_mode: str | None = None, baseline: str | None = None,
              regret_levels: Sequence[float] | None = None,
              time_target: tuple[str, int] | None = None) -> dict:
    """Aggregate runs (from :func:`~archscout.benchmarks.runner.run_protocol`) into the protocol's summary
    (see the module docstring).

    Args:
        cost_column: the cost of two-objective runs (default: inferred, the runs carry costs); adds per
            checkpoint ``hv_ratio_mean/std`` and ``front_recall_mean/std`` against the exact front of the
            whole table (normalised by the true front's ideal and nadir, reference 1.1 on each axis).
        cost_mode: ``"cheap"`` or ``"evaluated"``, reported as is.
        baseline: strategy every other one is tested against (two-sided Mann-Whitney U over seeds of the
            per-seed regret, or hv ratio in two-objective runs), stored per checkpoint as ``vs_baseline``.
            Default: the second strategy when there are at least two, else no test.
        regret_levels: regret levels (objective units) for ``time_to_regret`` (default
            :data:`DEFAULT_REGRET_LEVELS`).
        time_target: ``(strategy, queries)``: the target is that strategy's mean regret at that many
            queries; every strategy gets ``time_to_target_s`` (first simulated time its mean regret curve
            reaches the target) and ``time_ratio`` (that time over the target strategy's mean simulated
            time at those queries).

    In multi-fidelity runs (runs carrying fidelities) only full-fidelity results count for the incumbent;
    before the first one, the incumbent is the table's worst architecture.

    Raises:
        ConfigError: a baseline or time-target strategy without runs, or time-target queries outside
            ``1..budget``; a cost column missing from the benchmark.
    """
    obj = benchmark.objective
    sign = obj.sign
    optimum = benchmark.optimum()
    report_col = benchmark.report or obj.name
    rand_mean = benchmark.mean(report_col)
    cps = sorted({c for c in (checkpoints or DEFAULT_CHECKPOINTS) if c <= budget} | {budget})
    by_strategy: dict[str, list[RunResult]] = {}
    for r in runs:
        by_strategy.setdefault(r.strategy, []).append(r)
    multi_objective = cost_column is not None or any(r.cost is not None for r in runs)
    multi_fidelity = any(r.fidelity is not None for r in runs)
    names = list(by_strategy)
    if baseline is None and len(names) >= 2:
        baseline = names[1]
    if baseline is not None and baseline not in by_strategy:
        raise ConfigError(f"baseline {baseline!r} is not one of the strategies run: {', '.join(names)}")
    levels = sorted({float(v) for v in (DEFAULT_REGRET_LEVELS if regret_levels is None else regret_levels)},
                    reverse=True)
    if any(not math.isfinite(v) or v < 0 for v in levels):
        raise ConfigError(f"regret levels must be numbers >= 0, got {list(regret_levels or [])}")
    out: dict[str, Any] = {
        "benchmark": benchmark.name,
        "table": benchmark.table,
        "objective": obj.name,
        "direction": obj.direction,
        "report": report_col,
        "budget": budget,
        "checkpoints": cps,
        "optimum": optimum,
        "random_sample_mean": rand_mean,
        "multi_objective": multi_objective,
        "multi_fidelity": multi_fidelity,
        "baseline": baseline,
        "regret_levels": levels,
        "strategies": {},
    }
    # the incumbent before the first full-fidelity result: the table's worst architecture
    worst_i = int(np.argmin(sign * benchmark.columns[obj.name]))
    worst, worst_rep = float(benchmark.columns[obj.name][worst_i]), float(benchmark.columns[report_col][worst_i])
    max_fid = benchmark.max_fidelity
    if multi_fidelity:
        out["fidelities"] = sorted(float(f) for f in benchmark.fidelities)
        out["max_fidelity"] = None if max_fid is None else float(max_fid)
    front = None
    directions = [obj.direction, "min"]
    if multi_objective:
        from ..pareto import front_recall, hv_ratio, true_front

        if cost_column is None:
            raise ConfigError("two-objective runs need the cost column: pass cost_column=NAME to summarize")
        if cost_column not in benchmark.columns:
            raise ConfigError(f"cost column {cost_column!r} was not loaded from {benchmark.table!r}")
        table_pts = np.column_stack([benchmark.columns[obj.name], benchmark.columns[cost_column]])
        front = true_front(table_pts, directions)
        out.update({"cost_column": cost_column, "cost_mode": cost_mode, "directions": directions,
                    "front_size": len(front.points)})
        grid = sorted(set(np.unique(np.linspace(1, budget, min(_CURVE_POINTS, budget)).round().astype(int)).tolist())
                      | set(cps))
    per_seed_stat: dict[str, dict[int, np.ndarray]] = {}  # strategy -> checkpoint -> per-seed value tested
    regret_runs: dict[str, list[np.ndarray]] = {}  # strategy -> per-seed regret after each query (raw length)
    for name, rs in by_strategy.items():
        masks = [_full_mask(r, max_fid) for r in rs]
        objs = [np.where(m, r.objective, worst) for r, m in zip(rs, masks)]
        reps = [np.where(m, r.report, worst_rep) for r, m in zip(rs, masks)]
        curves = np.array([_curve(o, budget, sign) for o in objs])  # (seeds, budget)
        regret = np.abs(optimum - curves)
        hit = regret <= _TOL
        reports = np.array([_best_report(o, rp, budget, sign) for o, rp in zip(objs, reps)])
        ri = 100.0 * (reports - rand_mean) / rand_mean
        q_opt = np.array([int(np.argmax(h)) + 1 if h.any() else budget + 1 for h in hit])
        n_trials = sum(len(r.objective) for r in rs)
        entry: dict[str, Any] = {
            "seeds": len(rs),
            "optimum": optimum,
            "random_sample_mean": rand_mean,
            "queries_to_optimum_mean": float(q_opt.mean()),
            "queries_to_optimum_median": float(np.median(q_opt)),
            "overhead_ms_per_trial": 1000.0 * sum(r.overhead_s for r in rs) / max(n_trials, 1),
            "checkpoints": {},
            "curve": {
                "regret_mean": regret.mean(axis=0).tolist(),
                "regret_std": regret.std(axis=0).tolist(),
                "hit_rate": hit.mean(axis=0).tolist(),
            },
            "per_seed": {
                "seed": [r.seed for r in rs],
                "queries_to_optimum": q_opt.tolist(),
                "final_regret": regret[:, -1].tolist(),
            },
        }
        raw_regret = [np.abs(optimum - sign * np.maximum.accumulate(sign * o)) if len(o) else np.zeros(0)
                      for o in objs]
        regret_runs[name] = raw_regret
        stats: dict[int, np.ndarray] = {}
        hv: dict[int, np.ndarray] = {}
        rec: dict[int, np.ndarray] = {}
        if front is not None:
            pts = [np.column_stack([r.objective, r.cost])[m] if r.cost is not None else np.zeros((0, 2))
                   for r, m in zip(rs, masks)]
            # the (objective, cost) points of the first c queries that count (full fidelity)
            counted = [np.cumsum(m) for m in masks]

            def upto(i: int, c: int, counted: list[np.ndarray] = counted, pts: list[np.ndarray] = pts) -> np.ndarray:
                n = int(counted[i][min(c, len(counted[i])) - 1]) if len(counted[i]) else 0
                return pts[i][:n]

            for c in sorted(set(grid)):
                hv[c] = np.array([hv_ratio(upto(i, c), front.points, directions) for i in range(len(rs))])
                rec[c] = np.array([front_recall(upto(i, c), front.points) for i in range(len(rs))])
            entry["curve"]["queries"] = list(grid)
            entry["curve"]["hv_ratio_mean"] = [float(hv[c].mean()) for c in grid]
            entry["curve"]["hv_ratio_std"] = [float(hv[c].std()) for c in grid]
            entry["curve"]["front_recall_mean"] = [float(rec[c].mean()) for c in grid]
            entry["per_seed"]["final_hv_ratio"] = hv[budget].tolist()
        for c in cps:
            k = c - 1
            times = [r.sim_time[min(k, len(r.sim_time) - 1)] for r in rs if len(r.sim_time)]
            cp = {
                "best_mean": float(curves[:, k].mean()),
                "regret_mean": float(regret[:, k].mean()),
                "regret_std": float(regret[:, k].std()),
                "hit_rate": float(hit[:, k].mean()),
                "report_mean": float(reports[:, k].mean()),
                "report_std": float(reports[:, k].std()),
                "ri_mean": float(ri[:, k].mean()),
                "ri_std": float(ri[:, k].std()),
                "sim_time_mean_s": float(np.mean(times)) if times else math.nan,
            }
            if front is not None:
                cp.update({
                    "hv_ratio_mean": float(hv[c].mean()), "hv_ratio_std": float(hv[c].std()),
                    "front_recall_mean": float(rec[c].mean()), "front_recall_std": float(rec[c].std()),
                })
                stats[c] = hv[c]
            else:
                stats[c] = regret[:, k]
            entry["checkpoints"][str(c)] = cp
        per_seed_stat[name] = stats
        # simulated time until the full-fidelity incumbent's regret reaches each level
        ttr: dict[str, Any] = {}
        for lv in levels:
            ts = [_first_time(reg, r.sim_time, lv) for reg, r in zip(raw_regret, rs)]
            got = np.array([t for t in ts if t is not None], dtype=float)
            ttr[_level_key(lv)] = {
                "mean_s": float(got.mean()) if len(got) else None,
                "median_s": float(np.median(got)) if len(got) else None,
                "reached": float(len(got) / len(rs)) if rs else 0.0,
            }
        entry["time_to_regret"] = ttr
        out["strategies"][name] = entry
    # significance against the baseline
    if baseline is not None:
        for name in names:
            if name == baseline:
                continue
            for c in cps:
                a, b = per_seed_stat[name][c], per_seed_stat[baseline][c]
                better = bool(a.mean() > b.mean()) if front is not None else bool(a.mean() < b.mean())
                out["strategies"][name]["checkpoints"][str(c)]["vs_baseline"] = {
                    "baseline": baseline, "p_value": _mann_whitney(a, b), "better": better,
                }
    if time_target is not None:
        out["time_target"] = _time_target(out, by_strategy, regret_runs, time_target, budget,
                                          abs(optimum - worst))
    return out


def _level_key(level: float) -> str:
    return repr(float(level))


def _time_target(out: dict, by_strategy: Mapping[str, list[RunResult]], regret_runs: Mapping[str, list[np.ndarray]],
                 time_target: tuple[str, int], budget: int, start: float) -> dict:
    tname, q = time_target
    if tname not in by_strategy:
        raise ConfigError(f"time-target strategy {tname!r} is not one of the strategies run: {', '.join(by_strategy)}")
    if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or not 1 <= q <= budget:
        raise ConfigError(f"time-target queries must be an integer in 1..{budget} (the budget), got {q!r}")
    q = int(q)
    target = float(np.mean(out["strategies"][tname]["curve"]["regret_mean"][q - 1]))
    t_ref = [r.sim_time[min(q, len(r.sim_time)) - 1] for r in by_strategy[tname] if len(r.sim_time)]
    t_ref_mean = float(np.mean(t_ref)) if t_ref else math.nan
    for name, rs in by_strategy.items():
        grid, mean_reg = _mean_regret_vs_time(regret_runs[name], [r.sim_time for r in rs], start)
        hit = np.flatnonzero(mean_reg <= target + _TOL)
        t = float(grid[hit[0]]) if len(hit) else None
        e = out["strategies"][name]
        e["time_to_target_s"] = t
        e["time_ratio"] = None if t is None or not t_ref_mean > 0 else t / t_ref_mean
    return {"strategy": tname, "queries": q, "regret": target, "time_s": t_ref_mean}
