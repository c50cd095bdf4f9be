"""The hyperparameter lottery (ArchGym), measured on the systolic-array design space.

Each strategy (random, rea, ls, reinforce, marl, auto) runs under 10 hyperparameter settings x 10 seeds on
the ``systolic`` space without its bandwidth parameter (9,375 designs: array shape, dataflow, three SRAM
sizes; no DRAM limit, so cycles are exactly SCALE-Sim's CALC cycles), with a fixed target on a fixed
workload. Every evaluation is priced by the systolic-array model and rewarded with ArchGym's hinge reward over
the targets (``archscout.gym.Reward``); the number of designs evaluated until one meets every target is
recorded (censored at the budget). The result is the distribution of samples-to-target per strategy and per
setting: how much depends on the setting drawn.

    .venv/bin/python benchmarks/lottery_accel.py --out results/lottery_accel.json \
        --plot docs/img/lottery_accel.png --workers 2

Resumable: finished runs are kept in ``OUT.runs.jsonl`` and skipped when the command is run again.
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
from archscout.hardware.accelerator import AcceleratorEvaluator

REA = [(10, 3), (10, 5), (20, 5), (20, 10), (30, 10), (30, 20), (50, 10), (50, 25), (100, 25), (100, 50)]
SETTINGS: dict[str, list[dict[str, Any]]] = {
    # random search has no hyperparameter: its ten "settings" are one configuration, so its spread is the seeds'
    "random": [{} for _ in range(10)],
    "rea": [{"population_size": p, "sample_size": s} for p, s in REA],
    "ls": [{"first_improvement": f, "n_init": n} for n in (1, 5, 10, 20, 50) for f in (True, False)],
    "reinforce": [{"learning_rate": lr, "entropy_weight": e} for lr in (0.25, 0.5, 1.0, 2.0, 8.0) for e in (0.0, 0.1)],
    "marl": [{"algorithm": a, "learning_rate": lr, "epsilon": 0.05}
             for a in ("ppo", "reinforce") for lr in (0.1, 0.3, 1.0, 3.0, 10.0)],
    "auto": [{"settings": {"smbo": {"surrogate": s, "beta": b, "n_init": n}}}
             for s, b, n in [("gp", 0.5, 10), ("gp", 1.0, 10), ("gp", 2.5, 10), ("gp", 5.0, 10), ("gp", 2.5, 5),
                             ("gp", 2.5, 20), ("gp", 2.5, 40), ("rf", 1.0, 10), ("rf", 2.5, 10), ("rf", 2.5, 20)]],
}

_EVAL: dict[str, Any] = {}


def _setup(workload: str) -> tuple[asc.Space, AcceleratorEvaluator]:
    if "space" not in _EVAL:
        _EVAL["space"] = asc.create_space("systolic", bandwidth=())
        _EVAL["eval"] = AcceleratorEvaluator(workload)
        _EVAL["cache"] = {}
    return _EVAL["space"], _EVAL["eval"]


def evaluate(arch: asc.Architecture, workload: str) -> dict[str, float]:
    _, ev = _setup(workload)
    key = str(arch)
    hit = _EVAL["cache"].get(key)
    if hit is None:
        hit = _EVAL["cache"][key] = ev.evaluate(arch)
    return hit


def calibrate(workload: str, fraction: float, n: int = 20_000) -> dict[str, float]:
    """Targets that a share ``fraction`` of random designs meet: area at its 40th percentile, then the
    latency and energy quantile (the same one) at which ``fraction`` of all designs meet all three."""
    space, _ = _setup(workload)
    rng = np.random.default_rng(12345)
    rows = [evaluate(space.sample(rng), workload) for _ in range(n)]
    area = np.array([r["area_mm2"] for r in rows])
    lat = np.array([r["latency_ms"] for r in rows])
    en = np.array([r["energy_mj"] for r in rows])
    a_t = float(np.quantile(area, 0.4))
    lo, hi = 0.0, 1.0
    for _ in range(40):
        q = 0.5 * (lo + hi)
        ok = (area <= a_t) & (lat <= np.quantile(lat, q)) & (en <= np.quantile(en, q))
        lo, hi = (q, hi) if ok.mean() < fraction else (lo, q)
    return {"latency_ms": float(np.quantile(lat, hi)), "energy_mj": float(np.quantile(en, hi)), "area_mm2": a_t}


def met_fraction(workload: str, targets: dict[str, float], n: int = 20_000) -> float:
    space, _ = _setup(workload)
    rng = np.random.default_rng(12345)
    hits = 0
    for _ in range(n):
        metrics = evaluate(space.sample(rng), workload)
        hits += all(metrics[m] <= t for m, t in targets.items())
    return hits / n


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    from archscout.gym import Reward

    space, _ = _setup(job["workload"])
    reward = Reward("hinge", job["targets"], dict.fromkeys(job["targets"], "min"))
    strat = asc.create_strategy(job["strategy"], space, objectives=[("reward", "max")], seed=job["seed"],
                                **job["params"])
    t0 = time.perf_counter()
    best, reached = -np.inf, None
    curve = []
    for i in range(1, job["budget"] + 1):
        cand = strat.ask()
        metrics = evaluate(cand.arch, job["workload"])
        r = float(reward(metrics))
        strat.tell(cand, asc.Result("complete", {"reward": r}))
        best = max(best, r)
        curve.append(best)
        if reward.met(metrics):
            reached = i
            break
    return {**{k: job[k] for k in ("strategy", "setting", "seed")}, "params": job["params"], "samples": reached,
            "best_reward": best, "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", default="mobilenetv2", help="built-in topology or SCALE-Sim CSV")
    ap.add_argument("--strategies", default=",".join(SETTINGS))
    ap.add_argument("--settings", type=int, default=10, help="settings per strategy (<= 10)")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=300, help="designs per run; a run that misses counts as censored")
    ap.add_argument("--fraction", type=float, default=0.01, help="share of random designs that meet the target")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="results/lottery_accel.json")
    ap.add_argument("--plot", default=None)
    args = ap.parse_args(argv)
    strategies = [s for s in args.strategies.split(",") if s]
    unknown = [s for s in strategies if s not in SETTINGS]
    if unknown:
        ap.error(f"no settings for {unknown}; choose from {list(SETTINGS)}")
    t0 = time.time()
    targets = calibrate(args.workload, args.fraction)
    frac = met_fraction(args.workload, targets)
    print(f"targets {targets}: met by {100 * frac:.2f} % of 20,000 random designs", flush=True)
    runs_path = args.out + ".runs.jsonl"
    done: dict[tuple, dict] = {}
    if os.path.exists(runs_path):
        with open(runs_path) as f:
            for line in f:
                r = json.loads(line)
                if r.get("targets") == targets and r.get("budget") == args.budget:
                    done[(r["strategy"], r["setting"], r["seed"])] = r
    jobs = [{"workload": args.workload, "targets": targets, "budget": args.budget, "strategy": s, "setting": k,
             "seed": seed, "params": SETTINGS[s][k]}
            for s in strategies for k in range(args.settings) for seed in range(args.seeds)
            if (s, k, seed) not in done]
    print(f"{len(done)} runs recorded, {len(jobs)} to run", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(runs_path)), exist_ok=True)
    with ProcessPoolExecutor(args.workers) as pool, open(runs_path, "a") as f:
        for i, r in enumerate(pool.map(run_one, jobs, chunksize=1)):
            r.update(targets=targets, budget=args.budget)
            f.write(json.dumps(r) + "\n")
            f.flush()
            done[(r["strategy"], r["setting"], r["seed"])] = r
            if (i + 1) % 50 == 0:
                print(f"  {i + 1}/{len(jobs)} runs ({time.time() - t0:.0f} s)", flush=True)
    summary = summarise(done, strategies, args)
    write_json({"targets": targets, "met_fraction": frac, "budget": args.budget, "settings": SETTINGS,
                "summary": summary, "runs": sorted(done.values(), key=lambda r: (r["strategy"], r["setting"],
                                                                               r["seed"])),
                "wall_s": time.time() - t0}, args.out)
    if args.plot:
        plot(done, strategies, args)
    return 0


def summarise(done: dict, strategies: list[str], args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    print(f"\n{'strategy':10} {'reached':>8} {'median':>7} {'p10':>6} {'p90':>6}  setting medians (min..max)")
    for s in strategies:
        runs = [r for (st, _, _), r in done.items() if st == s]
        cens = np.array([r["samples"] if r["samples"] is not None else args.budget + 1 for r in runs], dtype=float)
        per = []
        for k in range(args.settings):
            v = [r["samples"] if r["samples"] is not None else args.budget + 1 for (st, kk, _), r in done.items()
                 if st == s and kk == k]
            per.append(float(np.median(v)) if v else float("nan"))
        out[s] = {"runs": len(runs), "reached": int(np.sum(cens <= args.budget)), "median": float(np.median(cens)),
                  "p10": float(np.quantile(cens, 0.1)), "p90": float(np.quantile(cens, 0.9)),
                  "setting_medians": per, "best_setting": int(np.nanargmin(per)),
                  "worst_setting": int(np.nanargmax(per))}
        print(f"{s:10} {out[s]['reached']:>4}/{len(runs):<3} {out[s]['median']:7.0f} {out[s]['p10']:6.0f} "
              f"{out[s]['p90']:6.0f}  {min(per):.0f}..{max(per):.0f}")
    return out


def plot(done: dict, strategies: list[str], args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 4.5))
    pos, data, colors, ticks = [], [], [], []
    cmap = plt.get_cmap("tab10")
    x = 0.0
    for j, s in enumerate(strategies):
        start = x
        for k in range(args.settings):
            v = [r["samples"] if r["samples"] is not None else args.budget + 1 for (st, kk, _), r in done.items()
                 if st == s and kk == k]
            data.append(v)
            pos.append(x)
            colors.append(cmap(j))
            x += 1
        ticks.append((start + x - 1) / 2)
        x += 2
    bp = ax.boxplot(data, positions=pos, widths=0.8, patch_artist=True, showfliers=True)
    for patch, c in zip(bp["boxes"], colors):
        patch.set_facecolor(c)
        patch.set_alpha(0.6)
    ax.axhline(args.budget, color="grey", ls=":", lw=1)
    ax.text(pos[-1], args.budget * 1.05, "budget (not reached above)", ha="right", fontsize=8, color="grey")
    ax.set_yscale("log")
    ax.set_xticks(ticks, strategies)
    ax.set_ylabel("designs evaluated until the target is met")
    ax.set_title(f"Hyperparameter lottery on the systolic-array space ({args.workload}; each box: one setting, "
                 f"{args.seeds} seeds)")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.plot)), exist_ok=True)
    fig.savefig(args.plot, dpi=120)
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    raise SystemExit(main())
