"""``archscout demo``: the shell face of :func:`archscout.demo.run_demo`."""

from __future__ import annotations

import argparse
from typing import Any

from .._argtypes import int_at_least, non_negative_float, non_negative_int, positive_int

__all__ = ["add_demo_parser"]


def cmd_demo(ns: argparse.Namespace) -> int:
    from . import DemoSettings, run_demo

    settings = DemoSettings(**{k: getattr(ns, k) for k in ("budget", "epochs", "workers", "calibration",
                                                           "latency_budget_ms", "seed")
                               if getattr(ns, k) is not None})
    run_demo(ns.out, settings, progress=not ns.no_progress)
    return 0


def add_demo_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``demo`` to an argparse ``subparsers`` object; returns its parser."""
    p = subparsers.add_parser("demo", help="hardware-aware search on digits, this CPU via ONNX Runtime; writes a "
                                           "report")
    p.add_argument("--out", default="demo-report", help="output folder (report.html, pareto.png, trials.csv, models/)")
    p.add_argument("--budget", type=positive_int, help="trained trials (default 60)")
    p.add_argument("--epochs", type=positive_int, help="training epochs per trial (default 6)")
    p.add_argument("--workers", type=positive_int, help="training processes (default 2)")
    p.add_argument("--calibration", type=int_at_least(10), help="architectures measured to fit the latency predictor")
    p.add_argument("--latency-budget-ms", dest="latency_budget_ms", type=non_negative_float,
                   help="latency constraint in ms (default: the median measured latency of the calibration sample)")
    p.add_argument("--seed", type=non_negative_int, help="seed (default 0)")
    p.add_argument("--no-progress", dest="no_progress", action="store_true")
    p.set_defaults(fn=cmd_demo)
    return p
