"""Check an exported front as a user would: each model's ONNX Runtime accuracy on DIR/heldout.npz against its
JSON, and its latency measured once more (a fresh meter, this CPU) against the budget.

    .venv/bin/python benchmarks/check_export.py DIR [--budget-ms B] [--allowance 0.15] [--json OUT]

Exit status 1 when a model's accuracy differs from its JSON by more than 0.5 point or its latency measured again
is over B x (1 + allowance).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path, help="the folder `archscout export` wrote")
    ap.add_argument("--budget-ms", dest="budget_ms", type=float, help="default: the export's budget")
    ap.add_argument("--allowance", type=float, default=0.15, help="noise allowance on the budget (default 0.15)")
    ap.add_argument("--json", help="write the rows here")
    ns = ap.parse_args()

    import onnxruntime as ort

    summary = json.loads((ns.dir / "export.json").read_text())
    budget = ns.budget_ms if ns.budget_ms is not None else summary["latency_budget_ms"]
    held = np.load(ns.dir / "heldout.npz")
    X, y = held["X"], held["y"]
    rows, ok = [], True
    for name in summary["exported"]:
        meta = json.loads((ns.dir / "models" / f"{name}.json").read_text())
        path = str(ns.dir / "models" / f"{name}.onnx")
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        feed = sess.get_inputs()[0].name
        logits = np.concatenate([sess.run(None, {feed: X[i:i + 256]})[0] for i in range(0, len(X), 256)])
        acc = float(np.mean(logits.argmax(1) == y))
        lat = _time(path, X.shape[1:])
        row = {"name": name, "accuracy_ort": acc, "accuracy_json": meta["accuracy"],
               "latency_ms_export": meta["latency_ms_measured"], "latency_ms_again": lat, "budget_ms": budget,
               "accuracy_ok": abs(acc - meta["accuracy"]) <= 0.005,
               "latency_ok": budget is None or lat <= budget * (1 + ns.allowance)}
        ok &= row["accuracy_ok"] and row["latency_ok"]
        rows.append(row)
        print(f"{name}: accuracy ORT {acc:.4f} / JSON {meta['accuracy']:.4f}; latency at export "
              f"{meta['latency_ms_measured']:.4f} ms, again {lat:.4f} ms (budget {budget} ms)")
    print(f"{len(rows)} models, all within: {ok}")
    if ns.json:
        Path(ns.json).write_text(json.dumps({"rows": rows, "ok": ok}, indent=1))
    return 0 if ok else 1


def _time(path: str, shape: tuple[int, ...], warmup: int = 20, repeats: int = 50) -> float:
    """Median latency in ms of one image through the ONNX file, ONNX Runtime on one thread, sequential."""
    import time

    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    x = {sess.get_inputs()[0].name: np.random.default_rng(0).standard_normal((1, *shape)).astype(np.float32)}
    for _ in range(warmup):
        sess.run(None, x)
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        sess.run(None, x)
        ts.append(time.perf_counter() - t)
    return float(np.median(ts) * 1e3)


if __name__ == "__main__":
    sys.exit(main())
