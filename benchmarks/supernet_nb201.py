"""Weight sharing on NAS-Bench-201 with the CIFAR-10 file: does the trained supernet rank and pick cells well?

For each supernet training seed this runs the real commands, timed:

1. ``archscout supernet train --space nb201 --data DATA --out OUT/seed<s> --seed <s>`` (the defaults);
2. ``archscout supernet eval OUT/seed<s> --archs OUT/cells.txt --json OUT/seed<s>/eval.json`` on ``--cells``
   random cells of the table (the same cells for every seed);
3. ``archscout supernet search OUT/seed<s> --budget B --seed <k> --json ...`` for each search seed.

and reports, against the table's ``valid_acc_200ep`` (NB201's 200-epoch training by its authors): Kendall tau
and Spearman rho of the supernet accuracies on the cells and within the top 10 % of them by the table, beside
the same figures for the parameter count (``params_MB``) on the same cells; the table accuracy of each cell that
the search picks; the wall time of every step.

    python benchmarks/supernet_nb201.py --table ../shared/data/nas-bench-201/nb201_cifar10.csv \\
        --data ../shared/data/cifar10-jpeg/cifar10_jpeg.npz --seeds 0,1,2 --search-seeds 0,1,2

Results: ``results/supernet-nb201.json`` and a markdown table on stdout (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import run_command, write_json


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def read_table(path: str, metric: str, params: str, arch_column: str) -> dict[str, tuple[float, float]]:
    with open(path, newline="") as f:
        return {r[arch_column]: (float(r[metric]), float(r[params])) for r in csv.DictReader(f)}


def ranks(pred: list[float], truth: list[float]) -> dict[str, float]:
    from scipy.stats import kendalltau, spearmanr

    return {"kendall_tau": float(kendalltau(pred, truth).statistic),
            "spearman": float(spearmanr(pred, truth).statistic)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", required=True, help="nb201_cifar10.csv")
    ap.add_argument("--metric", default="valid_acc_200ep", help="table column of the ground truth")
    ap.add_argument("--params", default="params_MB", help="table column of the parameter count")
    ap.add_argument("--arch-column", default="arch_str")
    ap.add_argument("--data", required=True, help="the CIFAR-10 file or folder")
    ap.add_argument("--seeds", type=_ints, default=[0, 1, 2], help="supernet training seeds")
    ap.add_argument("--search-seeds", type=_ints, default=[0, 1, 2], help="search seeds (per supernet)")
    ap.add_argument("--search-budget", type=int, default=300)
    ap.add_argument("--strategy", default="auto")
    ap.add_argument("--cells", type=int, default=200, help="random cells to rank")
    ap.add_argument("--out", default="results/supernet-nb201", help="folder for supernets and logs")
    ap.add_argument("--json", default="results/supernet-nb201.json")
    ap.add_argument("--train-args", default="", help="extra arguments for 'supernet train' (default: none)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    table = read_table(args.table, args.metric, args.params, args.arch_column)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = sorted(table)
    rng = np.random.default_rng(0)
    cells = [names[i] for i in rng.choice(len(names), size=args.cells, replace=False)]
    (out / "cells.txt").write_text("\n".join(cells) + "\n")
    truth = [table[c][0] for c in cells]
    top = [int(i) for i in np.argsort(truth)[::-1][: max(2, args.cells // 10)]]
    all_acc = np.array([v[0] for v in table.values()])
    exe = [sys.executable, "-m", "archscout", "supernet"]
    common = ["--threads", str(args.threads), "--no-progress"]
    results = {"cells": args.cells, "table": args.table, "metric": args.metric, "seeds": []}
    params_rank = ranks([table[c][1] for c in cells], truth)
    params_top = ranks([table[c][1] for c in np.array(cells)[top]], [truth[i] for i in top])
    for s in args.seeds:
        d = out / f"seed{s}"
        log = out / f"seed{s}.log"
        row: dict = {"seed": s}
        row["train_s"] = run_command([*exe, "train", "--space", "nb201", "--data", args.data, "--out", str(d),
                                      "--seed", str(s), *args.train_args.split(), *common], log)
        meta = json.loads((d / "supernet.json").read_text())
        row["train_minutes_recorded"] = sum(h["time_s"] for h in meta["history"]) / 60
        row["settings"] = meta["settings"]
        row["eval_s"] = run_command([*exe, "eval", str(d), "--archs", str(out / "cells.txt"), "--json",
                                     str(d / "eval.json"), *common], log)
        acc = json.loads((d / "eval.json").read_text())
        pred = [acc[c] for c in cells]
        row["all"] = ranks(pred, truth)
        row["top10"] = ranks([pred[i] for i in top], [truth[i] for i in top])
        row["supernet_acc"] = {"median": float(np.median(pred)), "max": float(np.max(pred))}
        row["searches"] = []
        for k in args.search_seeds:
            f = d / f"search{k}.json"
            t = run_command([*exe, "search", str(d), "--budget", str(args.search_budget), "--strategy", args.strategy,
                     "--seed", str(k), "--json", str(f), *common], log)
            best = json.loads(f.read_text())["best"]
            acc_best = table[best][0]
            row["searches"].append({"seed": k, "best": best, "table_acc": acc_best, "wall_s": t,
                                    "percentile": float((all_acc < acc_best).mean() * 100)})
        results["seeds"].append(row)
        print(json.dumps(row, indent=1), flush=True)
    results["params"] = {"all": params_rank, "top10": params_top}
    write_json(results, args.json)
    print("\n| seed | train min | eval s | tau | rho | tau top10 | params tau | params tau top10 | picks (table acc) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results["seeds"]:
        picks = ", ".join(f"{x['table_acc']:.2f}" for x in r["searches"])
        print(f"| {r['seed']} | {r['train_s'] / 60:.1f} | {r['eval_s']:.0f} | {r['all']['kendall_tau']:.3f} | "
              f"{r['all']['spearman']:.3f} | {r['top10']['kendall_tau']:.3f} | {params_rank['kendall_tau']:.3f} | "
              f"{params_top['kendall_tau']:.3f} | {picks} |")


if __name__ == "__main__":
    main()
