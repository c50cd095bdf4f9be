"""Single-objective strategy configs side by side on a tabular benchmark, NB201 CIFAR-10 by default (how
the defaults of `smbo`, `mcts`, `reinforce` and the others were chosen).

    .venv/bin/python benchmarks/so_sweep.py --seeds 0-90 --budget 150 \
        '{"name": "smbo"}' '{"name": "smbo", "beta": 3.0, "degree": 4}'
    .venv/bin/python benchmarks/so_sweep.py --benchmark transnas-macro --objective valid_neg_loss \
        --table ../shared/data/transnas-bench-101/tnb101_room_layout.csv --budget 100 \
        '{"name": "smbo"}' '{"name": "smbo", "surrogate": "rf"}'

Prints, per config, the mean queries to the optimum, hit rates and mean regret at 50 queries and at the
budget, over all seeds and (queries and hit rate) over seeds 0-29 (the seeds `archscout bench --seeds 30`
uses) separately.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from archscout.benchmarks import create_benchmark
from archscout.benchmarks.runner import run_protocol
from archscout.benchmarks.stats import summarize


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("configs", nargs="+", help="strategy configs as JSON objects")
    p.add_argument("--benchmark", default="nb201", help="a registered tabular benchmark")
    p.add_argument("--table", default="../shared/data/nas-bench-201/nb201_cifar10.csv")
    p.add_argument("--objective", default="valid_acc_200ep")
    p.add_argument("--seeds", default="0-90", help="half-open range A-B")
    p.add_argument("--budget", type=int, default=150)
    p.add_argument("--workers", type=int, default=2)
    ns = p.parse_args()
    a, b = (int(x) for x in ns.seeds.split("-"))
    bench = create_benchmark(ns.benchmark, table=ns.table, objective=ns.objective)
    specs = [json.loads(c) for c in ns.configs]
    runs = run_protocol(bench, specs, list(range(a, b)), ns.budget, workers=ns.workers)
    summary = summarize(runs, bench, ns.budget, sorted({50, 100, ns.budget}))
    for name, e in summary["strategies"].items():
        q = np.array(e["per_seed"]["queries_to_optimum"])
        seeds = np.array(e["per_seed"]["seed"])
        first = seeds < 30
        line = (f"{name:45s} queries to optimum {q.mean():6.1f}  hit@50 {(q <= 50).mean():.3f}  "
                f"hit@100 {(q <= 100).mean():.3f}  regret@50 {e['checkpoints']['50']['regret_mean']:.5f}  "
                f"regret@{ns.budget} {e['checkpoints'][str(ns.budget)]['regret_mean']:.5f}")
        if first.any() and (~first).any():
            line += f"  | seeds 0-29: {q[first].mean():.1f}, {(q[first] <= 100).mean():.3f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
