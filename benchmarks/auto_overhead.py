"""The default strategy on a custom space: cost per trial of ``auto`` next to Optuna TPE and ``rea``, and the
quality of what it finds, on the README's example space (too large to enumerate).

Two parts:

* cost (default): the README's quick example, run as it is written (objective ``accuracy`` maximised,
  constraint ``latency_ms<=2``, a trivial evaluator, SQLite storage in a temp folder), once per strategy
  (``auto``, ``tpe-optuna``, ``rea``) in one process. Each study is driven to 100 trials, then on to 300, then
  to 1,000 (``optimize`` takes the total budget), and the wall time of each leg is recorded: the mean cost
  per trial up to each checkpoint, and the marginal cost per trial of each leg (how the cost grows with the
  number of results). TPE may be stopped earlier with ``--optuna-trials``. ``--mobo`` adds ``auto`` with two
  objectives (``accuracy`` max, ``latency_ms`` min), which runs ``mobo``.
* quality (``--quality``): the same space with a synthetic objective whose optimum is known exactly (see
  :class:`SyntheticScore`), strategies driven by ask/tell for ``--seeds`` seeds; mean regret (optimum minus
  best found) at 50, 100 and 300 trials.

Usage, from the repository root::

    .venv/bin/python benchmarks/auto_overhead.py --trials 100,300,1000 --mobo \
        --out results/auto_overhead.json
    .venv/bin/python benchmarks/auto_overhead.py --quality --seeds 10 --out results/auto_quality.json
    .venv/bin/python benchmarks/auto_overhead.py --quality --seeds 20 --strategies auto \
        --config '{"name": "smbo", "pool_size": 1000}' --out results/auto_quality_pool.json
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np
from _results import write_json

import archscout as asc


def readme_space() -> asc.Space:
    """The space of the README's quick example (about 1.4e20 architectures)."""
    return asc.Space({
        "width": asc.Choice([16, 24, 32]),
        "stages": asc.Stages(n=4, depth=asc.Ordinal([2, 3, 4]),
                             layer={"kernel": asc.Choice([3, 5, 7]), "expand": asc.Choice([3, 4, 6])}),
        "cell": asc.Cell(nodes=4, ops=["none", "skip", "conv1x1", "conv3x3", "avgpool3x3"]),
    })


# --- cost ----------------------------------------------------------------------------------------------
def trivial(arch: asc.Architecture) -> dict[str, float]:
    """The README's evaluator: the same metrics for every architecture."""
    return {"accuracy": 0.9, "latency_ms": 1.2}


SETUPS = {
    "auto": ("auto", [asc.Objective("accuracy", "max")]),
    "tpe-optuna": ("tpe-optuna", [asc.Objective("accuracy", "max")]),
    "rea": ("rea", [asc.Objective("accuracy", "max")]),
    "auto-2obj (mobo)": ("auto", [asc.Objective("accuracy", "max"), asc.Objective("latency_ms", "min")]),
}


