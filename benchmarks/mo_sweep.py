"""Two-objective strategy configs side by side on NB201 CIFAR-10 x a HELP latency column (how the
defaults of `mobo` and `nsga2` were chosen).

    .venv/bin/python benchmarks/mo_sweep.py --devices fpga_ms,eyeriss_ms,pixel3_ms \
        '{"name": "mobo"}' '{"name": "mobo", "acquisition": "staircase"}' '{"name": "mobo", "acquisition": "hvi"}'

Runs the `archscout bench` protocol (30 seeds, 200 queries, `--hash-rule none`, cost mode `cheap` unless
`--cost-mode evaluated`) for strategy configs that the command line cannot express, and prints hv_ratio at
100 / 200 queries, the front recall at 200 and the mean regret of the best accuracy found at 200 per device
and config.
"""

from __future__ import annotations

import argparse
import json

from archscout.benchmarks import create_benchmark
from archscout.benchmarks.runner import run_protocol
from archscout.benchmarks.stats import summarize


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("configs", nargs="+", help="strategy configs as JSON objects")
    p.add_argument("--table", default="../shared/data/nas-bench-201/nb201_cifar10.csv")
    p.add_argument("--cost-table", default="../shared/data/nb201-latency-help/nb201_latency_help.csv")
    p.add_argument("--devices", default="pixel3_ms", help="comma-separated latency columns")
    p.add_argument("--cost-mode", default="cheap", choices=["cheap", "evaluated"])
    p.add_argument("--seeds", type=int, default=30)
    p.add_argument("--budget", type=int, default=200)
    p.add_argument("--workers", type=int, default=2)
    ns = p.parse_args()
    specs = [json.loads(c) for c in ns.configs]
    for dev in ns.devices.split(","):
        bench = create_benchmark("nb201", table=ns.table, objective="valid_acc_200ep", cost_table=ns.cost_table,
                                 cost_columns=[dev], hash_rule="none")
        runs = run_protocol(bench, specs, ns.seeds, ns.budget, workers=ns.workers, cost_column=dev,
                            cost_mode=ns.cost_mode)
        summary = summarize(runs, bench, ns.budget, [100, ns.budget], cost_column=dev, cost_mode=ns.cost_mode)
        for name, e in summary["strategies"].items():
            c100, cb = e["checkpoints"]["100"], e["checkpoints"][str(ns.budget)]
            print(f"{dev:13s} {name:40s} hv_ratio {c100['hv_ratio_mean']:.4f} / {cb['hv_ratio_mean']:.4f}  "
                  f"recall {100 * cb['front_recall_mean']:.1f} %  regret {cb['regret_mean']:.3f}", flush=True)


if __name__ == "__main__":
    main()
