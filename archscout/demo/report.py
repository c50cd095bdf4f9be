"""The demo's report: its own figures (the fronts of every budget beside the from-scratch search, the latency
predictor's predicted-vs-measured plot) and ``report.html``, which links each study's own page written by
:func:`archscout.reports.study_report.write_html_report`."""

from __future__ import annotations

import datetime as _dt
import html
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Link", "plot_fronts", "plot_predictor", "table", "write_demo_html"]

COLORS = ("#2e6f9e", "#bf3b3b", "#1a7f37", "#8250df", "#d08770", "#4c566a")


def plot_fronts(special: Sequence[Mapping[str, Any]], scratch: Mapping[str, Any] | None, path: str) -> str:
    """Two panels. Left, the searches: every evaluated sub-network of each budget (validation accuracy with
    inherited weights against predicted latency), each budget's front and its bound as a dashed line, and the
    from-scratch search's trials and front. Right, the exported models: held-out accuracy (ONNX Runtime)
    against the latency re-measured from the exported file; a model over its budget as a cross."""
    from ..reports import require_matplotlib

    plt = require_matplotlib()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12.5, 5.0))
    for i, s in enumerate(special):
        c = COLORS[i % len(COLORS)]
        b = s["budget_ms"]
        done = [r for r in s.get("all", []) if r["state"] == "complete" and "accuracy" in r]
        ax.scatter([r["latency_ms"] for r in done], [r["accuracy"] for r in done], s=10, color=c, alpha=0.25)
        front = s["front"]
        ax.plot([r["latency_ms"] for r in front], [r["accuracy"] for r in front], "-o", color=c, ms=4,
                label=f"budget {b:.3g} ms: front ({len(done)} evaluated)")
        for axis in (ax, bx):
            axis.axvline(b, ls="--", lw=1, color=c)
        kept = [r for r in s["exported"] if r["exported"]]
        over = [r for r in s["exported"] if not r["exported"]]
        bx.scatter([r["latency_ms_measured"] for r in kept], [r["accuracy"] for r in kept], marker="D", s=30,
                   color=c, label=f"budget {b:.3g} ms: {len(kept)} exported")
        if over:
            bx.scatter([r["latency_ms_measured"] for r in over], [r["accuracy"] for r in over], marker="x", s=40,
                       color=c, label=f"budget {b:.3g} ms: {len(over)} over budget, not exported")
    if scratch:
        done = [r for r in scratch["all"] if r["state"] == "complete" and "val_accuracy" in r]
        ax.scatter([r["latency_ms"] for r in done], [r["val_accuracy"] for r in done], marker="s", s=26,
                   color="k", label=f"from scratch ({len(done)} trained, {scratch['epochs']} epoch(s) each)")
        best = scratch.get("best")
        if best:
            bx.scatter([best["latency_ms_measured"]], [best["accuracy"]], marker="s", s=40, color="k",
                       label="from scratch: best by validation (test accuracy)")
    ax.set_xlabel("latency_ms (predicted, this CPU, ONNX Runtime, batch 1)")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Searches: one supernet, specialised per budget")
    bx.set_xlabel("latency_ms (re-measured from the exported ONNX file)")
    bx.set_ylabel("held-out accuracy (ONNX Runtime, heldout.npz)")
    bx.set_title("Exported models, checked")
    return _save(plt, fig, (ax, bx), path, fontsize=7, loc="lower right")


