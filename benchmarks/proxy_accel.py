"""Learned proxy of the systolic-array model (ArchGym's proxy cost models), measured.

For each workload and seed: a study logs random accelerator designs of the ``systolic`` space, each simulated by
the systolic-array model (``AcceleratorEvaluator``); a proxy (``fit_proxy``) is fitted on 500 of them and scored
on designs it has not seen (RMSE, MAPE, Kendall's tau of cycles), and its prediction time is compared with the
model's simulation time, side by side in one run.

    .venv/bin/python benchmarks/proxy_accel.py --out results/proxy_accel.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import write_json

import archscout as asc
from archscout.hardware.accelerator import AcceleratorEvaluator, accelerator_of
from archscout.hardware.proxy import REGRESSORS, fit_proxy
from archscout.hardware.systolic import simulate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default="resnet18,mobilenetv2")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--train", type=int, default=500, help="logged designs the proxy is fitted on")
    ap.add_argument("--test", type=int, default=200, help="held-out designs")
    ap.add_argument("--metric", default="cycles")
    ap.add_argument("--regressors", default="gp,extra_trees,gradient_boosting")
    ap.add_argument("--storage", default="results/proxy_accel.db", help="where the logged designs are recorded")
    ap.add_argument("--out", default="results/proxy_accel.json")
    args = ap.parse_args(argv)
    regressors = [r for r in args.regressors.split(",") if r]
    bad = [r for r in regressors if r not in REGRESSORS]
    if bad:
        ap.error(f"unknown regressors {bad}; choose from {list(REGRESSORS)}")
    os.makedirs(os.path.dirname(os.path.abspath(args.storage)), exist_ok=True)
    rows = []
    n = args.train + args.test
    for workload in [w for w in args.workloads.split(",") if w]:
        for seed in range(args.seeds):
            name = f"{workload}-seed{seed}-n{n}"
            study = asc.create_study("systolic", objectives=[(args.metric, "min")], strategy="random",
                                     storage=args.storage, name=name, seed=seed, load_if_exists=True)
            ev = AcceleratorEvaluator(workload)
            t0 = time.perf_counter()
            study.optimize(ev, budget=n)
            sim_s = time.perf_counter() - t0
            # time the model itself (uncached) on a fixed sample, side by side with the proxy
            sample = [t.arch for t in study.trials[:50]]
            t0 = time.perf_counter()
            for a in sample:
                simulate(accelerator_of(a), ev.layers(a))
            sim_us = 1e6 * (time.perf_counter() - t0) / len(sample)
            for reg in regressors:
                fit = fit_proxy(study, args.metric, regressor=reg, test_size=args.test / n, seed=seed)
                t0 = time.perf_counter()
                fit.model.predict_many(sample)
                proxy_us = 1e6 * (time.perf_counter() - t0) / len(sample)
                r = fit.report
                row = {"workload": workload, "seed": seed, "regressor": reg, **r, "simulate_us": sim_us,
                       "proxy_us": proxy_us, "speedup": sim_us / proxy_us, "log_s": sim_s}
                rows.append(row)
                print(f"{workload:12} seed {seed} {reg:18} train {r['n_train']} test {r['n_test']}: "
                      f"MAPE {r['mape']:.2f} %  RMSE {r['rmse_pct']:.2f} % of mean  tau {r['kendall_tau']:.3f}  "
                      f"simulate {sim_us / 1e3:.1f} ms, proxy {proxy_us / 1e3:.2f} ms per design "
                      f"({sim_us / proxy_us:.0f}x)", flush=True)
    summary = {}
    for workload in {r["workload"] for r in rows}:
        for reg in regressors:
            sel = [r for r in rows if r["workload"] == workload and r["regressor"] == reg]
            summary[f"{workload}/{reg}"] = {k: float(np.mean([r[k] for r in sel]))
                                           for k in ("mape", "rmse_pct", "kendall_tau", "speedup")}
    for k, v in sorted(summary.items()):
        print(f"mean over seeds {k:32} MAPE {v['mape']:.2f} %  RMSE {v['rmse_pct']:.2f} %  tau {v['kendall_tau']:.3f}"
              f"  {v['speedup']:.0f}x faster")
    write_json({"rows": rows, "summary": summary}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
