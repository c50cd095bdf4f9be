"""Study reports: ``trials.csv``, ``pareto.png`` and a self-contained ``report.html``."""

from __future__ import annotations

import csv
import datetime as _dt
import html
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..results import TrialState

__all__ = ["plot_pareto", "write_html_report", "write_trials_csv"]


def _metric_names(study) -> list[str]:
    names: list[str] = [o.name for o in study.objectives]
    for t in study.trials:
        for k in t.metrics:
            if k not in names:
                names.append(k)
    return names


def write_trials_csv(study, path: str) -> str:
    """One row per trial: number, state, arch, functional hash, fidelity, times, every metric, error."""
    names = _metric_names(study)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["number", "state", "arch", "functional_hash", "fidelity", "started_at", "finished_at", *names,
                    "error"])
        for t in study.trials:
            err = (t.error or "").strip().splitlines()
            w.writerow([t.number, t.state, str(t.arch), t.arch.functional_hash(), t.fidelity, t.started_at,
                        t.finished_at, *[t.metrics.get(n, "") for n in names], err[-1] if err else ""])
    return path


def plot_pareto(study, path: str, x: str | None = None, y: str | None = None,
                remeasured: Mapping[int, float] | None = None) -> str:
    """Scatter of every complete trial on two metrics (default: the second objective on x, the first on
    y), infeasible candidates as crosses, the feasible Pareto front joined, constraint bounds as dashed
    lines, and re-measured values of the front (arrows from the search-time value) when given."""
    from . import require_matplotlib

    plt = require_matplotlib()
    objs = study.objectives
    y = y or objs[0].name
    x = x or (objs[1].name if len(objs) > 1 else "finished_at")
    fig, ax = plt.subplots(figsize=(7, 4.8))
    comp = [t for t in study.trials if t.state == TrialState.COMPLETE and x in t.metrics and y in t.metrics]
    n_infeas = sum(t.state == TrialState.INFEASIBLE for t in study.trials)
    infeas = [t for t in study.trials if t.state == TrialState.INFEASIBLE and x in t.metrics]
    ax.scatter([t.metrics[x] for t in comp], [t.metrics[y] for t in comp], s=18, c="#9aa5b1", label="trials")
    if infeas:  # never trained, so no y value: drawn as ticks along the bottom at their cost
        ax.plot([t.metrics[x] for t in infeas], [0.0] * len(infeas), "|", ms=12, c="#d08770",
                transform=ax.get_xaxis_transform(), label="infeasible (not trained)")
    front = sorted((t for t in study.pareto_front() if x in t.metrics), key=lambda t: t.metrics[x])
    if front:
        ax.plot([t.metrics[x] for t in front], [t.metrics[y] for t in front], "-o", c="#bf3b3b", ms=5,
                label="Pareto front")
    if remeasured:
        for t in front:
            if t.number in remeasured:
                ax.annotate("", xy=(remeasured[t.number], t.metrics[y]), xytext=(t.metrics[x], t.metrics[y]),
                            arrowprops={"arrowstyle": "->", "color": "#2e6f9e"})
        pts = [(remeasured[t.number], t.metrics[y]) for t in front if t.number in remeasured]
        if pts:
            ax.scatter(*zip(*pts), marker="D", s=22, c="#2e6f9e", label="front, re-measured after export")
    for c in study.constraints:
        if c.name == x:
            ax.axvline(c.bound, ls="--", c="k", lw=1, label=f"{c.name} {c.op} {c.bound:g}")
        elif c.name == y:
            ax.axhline(c.bound, ls="--", c="k", lw=1, label=f"{c.name} {c.op} {c.bound:g}")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{study.name}: {len(comp)} trained, {n_infeas} infeasible (not trained)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape("" if v is None else str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;font-size:13px;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 7px;text-align:left}
th{background:#f2f4f7}td{font-family:ui-monospace,Menlo,monospace;font-size:12px}tr:nth-child(even){background:#fafafa}
.ok{color:#1a7f37}.bad{color:#b42318}img{max-width:100%;border:1px solid #eee}
"""


def write_html_report(study, out_dir: str, front_rows: Sequence[Mapping[str, Any]], front_columns: Sequence[str],
                      title: str = "archscout report", notes: Sequence[str] = (), image: str = "pareto.png",
                      figures: Sequence[tuple[str, str]] = (), front_title: str = "Pareto front") -> str:
    """Write ``out_dir/report.html``: summary, Pareto plot (``image``, under ``front_title``), the front (as given
    by ``front_rows``), further ``(title, image file)`` figures, and every trial."""
    names = _metric_names(study)
    counts: dict[str, int] = {}
    for t in study.trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    trial_rows = []
    for t in study.trials:
        err = (t.error or "").strip().splitlines()
        trial_rows.append({"number": t.number, "state": t.state, **{n: t.metrics.get(n) for n in names},
                           "arch": str(t.arch), "error": err[-1] if err else ""})
    objectives = ", ".join(f"{o.name} ({o.direction})" for o in study.objectives)
    constraints = ", ".join(f"{c.name} {c.op} {c.bound:g}" for c in study.constraints) or "none"
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Study <b>{html.escape(study.name)}</b> in <code>{html.escape(study.storage.url)}</code>; "
        f"objectives {html.escape(objectives)}; constraints {html.escape(constraints)}; strategy "
        f"<code>{html.escape(study.config['strategy']['name'])}</code>, seed {study.seed}. Trials: "
        + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        + f". Written {_dt.datetime.now().isoformat(timespec='seconds')}.</p>",
        *(f"<p>{html.escape(n)}</p>" for n in notes),
        f"<h2>{html.escape(front_title)}</h2><img src='{html.escape(image)}' alt='{html.escape(front_title)}'>",
        _table(front_rows, front_columns),
        *(f"<h2>{html.escape(t)}</h2><img src='{html.escape(f)}' alt='{html.escape(t)}'>" for t, f in figures),
        "<h2>Every trial</h2><p>Also in <a href='trials.csv'>trials.csv</a>.</p>",
        _table(trial_rows, ["number", "state", *names, "arch", "error"]),
        "</body></html>",
    ]
    path = os.path.join(out_dir, "report.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    return path