def plot_predictor(points: Mapping[str, Any], validation: Mapping[str, Any], path: str,
                   exported: Sequence[Sequence[float]] = ()) -> str:
    """Predicted against measured latency: the fit set, the held-out set and (``exported``: ``[predicted,
    re-measured]`` pairs) the exported models re-measured from their files; the diagonal and a +-10 % band; the
    held-out figure in the title."""
    from ..reports import require_matplotlib

    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=(6.0, 5.4))
    fit, test = points["fit"], points["test"]
    ax.scatter([p[1] for p in fit], [p[2] for p in fit], s=14, color="#9aa5b1", label=f"fit set ({len(fit)})")
    ax.scatter([p[1] for p in test], [p[2] for p in test], s=22, color="#bf3b3b",
               label=f"held out, measured after the fit ({len(test)})")
    if exported:
        ax.scatter([m for _, m in exported], [p for p, _ in exported], s=26, marker="D", facecolors="none",
                   edgecolors="#2e6f9e", label=f"exported models, re-measured from the file ({len(exported)})")
    vals = [p[1] for p in fit + test] + [p[2] for p in fit + test] + [v for pair in exported for v in pair]
    lo, hi = min(vals) * 0.9, max(vals) * 1.1
    ax.plot([lo, hi], [lo, hi], "k-", lw=1)
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="k", alpha=0.07, label="±10 %")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(f"learned-latency on held-out architectures: {validation['within10']:.0%} within ±10 %,\n"
                 f"MAPE {validation['mape']:.1f} % (n = {validation['n']}, fitted on {validation['n_train']})",
                 fontsize=10)
    return _save(plt, fig, (ax,), path, fontsize=8, loc="upper left")


def _save(plt: Any, fig: Any, axes: Sequence[Any], path: str, fontsize: int, loc: str) -> str:
    """Grid and legend on each of ``axes``, then ``fig`` written to ``path`` (110 dpi) and closed; returns ``path``."""
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend(fontsize=fontsize, loc=loc)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@dataclass(frozen=True)
class Link:
    """A table cell that links ``href`` (relative to the report)."""

    text: str
    href: str


def _cell(v: Any) -> str:
    if isinstance(v, Link):
        return f"<a href='{html.escape(v.href)}'>{html.escape(v.text)}</a>"
    if isinstance(v, bool):
        return "yes" if v else "<b class='bad'>no</b>"
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape("" if v is None else str(v))


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], headers: Sequence[str] | None = None) -> str:
    """An HTML table of ``rows`` (mappings) on ``columns``; floats with 4 significant digits."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in (headers or columns))
    cls = ["" if c != "arch" else " class='arch'" for c in columns]
    body = "".join("<tr>" + "".join(f"<td{k}>{_cell(r.get(c))}</td>" for c, k in zip(columns, cls)) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222;max-width:1250px}
table{border-collapse:collapse;font-size:13px;margin:.6em 0 1.2em}th,td{border:1px solid #ccc;padding:3px 7px;
text-align:left}th{background:#f2f4f7}td{font-family:ui-monospace,Menlo,monospace;font-size:12px}
tr:nth-child(even){background:#fafafa}.bad{color:#b42318}img{max-width:100%;border:1px solid #eee}
.big{font-size:1.15em}td.arch{font-size:11px;max-width:420px;word-break:break-all}
"""


def _verdict(sn: Mapping[str, Any], mid: Mapping[str, Any] | None, sc: Mapping[str, Any]) -> str:
    """One honest sentence on the comparison, from the numbers."""
    pick = (mid or {}).get("pick") or {}
    best = sc.get("best") or {}
    if not pick or not best:
        return "One side has no feasible model to compare."
    a, b = float(pick["accuracy"]), float(best["accuracy"])
    side = "the supernet's pick" if a >= b else "the from-scratch model"
    return (f"On the held-out set {side} is ahead ({a:.4f} against {b:.4f}). The supernet is trained once "
            f"({sn['time_s']:.0f} s) and then serves every budget, each specialisation taking "
            f"{mid['search_s'] + mid['export_s'] if mid else 0:.0f} s or so without training; the from-scratch search "
            f"trains every candidate ({sc['wall_s']:.0f} s for {sc['trials'].get('complete', 0)}), and starts over "
            "for another budget or device. With so little training (a few epochs on a subset), weight sharing "
            "costs accuracy; docs/benchmarks.md (section 14.2) measured the same space with 25 supernet epochs on "
            "10,000 images, where the specialised model beat a from-scratch search given the same wall time by "
            "1.9 points.")


def _export_line(s: Mapping[str, Any]) -> str:
    ec = s.get("export_check") or {}
    if not ec.get("n"):
        return ""
    return (f"Against the latency re-measured from the {ec['n']} exported files (trained weights, every front model "
            f"of every budget), the predictor was {ec['within10']:.0%} within ±10 % (MAPE {ec['mape']:.1f} %).")


