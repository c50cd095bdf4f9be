"""Parallel speed-up of the Ray executor: 2 workers vs 1, with an evaluator that really waits.

Each trial of a random search on NB201 sleeps ``--sleep`` seconds (no CPU: the speed-up measures how well
the executor keeps its workers busy, not the machine's cores) and returns a score. A fixed budget of
``--trials`` trials runs through ``Study.optimize`` with ``RayExecutor(workers=1)`` and
``RayExecutor(workers=2)`` on one local Ray (2 CPUs, started once, warmed up first), and for reference with
``ProcessExecutor(workers=1)`` and ``ProcessExecutor(workers=2)``. The wall time of ``optimize`` (executor
start included) is measured ``--repeats`` times, interleaved, and the median reported; the speed-up is
wall(1 worker) / wall(2 workers). The ideal wall time is trials * sleep / workers.

Usage, from the repository root::

    .venv/bin/python benchmarks/ray_scaling.py --trials 24 --sleep 0.5 --out results/ray_scaling.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

from _results import write_json

import archscout as asc
from archscout.execution import ProcessExecutor, RayExecutor


class Sleeper:
    """Evaluator that waits ``sleep_s`` seconds per trial (no CPU) and scores the cell's non-'none' edges."""

    def __init__(self, sleep_s: float) -> None:
        self.sleep_s = sleep_s

    def evaluate(self, arch, fidelity=None) -> dict[str, float]:
        time.sleep(self.sleep_s)
        return {"acc": float(sum(op != "none" for op in arch.values[0]))}


def run(executor, trials: int, sleep_s: float, seed: int) -> float:
    """Seconds of wall time for a ``trials``-trial random search on ``executor``."""
    study = asc.create_study(asc.create_space("nb201"), objectives=["acc"], strategy="random", seed=seed)
    t0 = time.perf_counter()
    study.optimize(Sleeper(sleep_s), budget=trials, executor=executor)
    elapsed = time.perf_counter() - t0
    failed = [t for t in study.trials if t.state != "complete"]
    if study.n_evaluated != trials or failed:
        raise RuntimeError(f"{executor.name}: {study.n_evaluated} trials evaluated, {len(failed)} failed; "
                           f"expected {trials} complete")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=24, help="trials per run (default: %(default)s)")
    p.add_argument("--sleep", type=float, default=0.5, help="seconds each trial waits (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=1, help="runs per setup; the median is reported")
    p.add_argument("--seed", type=int, default=0, help="random search seed (default: %(default)s)")
    p.add_argument("--no-process", action="store_true", help="skip the process-executor reference runs")
    p.add_argument("--out", default=os.path.join("results", "ray_scaling.json"), help="JSON output path")
    ns = p.parse_args(argv)
    if ns.trials < 2 or ns.repeats < 1 or not ns.sleep > 0:
        p.error("--trials must be >= 2, --repeats >= 1 and --sleep > 0")

    import ray

    t_start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        run(RayExecutor(workers=2), 4, ns.sleep / 5, ns.seed)  # warm-up: Ray workers start and import archscout
        setups = {"ray": {1: lambda: RayExecutor(workers=1), 2: lambda: RayExecutor(workers=2)}}
        if not ns.no_process:
            setups["process"] = {1: lambda: ProcessExecutor(workers=1), 2: lambda: ProcessExecutor(workers=2)}
        seconds: dict[str, dict[int, list[float]]] = {k: {1: [], 2: []} for k in setups}
        for r in range(ns.repeats):
            for kind, by_workers in setups.items():
                for workers, build in by_workers.items():
                    sec = run(build(), ns.trials, ns.sleep, ns.seed)
                    seconds[kind][workers].append(sec)
                    print(f"repeat {r + 1}/{ns.repeats} {kind:<8} workers={workers} {ns.trials} trials in "
                          f"{sec:6.2f} s", file=sys.stderr, flush=True)
        ray_version = ray.__version__
    finally:
        ray.shutdown()

    med = {k: {w: statistics.median(v) for w, v in by.items()} for k, by in seconds.items()}
    speedup = {k: by[1] / by[2] for k, by in med.items()}
    ideal = {w: ns.trials * ns.sleep / w for w in (1, 2)}
    elapsed = time.perf_counter() - t_start

    lines = ["| executor | workers | wall s (median) | ideal s | speed-up vs 1 worker |", "|---|---:|---:|---:|---:|"]
    for kind, by in med.items():
        for w, sec in by.items():
            lines.append(f"| {kind} | {w} | {sec:.2f} | {ideal[w]:.2f} | "
                         f"{'' if w == 1 else f'{speedup[kind]:.2f}x'} |")
    print("\n".join(lines))
    print(f"\n{ns.trials} trials of {ns.sleep} s each, {ns.repeats} repeat(s), median reported; "
          f"total elapsed {elapsed:.1f} s on {os.cpu_count()} CPUs")

    out = {
        "trials": ns.trials,
        "sleep_s": ns.sleep,
        "repeats": ns.repeats,
        "seed": ns.seed,
        "wall_s_median": med,
        "wall_s_repeats": seconds,
        "ideal_wall_s": ideal,
        "speedup_2_vs_1": speedup,
        "timing": "wall time of Study.optimize (executor start included) after a Ray warm-up run",
        "versions": {"ray": ray_version, "archscout": asc.__version__ if hasattr(asc, "__version__") else None,
                     "python": platform.python_version()},
        "elapsed_s": elapsed,
    }
    write_json(out, ns.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
