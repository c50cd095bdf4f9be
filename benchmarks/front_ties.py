"""How the true Pareto front of NB201 CIFAR-10 x a HELP latency column is made: for each distinct front
point, its latency, its accuracy, how many cells share that exact latency, and how far the second most
accurate of those cells is behind (why a search must find the single best cell of a large tie group).

    .venv/bin/python benchmarks/front_ties.py --devices eyeriss_ms,fpga_ms,pixel3_ms
"""

from __future__ import annotations

import argparse

import numpy as np

from archscout.benchmarks import create_benchmark
from archscout.pareto import true_front


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", default="../shared/data/nas-bench-201/nb201_cifar10.csv")
    p.add_argument("--cost-table", default="../shared/data/nb201-latency-help/nb201_latency_help.csv")
    p.add_argument("--objective", default="valid_acc_200ep")
    p.add_argument("--devices", default="eyeriss_ms,fpga_ms", help="comma-separated latency columns")
    ns = p.parse_args()
    for dev in ns.devices.split(","):
        bench = create_benchmark("nb201", table=ns.table, objective=ns.objective, cost_table=ns.cost_table,
                                 cost_columns=[dev])
        acc = np.asarray(bench.columns[ns.objective], dtype=float)
        lat = np.asarray(bench.columns[dev], dtype=float)
        front = true_front(np.column_stack([acc, lat]), ["max", "min"])
        print(f"{dev}: {len(front.points)} front points, {len(np.unique(lat))} distinct latencies")
        for a, c in sorted(front.points, key=lambda pt: pt[1]):
            tied = np.sort(acc[lat == c])[::-1]
            second = f"{a - tied[1]:.2f}" if len(tied) > 1 else "-"
            print(f"  latency {c:10.4f}  {ns.objective} {a:6.2f}  cells at this latency {len(tied):5d}  "
                  f"second best behind by {second}")


if __name__ == "__main__":
    main()