def write_demo_html(out: str, summary: Mapping[str, Any]) -> str:
    """``out/report.html`` from the demo's summary (see :func:`archscout.demo.run_demo`)."""
    s = summary
    pv, sn = s["predictor_validation"], s["supernet"]
    steps = [{"step": k, "seconds": v} for k, v in s["steps"].items()] + [{"step": "total", "seconds": s["elapsed_s"]}]
    models = []
    for sp in s["specialised"]:
        for r in sp["exported"]:
            models.append({**r, "budget_ms": sp["budget_ms"],
                           "file": Link(f"{sp['folder']}/{r['name']}.onnx", f"models/{sp['folder']}/{r['name']}.onnx")
                           if r["exported"] else "(removed)"})
    budgets = []
    for sp in s["specialised"]:
        p = sp["pick"] or {}
        budgets.append({"budget_ms": sp["budget_ms"], "evaluated": sp["trials"].get("complete", 0),
                        "infeasible": sp["trials"].get("infeasible", 0), "front": len(sp["front"]),
                        "exported": sum(r["exported"] for r in sp["exported"]),
                        "over": sum(not r["exported"] for r in sp["exported"]),
                        "pick_val": p.get("accuracy_study"), "pick_heldout": p.get("accuracy"),
                        "pick_ms": p.get("latency_ms_measured"), "search_s": sp["search_s"],
                        "export_s": sp["export_s"], "page": Link(sp["name"], f"studies/{sp['name']}/report.html")})
    sc = s.get("scratch")
    d = s["data"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>archscout demo</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>archscout demo: {html.escape(d['name'])} on this CPU, one supernet, {len(budgets)} latency budgets</h1>",
        f"<p class='big'>Done in <b>{s['elapsed_s']:.0f} s</b>. The supernet ({html.escape(sn['space'])}, trained "
        f"once: {sn['epochs']} epochs on {d['train']} images, {sn['time_s']:.0f} s) was specialised for "
        f"{len(budgets)} latency budgets without training again; <b>{len(s['exported'])}</b> models were exported, "
        f"each checked (ONNX parity, held-out accuracy with ONNX Runtime on <code>heldout.npz</code>, "
        "latency re-measured from the file). The searches screen candidates with a learned latency predictor "
        f"(<b>{pv['within10']:.0%} within ±10 %</b> on {pv['n']} held-out architectures, MAPE "
        f"{pv['mape']:.1f} %), so a candidate predicted over its budget is never evaluated. Written "
        f"{_dt.datetime.now().isoformat(timespec='seconds')}.</p>",
        "<h2>Fronts per latency budget, and training from scratch</h2><img src='fronts.png' alt='fronts'>",
        "<h2>Budgets</h2>",
        table(budgets, ["budget_ms", "evaluated", "infeasible", "front", "exported", "over", "pick_val",
                        "pick_heldout", "pick_ms", "search_s", "export_s", "page"],
              ["budget (ms)", "sub-networks evaluated", "predicted over budget (not evaluated)", "front",
               "exported", "over budget when re-measured", "pick: validation acc.", "pick: held-out acc.",
               "pick: re-measured ms", "search (s)", "export (s)", "study page"]),
        "<p>The pick is the exported model with the best validation accuracy (the test split selects nothing).</p>",
        "<h2>Exported models</h2>",
        table(models, ["budget_ms", "name", "accuracy", "accuracy_study", "latency_ms_predicted",
                       "latency_ms_measured", "latency_spread_ms", "onnx_max_abs_diff", "params_m", "exported",
                       "file", "arch"],
              ["budget (ms)", "name", "held-out acc. (ONNX Runtime)", "validation acc. (search)",
               "predicted ms", "re-measured ms", "IQR ms", "ONNX vs PyTorch max |diff|", "params (M)", "exported",
               "file", "architecture"]),
    ]
    if sc:
        best = sc.get("best") or {}
        mid = next((sp for sp in s["specialised"] if sp["budget_ms"] == sc["budget_ms"]), None)
        pick = (mid or {}).get("pick") or {}
        rows = [{"what": f"supernet: train once + specialise for {sc['budget_ms']:.3g} ms",
                 "wall_s": sn["time_s"] + (mid["search_s"] + mid["export_s"] if mid else 0.0),
                 "models": (mid or {}).get("trials", {}).get("complete"), "val": pick.get("accuracy_study"),
                 "test": pick.get("accuracy"), "ms": pick.get("latency_ms_measured")},
                {"what": f"from scratch: {sc['strategy']} search, {sc['epochs']} epoch(s) per model, "
                         f"{sc['workers']} workers", "wall_s": sc["wall_s"], "models": sc["trials"].get("complete"),
                 "val": best.get("val_accuracy"), "test": best.get("accuracy"), "ms": best.get("latency_ms_measured")}]
        parts += ["<h2>Against a search that trains every candidate from scratch</h2>",
                  f"<p>Same data ({d['train']} training images, the same validation and test splits), same "
                  f"predictor and budget (latency_ms &lt;= {sc['budget_ms']:.3g} ms). Each side's model with the "
                  "best validation accuracy within the budget, and its accuracy on the held-out test split.</p>",
                  table(rows, ["what", "wall_s", "models", "val", "test", "ms"],
                        ["", "wall time (s)", "models evaluated", "validation acc.", "held-out acc.",
                         "re-measured ms"]),
                  f"<p>{html.escape(_verdict(sn, mid, sc))} Study page: "
                  f"<a href='studies/{sc['name']}/report.html'>{sc['name']}</a>.</p>"]
    parts += [
        "<h2>Latency predictor</h2>",
        f"<p>{pv['n_train']} architectures (the smallest and the largest sub-network among them) were measured on "
        "this CPU (ONNX Runtime, batch 1, one thread, each run paired with a fixed reference network) and a "
        f"<code>learned-latency</code> predictor fitted on them; then {pv['n']} other architectures were measured "
        f"and predicted: <b>{pv['within10']:.0%} within ±10 %</b>, {pv['within5']:.0%} within ±5 %, MAPE "
        f"{pv['mape']:.2f} %, Spearman {pv['spearman']:.3f}. Measured latencies span {s['latency']['smallest_ms']:.3f}"
        f" ms (smallest sub-network) to {s['latency']['largest_ms']:.3f} ms (largest). {_export_line(s)}</p>",
        "<p>What makes the figure: networks large enough to time (28x28 inputs: 0.2-1.5 ms, where the old 8x8 demo's "
        "10-40 µs drowned in a few µs of noise), 100 timed runs per measurement each paired with the reference network "
        "(the median of model time / reference time, so a busy machine slows both alike), and a predictor that adds "
        "up per-layer terms (ridge regression on the MACs and counts of dense and depthwise convolutions per "
        "feature-map size, plus FLOPs, parameters and activation memory).</p>",
        "<img src='predictor.png' alt='predictor'>",
        "<h2>Supernet</h2>",
        f"<p>{html.escape(sn['method'])}, {sn['epochs']} epochs on {d['train']} training images, {sn['time_s']:.0f} s. "
        f"Validation accuracy ({d['val']} images) with inherited weights: largest sub-network "
        f"{sn['accuracy_largest']:.4f}, smallest {sn['accuracy_smallest']:.4f}. Folder "
        f"<code>supernet/</code>.</p>",
        "<h2>Time of every step</h2>", table(steps, ["step", "seconds"]),
        "<h2>Files</h2><p><code>summary.json</code> (every figure here), <code>study.db</code> (every study, "
        "SQLite), <code>heldout.npz</code> (the test split, X exactly as the models take it, y), "
        "<code>models/&lt;budget&gt;/</code> (<code>.onnx</code>, <code>.pt</code>, <code>.json</code> per model), "
        "<code>studies/&lt;study&gt;/</code> (each study's page and <code>trials.csv</code>).</p>",
        "</body></html>",
    ]
    path = os.path.join(out, "report.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    return path
