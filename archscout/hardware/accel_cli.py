"""``archscout accel``: run a topology on the systolic-array model and write its JSON report.

    archscout accel --topology FILE.csv --array 32x32 --dataflow ws --json OUT.json
    archscout accel --workload resnet18 --array 16x64 --dataflow os --bandwidth 10 --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from ..errors import ConfigError

__all__ = ["add_accel_parser", "cmd_accel"]


def add_accel_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``accel`` subcommand to an argparse ``subparsers`` object; returns its parser."""
    p = subparsers.add_parser("accel", help="cycles, accesses, energy and area of a network on a systolic array "
                                            "(an analytical model of SCALE-Sim 3)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--topology", help="SCALE-Sim topology CSV (conv or GEMM format)")
    src.add_argument("--workload", help="built-in network: resnet18 or mobilenetv2 (224 x 224)")
    p.add_argument("--array", default="32x32", help="ROWSxCOLS of the PE array (default 32x32)")
    p.add_argument("--dataflow", default="os", help="os, ws or is (default os)")
    p.add_argument("--sram-kb", dest="sram_kb", default="64,64,64",
                   help="ifmap,filter,ofmap SRAM sizes in KB (default 64,64,64)")
    p.add_argument("--bandwidth", help="DRAM words per cycle (default: unlimited, SCALE-Sim's CALC mode)")
    p.add_argument("--clock-mhz", dest="clock_mhz", default="1000", help="clock in MHz (default 1000)")
    p.add_argument("--energy-table", dest="energy_table", help="JSON file of EnergyTable fields")
    p.add_argument("--json", required=True, help="output JSON file")
    p.add_argument("--quiet", action="store_true", help="print nothing")
    p.set_defaults(fn=cmd_accel)
    return p


def _number(flag: str, text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ConfigError(f"{flag} must be a positive number, got {text!r}") from None
    if not 0 < v < float("inf"):
        raise ConfigError(f"{flag} must be a positive number, got {text!r}")
    return v


def _ints(flag: str, text: str, sep: str, n: int, example: str) -> tuple[int, ...]:
    parts = text.lower().split(sep)
    try:
        vals = tuple(int(x) for x in parts)
    except ValueError:
        vals = ()
    if len(vals) != n or len(parts) != n or any(v < 1 for v in vals):
        raise ConfigError(f"{flag} must be {n} positive integers like {example}, got {text!r}")
    return vals


def _accelerator(ns: argparse.Namespace) -> Any:
    from .systolic import Accelerator, EnergyTable

    rows, cols = _ints("--array", ns.array, "x", 2, "32x32")
    sram = _ints("--sram-kb", ns.sram_kb, ",", 3, "64,64,64")
    bandwidth = None if ns.bandwidth is None else _number("--bandwidth", ns.bandwidth)
    energy = EnergyTable()
    if ns.energy_table:
        try:
            with open(ns.energy_table, encoding="utf-8") as f:
                energy = EnergyTable.from_config(json.load(f))
        except OSError as e:
            raise ConfigError(f"--energy-table: cannot read {ns.energy_table}: {e.strerror}") from None
        except ValueError as e:
            raise ConfigError(f"--energy-table {ns.energy_table}: {e}") from None
    return Accelerator(rows, cols, ns.dataflow, (sram[0], sram[1], sram[2]), bandwidth=bandwidth,
                       clock_mhz=_number("--clock-mhz", ns.clock_mhz), energy=energy)


def cmd_accel(ns: argparse.Namespace) -> int:
    """Handler of ``accel``: validates every flag before any work, simulates, writes ``--json`` and prints a
    per-layer table unless ``--quiet``.

    Raises:
        ConfigError: a bad flag or topology (the CLI prints it on one line and exits with 2; nothing written).
    """
    from .systolic import simulate
    from .workloads import builtin_workload, read_topology

    accel = _accelerator(ns)
    layers = read_topology(ns.topology) if ns.topology else builtin_workload(ns.workload)
    out_dir = os.path.dirname(os.path.abspath(ns.json))
    if not os.path.isdir(out_dir):
        raise ConfigError(f"--json: folder {out_dir} does not exist; create it first")
    report = simulate(accel, layers)
    with open(ns.json, "w", encoding="utf-8") as f:
        json.dump(report.to_dict(), f, indent=1)
    if not ns.quiet:
        width = max(10, *(len(r.name) for r in report.layers))
        print(f"{'layer':<{width}} {'cycles':>12} {'stalls':>10} {'util %':>7} {'energy mJ':>10}")
        for r in report.layers:
            print(f"{r.name:<{width}} {r.cycles:>12} {r.stall_cycles:>10} {r.utilization:>7.1f} {r.energy_mj:>10.4f}")
        t = report.total
        print(f"{'total':<{width}} {t['cycles']:>12} {t['stall_cycles']:>10} {t['overall_utilization']:>7.1f} "
              f"{t['energy_mj']:>10.4f}")
        print(f"{accel.rows}x{accel.cols} {accel.dataflow}: {t['latency_ms']:.3f} ms at {accel.clock_mhz:g} MHz, "
              f"{t['area_mm2']:.2f} mm^2 -> {ns.json}")
    return 0
