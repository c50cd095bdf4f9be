"""Framework overhead per trial: archscout vs Optuna, ask + tell on NAS-Bench-201, measured in one run.

Four setups, each driving a sequential ask -> table lookup -> tell loop on the NB201 CIFAR-10 table
(objective ``valid_acc_200ep``, maximised):

* ``archscout-rea-sqlite``: archscout ``rea`` with its durable SQLite storage (a file in a temp folder);
* ``archscout-rea-memory``: archscout ``rea`` in memory;
* ``optuna-tpe-sqlite``: Optuna ``TPESampler()`` (defaults) with its RDB storage (``sqlite:///`` a temp file);
* ``optuna-tpe-memory``: Optuna ``TPESampler()`` (defaults) in memory.

Optuna proposes the cell as six ``suggest_categorical`` edges over the five NB201 operations. The
reported number is wall time of the loop / trials (ms per trial): the table lookup is included (it is
microseconds); creating the study and its storage is not. Each setup is measured ``--repeats`` times with a
fresh storage and the median is reported; the repeats are interleaved (setup A, B, C, D, then again) so
that slow phases of a shared machine hit every setup alike. Ratios are Optuna / archscout for the same
storage kind.

Usage, from the repository root::

    .venv/bin/python benchmarks/overhead.py --trials 1000 --repeats 3
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np
from _results import write_json

from archscout.benchmarks import create_benchmark

DEFAULT_TABLE = os.path.join("..", "shared", "data", "nas-bench-201", "nb201_cifar10.csv")
OBJECTIVE = "valid_acc_200ep"
SETUPS = ("archscout-rea-sqlite", "archscout-rea-memory", "optuna-tpe-sqlite", "optuna-tpe-memory")


def run_archscout(bench, trials: int, storage: str | None, seed: int) -> float:
    """Seconds for ``trials`` rounds of ask + lookup + tell with archscout rea."""
    from archscout.study import create_study

    col = bench.columns[OBJECTIVE]
    study = create_study(bench.space, objectives=[OBJECTIVE], strategy="rea", storage=storage, seed=seed)
    t0 = time.perf_counter()
    for _ in range(trials):
        t = study.ask()
        study.tell(t, {OBJECTIVE: float(col[bench.row(t.arch)])})
    elapsed = time.perf_counter() - t0
    n = study.n_evaluated
    if n != trials:
        raise RuntimeError(f"archscout study holds {n} evaluated trials, expected {trials}")
    study.storage.close()
    if storage is not None:  # the records are on disk: reopen the file and replay it (not timed)
        from archscout.study import load_study

        reloaded = load_study(storage)
        n = reloaded.n_evaluated
        reloaded.storage.close()
        if n != trials:
            raise RuntimeError(f"archscout storage {storage!r} holds {n} evaluated trials, expected {trials}")
    return elapsed


def run_optuna(bench, trials: int, storage: str | None, seed: int) -> float:
    """Seconds for ``trials`` rounds of ask + suggest + lookup + tell with Optuna TPE."""
    import optuna

    ops = tuple(bench.space.params["cell"].ops)
    row = {a.values[0]: i for i, a in enumerate(bench.archs)}
    col = bench.columns[OBJECTIVE]
    study = optuna.create_study(direction="maximize", storage=storage,
                                sampler=optuna.samplers.TPESampler(seed=seed))
    t0 = time.perf_counter()
    for _ in range(trials):
        trial = study.ask()
        arch = tuple(trial.suggest_categorical(f"edge{i}", ops) for i in range(6))
        study.tell(trial, float(col[row[arch]]))
    elapsed = time.perf_counter() - t0
    n = len(study.trials)
    if n != trials:
        raise RuntimeError(f"optuna study holds {n} trials, expected {trials}")
    return elapsed


def measure(setup: str, bench, trials: int, seed: int) -> float:
    folder = tempfile.mkdtemp(prefix="archscout-overhead-")
    try:
        gc.collect()
        if setup == "archscout-rea-sqlite":
            return run_archscout(bench, trials, os.path.join(folder, "study.db"), seed)
        if setup == "archscout-rea-memory":
            return run_archscout(bench, trials, None, seed)
        if setup == "optuna-tpe-sqlite":
            return run_optuna(bench, trials, "sqlite:///" + os.path.join(folder, "optuna.db"), seed)
        if setup == "optuna-tpe-memory":
            return run_optuna(bench, trials, None, seed)
        raise ValueError(setup)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--table", default=DEFAULT_TABLE, help="NB201 CIFAR-10 CSV (default: %(default)s)")
    p.add_argument("--trials", type=int, default=1000, help="trials per measurement (default: %(default)s)")
    p.add_argument("--optuna-trials", type=int, default=None,
                   help="trials for the Optuna setups when fewer than --trials are affordable; the result is the "
                        "ms/trial measured at that many trials, not extrapolated (default: --trials)")
    p.add_argument("--repeats", type=int, default=3, help="measurements per setup; the median is reported")
    p.add_argument("--seed", type=int, default=0, help="strategy / sampler seed (default: %(default)s)")
    p.add_argument("--out", default=os.path.join("results", "overhead.json"), help="JSON output path")
    ns = p.parse_args(argv)
    opt_trials = ns.optuna_trials if ns.optuna_trials is not None else ns.trials
    if ns.trials < 1 or opt_trials < 1 or ns.repeats < 1:
        p.error("--trials, --optuna-trials and --repeats must be positive")

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t_start = time.perf_counter()
    bench = create_benchmark("nb201", table=ns.table, objective=OBJECTIVE)
    n_trials = {s: (opt_trials if s.startswith("optuna") else ns.trials) for s in SETUPS}
    seconds: dict[str, list[float]] = {s: [] for s in SETUPS}
    for r in range(ns.repeats):
        for s in SETUPS:
            sec = measure(s, bench, n_trials[s], ns.seed)
            seconds[s].append(sec)
            print(f"repeat {r + 1}/{ns.repeats} {s:<22} {n_trials[s]} trials in {sec:7.2f} s "
                  f"= {1000 * sec / n_trials[s]:.3f} ms/trial", file=sys.stderr, flush=True)

    ms = {s: [1000.0 * x / n_trials[s] for x in seconds[s]] for s in SETUPS}
    med = {s: statistics.median(v) for s, v in ms.items()}
    ratios = {
        "sqlite: optuna-tpe / archscout-rea": med["optuna-tpe-sqlite"] / med["archscout-rea-sqlite"],
        "memory: optuna-tpe / archscout-rea": med["optuna-tpe-memory"] / med["archscout-rea-memory"],
    }
    elapsed = time.perf_counter() - t_start

    lines = [
        "| setup | storage | trials | ms/trial (median) | ms/trial (all repeats) |",
        "|---|---|---:|---:|---|",
    ]
    for s in SETUPS:
        kind = "SQLite file" if s.endswith("sqlite") else "in memory"
        lines.append(f"| {s.rsplit('-', 1)[0]} | {kind} | {n_trials[s]} | {med[s]:.3f} | "
                     f"{', '.join(f'{x:.3f}' for x in ms[s])} |")
    lines += ["", "| ratio | value |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f}x |" for k, v in ratios.items()]
    print("\n".join(lines))
    if opt_trials != ns.trials:
        print(f"\nNote: Optuna ran {opt_trials} trials per measurement and archscout {ns.trials}; each ms/trial is "
              f"measured at the number of trials actually run (not extrapolated). TPE's cost per trial grows with "
              f"the number of trials, so the ratio is not a like-for-like comparison at {ns.trials} trials.")
    print(f"\n{ns.repeats} repeats, median reported; total elapsed {elapsed:.1f} s on {os.cpu_count()} CPUs")

    out = {
        "benchmark": "nb201",
        "table": bench.table,
        "objective": OBJECTIVE,
        "trials": n_trials,
        "repeats": ns.repeats,
        "seed": ns.seed,
        "ms_per_trial_median": med,
        "ms_per_trial_repeats": ms,
        "seconds_repeats": seconds,
        "ratios": ratios,
        "optuna_trials_differ": opt_trials != ns.trials,
        "timing": "wall time of the ask/lookup/tell loop divided by trials; study and storage creation excluded",
        "versions": {"optuna": optuna.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "elapsed_s": elapsed,
    }
    write_json(out, ns.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