def run_cost(space: asc.Space, setup: str, checkpoints: list[int], seed: int) -> list[float]:
    """Seconds of each leg (0 -> checkpoints[0] -> checkpoints[1] ...) of the README example's study."""
    strategy, objectives = SETUPS[setup]
    folder = tempfile.mkdtemp(prefix="archscout-auto-overhead-")
    try:
        study = asc.create_study(space, objectives=objectives, constraints=["latency_ms<=2"], strategy=strategy,
                                 storage=os.path.join(folder, "demo.db"), seed=seed)
        gc.collect()
        legs = []
        for budget in checkpoints:
            t0 = time.perf_counter()
            study.optimize(trivial, budget=budget)
            legs.append(time.perf_counter() - t0)
            if study.n_evaluated != budget:
                raise RuntimeError(f"{setup}: the study holds {study.n_evaluated} trials, expected {budget}")
        study.close()
        return legs
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def cost_main(ns: argparse.Namespace) -> dict[str, Any]:
    space = readme_space()
    trials = sorted({int(t) for t in ns.trials.split(",")})
    setups = ["auto", "tpe-optuna", "rea"] + (["auto-2obj (mobo)"] if ns.mobo else [])
    rows: dict[str, Any] = {}
    for setup in setups:
        cps = [t for t in trials if setup != "tpe-optuna" or t <= ns.optuna_trials]
        legs = run_cost(space, setup, cps, ns.seed)
        cum = list(itertools.accumulate(legs))
        rows[setup] = {
            "checkpoints": cps,
            "leg_seconds": legs,
            "mean_ms_per_trial": {t: 1000 * c / t for t, c in zip(cps, cum)},
            "marginal_ms_per_trial": {f"{a}-{b}": 1000 * s / (b - a) for a, b, s in zip([0] + cps, cps, legs)},
        }
        print(f"{setup:<18} " + "  ".join(f"{t}: {1000 * c / t:8.2f} ms/trial" for t, c in zip(cps, cum)),
              file=sys.stderr, flush=True)

    lines = ["| strategy | " + " | ".join(f"mean ms/trial, {t} trials" for t in trials) + " |",
             "|---|" + "---:|" * len(trials)]
    for setup, r in rows.items():
        cells = [f"{r['mean_ms_per_trial'][t]:.2f}" if t in r["mean_ms_per_trial"] else "" for t in trials]
        lines.append(f"| {setup} | " + " | ".join(cells) + " |")
    legs = [f"{a}-{b}" for a, b in zip([0] + trials, trials)]
    lines += ["", "| strategy | " + " | ".join(f"ms/trial, trials {g}" for g in legs) + " |",
              "|---|" + "---:|" * len(legs)]
    for setup, r in rows.items():
        lines.append(f"| {setup} | " + " | ".join(
            f"{r['marginal_ms_per_trial'][g]:.2f}" if g in r["marginal_ms_per_trial"] else "" for g in legs) + " |")
    ratios = {t: rows["auto"]["mean_ms_per_trial"][t] / rows["tpe-optuna"]["mean_ms_per_trial"][t]
              for t in trials if t in rows["tpe-optuna"]["mean_ms_per_trial"]}
    lines += ["", "| trials | auto / tpe-optuna (mean ms/trial) |", "|---:|---:|"]
    lines += [f"| {t} | {v:.2f} |" for t, v in ratios.items()]
    print("\n".join(lines))
    return {"part": "cost", "trials": trials, "optuna_trials": ns.optuna_trials, "seed": ns.seed, "results": rows,
            "ratio_auto_to_tpe": ratios,
            "timing": "wall time of Study.optimize per leg (SQLite storage, trivial evaluator); study creation "
                      "excluded"}


# --- quality -------------------------------------------------------------------------------------------
class SyntheticScore:
    """A synthetic objective on :func:`readme_space` with a known optimum (the sum of per-part maxima):

    * width: a random value per option;
    * each stage: a random value per depth, a random value per (position, kernel, expand) of each layer, and a
      random interaction between consecutive layers' (kernel, expand) pairs;
    * cell: a random value per (edge, operation) and a random interaction between the operations of
      neighbouring edges (edge ``i`` and ``i + 1`` mod 6).

    The parts are independent, so the optimum is the sum of each part's maximum, found by enumeration.
    """

    def __init__(self, space: asc.Space, seed: int = 1234) -> None:
        rng = np.random.default_rng(seed)
        st = space.params["stages"]
        self.kernels = list(st.layer["kernel"].options)
        self.expands = list(st.layer["expand"].options)
        self.ops = list(space.params["cell"].ops)
        self.width = dict(zip(space.params["width"].options, rng.normal(0, 0.5, 3)))
        self.depth = rng.normal(0, 0.5, (st.n, 3))
        self.layer = rng.normal(0, 0.3, (st.n, st.max_depth, 3, 3))
        self.pair = rng.normal(0, 0.2, (st.n, 9, 9))
        self.edge = rng.normal(0, 0.4, (6, len(self.ops)))
        self.edge_pair = rng.normal(0, 0.25, (6, len(self.ops), len(self.ops)))
        self.depths = list(st.depth.options)
        best_stage = []
        layers = list(itertools.product(self.kernels, self.expands))
        for s in range(st.n):
            best_stage.append(max(self._stage(s, combo) for d in self.depths
                                  for combo in itertools.product(layers, repeat=d)))
        best_cell = max(self._cell(c) for c in itertools.product(self.ops, repeat=6))
        self.optimum = max(self.width.values()) + sum(best_stage) + best_cell

    def _stage(self, s: int, layers: tuple) -> float:
        v = self.depth[s, self.depths.index(len(layers))]
        prev = None
        for li, (k, e) in enumerate(layers):
            ki, ei = self.kernels.index(k), self.expands.index(e)
            v += self.layer[s, li, ki, ei]
            if prev is not None:
                v += self.pair[s, prev, 3 * ki + ei]
            prev = 3 * ki + ei
        return float(v)

    def _cell(self, ops: tuple) -> float:
        idx = [self.ops.index(o) for o in ops]
        return float(sum(self.edge[i, o] for i, o in enumerate(idx))
                     + sum(self.edge_pair[i, idx[i], idx[(i + 1) % 6]] for i in range(6)))

    def __call__(self, arch: asc.Architecture) -> float:
        return (self.width[arch["width"]] + sum(self._stage(s, st) for s, st in enumerate(arch["stages"]))
                + self._cell(arch["cell"]))


