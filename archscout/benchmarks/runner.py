"""Running the benchmark protocol: strategies x seeds x budget on a tabular benchmark.

Every run is a real :class:`~archscout.study.Study` (in-memory storage) on the simulated executor, so the
protocol measures exactly the engine users run. :func:`run_protocol` returns one :class:`RunResult` per
strategy and seed; :func:`archscout.benchmarks.stats.summarize` aggregates them and
:mod:`archscout.reports.bench` prints and plots the summary.
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

__all__ = ["COST_MODES", "RunResult", "make_study", "run_one", "run_protocol"]

COST_MODES = ("cheap", "evaluated")


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
    """Wraps a tabular evaluator and adds up the wall seconds spent in its lookups (``seconds``), so a run's
    framework overhead is its loop time minus this."""

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
    options: dict[str, Any] = {
        "cost_column": cost_column, "cost_mode": cost_mode, "multi_fidelity": bool(multi_fidelity),
    }
    jobs = [(s, seed, budget, sim_workers, options) for s in specs for seed in seed_list]
    if workers <= 1 or len(jobs) == 1:
        return [run_one(benchmark, s, seed, budget, sim_workers, **options) for s, seed, _, _, _ in jobs]
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init, initargs=(benchmark,)) as pool:
        return list(pool.map(_job, jobs, chunksize=max(1, len(jobs) // (workers * 8))))
