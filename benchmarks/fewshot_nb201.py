"""Few-shot against one-shot on NAS-Bench-201 with the CIFAR-10 file: does splitting the supernet rank cells better?

For each seed this runs, timed, with the same ``--train-args`` and the same total epochs,

    archscout supernet train --space nb201 --data DATA --method spos --epochs E --seed S --out OUT/one-shot/seed<S>
    archscout supernet train --space nb201 --data DATA --method few-shot --epochs E --seed S --out OUT/few-shot/seed<S>
    archscout supernet eval <each folder> --archs OUT/cells.txt --json <folder>/eval.json

on the same ``--cells`` random cells as ``supernet_nb201.py`` (drawn from the table with seed 0), and reports
Kendall tau of each supernet's accuracies against the table's ``valid_acc_200ep``, the few-shot split (edge,
groups and gradient-matching scores), and the wall times. ``--one-shot-from DIR`` reads the one-shot runs
from an earlier ``supernet_nb201.py`` folder (``DIR/seed<S>`` with its ``eval.json``) instead of training them,
when that run used the same settings (checked: the supernet's settings and data must match).

    python benchmarks/fewshot_nb201.py --table ../shared/data/nas-bench-201/nb201_cifar10.csv \\
        --data ../shared/data/cifar10-jpeg/cifar10_jpeg.npz --epochs 25 --seeds 0,1,2 \\
        --one-shot-from results/supernet-nb201 --jobs 2

Results: ``results/fewshot-nb201.json`` and a markdown table on stdout (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import run_command, write_json
from supernet_nb201 import ranks, read_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", required=True, help="nb201_cifar10.csv")
    ap.add_argument("--metric", default="valid_acc_200ep")
    ap.add_argument("--params", default="params_MB")
    ap.add_argument("--arch-column", default="arch_str")
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=25, help="total epochs of each supernet")
    ap.add_argument("--seeds", type=lambda t: [int(v) for v in t.split(",")], default=[0, 1, 2])
    ap.add_argument("--cells", type=int, default=200)
    ap.add_argument("--few-shot-args", default="", help="extra arguments of the few-shot run (e.g. --split-edges 2)")
    ap.add_argument("--train-args", default="", help="extra arguments of both runs")
    ap.add_argument("--one-shot-from", help="folder of supernet_nb201.py runs to read the one-shot supernets from")
    ap.add_argument("--out", default="results/fewshot-nb201")
    ap.add_argument("--json", default="results/fewshot-nb201.json")
    ap.add_argument("--threads", type=int, help="torch threads per training (default 2 // jobs)")
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()

    table = read_table(args.table, args.metric, args.params, args.arch_column)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = sorted(table)
    cells = [names[i] for i in np.random.default_rng(0).choice(len(names), size=args.cells, replace=False)]
    (out / "cells.txt").write_text("\n".join(cells) + "\n")
    truth = [table[c][0] for c in cells]
    threads = args.threads or max(1, 2 // args.jobs)
    exe = [sys.executable, "-m", "archscout", "supernet"]
    common = ["--threads", str(threads), "--no-progress"]

    def run(kind: str, seed: int) -> dict:
        if kind == "one-shot" and args.one_shot_from:
            d = Path(args.one_shot_from) / f"seed{seed}"
            meta = json.loads((d / "supernet.json").read_text())
            if meta["settings"]["epochs"] != args.epochs or meta["settings"]["method"] != "spos":
                sys.exit(f"{d} is not a {args.epochs}-epoch spos supernet; train the one-shot runs here instead")
            wall = None
        else:
            d = out / kind / f"seed{seed}"
            d.parent.mkdir(parents=True, exist_ok=True)
            log = d.parent / f"seed{seed}.log"
            method = (["--method", "spos"] if kind == "one-shot"
                      else ["--method", "few-shot", *args.few_shot_args.split()])
            wall = run_command([*exe, "train", "--space", "nb201", "--data", args.data, *method, "--epochs",
                                str(args.epochs), "--seed", str(seed), "--out", str(d), *args.train_args.split(),
                                *common], log)
            meta = json.loads((d / "supernet.json").read_text())
        if not (d / "eval.json").exists():
            run_command([*exe, "eval", str(d), "--archs", str(out / "cells.txt"), "--json", str(d / "eval.json"),
                         *common], out / f"eval-{kind}-{seed}.log")
        acc = json.loads((d / "eval.json").read_text())
        row = {"kind": kind, "seed": seed, "folder": str(d), "train_wall_s": wall, "epochs_done": meta["epochs_done"],
               "train_minutes_recorded": sum(h["time_s"] for h in meta["history"]) / 60,
               **ranks([acc[c] for c in cells], truth)}
        if kind == "few-shot":
            row.update(split=meta["split"], parent_epochs=meta["parent_epochs"], sub_epochs=meta["sub_epochs"],
                       gm=[{"edge": g["edge"], "groups": g["groups"], "cross_similarity": g["cross_similarity"]}
                           for g in meta.get("gm", [])])
        print(json.dumps(row), flush=True)
        return row

    jobs = [(k, s) for s in args.seeds for k in ("few-shot", "one-shot")]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(lambda j: run(*j), jobs))
    params = ranks([table[c][1] for c in cells], truth)
    write_json({"cells": args.cells, "epochs": args.epochs, "runs": rows, "params": params,
                "one_shot_from": args.one_shot_from}, args.json)
    print("\n| seed | one-shot tau | few-shot tau | few-shot better | split (edge: groups) | few-shot train min |")
    print("|---|---|---|---|---|---|")
    for s in args.seeds:
        one = next(r for r in rows if r["seed"] == s and r["kind"] == "one-shot")
        few = next(r for r in rows if r["seed"] == s and r["kind"] == "few-shot")
        split = "; ".join(f"{p['edge']}: {p['groups']}" for p in few["split"])
        print(f"| {s} | {one['kendall_tau']:.3f} | {few['kendall_tau']:.3f} | "
              f"{'yes' if few['kendall_tau'] > one['kendall_tau'] else 'no'} | {split} | "
              f"{few['train_minutes_recorded']:.1f} |")
    print(f"\nparameter count alone: tau {params['kendall_tau']:.3f}")


if __name__ == "__main__":
    main()
