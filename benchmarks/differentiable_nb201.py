"""Differentiable search on NAS-Bench-201 with the CIFAR-10 file: which cell does each method derive?

For every method and seed this runs the real command, timed,

    archscout supernet train --space nb201 --data DATA --method M --seed S --out OUT/M/seed<S> [--train-args]
    archscout supernet derive OUT/M/seed<S> --json OUT/M/seed<S>/derive.json

and looks the derived cell up in the table: ``valid_acc_200ep`` and ``test_acc_200ep`` (NB201's own 200-epoch
training), with the search's wall time, its peak memory (the training process's maximum resident set) and the
derived cell's skip connections. With ``--latency-column`` (a device column of the NB201 latency table, e.g.
``pixel3_ms``) it also runs ProxylessNAS with the latency term for each ``--targets`` value (a target in ms),
and reports each derived cell's latency by the table and its distance to the table's true front: how much
validation accuracy the best cell at most as slow has more (0: the cell is on the front), plus a plot of the
derived cells over the front.

Runs already finished are read back (their folders resume), so the script can be stopped and started again.
``--jobs 2`` runs two trainings side by side with ``--threads 1`` each (their wall times are then those of
one core each).

    python benchmarks/differentiable_nb201.py --table ../shared/data/nas-bench-201/nb201_cifar10.csv \\
        --data ../shared/data/cifar10-jpeg/cifar10_jpeg.npz --methods darts,pc-darts,proxylessnas,rarts \\
        --seeds 0,1,2 --latency-table ../shared/data/nb201-latency-help/nb201_latency_help.csv \\
        --latency-column pixel3_ms --targets 3.0,4.0,5.0 --target-seeds 0,1,2 --jobs 2

Results: ``results/differentiable-nb201.json``, a markdown table on stdout and ``OUT/proxyless-front.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import run_command, write_json


def _list(text: str, kind: type = str) -> list:
    return [kind(v) for v in text.split(",") if v.strip()]


def read_rows(path: str, arch_column: str, columns: list[str]) -> dict[str, dict[str, float]]:
    with open(path, newline="") as f:
        return {r[arch_column]: {c: float(r[c]) for c in columns} for r in csv.DictReader(f)}


def front_distance(acc: float, lat: float, cells: dict[str, tuple[float, float]]) -> float:
    """Validation accuracy that the best table cell at most ``lat`` slow has beyond ``acc`` (0: on the front)."""
    best = max(a for a, t in cells.values() if t <= lat + 1e-12)
    return max(0.0, best - acc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", required=True, help="nb201_cifar10.csv")
    ap.add_argument("--valid", default="valid_acc_200ep")
    ap.add_argument("--test", default="test_acc_200ep")
    ap.add_argument("--arch-column", default="arch_str")
    ap.add_argument("--data", required=True, help="the CIFAR-10 file or folder")
    ap.add_argument("--methods", type=_list, default=["darts", "pc-darts", "proxylessnas", "rarts"])
    ap.add_argument("--seeds", type=lambda t: _list(t, int), default=[0, 1, 2])
    ap.add_argument("--latency-table", help="nb201_latency_help.csv")
    ap.add_argument("--latency-column", help="a device column in ms, e.g. pixel3_ms")
    ap.add_argument("--targets", type=lambda t: _list(t, float), default=[], help="latency targets (ms)")
    ap.add_argument("--target-seeds", type=lambda t: _list(t, int), default=[0],
                    help="seeds of the first target's runs (the others run seed 0)")
    ap.add_argument("--train-args", default="", help="extra arguments for 'supernet train'")
    ap.add_argument("--init-from", help="start each run from this trained supernet folder ('{seed}' is replaced by "
                    "the run's seed), e.g. results/supernet-nb201/seed{seed}; its training time is added")
    ap.add_argument("--out", default="results/differentiable-nb201")
    ap.add_argument("--json", default="results/differentiable-nb201.json")
    ap.add_argument("--threads", type=int, help="torch threads per training (default 2 // jobs)")
    ap.add_argument("--jobs", type=int, default=1, help="trainings side by side (threads: 2 // jobs each)")
    args = ap.parse_args()

    table = read_rows(args.table, args.arch_column, [args.valid, args.test])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    threads = args.threads or max(1, 2 // args.jobs)
    exe = [sys.executable, "-m", "archscout", "supernet"]
    runs: list[dict] = []
    for m in args.methods:
        for s in args.seeds:
            runs.append({"method": m, "seed": s, "dir": out / m / f"seed{s}", "extra": []})
    lat_cells: dict[str, tuple[float, float]] = {}
    if args.targets:
        if not (args.latency_table and args.latency_column):
            sys.exit("--targets needs --latency-table and --latency-column")
        lat = read_rows(args.latency_table, args.arch_column, [args.latency_column])
        lat_cells = {a: (table[a][args.valid], lat[a][args.latency_column]) for a in lat if a in table}
        for i, t in enumerate(args.targets):
            for s in (args.target_seeds if i == 0 else [0]):
                runs.append({"method": "proxylessnas", "seed": s, "target": t,
                             "dir": out / f"proxylessnas-{args.latency_column}-{t:g}ms" / f"seed{s}",
                             "extra": ["--cost-table", args.latency_table, "--cost-column", args.latency_column,
                                       "--latency-target-ms", f"{t:g}"]})

    def one(r: dict) -> dict:
        d: Path = r["dir"]
        init = [] if not args.init_from else ["--init-from", args.init_from.format(seed=r["seed"])]
        d.parent.mkdir(parents=True, exist_ok=True)
        log = d.parent / f"{d.name}.log"
        wall = run_command([*exe, "train", "--space", "nb201", "--data", args.data, "--method", r["method"],
                            "--seed", str(r["seed"]), "--out", str(d), *r["extra"], *init, *args.train_args.split(),
                            "--threads", str(threads), "--no-progress"], log)
        run_command([*exe, "derive", str(d), "--json", str(d / "derive.json")], log)
        res = json.loads((d / "derive.json").read_text())
        arch = res["arch"]
        pre = 0.0
        if init:
            pre = sum(h["time_s"] for h in json.loads((Path(init[1]) / "supernet.json").read_text())["history"]) / 60
        row = {"method": r["method"], "seed": r["seed"], "arch": arch, "init_from": init[1] if init else None,
               "init_train_min": round(pre, 2), "valid_acc_200ep": table[arch][args.valid],
               "test_acc_200ep": table[arch][args.test], "search_min": res["search_time_s"] / 60,
               "command_wall_s": round(wall, 1), "peak_rss_mb": res["peak_rss_mb"], "epochs": res["epochs_done"],
               "skip_count": res["history"][-1]["skip_count"], "threads": threads,
               "stopped_early": res.get("stopped_early"), "search": res["search"]}
        if "target" in r:
            row.update(target_ms=r["target"], latency_ms=lat_cells[arch][1],
                       front_distance=front_distance(table[arch][args.valid], lat_cells[arch][1], lat_cells))
        print(json.dumps(row), flush=True)
        return row

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(one, runs))
    results = {"table": args.table, "data": args.data, "train_args": args.train_args, "jobs": args.jobs,
               "runs": rows}
    if lat_cells:
        results["latency_column"] = args.latency_column
        free = [r for r in rows if r["method"] == "proxylessnas" and "target_ms" not in r]
        results["unconstrained_latency_ms"] = [lat_cells[r["arch"]][1] for r in free]
        _plot(rows, lat_cells, args.latency_column, out / "proxyless-front.png")
    write_json(results, args.json)
    print("\n| method | seed | derived cell | valid_acc_200ep | test_acc_200ep | skips | search min (+ init) | "
          "peak MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        name = r["method"] + (f" (target {r['target_ms']:g} ms)" if "target_ms" in r else "")
        pre = f" (+ {r['init_train_min']:.1f})" if r["init_from"] else ""
        print(f"| {name} | {r['seed']} | `{r['arch']}` | {r['valid_acc_200ep']:.2f} | {r['test_acc_200ep']:.2f} | "
              f"{r['skip_count']:.0f} | {r['search_min']:.1f}{pre} | {r['peak_rss_mb']:.0f} |")
    lat_rows = [r for r in rows if "target_ms" in r]
    if lat_rows:
        print(f"\n| target ({args.latency_column}) | seed | latency by the table | at or under | valid_acc_200ep | "
              "distance to the front |")
        print("|---|---|---|---|---|---|")
        for r in lat_rows:
            print(f"| {r['target_ms']:g} ms | {r['seed']} | {r['latency_ms']:.3f} ms | "
                  f"{'yes' if r['latency_ms'] <= r['target_ms'] else 'no'} | {r['valid_acc_200ep']:.2f} | "
                  f"{r['front_distance']:.2f} |")


def _plot(rows: list[dict], cells: dict[str, tuple[float, float]], column: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = np.array([a for a, _ in cells.values()])
    lat = np.array([t for _, t in cells.values()])
    order = np.argsort(lat)
    best, fx, fy = -1.0, [], []
    for i in order:
        if acc[i] > best:
            best = acc[i]
            fx.append(lat[i])
            fy.append(acc[i])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(lat, acc, s=3, c="#c8ccd2", label="every NB201 cell")
    ax.step(fx, fy, where="post", c="#444", lw=1, label="true front")
    colours: dict[str, str] = {}
    for r in rows:
        if r["method"] != "proxylessnas":
            continue
        t = r.get("target_ms")
        label = "no latency term" if t is None else f"target {t:g} ms"
        colour = colours.setdefault(label, f"C{len(colours)}")
        ax.scatter([cells[r["arch"]][1]], [cells[r["arch"]][0]], s=40, marker="o" if t is None else "^",
                   label=label, zorder=3, c=colour, edgecolors="k", linewidths=0.4)
        if t is not None:
            ax.axvline(t, ls="--", lw=0.7, c="#999")
    handles, labels = ax.get_legend_handles_labels()
    keep = dict(zip(labels, handles))
    ax.legend(keep.values(), keep.keys(), fontsize=8, loc="lower right")
    ax.set_xlabel(f"latency by the table ({column})")
    ax.set_ylabel("valid_acc_200ep")
    ax.set_ylim(max(40, acc.min()), acc.max() + 1)
    ax.set_title("ProxylessNAS on NB201: derived cells against the table's front")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
