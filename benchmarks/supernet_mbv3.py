"""Weight sharing on Fashion-MNIST with ``mbv3``: train once, specialise for this CPU, against training from scratch.

Runs the real commands, timed:

1. ``archscout supernet train --space mbv3 --data DATA --out OUT/sn --seed S`` (the defaults);
2. for three latency budgets ``B`` (fractions of the way from the smallest to the largest sub-network's measured
   latency on ``cpu-ort``): ``archscout supernet search OUT/sn --budget N --device cpu-ort --latency-budget-ms B
   --export OUT/dep-B --json ...``; every exported model is checked again here: ONNX Runtime accuracy on
   ``heldout.npz`` against the accuracy in its JSON, and its latency measured once more against the budget;
   with ``--finetune-epochs K`` the middle budget runs once more, its front fine-tuned for K epochs on export;
3. inherited weights against training from scratch: ``--scratch`` random sub-networks, each with its inherited
   (recalibrated) accuracy and the accuracy of the same network trained from scratch, the trainings sharing the
   supernet's training budget as a whole (together they see as many images as the supernet did); the pairs are
   appended to ``--pairs`` as they finish and read back by a later run;
4. a from-scratch ``mobo`` search (TrainingEvaluator, the same data, the same device and middle latency budget),
   judged at the wall time of steps 1 and 2 (middle budget) together and, with fine-tuning, of those plus the
   fine-tuned export; its best feasible model by validation accuracy, with its test accuracy, against the model
   the supernet search picked by validation accuracy under that budget (``pick_test_acc``).

    python benchmarks/supernet_mbv3.py --data ../shared/data/fashion-mnist/fashion_mnist.npz

Results: ``results/supernet-mbv3.json`` and a summary on stdout (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import run_command, write_json


def check_export(folder: Path, meter, budget: float) -> list[dict]:
    """ONNX Runtime accuracy of each exported model on heldout.npz and its latency measured once more."""
    held = np.load(folder / "heldout.npz")
    X, y = held["X"], held["y"]
    rows = []
    for f in sorted((folder / "models").glob("*.json")):
        info = json.loads(f.read_text())
        onnx = f.with_suffix(".onnx")
        sess = meter.meter.session(onnx)
        name = sess.get_inputs()[0].name
        logits = np.concatenate([sess.run(None, {name: X[i:i + 500]})[0] for i in range(0, len(X), 500)])
        acc = float(np.mean(logits.argmax(1) == y))
        again = meter.measure_onnx(onnx).median_ms
        rows.append({"name": info["name"], "arch": info["arch"], "accuracy_json": info["accuracy"],
                     "accuracy_ort": acc, "latency_ms_predicted": info["latency_ms_predicted"],
                     "latency_ms_measured": info["latency_ms_measured"], "latency_ms_again": again,
                     "budget_ms": budget, "within_budget_15pct": again <= 1.15 * budget,
                     "accuracy_match_05pt": abs(acc - info["accuracy"]) <= 0.005})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="Fashion-MNIST: the .npz, the IDX folder, or 'fashion-mnist'")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--search-budget", type=int, default=40, help="sub-network evaluations per specialisation")
    ap.add_argument("--val-images", type=int, default=1500, help="validation images that score a sub-network")
    ap.add_argument("--fractions", default="0.15,0.35,0.6", help="latency budgets between smallest and largest")
    ap.add_argument("--scratch", type=int, default=20, help="sub-networks trained from scratch (step 3)")
    ap.add_argument("--scratch-epochs", type=int, default=2, help="epochs per model of the from-scratch search")
    ap.add_argument("--pairs", default="results/mbv3-scratch-pairs.jsonl",
                    help="step 3's pairs, one JSON line each; pairs already there are read back, not recomputed")
    ap.add_argument("--finetune-epochs", type=int, default=0,
                    help="epochs of fine-tuning for each exported model (supernet search --finetune-epochs)")
    ap.add_argument("--out", default="results/supernet-mbv3")
    ap.add_argument("--json", default="results/supernet-mbv3.json")
    ap.add_argument("--train-args", default="", help="extra arguments for 'supernet train' (default: none)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip", default="", help="comma-separated steps to skip (special, scratch, search)")
    args = ap.parse_args()

    import torch

    import archscout as asc
    from archscout.data import load_splits
    from archscout.hardware import MeasuredLatency
    from archscout.supernet import SupernetEvaluator
    from archscout.training import TrainingEvaluator

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "commands.log"
    exe = [sys.executable, "-m", "archscout", "supernet"]
    common = ["--threads", str(args.threads), "--no-progress"]
    sn = out / "sn"
    res: dict = {"data": args.data, "seed": args.seed}
    res["train_s"] = run_command([*exe, "train", "--space", "mbv3", "--data", args.data, "--out", str(sn), "--seed",
                          str(args.seed), *args.train_args.split(), *common], log)
    meta = json.loads((sn / "supernet.json").read_text())
    res["settings"], res["data_sizes"] = meta["settings"], meta["data_sizes"]
    # the recorded training time (the command above returns at once when the folder holds a finished run)
    res["train_s"] = max(res["train_s"], sum(h["time_s"] for h in meta["history"]))
    ev = SupernetEvaluator(sn, threads=args.threads, val_images=args.val_images)
    net = ev.supernet
    meter = MeasuredLatency("cpu-ort", factory=ev.factory, input_shape=ev.input_shape,
                            cache_path=sn / "latency-cpu-ort.json")
    lo, hi = meter.predict(net.smallest()), meter.predict(net.largest())
    budgets = [round(lo + f * (hi - lo), 3) for f in (float(v) for v in args.fractions.split(","))]
    res["latency_smallest_ms"], res["latency_largest_ms"], res["budgets_ms"] = lo, hi, budgets

    def specialise(b: float, finetune: int) -> dict:
        tag = f"{b}" if finetune == 0 else f"{b}-ft{finetune}"
        dep, f = out / f"dep-{tag}", out / f"search-{tag}.json"
        t = run_command([*exe, "search", str(sn), "--budget", str(args.search_budget), "--device", "cpu-ort",
                         "--latency-budget-ms", str(b), "--export", str(dep), "--seed", str(args.seed), "--json",
                         str(f), "--val-images", str(args.val_images), "--finetune-epochs", str(finetune), *common],
                        log)
        r = json.loads(f.read_text())
        checks = check_export(dep, meter, b)
        row = {"budget_ms": b, "finetune_epochs": finetune, "wall_s": t, "search_time_s": r["search_time_s"],
               "export_time_s": r["export_time_s"], "best": r["best"], "best_val_acc": r["best_accuracy"],
               "front_size": len(r["front"]), "exported": checks,
               "best_test_acc": max((c["accuracy_ort"] for c in checks), default=None),
               # the honest pick: the model the search chose by validation accuracy, its held-out accuracy
               "pick_test_acc": next((c["accuracy_ort"] for c in checks if c["arch"] == r["best"]), None)}
        print(json.dumps(row, indent=1), flush=True)
        return row

    res["specialised"] = [] if "special" in args.skip else [specialise(b, 0) for b in budgets]
    if res["specialised"] and args.finetune_epochs:
        # the middle budget again, its front fine-tuned: the search part is the one above (its evaluations are
        # cached now), so its wall time counts as the plain command's plus this export's time
        ft = specialise(budgets[len(budgets) // 2], args.finetune_epochs)
        ft["wall_s_counted"] = res["specialised"][len(budgets) // 2]["wall_s"] + ft["export_time_s"]
        res["specialised_finetuned"] = ft

    splits = load_splits(args.data, train_subset=meta["data"]["train_subset"], val_size=meta["data"]["val_size"],
                         seed=meta["data"]["split_seed"])
    if "scratch" not in args.skip:
        # step 3: the same sub-networks trained from scratch, the trainings sharing the supernet's budget
        seen = meta["settings"]["epochs"] * meta["data_sizes"]["train"]
        per_model = max(500, seen // args.scratch)
        sub = load_splits(args.data, train_subset=min(per_model, meta["data_sizes"]["train"]),
                          val_size=meta["data"]["val_size"], seed=meta["data"]["split_seed"])
        te = TrainingEvaluator(sub, epochs=max(1, per_model // len(sub.y_train)), batch_size=128, threads=args.threads,
                               factory=ev.factory, seed=args.seed)
        rng = np.random.default_rng(123)
        pairs_file = Path(args.pairs)
        done_pairs = {}
        if pairs_file.exists():
            for line in pairs_file.read_text().splitlines():
                try:
                    p = json.loads(line)
                except ValueError:
                    continue  # empty, or cut by a kill: that pair is computed again
                done_pairs[(p["pair"], p["arch"])] = p
        pairs = []
        t0 = time.time()
        for i in range(1, args.scratch + 1):
            a = net.sample(rng)  # drawn in the same order whether or not the pair is already recorded
            if (i, str(a)) in done_pairs:
                pairs.append({k: v for k, v in done_pairs[(i, str(a))].items() if k != "pair"})
                continue
            inh = ev.evaluate(a)["accuracy"]
            m = te.evaluate(a)
            pairs.append({"arch": str(a), "inherited_val_acc": inh, "scratch_val_acc": m["val_accuracy"],
                          "scratch_test_acc": m["accuracy"]})
            line = json.dumps({"pair": i, **pairs[-1]})
            print(line, flush=True)  # a partial run still tells something
            with pairs_file.open("a") as fh:
                fh.write(line + "\n")
        inh_v = np.array([p["inherited_val_acc"] for p in pairs])
        scr_v = np.array([p["scratch_val_acc"] for p in pairs])
        from scipy.stats import kendalltau
        res["inherited_vs_scratch"] = {
            "n": len(pairs), "images_per_scratch_model": per_model, "scratch_wall_s_this_run": time.time() - t0,
            "inherited_mean": float(inh_v.mean()), "scratch_mean": float(scr_v.mean()),
            "inherited_better": int((inh_v > scr_v).sum()),
            "kendall_tau_inherited_vs_scratch": float(kendalltau(inh_v, scr_v).statistic), "pairs": pairs}
        print(json.dumps({k: v for k, v in res["inherited_vs_scratch"].items() if k != "pairs"}), flush=True)

    if "search" not in args.skip:
        # step 4: a from-scratch mobo search given the wall time of training + the middle specialisation
        mid = res["specialised"][len(budgets) // 2]
        walls = {"inherited": res["train_s"] + mid["wall_s"]}
        if "specialised_finetuned" in res:
            walls["finetuned"] = res["train_s"] + res["specialised_finetuned"]["wall_s_counted"]
        wall = max(walls.values())
        te = TrainingEvaluator(splits, epochs=args.scratch_epochs, batch_size=128, threads=args.threads,
                               factory=ev.factory, seed=args.seed)
        cm = MeasuredLatency("cpu-ort", factory=ev.factory, input_shape=ev.input_shape,
                             cache_path=out / "scratch-latency.json")
        study = asc.create_study(net.space, objectives=[asc.Objective("accuracy", "max"),
                                                        asc.Objective("latency_ms", "min")],
                                 constraints=[asc.Constraint("latency_ms", "<=", mid["budget_ms"])],
                                 cost_models={"latency_ms": cm}, strategy="mobo", seed=args.seed)
        t0 = time.time()
        while time.time() - t0 < wall:
            study.optimize(te, study.n_evaluated + 1)
        res["scratch_search"] = {"wall_s": time.time() - t0, "trials": len(study.trials),
                                 "budget_ms": mid["budget_ms"], "by_wall": {}}
        for side, w in walls.items():
            # only trials finished within that wall time count (the last one may run past it)
            done = [t for t in study.trials if t.state == "complete" and t.finished_at is not None
                    and t.finished_at - t0 <= w and t.metrics.get("latency_ms", 1e9) <= mid["budget_ms"]]
            best = max(done, key=lambda t: t.metrics["val_accuracy"]) if done else None
            supernet_pick = mid["pick_test_acc"] if side == "inherited" else \
                res["specialised_finetuned"]["pick_test_acc"]
            res["scratch_search"]["by_wall"][side] = {
                "wall_budget_s": w, "feasible": len(done), "supernet_pick_test_acc": supernet_pick,
                "best": None if best is None else {"arch": str(best.arch), "val_acc": best.metrics["val_accuracy"],
                                                   "test_acc": best.metrics["accuracy"],
                                                   "latency_ms": best.metrics["latency_ms"]}}
        print(json.dumps(res["scratch_search"], indent=1), flush=True)
    write_json(res, args.json)


if __name__ == "__main__":
    main()
