"""What a cell supernet costs per width on this machine: training throughput and the time to score one cell.

For each ``C`` (side by side, in one process): train one epoch of ``--images`` CIFAR-10 images with the
default method (fair SPOS, crop + flip), then score ``--cells`` random NB201 cells with the default evaluator
(2 recalibration batches of 256, the validation split). Used to choose the default width of ``nb201``
supernets (docs/benchmarks.md, section 14).

    python benchmarks/supernet_cost.py --data ../shared/data/cifar10-jpeg/cifar10_jpeg.npz --widths 8,16
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--widths", default="8,16")
    ap.add_argument("--images", type=int, default=4000)
    ap.add_argument("--val-size", type=int, default=2500)
    ap.add_argument("--cells", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default="results/supernet-cost.json")
    args = ap.parse_args()

    import torch

    import archscout as asc
    from archscout.supernet import SupernetEvaluator, train_supernet

    torch.set_num_threads(args.threads)
    rows = []
    for c in (int(v) for v in args.widths.split(",")):
        folder = tempfile.mkdtemp(prefix=f"sn-C{c}-")
        try:
            meta = train_supernet("nb201", args.data, folder, epochs=1, train_subset=args.images,
                                  val_size=args.val_size, options={"C": c, "N": 1})
            train_s = meta["history"][0]["time_s"]
            ev = SupernetEvaluator(folder, cache=False)
            ev.evaluate(asc.create_space("nb201").sample(np.random.default_rng(99)))  # loads data and weights
            rng = np.random.default_rng(0)
            t = time.time()
            for _ in range(args.cells):
                ev.evaluate(asc.create_space("nb201").sample(rng))
            rows.append({"C": c, "train_images_per_s": args.images / train_s,
                         "seconds_per_cell": (time.time() - t) / args.cells})
            print(rows[-1], flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    write_json({"rows": rows, "images": args.images, "val_size": args.val_size}, args.json)


if __name__ == "__main__":
    main()