def quality_main(ns: argparse.Namespace) -> dict[str, Any]:
    from archscout.results import Result

    space = readme_space()
    f = SyntheticScore(space)
    strategies = [s for s in ns.strategies.split(",") if s] + list(ns.config)
    marks = [50, 100, 300]
    n = max(marks)
    regret: dict[str, dict[int, list[float]]] = {s: {m: [] for m in marks} for s in strategies}
    seconds: dict[str, list[float]] = {s: [] for s in strategies}
    for seed in range(ns.seeds):
        for name in strategies:
            cfg = json.loads(name) if name.startswith("{") else {"name": name}
            s = asc.create_strategy(cfg.pop("name"), space, objectives=[asc.Objective("score", "max")], seed=seed,
                                    **cfg)
            best, t0 = -math.inf, time.perf_counter()
            for i in range(1, n + 1):
                c = s.ask()
                v = f(c.arch)
                s.tell(c, Result("complete", {"score": v}))
                best = max(best, v)
                if i in marks:
                    regret[name][i].append(f.optimum - best)
            seconds[name].append(time.perf_counter() - t0)
            print(f"seed {seed} {name:<12} regret@50/100/300 " +
                  " ".join(f"{regret[name][m][-1]:.3f}" for m in marks) + f"  ({seconds[name][-1]:.1f} s)",
                  file=sys.stderr, flush=True)
    lines = ["| strategy | " + " | ".join(f"mean regret @{m} (± s.e.)" for m in marks) + " | s per run |",
             "|---|" + "---:|" * (len(marks) + 1)]
    for name in strategies:
        cells = [f"{np.mean(regret[name][m]):.3f} ± {np.std(regret[name][m], ddof=1) / math.sqrt(ns.seeds):.3f}"
                 if ns.seeds > 1 else f"{regret[name][m][0]:.3f}" for m in marks]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {statistics.mean(seconds[name]):.1f} |")
    print(f"optimum {f.optimum:.4f}\n" + "\n".join(lines))
    return {"part": "quality", "optimum": f.optimum, "seeds": ns.seeds, "strategies": strategies,
            "regret": regret, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", default="100,300,1000", help="checkpoints of the cost part (default: %(default)s)")
    p.add_argument("--optuna-trials", type=int, default=1000,
                   help="stop TPE at the last checkpoint not above this (TPE slows down as trials grow)")
    p.add_argument("--mobo", action="store_true", help="also time auto with two objectives (mobo)")
    p.add_argument("--seed", type=int, default=0, help="strategy seed of the cost part (default: %(default)s)")
    p.add_argument("--quality", action="store_true", help="run the quality part instead of the cost part")
    p.add_argument("--strategies", default="auto,rea,random,tpe-optuna", help="quality part (default: %(default)s)")
    p.add_argument("--config", action="append", default=[],
                   help='quality part: a strategy config as JSON, e.g. \'{"name": "smbo", "pool_size": 1000}\' '
                        "(repeatable; run after --strategies)")
    p.add_argument("--seeds", type=int, default=10, help="seeds of the quality part (default: %(default)s)")
    p.add_argument("--out", default=None, help="JSON output path")
    ns = p.parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    out = quality_main(ns) if ns.quality else cost_main(ns)
    out["elapsed_s"] = time.perf_counter() - t0
    out["versions"] = {"optuna": optuna.__version__, "numpy": np.__version__, "python": platform.python_version()}
    print(f"\ntotal elapsed {out['elapsed_s']:.1f} s on {os.cpu_count()} CPUs")
    if ns.out:
        write_json(out, ns.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
