"""``archscout demo``: the shell face of :func:`archscout.demo.run_demo`."""

from __future__ import annotations

import argparse
from typing import Any

from .._argtypes import int_at_least, non_negative_int, positive_int

__all__ = ["add_demo_parser"]

# flags that map one to one onto DemoSettings fields
_FIELDS = ("data", "epochs", "batch_size", "train_subset", "val_size", "heldout_size", "search_budget", "budgets_ms",
           "budget_fractions", "calibration", "calibration_test", "scratch_trials", "scratch_epochs", "workers",
           "threads", "strategy", "scratch_strategy", "seed")


def _floats(text: str) -> tuple[float, ...]:
    """``"0.4,0.6,0.9"`` -> ``(0.4, 0.6, 0.9)`` (positive numbers, comma-separated)."""
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not values or any(not 0 < v < float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"give positive numbers, comma-separated, got {text!r}")
    return values


def _heldout(text: str) -> int | str:
    """``--heldout-size``: a count >= 50, or ``all``."""
    if text.strip().lower() == "all":
        return "all"
    return int_at_least(50)(text)


def cmd_demo(ns: argparse.Namespace) -> int:
    from . import DemoSettings, run_demo

    values = {k: getattr(ns, k) for k in _FIELDS if getattr(ns, k) is not None}
    if values.get("heldout_size") == "all":
        values["heldout_size"] = None
    settings = DemoSettings(**values)
    summary = run_demo(ns.out, settings, progress=not (ns.no_progress or ns.quiet), quiet=ns.quiet)
    pv = summary["predictor_validation"]
    print(f"archscout demo: done in {summary['elapsed_s']:.0f} s; {len(summary['exported'])} models exported for "
          f"{len(summary['budgets'])} latency budgets; latency predictor {pv['within10']:.0%} within ±10 % on "
          f"{pv['n']} held-out architectures (MAPE {pv['mape']:.1f} %); open {ns.out}/report.html")
    return 0


def add_demo_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``demo`` to an argparse ``subparsers`` object; returns its parser."""
    p = subparsers.add_parser(
        "demo", help="train a supernet once on Fashion-MNIST, specialise it for this CPU at three latency budgets, "
                     "export and check the models, compare with training from scratch; writes a report",
        description="The defaults take about 6-7 minutes on 2 idle CPU cores (scripts/run.sh adds about 1.5 minutes "
                    "of set-up); progress bars on stderr, --quiet for scripts. Fashion-MNIST is looked up in "
                    "$ARCHSCOUT_DATA and /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist), or "
                    "give --data.")
    p.add_argument("--out", default="demo-report",
                   help="output folder (report.html, summary.json, study.db, heldout.npz, models/); default "
                        "demo-report")
    p.add_argument("--data", help="dataset: a name (fashion-mnist), an .npz file or a folder of IDX files "
                                  "(default fashion-mnist)")
    p.add_argument("--heldout-size", dest="heldout_size", type=_heldout,
                   help="test images held out for the final checks (heldout.npz): a count, or 'all' (default 5000)")
    g = p.add_argument_group("supernet")
    g.add_argument("--epochs", type=positive_int, help="supernet training epochs (default 4)")
    g.add_argument("--batch-size", dest="batch_size", type=int_at_least(2),
                   help="images per supernet training step (default 64)")
    g.add_argument("--train-subset", dest="train_subset", type=int_at_least(100),
                   help="training images for the supernet and the from-scratch search (default 5000)")
    g.add_argument("--val-size", dest="val_size", type=int_at_least(50),
                   help="validation images that score sub-networks (default 1000)")
    g.add_argument("--threads", type=positive_int,
                   help="torch threads (default: the cores not busy when the demo starts, at most 4)")
    g = p.add_argument_group("latency")
    g.add_argument("--calibration", type=int_at_least(10),
                   help="architectures measured to fit the latency predictor (default 40)")
    g.add_argument("--calibration-test", dest="calibration_test", type=int_at_least(5),
                   help="other architectures measured after the fit to test it (default 20)")
    g.add_argument("--budgets-ms", dest="budgets_ms", type=_floats, metavar="B1,B2,...",
                   help="latency budgets in ms (default: --budget-fractions of the measured range)")
    g.add_argument("--budget-fractions", dest="budget_fractions", type=_floats, metavar="F1,F2,...",
                   help="budgets as fractions of the way from the smallest to the largest sub-network's latency "
                        "(default 0.25,0.4,0.6)")
    g = p.add_argument_group("searches")
    g.add_argument("--search-budget", dest="search_budget", type=int_at_least(2),
                   help="sub-network evaluations per latency budget (default 20)")
    g.add_argument("--strategy", help="strategy of the specialisations (default nsga2)")
    g.add_argument("--scratch-trials", dest="scratch_trials", type=positive_int,
                   help="candidates the comparison search trains from scratch (default 2)")
    g.add_argument("--scratch-epochs", dest="scratch_epochs", type=positive_int,
                   help="epochs per from-scratch candidate (default 1)")
    g.add_argument("--scratch-strategy", dest="scratch_strategy", help="strategy of the comparison (default auto)")
    g.add_argument("--workers", type=positive_int, help="worker processes of the comparison (default 2)")
    p.add_argument("--seed", type=non_negative_int, help="seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or status lines: errors and the final "
                                                        "line only (for scripts)")
    p.add_argument("--no-progress", dest="no_progress", action="store_true",
                   help="status lines but no progress bars")
    p.set_defaults(fn=cmd_demo)
    return p
