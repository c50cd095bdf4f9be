"""archscout strategies (rea, ls, random) vs Optuna's TPESampler on NAS-Bench-201 CIFAR-10, in one run.

Every method gets the same table, the same objective (``valid_acc_200ep``, maximised), the same seeds and
the same query budget. archscout runs through :func:`archscout.benchmarks.runner.run_protocol`; Optuna
(TPESampler, default settings, ``seed`` = run seed, in-memory storage) searches the NB201 cell expressed as
six categorical parameters, one per edge, whose choices are the five NB201 operations. Every trial counts as
one query, including an architecture that TPE proposes a second time.

All runs, archscout's and Optuna's, are scored by the same code (:func:`archscout.benchmarks.stats.summarize`):

* regret: table maximum of the objective minus the best objective found so far (mean ± std over seeds);
* hit rate: share of seeds whose best found equals the table optimum;
* test: ``test_acc_200ep`` of the best-validation architecture found so far (mean over seeds);
* queries to optimum: first query that reached the optimum, ``budget + 1`` when it was never reached.

Usage, from the repository root::

    .venv/bin/python benchmarks/compare_optuna.py --seeds 30 --budget 300
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time

import numpy as np
from _results import write_json

from archscout.benchmarks import create_benchmark
from archscout.benchmarks.runner import RunResult, run_protocol
from archscout.benchmarks.stats import summarize

DEFAULT_TABLE = os.path.join("..", "shared", "data", "nas-bench-201", "nb201_cifar10.csv")
OBJECTIVE = "valid_acc_200ep"
REPORT = "test_acc_200ep"
STRATEGIES = ("rea", "ls", "random")
OPTUNA_NAME = "optuna-tpe"
CHECKPOINTS = (25, 50, 100, 150, 200, 300)
_TOL = 1e-9  # the tolerance summarize() uses for "found the optimum"

# State shared with the Optuna worker processes (set before the pool forks, or by the pool initializer).
_OPS: tuple[str, ...] = ()
_ROW: dict[tuple[str, ...], int] = {}
_OBJ: np.ndarray = np.empty(0)
_REP: np.ndarray = np.empty(0)


def _init_optuna_worker(ops, row, obj, rep) -> None:
    global _OPS, _ROW, _OBJ, _REP
    _OPS, _ROW, _OBJ, _REP = ops, row, obj, rep


def _optuna_run(args: tuple[int, int]) -> dict:
    """One seeded Optuna TPE study of ``budget`` trials; returns the per-trial objective and report values."""
    seed, budget = args
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows: list[int] = []
    lookup_s = 0.0

    def objective(trial) -> float:
        nonlocal lookup_s
        ops = tuple(trial.suggest_categorical(f"edge{i}", _OPS) for i in range(6))
        t = time.perf_counter()
        i = _ROW[ops]
        rows.append(i)
        value = float(_OBJ[i])
        lookup_s += time.perf_counter() - t
        return value

    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=budget)
    wall = time.perf_counter() - t0
    idx = np.array(rows, dtype=int)
    return {
        "seed": seed,
        "objective": _OBJ[idx],
        "report": _REP[idx],
        "overhead_s": wall - lookup_s,
        "wall_s": wall,
        "unique": len(set(rows)),
    }


def run_optuna(bench, seeds: list[int], budget: int, workers: int) -> tuple[list[RunResult], list[int]]:
    ops = tuple(bench.space.params["cell"].ops)
    row = {a.values[0]: i for i, a in enumerate(bench.archs)}
    if len(row) != len(bench.archs):
        raise SystemExit("the table's architectures do not map one-to-one to 6-edge op tuples")
    obj = np.asarray(bench.columns[OBJECTIVE], dtype=float)
    rep = np.asarray(bench.columns[REPORT], dtype=float)
    init_args = (ops, row, obj, rep)
    jobs = [(s, budget) for s in seeds]
    if workers <= 1:
        _init_optuna_worker(*init_args)
        outs = [_optuna_run(j) for j in jobs]
    else:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with multiprocessing.get_context(method).Pool(workers, _init_optuna_worker, init_args) as pool:
            outs = pool.map(_optuna_run, jobs, chunksize=1)
    runs = [
        RunResult(
            strategy=OPTUNA_NAME,
            seed=o["seed"],
            objective=o["objective"],
            report=o["report"],
            sim_time=np.arange(1, len(o["objective"]) + 1, dtype=float),  # no simulated clock: query index
            overhead_s=o["overhead_s"],
        )
        for o in outs
    ]
    return runs, [o["unique"] for o in outs]


def _check(summary: dict, runs: list[RunResult], optimum: float, budget: int) -> None:
    """Recompute the final hit rate and queries to optimum from the raw runs (guards the shared scoring)."""
    by: dict[str, list[RunResult]] = {}
    for r in runs:
        by.setdefault(r.strategy, []).append(r)
    for name, rs in by.items():
        best = np.array([r.objective[:budget].max() for r in rs])
        hit = float(np.mean(np.abs(best - optimum) <= _TOL))
        q = [int(np.argmax(np.abs(r.objective - optimum) <= _TOL)) + 1 if np.any(np.abs(r.objective - optimum) <= _TOL)
             else budget + 1 for r in rs]
        e = summary["strategies"][name]
        assert abs(e["checkpoints"][str(budget)]["hit_rate"] - hit) < 1e-12, (name, hit)
        assert abs(e["queries_to_optimum_mean"] - float(np.mean(q))) < 1e-9, (name, q)


def markdown(summary: dict, methods: list[str], wall: dict[str, float]) -> str:
    cps = list(summary["checkpoints"])
    lines = [
        f"Objective `{summary['objective']}` (max), table optimum {summary['optimum']:.4f}; "
        f"report `{summary['report']}` of the best-validation architecture found.",
        "",
        "| method | queries | regret (mean ± std) | hit rate | test acc of best (mean) |",
        "|---|---:|---:|---:|---:|",
    ]
    for m in methods:
        e = summary["strategies"][m]
        for c in cps:
            v = e["checkpoints"][str(c)]
            lines.append(
                f"| {m} | {c} | {v['regret_mean']:.3f} ± {v['regret_std']:.3f} | {v['hit_rate']:.0%} | "
                f"{v['report_mean']:.3f} |"
            )
    lines += [
        "",
        "| method | queries to optimum: mean | median | seeds | wall time of the method's runs (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for m in methods:
        e = summary["strategies"][m]
        lines.append(
            f"| {m} | {e['queries_to_optimum_mean']:.1f} | {e['queries_to_optimum_median']:.1f} | {e['seeds']} | "
            f"{wall[m]:.1f} |"
        )
    lines.append("")
    lines.append(f"(queries to optimum counts {summary['budget'] + 1} for a seed that never reached the optimum)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--table", default=DEFAULT_TABLE, help="NB201 CIFAR-10 CSV (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=30, help="seeds 0..N-1 for every method (default: %(default)s)")
    p.add_argument("--budget", type=int, default=300, help="queries per run (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="processes for the runs (default: %(default)s)")
    p.add_argument("--out", default=os.path.join("results", "compare_optuna.json"), help="JSON output path")
    ns = p.parse_args(argv)
    if ns.seeds < 1 or ns.budget < 1 or ns.workers < 1:
        p.error("--seeds, --budget and --workers must be positive")

    import optuna

    t_start = time.perf_counter()
    bench = create_benchmark("nb201", table=ns.table, objective=OBJECTIVE, report=REPORT)
    seeds = list(range(ns.seeds))
    checkpoints = sorted({c for c in CHECKPOINTS if c <= ns.budget} | {ns.budget})

    wall: dict[str, float] = {}
    runs: list[RunResult] = []
    for s in STRATEGIES:  # one strategy at a time, so each gets its own wall time
        t = time.perf_counter()
        runs += run_protocol(bench, [s], seeds=seeds, budget=ns.budget, workers=ns.workers)
        wall[s] = time.perf_counter() - t
        print(f"archscout {s}: {ns.seeds} seeds x {ns.budget} queries in {wall[s]:.1f} s", file=sys.stderr)
    t = time.perf_counter()
    opt_runs, unique = run_optuna(bench, seeds, ns.budget, ns.workers)
    wall[OPTUNA_NAME] = time.perf_counter() - t
    print(f"optuna TPE: {ns.seeds} seeds x {ns.budget} trials in {wall[OPTUNA_NAME]:.1f} s", file=sys.stderr)
    runs += opt_runs

    summary = summarize(runs, bench, ns.budget, checkpoints)
    _check(summary, runs, bench.optimum(), ns.budget)
    methods = list(STRATEGIES) + [OPTUNA_NAME]
    elapsed = time.perf_counter() - t_start

    for e in summary["strategies"].values():
        e.pop("curve", None)  # per-query curves are long; the checkpoints carry the comparison
    summary["methods"] = {
        **{s: f"archscout strategy {s!r} via run_protocol (in-memory study, simulated executor)" for s in STRATEGIES},
        OPTUNA_NAME: f"optuna {optuna.__version__} TPESampler() defaults, seed = run seed, in-memory study, "
                     "6 suggest_categorical edges over the 5 NB201 ops",
    }
    summary["optuna_unique_archs_per_run"] = {"mean": float(np.mean(unique)), "min": int(min(unique)),
                                              "max": int(max(unique))}
    summary["wall_s"] = wall
    summary["elapsed_s"] = elapsed
    summary["seeds"] = ns.seeds
    summary["workers"] = ns.workers

    print(markdown(summary, methods, wall))
    print(f"\nOptuna TPE distinct architectures per {ns.budget}-trial run: mean {np.mean(unique):.1f} "
          f"(min {min(unique)}, max {max(unique)})")
    print(f"total elapsed {elapsed:.1f} s on {os.cpu_count()} CPUs, {ns.workers} worker processes")
    write_json(summary, ns.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
