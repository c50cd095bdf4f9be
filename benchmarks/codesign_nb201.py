"""Network-accelerator co-design on NB201 x the systolic array, against NB201 cells on a fixed accelerator.

Two searches at the same budget (evaluated networks), for each strategy (auto, mobo, nsga2), objective pair
(accuracy vs latency, accuracy vs energy) and seed:

* **co-design**: the joint space ``nb201 + hw_systolic``; accuracy from the NB201 table, latency / energy / area
  of the cell's network (NB201 C=16 N=5 on 32x32 inputs, traced once) simulated on the design's accelerator;
* **fixed**: the ``nb201`` space on one default accelerator (32x32 weight-stationary, 128/128/64 KB SRAM,
  16 words/cycle), the same simulation.

Both run under the same specs: ``latency_ms <= L``, ``energy_mj <= E``, ``area_mm2 <= A`` (constraints; cheap
cost models screen designs before the table is read). The fronts' hypervolumes use one reference point per
pair: (100 - REF_ACC, L) and (100 - REF_ACC, E).

    .venv/bin/python benchmarks/codesign_nb201.py --out results/codesign_nb201.json \
        --plot docs/img/codesign_nb201.png --workers 2

The traced workloads of the 6,466 NB201 functional classes are kept in ``--trace-cache`` (built on first use).
Resumable: finished runs are kept in ``OUT.runs.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import write_json

import archscout as asc
from archscout.benchmarks import create_benchmark
from archscout.hardware.accelerator import SystolicCost
from archscout.hardware.codesign import PartEvaluator, joint_space
from archscout.hardware.systolic import Accelerator
from archscout.hardware.workloads import load_workload_cache, save_workload_cache, workload_of
from archscout.pareto import hypervolume

DEFAULT = {"rows": 32, "cols": 32, "dataflow": "ws", "sram_kb": [128, 128, 64], "bandwidth": 16}
INPUT = (3, 32, 32)
REF_ACC = 60.0
PAIRS = ("latency_ms", "energy_mj")

_S: dict[str, Any] = {}


def factory():
    from archscout.nn import ModelFactory

    return ModelFactory(INPUT, num_classes=10, C=16, N=5)


def _bench(table: str, metric: str):
    if "bench" not in _S:
        _S["bench"] = create_benchmark("nb201", table=table, objective=metric)
    return _S["bench"]


def build_trace_cache(path: str, workers: int) -> None:
    """Trace one network per NB201 functional class (resumable) and save the layers to ``path``."""
    if os.path.exists(path):
        return
    space = asc.create_space("nb201")
    reps: dict[str, str] = {}
    for a in space.enumerate():
        reps.setdefault(a.functional_hash(), str(a))
    archs = sorted(reps.values())
    print(f"tracing {len(archs)} NB201 networks (one per functional class) into {path}", flush=True)
    chunks = [archs[i::workers * 8] for i in range(workers * 8)]
    t0 = time.time()
    parts = []
    with ProcessPoolExecutor(workers) as pool:
        for i, part in enumerate(pool.map(_trace_chunk, chunks)):
            parts.append(part)
            print(f"  {i + 1}/{len(chunks)} chunks ({time.time() - t0:.0f} s)", flush=True)
    merged = {k: v for p in parts for k, v in p.items()}
    with open(path + ".tmp", "w") as f:
        json.dump(merged, f)
    os.replace(path + ".tmp", path)


def _trace_chunk(archs: list[str]) -> dict:
    import tempfile

    space = asc.create_space("nb201")
    f = factory()
    for a in archs:
        workload_of(space.parse(a), f, INPUT)
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as tmp:
        save_workload_cache(tmp.name)
        with open(tmp.name) as f:
            data = json.load(f)
    os.unlink(tmp.name)
    return data


def specs(table: str, metric: str) -> dict[str, float]:
    """L and E: the 90th percentile of the default accelerator's latency and energy over 300 random cells;
    A: twice the default accelerator's area."""
    space = asc.create_space("nb201")
    rng = np.random.default_rng(7)
    acc = Accelerator.from_config(DEFAULT)
    lat = SystolicCost("latency_ms", accelerator=acc, factory=factory())
    en = SystolicCost("energy_mj", accelerator=acc, factory=factory())
    cells = [space.sample(rng) for _ in range(300)]
    return {"latency_ms": float(np.quantile([lat.predict(c) for c in cells], 0.9)),
            "energy_mj": float(np.quantile([en.predict(c) for c in cells], 0.9)),
            "area_mm2": 2.0 * acc.area.area_mm2(acc)}


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    if "cache" not in _S:
        load_workload_cache(job["trace_cache"])
        _S["cache"] = True
    bench = _bench(job["table"], job["metric"])
    f = factory()
    spec = job["specs"]
    cons = [f"{m}<={spec[m]}" for m in ("latency_ms", "energy_mj", "area_mm2")]
    objectives = [("accuracy", "max"), (job["pair"], "min")]
    rename = {job["metric"]: "accuracy"}
    if job["setting"] == "codesign":
        space = joint_space({"": "nb201", "hw_": "systolic"})
        costs = {m: SystolicCost(m, prefix="hw_", factory=f) for m in ("latency_ms", "energy_mj", "area_mm2")}
    else:
        space = asc.create_space("nb201")
        acc = Accelerator.from_config(DEFAULT)
        costs = {m: SystolicCost(m, accelerator=acc, factory=f) for m in ("latency_ms", "energy_mj", "area_mm2")}
    evaluator = PartEvaluator(bench.evaluator([job["metric"]]), "nb201", rename=rename)
    study = asc.create_study(space, objectives=objectives, constraints=cons, cost_models=costs,
                             strategy=job["strategy"], seed=job["seed"])
    t0 = time.perf_counter()
    study.optimize(evaluator, budget=job["budget"])
    front = study.pareto_front()
    pts = np.array([[100.0 - t.metrics["accuracy"], t.metrics[job["pair"]]] for t in front]).reshape(-1, 2)
    hv = hypervolume(pts, [100.0 - REF_ACC, spec[job["pair"]]]) if len(pts) else 0.0
    return {**{k: job[k] for k in ("pair", "strategy", "setting", "seed")}, "hv": float(hv),
            "front": [[float(t.metrics["accuracy"]), float(t.metrics[job["pair"]]), str(t.arch)] for t in front],
            "n_trials": len(study.trials), "n_infeasible": sum(t.state == "infeasible" for t in study.trials),
            "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                                                    "nas-bench-201", "nb201_cifar10.csv"))
    ap.add_argument("--metric", default="valid_acc_200ep")
    ap.add_argument("--strategies", default="auto,mobo,nsga2")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=100, help="evaluated networks per search")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--trace-cache", default=".cache/nb201_C16N5_workloads.json")
    ap.add_argument("--out", default="results/codesign_nb201.json")
    ap.add_argument("--plot", default=None)
    args = ap.parse_args(argv)
    if not os.path.isfile(args.table):
        ap.error(f"no NB201 table at {args.table}; pass --table PATH")
    t0 = time.time()
    os.makedirs(os.path.dirname(os.path.abspath(args.trace_cache)), exist_ok=True)
    build_trace_cache(args.trace_cache, args.workers)
    load_workload_cache(args.trace_cache)
    spec = specs(args.table, args.metric)
    print(f"specs: {spec}", flush=True)
    runs_path = args.out + ".runs.jsonl"
    done: dict[tuple, dict] = {}
    if os.path.exists(runs_path):
        with open(runs_path) as f:
            for line in f:
                r = json.loads(line)
                if r.get("specs") == spec and r.get("budget") == args.budget:
                    done[(r["pair"], r["strategy"], r["setting"], r["seed"])] = r
    strategies = [s for s in args.strategies.split(",") if s]
    jobs = [{"table": args.table, "metric": args.metric, "trace_cache": args.trace_cache, "specs": spec,
             "budget": args.budget, "pair": p, "strategy": s, "setting": k, "seed": seed}
            for seed in range(args.seeds) for p in PAIRS for s in strategies for k in ("codesign", "fixed")
            if (p, s, k, seed) not in done]
    print(f"{len(done)} runs recorded, {len(jobs)} to run", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(runs_path)), exist_ok=True)
    with ProcessPoolExecutor(args.workers) as pool, open(runs_path, "a") as f:
        for r in pool.map(run_one, jobs, chunksize=1):
            r.update(specs=spec, budget=args.budget)
            f.write(json.dumps(r) + "\n")
            f.flush()
            done[(r["pair"], r["strategy"], r["setting"], r["seed"])] = r
            print(f"  {r['pair']:10} {r['strategy']:6} {r['setting']:8} seed {r['seed']}: HV {r['hv']:.3f} "
                  f"({len(r['front'])} on the front, {r['n_infeasible']} screened out, {r['seconds']:.0f} s)",
                  flush=True)
    summary: dict[str, Any] = {}
    print(f"\n{'pair':10} {'strategy':8} {'co-design HV':>16} {'fixed HV':>16} {'wins':>6}")
    for p in PAIRS:
        for s in strategies:
            co = [done[(p, s, "codesign", k)]["hv"] for k in range(args.seeds) if (p, s, "codesign", k) in done]
            fx = [done[(p, s, "fixed", k)]["hv"] for k in range(args.seeds) if (p, s, "fixed", k) in done]
            wins = sum(a > b for a, b in zip(co, fx))
            summary[f"{p}/{s}"] = {"codesign_mean": float(np.mean(co)), "codesign_std": float(np.std(co)),
                                   "fixed_mean": float(np.mean(fx)), "fixed_std": float(np.std(fx)),
                                   "wins": wins, "seeds": len(co)}
            print(f"{p:10} {s:8} {np.mean(co):9.3f} ± {np.std(co):5.3f} {np.mean(fx):9.3f} ± {np.std(fx):5.3f} "
                  f"{wins:>3}/{len(co)}")
    write_json({"specs": spec, "default_accelerator": DEFAULT, "ref_accuracy": REF_ACC, "budget": args.budget,
                "summary": summary, "runs": list(done.values()), "wall_s": time.time() - t0}, args.out)
    if args.plot:
        plot(done, spec, strategies, args.plot)
    return 0


def plot(done: dict, spec: dict, strategies: list[str], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    s = strategies[0]
    for ax, p in zip(axes, PAIRS):
        for setting, color in (("codesign", "tab:red"), ("fixed", "tab:blue")):
            r = done.get((p, s, setting, 0))
            if not r:
                continue
            pts = sorted((f[1], f[0]) for f in r["front"])
            ax.step([x for x, _ in pts], [y for _, y in pts], where="post", color=color,
                    label=f"{'co-designed' if setting == 'codesign' else 'fixed accelerator'} (HV {r['hv']:.2f})")
            ax.scatter([x for x, _ in pts], [y for _, y in pts], color=color, s=14)
        ax.set_xlabel(p)
        ax.set_ylabel("NB201 CIFAR-10 validation accuracy (%)")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(fontsize=8)
        ax.set_title(f"{s}, seed 0: accuracy vs {p} (specs: {p} <= {spec[p]:.3g})", fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    raise SystemExit(main())
