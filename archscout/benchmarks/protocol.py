"""The benchmark protocol: strategies x seeds x budget on a tabular benchmark, reported fairly.

Following "NAS evaluation is frustratingly hard" (Yang et al., 2020) and the NAS best-practice checklist:
anytime curves of the best objective, regret to the table optimum, hit rate, queries to the optimum, the
report metric of the best-found architecture, and the relative improvement over the average random
architecture, ``RI = 100 * (acc - acc_rand) / acc_rand``, all as mean and std over seeds.

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

__all__ = ["RunResult", "run_one", "run_protocol", "summarize", "DEFAULT_CHECKPOINTS"]

DEFAULT_CHECKPOINTS = (10, 25, 50, 100, 150, 200, 300, 500, 1000)
_TOL = 1e-9


@dataclass(frozen=True)
class RunResult:
    """One strategy x seed run: per query (in the order results arrived), the objective value, the report
    value, and the simulated time the result arrived; plus the framework overhead."""

    strategy: str
    seed: int
    objective: np.ndarray  # shape (n_queries,)
    report: np.ndarray  # shape (n_queries,)
    sim_time: np.ndarray  # shape (n_queries,), simulated seconds
    overhead_s: float  # wall time of the loop minus time spent in the evaluator


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


def run_one(benchmark: TabularBenchmark, strategy: str | Mapping[str, Any], seed: int, budget: int,
            sim_workers: int = 1) -> RunResult:
    """Run one seeded study of ``budget`` queries on the benchmark (simulated clock, in-memory storage)."""
    from ..study import create_study

    spec = _spec(strategy)
    obj = benchmark.objective
    report = benchmark.report or obj.name
    study = create_study(benchmark.space, objectives=[obj], strategy=spec, seed=seed)
    ev = _TimedEvaluator(benchmark.evaluator(metrics=list(dict.fromkeys([obj.name, report]))))
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
    )


def _label(spec: Mapping[str, Any]) -> str:
    extra = ",".join(f"{k}={v}" for k, v in spec.items() if k != "name")
    return f"{spec['name']}({extra})" if extra else spec["name"]


_WORKER_BENCH: TabularBenchmark | None = None


def _init(bench: TabularBenchmark) -> None:
    global _WORKER_BENCH
    _WORKER_BENCH = bench


def _job(args: tuple) -> RunResult:
    strategy, seed, budget, sim_workers = args
    assert _WORKER_BENCH is not None
    return run_one(_WORKER_BENCH, strategy, seed, budget, sim_workers)


def run_protocol(
    benchmark: TabularBenchmark,
    strategies: Sequence[str | Mapping[str, Any]],
    seeds: int | Sequence[int],
    budget: int,
    workers: int = 1,
    sim_workers: int = 1,
) -> list[RunResult]:
    """Run every strategy with every seed; ``workers`` processes share the runs (results do not depend
    on it). Returns the runs ordered by strategy, then seed."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise ConfigError(f"budget must be a positive integer, got {budget!r}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ConfigError("give at least one seed (--seeds N with N >= 1)")
    if not strategies:
        raise ConfigError("give at least one strategy")
    specs = [_spec(s) for s in strategies]
    jobs = [(s, seed, budget, sim_workers) for s in specs for seed in seed_list]
    if workers <= 1 or len(jobs) == 1:
        return [run_one(benchmark, s, seed, budget, sim_workers) for s, seed, _, _ in jobs]
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


def summarize(runs: Sequence[RunResult], benchmark: TabularBenchmark, budget: int,
              checkpoints: Sequence[int] | None = None) -> dict:
    """Aggregate runs into the protocol's summary (see the module docstring)."""
    obj = benchmark.objective
    sign = obj.sign
    optimum = benchmark.optimum()
    report_col = benchmark.report or obj.name
    rand_mean = benchmark.mean(report_col)
    cps = sorted({c for c in (checkpoints or DEFAULT_CHECKPOINTS) if c <= budget} | {budget})
    by_strategy: dict[str, list[RunResult]] = {}
    for r in runs:
        by_strategy.setdefault(r.strategy, []).append(r)
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
        "strategies": {},
    }
    for name, rs in by_strategy.items():
        curves = np.array([_curve(r.objective, budget, sign) for r in rs])  # (seeds, budget)
        regret = np.abs(optimum - curves)
        hit = regret <= _TOL
        reports = np.array([_best_report(r.objective, r.report, budget, sign) for r in rs])
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
        for c in cps:
            k = c - 1
            times = [r.sim_time[min(k, len(r.sim_time) - 1)] for r in rs if len(r.sim_time)]
            entry["checkpoints"][str(c)] = {
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
        out["strategies"][name] = entry
    return out


def format_table(summary: Mapping[str, Any]) -> str:
    """A plain-text table of the summary, one line per strategy and checkpoint."""
    lines = [
        f"{summary['benchmark']}: objective {summary['objective']} ({summary['direction']}), optimum "
        f"{summary['optimum']:.4f}; report {summary['report']}, random-sample mean {summary['random_sample_mean']:.4f}",
        f"{'strategy':<14}{'queries':>8}{'regret':>18}{'hit rate':>10}{'report':>18}{'RI %':>9}",
    ]
    for name, e in summary["strategies"].items():
        for c, v in e["checkpoints"].items():
            lines.append(
                f"{name:<14}{c:>8}{v['regret_mean']:>10.4f} ± {v['regret_std']:<5.3f}{v['hit_rate']:>10.0%}"
                f"{v['report_mean']:>10.3f} ± {v['report_std']:<5.3f}{v['ri_mean']:>9.2f}"
            )
        lines.append(
            f"{name:<14}queries to optimum: mean {e['queries_to_optimum_mean']:.1f}, median "
            f"{e['queries_to_optimum_median']:.1f}; overhead {e['overhead_ms_per_trial']:.3f} ms/trial"
        )
    return "\n".join(lines)


def plot_anytime(summary: Mapping[str, Any], path: str) -> None:
    """Anytime regret curves (mean ± std over seeds) and hit rate, one line per strategy, as a PNG."""
    from ..reports import require_matplotlib

    plt = require_matplotlib()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, e in summary["strategies"].items():
        m = np.array(e["curve"]["regret_mean"])
        s = np.array(e["curve"]["regret_std"])
        x = np.arange(1, len(m) + 1)
        (line,) = ax1.plot(x, m, label=name)
        ax1.fill_between(x, np.maximum(m - s, 1e-4), m + s, color=line.get_color(), alpha=0.15)
        ax2.plot(x, 100 * np.array(e["curve"]["hit_rate"]), label=name, color=line.get_color())
    ax1.set_yscale("symlog", linthresh=1e-2)
    ax1.set_xlabel("queries")
    ax1.set_ylabel(f"regret of {summary['objective']}")
    ax1.set_title(f"{summary['benchmark']}: anytime regret (mean ± std)")
    ax2.set_xlabel("queries")
    ax2.set_ylabel("seeds that found the optimum (%)")
    ax2.set_title("hit rate")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
