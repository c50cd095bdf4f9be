"""How the scores of a trained NB201 supernet relate to the table: reads what ``supernet_nb201.py`` left in each
supernet folder (``eval.json`` and the ``val_loss`` kept in ``evals-*.jsonl``) and prints, against the table's
``valid_acc_200ep``: Kendall tau of the accuracy, of the validation loss, and within the better half of the
cells; the agreement with NB201's own 12-epoch accuracy; and the spread of the accuracies. No training.

    python benchmarks/supernet_scores.py --table ../shared/data/nas-bench-201/nb201_cifar10.csv \\
        results/supernet-nb201/seed0 results/supernet-nb201/seed1 results/supernet-nb201/seed2
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", help="supernet folders holding eval.json")
    ap.add_argument("--table", required=True)
    ap.add_argument("--metric", default="valid_acc_200ep")
    ap.add_argument("--early", default="valid_acc_12ep", help="the table's short-training column")
    ap.add_argument("--arch-column", default="arch_str")
    args = ap.parse_args()
    with open(args.table, newline="") as f:
        table = {r[args.arch_column]: r for r in csv.DictReader(f)}
    for folder in map(Path, args.folders):
        acc = json.loads((folder / "eval.json").read_text())
        loss = {}
        for f in folder.glob("evals-*.jsonl"):
            for line in f.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut by a kill, as the evaluator itself skips it
                loss[rec["arch"]] = rec["metrics"]["val_loss"]
        cells = list(acc)
        truth = np.array([float(table[c][args.metric]) for c in cells])
        a = np.array([acc[c] for c in cells])
        better = truth >= np.median(truth)
        row = {
            "folder": str(folder), "cells": len(cells),
            "tau_accuracy": kendalltau(a, truth).statistic,
            "tau_val_loss": kendalltau([-loss[c] for c in cells], truth).statistic,
            "tau_accuracy_better_half": kendalltau(a[better], truth[better]).statistic,
            "tau_with_table_12ep": kendalltau(a, [float(table[c][args.early]) for c in cells]).statistic,
            "accuracy_median": float(np.median(a)), "accuracy_max": float(a.max()),
        }
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))


if __name__ == "__main__":
    main()
