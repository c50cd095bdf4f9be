"""How the defaults of `rea` and `ls` were chosen: a sweep on the open NB201 CIFAR-10 table.

    .venv/bin/python benchmarks/defaults_sweep.py --seeds 60 --budget 300

Prints, for each setting, the hit rate at 100 and 300 queries and the mean queries to the optimum.
"""

from __future__ import annotations

import argparse
import time

from archscout.benchmarks import create_benchmark
from archscout.benchmarks.runner import run_protocol
from archscout.benchmarks.stats import summarize

SETTINGS = [
    {"name": "rea", "population_size": p, "sample_size": s}
    for p, s in [(10, 3), (20, 5), (20, 10), (30, 10), (30, 15), (30, 20), (40, 20), (50, 10)]
] + [{"name": "ls", "first_improvement": True}, {"name": "ls", "first_improvement": False}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default="../shared/data/nas-bench-201/nb201_cifar10.csv")
    ap.add_argument("--seeds", type=int, default=60)
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    bench = create_benchmark("nb201", table=args.table, objective="valid_acc_200ep")
    t0 = time.perf_counter()
    runs = run_protocol(bench, SETTINGS, args.seeds, args.budget, workers=args.workers)
    s = summarize(runs, bench, args.budget, [100, args.budget])
    print(f"| setting | hit rate @100 | hit rate @{args.budget} | queries to optimum (mean) |")
    print("|---|---:|---:|---:|")
    for name, e in s["strategies"].items():
        cp = e["checkpoints"]
        print(f"| {name} | {cp['100']['hit_rate']:.0%} | {cp[str(args.budget)]['hit_rate']:.0%} | "
              f"{e['queries_to_optimum_mean']:.1f} |")
    print(f"\n{len(SETTINGS)} settings x {args.seeds} seeds x {args.budget} queries "
          f"in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
