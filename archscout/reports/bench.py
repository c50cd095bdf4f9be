"""Benchmark-protocol presentation: the plain-text table and the anytime plot of a protocol summary (the
dict :func:`archscout.benchmarks.stats.summarize` returns). Plotting loads matplotlib lazily."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import require_matplotlib

__all__ = ["format_table", "plot_anytime"]


def _fmt_s(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def format_table(summary: Mapping[str, Any]) -> str:
    """A plain-text table of the summary, one line per strategy and checkpoint (hv ratio and front recall
    for two-objective runs, regret and hit rate otherwise), then the tests against the baseline and, for
    multi-fidelity runs or a time target, the simulated times to regret levels."""
    mo = bool(summary.get("multi_objective"))
    lines = [
        f"{summary['benchmark']}: objective {summary['objective']} ({summary['direction']}), optimum "
        f"{summary['optimum']:.4f}; report {summary['report']}, random-sample mean {summary['random_sample_mean']:.4f}",
    ]
    if mo:
        lines.append(f"two objectives: {summary['objective']} ({summary['direction']}) and {summary['cost_column']} "
                     f"(min), cost mode {summary.get('cost_mode')}; true front: {summary['front_size']} points")
        lines.append(f"{'strategy':<14}{'queries':>8}{'hv ratio':>18}{'front recall':>18}{'regret':>18}")
    else:
        lines.append(f"{'strategy':<14}{'queries':>8}{'regret':>18}{'hit rate':>10}{'report':>18}{'RI %':>9}")
    if summary.get("multi_fidelity"):
        lines.insert(1, f"multi-fidelity at {summary.get('fidelities')}: only full-fidelity results count; "
                        "queries count trials of any fidelity")
    for name, e in summary["strategies"].items():
        for c, v in e["checkpoints"].items():
            if mo:
                lines.append(
                    f"{name:<14}{c:>8}{v['hv_ratio_mean']:>10.4f} ± {v['hv_ratio_std']:<5.3f}"
                    f"{v['front_recall_mean']:>10.3f} ± {v['front_recall_std']:<5.3f}"
                    f"{v['regret_mean']:>10.4f} ± {v['regret_std']:<5.3f}"
                )
            else:
                lines.append(
                    f"{name:<14}{c:>8}{v['regret_mean']:>10.4f} ± {v['regret_std']:<5.3f}{v['hit_rate']:>10.0%}"
                    f"{v['report_mean']:>10.3f} ± {v['report_std']:<5.3f}{v['ri_mean']:>9.2f}"
                )
        lines.append(
            f"{name:<14}queries to optimum: mean {e['queries_to_optimum_mean']:.1f}, median "
            f"{e['queries_to_optimum_median']:.1f}; overhead {e['overhead_ms_per_trial']:.3f} ms/trial"
        )
    base = summary.get("baseline")
    if base is not None:
        what = "hv ratio" if mo else "regret"
        lines.append(f"two-sided Mann-Whitney U over seeds of the {what} vs {base} (p at each checkpoint; "
                     "+ mean better, - worse):")
        for name, e in summary["strategies"].items():
            if name == base:
                continue
            parts = [f"{c}:{v['vs_baseline']['p_value']:.3g}{'+' if v['vs_baseline']['better'] else '-'}"
                     for c, v in e["checkpoints"].items() if "vs_baseline" in v]
            lines.append(f"  {name:<14}" + " ".join(parts))
    if summary.get("multi_fidelity") or "time_target" in summary:
        lines.append("simulated seconds until the full-fidelity regret reaches each level (mean; share of seeds):")
        for name, e in summary["strategies"].items():
            parts = [f"<={lv}: {_fmt_s(v['mean_s'])} ({v['reached']:.0%})" for lv, v in e["time_to_regret"].items()]
            lines.append(f"  {name:<14}" + ", ".join(parts))
    tt = summary.get("time_target")
    if tt:
        lines.append(f"time target: mean regret {tt['regret']:.4f} of {tt['strategy']} at {tt['queries']} queries "
                     f"({tt['time_s']:.0f} simulated s)")
        for name, e in summary["strategies"].items():
            ratio = e.get("time_ratio")
            lines.append(f"  {name:<14}reached at {_fmt_s(e.get('time_to_target_s'))} s"
                         + ("" if ratio is None else f", {ratio:.3f} x the target strategy's time"))
    return "\n".join(lines)


def plot_anytime(summary: Mapping[str, Any], path: str) -> None:
    """Anytime curves, one line per strategy, as a PNG: regret (mean ± std over seeds) and hit rate, or,
    for two-objective runs, hv ratio (mean ± std) and true-front recall."""
    plt = require_matplotlib()
    mo = bool(summary.get("multi_objective"))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, e in summary["strategies"].items():
        if mo:
            x = np.array(e["curve"]["queries"])
            m = np.array(e["curve"]["hv_ratio_mean"])
            s = np.array(e["curve"]["hv_ratio_std"])
            (line,) = ax1.plot(x, m, label=name)
            ax1.fill_between(x, np.maximum(m - s, 0.0), np.minimum(m + s, 1.0), color=line.get_color(), alpha=0.15)
            ax2.plot(x, 100 * np.array(e["curve"]["front_recall_mean"]), label=name, color=line.get_color())
            continue
        m = np.array(e["curve"]["regret_mean"])
        s = np.array(e["curve"]["regret_std"])
        x = np.arange(1, len(m) + 1)
        (line,) = ax1.plot(x, m, label=name)
        ax1.fill_between(x, np.maximum(m - s, 1e-4), m + s, color=line.get_color(), alpha=0.15)
        ax2.plot(x, 100 * np.array(e["curve"]["hit_rate"]), label=name, color=line.get_color())
    if mo:
        ax1.set_ylabel("hypervolume ratio")
        ax1.set_title(f"{summary['benchmark']}: {summary['objective']} vs {summary['cost_column']} "
                      f"({summary.get('cost_mode')} cost)")
        ax2.set_ylabel("true Pareto front found (%)")
        ax2.set_title(f"front recall ({summary['front_size']} points)")
    else:
        ax1.set_yscale("symlog", linthresh=1e-2)
        ax1.set_ylabel(f"regret of {summary['objective']}")
        ax1.set_title(f"{summary['benchmark']}: anytime regret (mean ± std)")
        ax2.set_ylabel("seeds that found the optimum (%)")
        ax2.set_title("hit rate")
    for ax in (ax1, ax2):
        ax.set_xlabel("queries")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
