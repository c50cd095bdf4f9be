"""The benchmark protocol: strategies x seeds x budget on a tabular benchmark, reported fairly.

Following "NAS evaluation is frustratingly hard" (Yang et al., 2020) and the NAS best-practice checklist:
anytime curves of the best objective, regret to the table optimum, hit rate, queries to the optimum, the
report metric of the best-found architecture, and the relative improvement over the average random
architecture, ``RI = 100 * (acc - acc_rand) / acc_rand``, all as mean and std over seeds.

Two-objective runs (the objective and a cost column such as latency, minimised) report the hypervolume ratio
and the recall of the table's exact Pareto front; multi-fidelity runs count only full-fidelity results for
the incumbent and report the simulated time to reach regret levels; every checkpoint carries a two-sided
Mann-Whitney U test over seeds against a baseline strategy.

Every run is a real :class:`~archscout.study.Study` (in-memory storage) on the simulated executor, so the
protocol measures exactly the engine users run.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..execution import SimulatedExecutor
from ..strategies import STRATEGIES
from .tabular import TabularBenchmark

__all__ = [
    "RunResult", "run_one", "run_protocol", "summarize", "format_table", "plot_anytime", "make_study",
    "DEFAULT_CHECKPOINTS", "DEFAULT_REGRET_LEVELS", "COST_MODES",
]

DEFAULT_CHECKPOINTS = (10, 25, 50, 100, 150, 200, 300, 500, 1000)
DEFAULT_REGRET_LEVELS = (1.0, 0.5, 0.3, 0.1, 0.05, 0.0)
COST_MODES = ("cheap", "evaluated")
_TOL = 1e-9
_CURVE_POINTS = 30  # query counts of the multi-objective anytime curve


@dataclass(frozen=True)
class RunResult:
    """One strategy x seed run: per query (in the order results arrived), the objective value, the report
    value, and the simulated time the result arrived; plus the framework overhead.

    ``cost``: per query, the cost of a two-objective run (e.g. latency in ms), else None.
    ``fidelity``: per query, the trial's fidelity (NaN for full fidelity asked as None) in a
    multi-fidelity run, else None.
    """

    strategy: str
    seed: int
    objective: np.ndarray  # shape (n_queries,)
    report: np.ndarray  # shape (n_queries,)
    sim_time: np.ndarray  # shape (n_queries,), simulated seconds
    overhead_s: float  # wall time of the loop minus time spent in the evaluator
    cost: np.ndarray | None = None  # shape (n_queries,)
    fidelity: np.ndarray | None = None  # shape (n_queries,)


class _TimedEvaluator:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0

    def lookup(self, arch, fidelity=None):
        t = time.perf_counter()
        try:
            return self.inner.lookup(arch, fidelity)
        finally:
            self.seconds += time.perf_counter() - t

    evaluate = lookup

    def duration(self, arch, fidelity=None):
        return self.inner.duration(arch, fidelity)


def _spec(strategy: str | Mapping[str, Any]) -> dict:
    spec = {"name": strategy} if isinstance(strategy, str) else dict(strategy)
    STRATEGIES.get(spec["name"])  # raises UnknownNameError with the available names
    return spec


def _check_options(benchmark: TabularBenchmark, cost_column: str | None, cost_mode: str,
                   multi_fidelity: bool) -> None:
    if cost_mode not in COST_MODES:
        raise ConfigError(f"cost_mode must be 'cheap' (cost known before evaluation) or 'evaluated' (revealed "
                          f"with the evaluation), got {cost_mode!r}")
    if cost_column is not None:
        if cost_column not in benchmark.columns:
            raise ConfigError(f"cost column {cost_column!r} was not loaded from {benchmark.table!r}; load it "
                              f"with cost_columns=[{cost_column!r}] (--cost-table PATH --cost-column NAME)")
        if cost_column == benchmark.objective.name:
            raise ConfigError(f"cost column {cost_column!r} is the objective; pick another column")
    if multi_fidelity and not benchmark.fidelities:
        raise ConfigError(f"benchmark {benchmark.name!r} has no fidelities; drop multi_fidelity (--multi-fidelity)")


def make_study(benchmark: TabularBenchmark, strategy: str | Mapping[str, Any], seed: int,
               cost_column: str | None = None, cost_mode: str = "cheap", multi_fidelity: bool = False):
    """The in-memory study and the evaluator one protocol run uses.

    With ``cost_column`` the study has two objectives, the benchmark's objective and the cost (minimised).
    ``cost_mode="cheap"`` attaches the cost as a cheap cost model (known before evaluation, visible to the
    strategy through ``known_costs``) and the evaluator returns only the objective metrics;
    ``"evaluated"`` makes the evaluator return the cost with the metrics. ``multi_fidelity`` gives the
    study the benchmark's fidelities.

    Returns:
        ``(study, evaluator)``.

    Raises:
        ConfigError: an unknown cost mode, a cost column that was not loaded, or fidelities the
            benchmark lacks.
    """
    from ..objectives import Objective
    from ..study import create_study

    _check_options(benchmark, cost_column, cost_mode, multi_fidelity)
    spec = _spec(strategy)
    obj = benchmark.objective
    report = benchmark.report or obj.name
    metrics = [obj.name, report]
    objectives = [obj]
    cost_models = None
    if cost_column is not None:
        objectives = [obj, Objective(cost_column, "min")]
        if cost_mode == "cheap":
            cost_models = {cost_column: benchmark.cost_model(cost_column)}
        else:
            metrics.append(cost_column)
    fids = sorted(benchmark.fidelities) if multi_fidelity else None
    study = create_study(benchmark.space, objectives=objectives, strategy=spec, seed=seed,
                         cost_models=cost_models, fidelities=fids)
    return study, benchmark.evaluator(metrics=list(dict.fromkeys(metrics)))


def run_one(benchmark: TabularBenchmark, strategy: str | Mapping[str, Any], seed: int, budget: int,
            sim_workers: int = 1, cost_column: str | None = None, cost_mode: str = "cheap",
            multi_fidelity: bool = False) -> RunResult:
    """Run one seeded study of ``budget`` queries on the benchmark (simulated clock, in-memory storage).

    ``cost_column``, ``cost_mode`` and ``multi_fidelity`` are those of :func:`make_study`; in a
    multi-fidelity run the budget counts trials of any fidelity."""
    spec = _spec(strategy)
    obj = benchmark.objective
    report = benchmark.report or obj.name
    study, inner = make_study(benchmark, spec, seed, cost_column, cost_mode, multi_fidelity)
    ev = _TimedEvaluator(inner)
    t0 = time.perf_counter()
    done = study.optimize(ev, budget=budget, executor=SimulatedExecutor(workers=sim_workers))
    wall = time.perf_counter() - t0
    comp = [t for t in done if t.state == "complete"]
    return RunResult(
        strategy=spec["name"] if isinstance(strategy, str) else _label(spec),
        seed=seed,
        objective=np.array([t.metrics[obj.name] for t in comp]),
        report=np.array([t.metrics[report] for t in comp]),
        sim_time=np.array([t.finished_at for t in comp]),
        overhead_s=wall - ev.seconds,
        cost=None if cost_column is None else np.array([t.metrics[cost_column] for t in comp], dtype=float),
        fidelity=None if not multi_fidelity else np.array(
            [math.nan if t.fidelity is None else float(t.fidelity) for t in comp], dtype=float),
    )


def _label(spec: Mapping[str, Any]) -> str:
    extra = ",".join(f"{k}={v}" for k, v in spec.items() if k != "name")
    return f"{spec['name']}({extra})" if extra else spec["name"]


_WORKER_BENCH: TabularBenchmark | None = None


def _init(bench: TabularBenchmark) -> None:
    global _WORKER_BENCH
    _WORKER_BENCH = bench


def _job(args: tuple) -> RunResult:
    strategy, seed, budget, sim_workers, options = args
    assert _WORKER_BENCH is not None
    return run_one(_WORKER_BENCH, strategy, seed, budget, sim_workers, **options)


def run_protocol(
    benchmark: TabularBenchmark,
    strategies: Sequence[str | Mapping[str, Any]],
    seeds: int | Sequence[int],
    budget: int,
    workers: int = 1,
    sim_workers: int = 1,
    cost_column: str | None = None,
    cost_mode: str = "cheap",
    multi_fidelity: bool = False,
) -> list[RunResult]:
    """Run every strategy with every seed; ``workers`` processes share the runs (results do not depend
    on it). Returns the runs ordered by strategy, then seed.

    ``cost_column`` makes every run two-objective (objective, cost minimised), with the cost known before
    evaluation (``cost_mode="cheap"``) or revealed with it (``"evaluated"``); ``multi_fidelity`` gives the
    studies the benchmark's fidelities (the budget then counts trials of any fidelity). See :func:`make_study`.

    Raises:
        ConfigError: bad budget, seeds, strategies or options.
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise ConfigError(f"budget must be a positive integer, got {budget!r}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ConfigError("give at least one seed (--seeds N with N >= 1)")
    if not strategies:
        raise ConfigError("give at least one strategy")
    specs = [_spec(s) for s in strategies]
    _check_options(benchmark, cost_column, cost_mode, multi_fidelity)
    options = {"cost_column": cost_column, "cost_mode": cost_mode, "multi_fidelity": bool(multi_fidelity)}
    jobs = [(s, seed, budget, sim_workers, options) for s in specs for seed in seed_list]
    if workers <= 1 or len(jobs) == 1:
        return [run_one(benchmark, s, seed, budget, sim_workers, **options) for s, seed, _, _, _ in jobs]
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init, initargs=(benchmark,)) as pool:
        return list(pool.map(_job, jobs, chunksize=max(1, len(jobs) // (workers * 8))))


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
    """Aggregate runs into the protocol's summary (see the module docstring).

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
                    "front_size": int(len(front.points))})
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

            def upto(i: int, c: int) -> np.ndarray:
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


def _fmt_s(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def format_table(summary: Mapping[str, Any]) -> str:
    """A plain-text table of the summary, one line per strategy and checkpoint (hv ratio and front recall
    for two-objective runs, regret and hit rate otherwise), then the tests against the baseline and, for
    multi-fidelity runs or a time target, the simulated times to regret levels."""
    mo = bool(summary.get("multi_objective"))
    lines = [
        f"{summary['benchmark']}: objective {summary['objective']} ({summary['direction']}), optimum "
        f"{summary['optimum']:.4f}; report {summary['report']}, random-sample mean {summary['random_sample_mean']:.4f}",
    ]
    if mo:
        lines.append(f"two objectives: {summary['objective']} ({summary['direction']}) and {summary['cost_column']} "
                     f"(min), cost mode {summary.get('cost_mode')}; true front: {summary['front_size']} points")
        lines.append(f"{'strategy':<14}{'queries':>8}{'hv ratio':>18}{'front recall':>18}{'regret':>18}")
    else:
        lines.append(f"{'strategy':<14}{'queries':>8}{'regret':>18}{'hit rate':>10}{'report':>18}{'RI %':>9}")
    if summary.get("multi_fidelity"):
        lines.insert(1, f"multi-fidelity at {summary.get('fidelities')}: only full-fidelity results count; "
                        "queries count trials of any fidelity")
    for name, e in summary["strategies"].items():
        for c, v in e["checkpoints"].items():
            if mo:
                lines.append(
                    f"{name:<14}{c:>8}{v['hv_ratio_mean']:>10.4f} ± {v['hv_ratio_std']:<5.3f}"
                    f"{v['front_recall_mean']:>10.3f} ± {v['front_recall_std']:<5.3f}"
                    f"{v['regret_mean']:>10.4f} ± {v['regret_std']:<5.3f}"
                )
            else:
                lines.append(
                    f"{name:<14}{c:>8}{v['regret_mean']:>10.4f} ± {v['regret_std']:<5.3f}{v['hit_rate']:>10.0%}"
                    f"{v['report_mean']:>10.3f} ± {v['report_std']:<5.3f}{v['ri_mean']:>9.2f}"
                )
        lines.append(
            f"{name:<14}queries to optimum: mean {e['queries_to_optimum_mean']:.1f}, median "
            f"{e['queries_to_optimum_median']:.1f}; overhead {e['overhead_ms_per_trial']:.3f} ms/trial"
        )
    base = summary.get("baseline")
    if base is not None:
        what = "hv ratio" if mo else "regret"
        lines.append(f"two-sided Mann-Whitney U over seeds of the {what} vs {base} (p at each checkpoint; "
                     "+ mean better, - worse):")
        for name, e in summary["strategies"].items():
            if name == base:
                continue
            parts = [f"{c}:{v['vs_baseline']['p_value']:.3g}{'+' if v['vs_baseline']['better'] else '-'}"
                     for c, v in e["checkpoints"].items() if "vs_baseline" in v]
            lines.append(f"  {name:<14}" + " ".join(parts))
    if summary.get("multi_fidelity") or "time_target" in summary:
        lines.append("simulated seconds until the full-fidelity regret reaches each level (mean; share of seeds):")
        for name, e in summary["strategies"].items():
            parts = [f"<={lv}: {_fmt_s(v['mean_s'])} ({v['reached']:.0%})" for lv, v in e["time_to_regret"].items()]
            lines.append(f"  {name:<14}" + ", ".join(parts))
    tt = summary.get("time_target")
    if tt:
        lines.append(f"time target: mean regret {tt['regret']:.4f} of {tt['strategy']} at {tt['queries']} queries "
                     f"({tt['time_s']:.0f} simulated s)")
        for name, e in summary["strategies"].items():
            ratio = e.get("time_ratio")
            lines.append(f"  {name:<14}reached at {_fmt_s(e.get('time_to_target_s'))} s"
                         + ("" if ratio is None else f", {ratio:.3f} x the target strategy's time"))
    return "\n".join(lines)


def plot_anytime(summary: Mapping[str, Any], path: str) -> None:
    """Anytime curves, one line per strategy, as a PNG: regret (mean ± std over seeds) and hit rate, or,
    for two-objective runs, hv ratio (mean ± std) and true-front recall."""
    from ..reports import require_matplotlib

    plt = require_matplotlib()
    mo = bool(summary.get("multi_objective"))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, e in summary["strategies"].items():
        if mo:
            x = np.array(e["curve"]["queries"])
            m = np.array(e["curve"]["hv_ratio_mean"])
            s = np.array(e["curve"]["hv_ratio_std"])
            (line,) = ax1.plot(x, m, label=name)
            ax1.fill_between(x, np.maximum(m - s, 0.0), np.minimum(m + s, 1.0), color=line.get_color(), alpha=0.15)
            ax2.plot(x, 100 * np.array(e["curve"]["front_recall_mean"]), label=name, color=line.get_color())
            continue
        m = np.array(e["curve"]["regret_mean"])
        s = np.array(e["curve"]["regret_std"])
        x = np.arange(1, len(m) + 1)
        (line,) = ax1.plot(x, m, label=name)
        ax1.fill_between(x, np.maximum(m - s, 1e-4), m + s, color=line.get_color(), alpha=0.15)
        ax2.plot(x, 100 * np.array(e["curve"]["hit_rate"]), label=name, color=line.get_color())
    if mo:
        ax1.set_ylabel("hypervolume ratio")
        ax1.set_title(f"{summary['benchmark']}: {summary['objective']} vs {summary['cost_column']} "
                      f"({summary.get('cost_mode')} cost)")
        ax2.set_ylabel("true Pareto front found (%)")
        ax2.set_title(f"front recall ({summary['front_size']} points)")
    else:
        ax1.set_yscale("symlog", linthresh=1e-2)
        ax1.set_ylabel(f"regret of {summary['objective']}")
        ax1.set_title(f"{summary['benchmark']}: anytime regret (mean ± std)")
        ax2.set_ylabel("seeds that found the optimum (%)")
        ax2.set_title("hit rate")
    for ax in (ax1, ax2):
        ax.set_xlabel("queries")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
