"""Zero-cost proxies on digits: how well does each proxy rank really trained NB201 networks?

Samples ``--archs`` functionally distinct NB201 cells with the ``random`` strategy (fixed seed, dedup by
functional hash), builds each as a small NB201 network (``C`` channels, ``N`` cells per stage) for the
scikit-learn digits (1 x 8 x 8, split 60/20/20 with seed 0), computes every registered proxy at
initialisation on one 64-image training minibatch, then trains it with the default recipe (SGD, cosine,
``--epochs`` epochs, 1 thread per worker) and records its accuracy on the test split. Everything runs as one
archscout study on the process executor.

Reported, per proxy: Spearman's rho (``scipy.stats.spearmanr``) against test accuracy and against validation
accuracy, with its p-value. Two reference rows bound what any proxy can reach on this set-up: test vs
validation accuracy of the same run, and test accuracy of the same cells trained with another seed
(``--repeat-seed``; seed-to-seed noise).

Usage, from the repository root::

    .venv/bin/python benchmarks/proxies_digits.py --archs 100 --epochs 4 --out runs/proxies_digits.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

import numpy as np


class ProxiesThenTraining:
    """Evaluator: every proxy at initialisation, then training (and optionally a second training seed)."""

    def __init__(self, epochs: int, C: int, N: int, repeat_seed: int | None) -> None:
        from archscout.proxies import ProxyEvaluator
        from archscout.training import TrainingEvaluator

        options = {"C": C, "N": N}
        self.proxies = ProxyEvaluator("digits", batch_size=64, seed=0, factory=options)
        self.train = TrainingEvaluator("digits", epochs=epochs, seed=0, factory=options)
        self.repeat = (None if repeat_seed is None
                       else TrainingEvaluator("digits", epochs=epochs, seed=repeat_seed, factory=options))

    def evaluate(self, arch: Any, fidelity: float | None = None) -> dict[str, float]:
        t0 = time.perf_counter()
        out = dict(self.proxies.evaluate(arch))
        out["proxy_time_s"] = time.perf_counter() - t0
        out.update(self.train.evaluate(arch, fidelity))
        if self.repeat is not None:
            out["accuracy_repeat"] = self.repeat.evaluate(arch, fidelity)["accuracy"]
        return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", type=int, default=100, help="functionally distinct architectures to train")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--C", type=int, default=8, help="channels of the first stage")
    p.add_argument("--N", type=int, default=1, help="cells per stage")
    p.add_argument("--seed", type=int, default=0, help="seed of the architecture sample")
    p.add_argument("--repeat-seed", type=int, default=1, help="second training seed (-1: skip)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", help="write the results as JSON here")
    a = p.parse_args(argv)

    import archscout as asc
    from archscout.proxies import list_proxies, proxy_rank_correlation

    space = asc.create_space("nb201")
    ev = ProxiesThenTraining(a.epochs, a.C, a.N, None if a.repeat_seed < 0 else a.repeat_seed)
    study = asc.create_study(space, objectives=[asc.Objective("accuracy", "max")], strategy="random", seed=a.seed)
    t0 = time.perf_counter()
    study.optimize(ev, budget=a.archs, executor="process", workers=a.workers)
    wall = time.perf_counter() - t0
    done = [t for t in study.trials if t.state == "complete"]
    failed = [t for t in study.trials if t.state != "complete"]
    for t in failed:
        print(f"failed: {t.arch}: {(t.error or '').splitlines()[-1]}", file=sys.stderr)
    assert len({t.arch.functional_hash() for t in done}) == len(done)

    rows = []
    for name in list_proxies():
        test = proxy_rank_correlation(study, name, "accuracy")[name]
        val = proxy_rank_correlation(study, name, "val_accuracy")[name]
        rows.append({"proxy": name, "rho_test": test.rho, "p_test": test.pvalue, "rho_val": val.rho, "n": test.n})
    recs = [dict(t.metrics) for t in done]
    refs = {"val_accuracy": proxy_rank_correlation(recs, ["val_accuracy"], "accuracy")["val_accuracy"].rho}
    if a.repeat_seed >= 0:
        refs["accuracy_repeat"] = proxy_rank_correlation(recs, ["accuracy_repeat"], "accuracy")["accuracy_repeat"].rho
    acc = np.array([t.metrics["accuracy"] for t in done])
    train_s = np.array([t.metrics["train_time_s"] for t in done])
    proxy_s = np.array([t.metrics["proxy_time_s"] for t in done])

    print(f"{len(done)} architectures ({len(failed)} failed), NB201 C={a.C} N={a.N}, digits, {a.epochs} epochs, "
          f"{a.workers} workers, {wall:.0f} s")
    print(f"test accuracy: min {acc.min():.3f}, median {np.median(acc):.3f}, max {acc.max():.3f}; "
          f"per architecture: training {np.median(train_s):.2f} s, all proxies {np.median(proxy_s):.2f} s (median)")
    print(f"| {'proxy':<10} | {'rho vs test acc':>15} | {'p-value':>8} | {'rho vs val acc':>14} |")
    print(f"|{'-' * 12}|{'-' * 16}:|{'-' * 9}:|{'-' * 15}:|")
    for r in sorted(rows, key=lambda r: -abs(r["rho_test"]) if np.isfinite(r["rho_test"]) else 0):
        print(f"| {r['proxy']:<10} | {r['rho_test']:>15.3f} | {r['p_test']:>8.2g} | {r['rho_val']:>14.3f} |")
    print("reference: rho(test acc, val acc of the same run) = "
          f"{refs['val_accuracy']:.3f}" + (f"; rho(test acc, test acc with training seed {a.repeat_seed}) = "
                                            f"{refs['accuracy_repeat']:.3f}" if "accuracy_repeat" in refs else ""))
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump({
                "settings": vars(a), "n_complete": len(done), "n_failed": len(failed), "wall_s": wall,
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                "correlations": rows, "references": refs,
                "accuracy": {"min": acc.min(), "median": float(np.median(acc)), "max": acc.max()},
                "median_train_time_s": float(np.median(train_s)), "median_proxy_time_s": float(np.median(proxy_s)),
                "trials": [{"arch": str(t.arch), **t.metrics} for t in done],
            }, f, indent=1, default=float)
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
