"""``archscout supernet train|eval|search``: the shell face of :mod:`archscout.supernet`."""

from __future__ import annotations

import argparse
import html
import json
import os
from pathlib import Path
from typing import Any

from .._argtypes import int_at_least, key_values, non_negative_float, non_negative_int, positive_float, positive_int
from .fewshot import BASES
from .train import DIFF_METHODS, METHODS

__all__ = ["add_supernet_parser"]


def _subset(text: str) -> int:
    """``--train-subset``: a count, or 0 for ``all``."""
    if text.lower() == "all":
        return 0
    return positive_int(text)


def _write_json(path: str, obj: Any) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    os.replace(tmp, p)


def cmd_train(ns: argparse.Namespace) -> int:
    from .train import train_supernet

    settings = {k: getattr(ns, k) for k in ("batch_size", "lr", "sampling") if getattr(ns, k) is not None}
    if ns.augment is not None:
        settings["augment"] = ns.augment == "on"
    options = key_values(ns.option, "C=16")
    search = {"arch_lr": ns.arch_lr, "arch_weight_decay": ns.arch_weight_decay, "arch_fraction": ns.arch_fraction,
              "order": ns.order, "partial_k": ns.partial_k, "warmup_epochs": ns.warmup_epochs,
              "skip_limit": ns.skip_limit, "latency_weight": ns.latency_weight,
              "latency_target_ms": ns.latency_target_ms, "rarts_lam": ns.rarts_lam, "rarts_beta": ns.rarts_beta,
              "edge_norm": None if ns.edge_norm is None else ns.edge_norm == "on"}
    search = {k: v for k, v in search.items() if v is not None}
    latency_model = None
    if ns.cost_table is not None or ns.cost_column is not None:
        from ..errors import ConfigError
        if ns.cost_table is None or ns.cost_column is None:
            raise ConfigError("the latency term needs both --cost-table FILE and --cost-column COL (a latency "
                              "column in ms, e.g. pixel3_ms)")
        from ..hardware import TableLatency
        latency_model = TableLatency(table=ns.cost_table, column=ns.cost_column, space=ns.space,
                                     arch_column=ns.cost_arch_column)
    few_shot = {"base": ns.base_method, "split_by": ns.split_by, "split_edges": ns.split_edges,
                "edges": ns.split_edge, "parent_fraction": ns.parent_fraction, "gm_batches": ns.gm_batches,
                "sub_epochs": ns.sub_epochs}
    few_shot = {k: v for k, v in few_shot.items() if v is not None}
    if few_shot and ns.method != "few-shot":
        from ..errors import ConfigError
        raise ConfigError(f"--base-method, --split-by, --split-edges, --split-edge, --parent-fraction, --sub-epochs "
                          f"and --gm-batches configure --method few-shot, not {ns.method or 'the default method'}")
    meta = train_supernet(ns.space, ns.data, ns.out, method=ns.method, epochs=ns.epochs, seed=ns.seed,
                          train_subset="default" if ns.train_subset is None else (ns.train_subset or None),
                          val_size=ns.val_size, options=options, settings=settings, accelerator=ns.accelerator,
                          threads=ns.threads, progress=not ns.no_progress, search=search or None,
                          latency_model=latency_model, storage=ns.storage, few_shot=few_shot or None,
                          init_from=ns.init_from)
    total = sum(h["time_s"] for h in meta["history"])
    n = meta["epochs_done"]
    print(f"supernet of {meta['space'].get('name') or 'the space'} trained: {n} epoch{'s' if n != 1 else ''} "
          f"({meta['settings']['method']}), {total / 60:.1f} min of training; folder {ns.out}")
    if meta.get("stopped_early"):
        st = meta["stopped_early"]
        print(f"stopped early after epoch {st['epoch']}: {st['reason']}; kept {st['kept']}")
    if meta["settings"]["method"] in DIFF_METHODS and meta.get("derived"):
        print(f"derived: {meta['derived']} (see 'archscout supernet derive {ns.out} --json OUT')")
    return 0


def cmd_derive(ns: argparse.Namespace) -> int:
    from .differentiable import derive

    result = derive(ns.dir)
    report = Path(ns.report) if ns.report else Path(ns.dir) / "report"
    try:
        result["report"] = _derive_report(ns.dir, result, report)
    except ImportError as e:  # matplotlib missing: the JSON is still written
        result["report"] = None
        print(f"no report: {e}")
    _write_json(ns.json, result)
    line = f"derived: {result['arch']} ({result['method']}, {result['epochs_done']} epochs"
    if not result["finished"]:
        line += ", unfinished"
    print(line + f"); weights per edge in {ns.json}")
    if result.get("report"):
        print(f"report: {result['report']}")
    return 0


def _derive_report(folder: str, result: dict[str, Any], out: Path) -> str:
    """``out/report.html``: the search curve (the study of each epoch's derived cell) and the heat map."""
    from .. import load_study
    from ..reports.study_report import write_html_report, write_trials_csv
    from .differentiable import plot_weights

    out.mkdir(parents=True, exist_ok=True)
    plot_weights(result, out / "weights.png")
    src = Path(folder) / (f"sub-{result['best_sub']}" if "best_sub" in result else "")
    study = load_study(str(src / "study.db")) if (src / "study.db").exists() else None
    notes = [f"Derived cell: {result['arch']} ({result['method']}, {result['epochs_done']} epochs, search "
             f"{result['search_time_s'] / 60:.1f} min, peak memory {result['peak_rss_mb']:.0f} MB)."]
    if result.get("stopped_early"):
        notes.append(f"Stopped early: {result['stopped_early']['reason']}.")
    if study is None:
        path = out / "report.html"
        path.write_text("<!doctype html><meta charset='utf-8'><h1>derived cell</h1><p>"
                        + html.escape(notes[0]) + "</p><img src='weights.png'>", encoding="utf-8")
        return str(path)
    write_trials_csv(study, str(out / "trials.csv"))
    _plot_curve(result, out / "curve.png")
    rows = [{"epoch": h["epoch"], "accuracy": round(h["accuracy"], 4), "skip_count": h["skip_count"],
             **({"latency_ms": h["latency_ms"]} if "latency_ms" in h else {}), "arch": h["arch"]}
            for h in result["history"]]
    cols = ["epoch", "accuracy", "skip_count", *(["latency_ms"] if "latency_ms" in result else []), "arch"]
    return write_html_report(study, str(out), rows, cols, title=f"archscout {result['method']} search",
                             notes=notes, image="curve.png",
                             figures=[("Architecture weights per edge over the epochs", "weights.png")],
                             front_title="Derived cell per epoch")


def _plot_curve(result: dict[str, Any], path: Path) -> None:
    from ..reports import require_matplotlib

    plt = require_matplotlib()
    hist = result["history"]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot([h["epoch"] for h in hist], [h["accuracy"] for h in hist], "o-", label="derived cell, supernet weights")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax2 = ax.twinx()
    ax2.step([h["epoch"] for h in hist], [h["skip_count"] for h in hist], where="mid", color="#d08770",
             label="skip connections")
    ax2.set_ylabel("skip connections in the derived cell")
    ax.set_title(f"{result['method']}: search curve")
    fig.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cmd_eval(ns: argparse.Namespace) -> int:
    from .evaluator import SupernetEvaluator
    from .search import eval_supernet

    ev = SupernetEvaluator(ns.dir, data=ns.data, accelerator=ns.accelerator, threads=ns.threads,
                           val_images=ns.val_images)
    out = eval_supernet(ns.dir, ns.archs, ns.json, evaluator=ev, progress=not ns.no_progress)
    print(f"{len(out)} sub-networks evaluated; accuracies in {ns.json}")
    return 0


def cmd_search(ns: argparse.Namespace) -> int:
    from .evaluator import SupernetEvaluator
    from .search import search_supernet

    ev = SupernetEvaluator(ns.dir, data=ns.data, accelerator=ns.accelerator, threads=ns.threads,
                           finetune_epochs=ns.finetune_epochs, val_images=ns.val_images)
    result = search_supernet(ns.dir, ns.budget, strategy=ns.strategy, seed=ns.seed, device=ns.device,
                             latency_budget_ms=ns.latency_budget_ms, export=ns.export, storage=ns.storage,
                             evaluator=ev, progress=not ns.no_progress)
    _write_json(ns.json, result)
    line = f"best: {result['best']} (validation accuracy {result['best_accuracy']:.4f}"
    if "best_latency_ms" in result:
        line += f", {result['best_latency_ms']:.3f} ms on {result['device']}"
    print(line + ")")
    if "exported" in result:
        kept = [r for r in result["exported"] if r["exported"]]
        print(f"exported {len(kept)} of {len(result['exported'])} front models to {ns.export}/models "
              f"(held-out set: {ns.export}/heldout.npz)")
    return 0


def add_supernet_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``supernet train|eval|search`` to an argparse ``subparsers`` object; returns its parser."""
    p = subparsers.add_parser("supernet", help="weight sharing: train a supernet once, then search and specialise it")
    sub = p.add_subparsers(dest="supernet_command", metavar="{train,eval,search,derive}")
    sub.required = True

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--accelerator", choices=["auto", "cpu", "cuda"], default="cpu",
                       help="where training / evaluation run (default cpu; auto takes CUDA when present)")
        q.add_argument("--threads", type=positive_int, help="torch threads (default: torch's choice)")
        q.add_argument("--no-progress", "--quiet", dest="no_progress", action="store_true",
                       help="no progress bars (for scripts)")

    def scoring(q: argparse.ArgumentParser) -> None:
        q.add_argument("--val-images", dest="val_images", type=positive_int,
                       help="score on the first N validation images only (faster, noisier; default all)")

    t = sub.add_parser("train", help="train a supernet into a folder (resumes a run found there)")
    t.add_argument("--space", required=True, help="space name (nb201, mbv3, ...)")
    t.add_argument("--data", required=True,
                   help="dataset name (fashion-mnist, cifar10, digits, mnist5k) or path (.npz, IDX or CIFAR folder)")
    t.add_argument("--out", required=True, help="the supernet folder")
    t.add_argument("--method", choices=list(METHODS),
                   help="training method (default spos); darts, pc-darts, proxylessnas and rarts search the cell by "
                        "gradient (see 'supernet derive'); few-shot splits the supernet")
    t.add_argument("--epochs", type=positive_int, help="epochs (default per space)")
    t.add_argument("--seed", type=non_negative_int, default=0, help="seed (default 0)")
    t.add_argument("--train-subset", dest="train_subset", type=_subset,
                   help="training images, stratified and seeded, or 'all' (default per space)")
    t.add_argument("--val-size", dest="val_size", type=positive_int, help="validation images kept out of training")
    t.add_argument("--batch-size", dest="batch_size", type=int_at_least(2), help="images per step")
    t.add_argument("--lr", type=positive_float, help="peak learning rate (cosine schedule)")
    t.add_argument("--sampling", choices=["fair", "uniform"], help="spos path sampling (default fair for cells)")
    t.add_argument("--augment", choices=["on", "off"], help="crop+flip augmentation (default: on for 32x32)")
    t.add_argument("--init-from", dest="init_from", metavar="DIR",
                   help="start from the weights of a trained supernet folder (same space and options)")
    t.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="supernet option, e.g. C=16 or N=1 (cells), stem_width=16 (stages); repeatable")
    d = t.add_argument_group("differentiable methods (darts, pc-darts, proxylessnas, rarts)")
    d.add_argument("--arch-lr", dest="arch_lr", type=positive_float, help="Adam learning rate of the architecture "
                   "weights (default per method)")
    d.add_argument("--arch-weight-decay", dest="arch_weight_decay", type=non_negative_float,
                   help="L2 penalty of the architecture weights")
    d.add_argument("--arch-fraction", dest="arch_fraction", type=positive_float,
                   help="share of the training images that trains the architecture weights (default 0.5)")
    d.add_argument("--order", type=int, choices=[1, 2], help="darts / pc-darts: 2 = the unrolled gradient")
    d.add_argument("--partial-k", dest="partial_k", type=positive_int,
                   help="PC-DARTS channel fraction 1/K (default 2 for pc-darts)")
    d.add_argument("--edge-norm", dest="edge_norm", choices=["on", "off"],
                   help="edge normalisation (default on for pc-darts, off otherwise; a remedy for darts)")
    d.add_argument("--warmup-epochs", dest="warmup_epochs", type=non_negative_int,
                   help="epochs that train the weights only before the architecture moves")
    d.add_argument("--skip-limit", dest="skip_limit", type=positive_int,
                   help="DARTS+ early stopping: stop when the derived cell holds this many skip connections")
    d.add_argument("--cost-table", dest="cost_table", help="proxylessnas: latency CSV (as for 'archscout bench')")
    d.add_argument("--cost-column", dest="cost_column", help="proxylessnas: its latency column in ms (e.g. pixel3_ms)")
    d.add_argument("--cost-arch-column", dest="cost_arch_column", default="arch_str",
                   help="the latency CSV's architecture column (default arch_str)")
    d.add_argument("--latency-target-ms", dest="latency_target_ms", type=positive_float,
                   help="proxylessnas: latency target (hinge penalty; the derived cell is the most probable at or "
                        "under it)")
    d.add_argument("--latency-weight", dest="latency_weight", type=positive_float,
                   help="proxylessnas: loss per ms of expected latency (or the hinge's weight with a target)")
    d.add_argument("--rarts-lam", dest="rarts_lam", type=positive_float, help="rarts: weight of the architecture "
                   "half's loss (default 1)")
    d.add_argument("--rarts-beta", dest="rarts_beta", type=non_negative_float,
                   help="rarts: proximal coupling of the two weight copies (default 0.01)")
    d.add_argument("--storage", help="study storage recording each epoch's derived cell (default DIR/study.db)")
    f = t.add_argument_group("few-shot")
    f.add_argument("--base-method", dest="base_method",
                   choices=list(BASES),
                   help="how the parent and the sub-supernets train (default spos)")
    f.add_argument("--split-by", dest="split_by", choices=["gm", "exhaustive"],
                   help="gm: gradient matching chooses edges and groups (default); exhaustive: one sub-supernet per "
                        "op of each --split-edge")
    f.add_argument("--split-edges", dest="split_edges", type=positive_int,
                   help="gm: edges to split (2^K sub-supernets; default 1)")
    f.add_argument("--split-edge", dest="split_edge", type=non_negative_int, action="append",
                   help="exhaustive: an edge index to split (repeatable; default 0)")
    f.add_argument("--parent-fraction", dest="parent_fraction", type=positive_float,
                   help="share of the epochs that trains the parent (default 0.5)")
    f.add_argument("--sub-epochs", dest="sub_epochs", type=positive_int,
                   help="each sub-supernet trains this many epochs after a parent of EPOCHS - K (GM-NAS' protocol; "
                        "default: the epochs are one budget shared by the parent and the sub-supernets)")
    f.add_argument("--gm-batches", dest="gm_batches", type=positive_int,
                   help="batches per gradient in gradient matching (default 4)")
    common(t)
    t.set_defaults(fn=cmd_train)

    dv = sub.add_parser("derive", help="the cell a differentiable (or few-shot) run derived, its weights per edge "
                                       "and a report with their heat map")
    dv.add_argument("dir", help="the supernet folder of a darts, pc-darts, proxylessnas, rarts or few-shot run")
    dv.add_argument("--json", required=True, help="output JSON ('arch': the derived cell's string; 'edges': weights)")
    dv.add_argument("--report", help="report folder (default DIR/report): report.html, weights.png, curve.png")
    dv.set_defaults(fn=cmd_derive)

    e = sub.add_parser("eval", help="validation accuracy of listed sub-networks with inherited weights")
    e.add_argument("dir", help="the supernet folder")
    e.add_argument("--archs", required=True, help="file with one architecture string per line")
    e.add_argument("--json", required=True, help="output JSON: {architecture: accuracy}")
    e.add_argument("--data", help="dataset path when it moved since training")
    scoring(e)
    common(e)
    e.set_defaults(fn=cmd_eval)

    s = sub.add_parser("search", help="search the supernet's sub-networks; with --device, specialise and export")
    s.add_argument("dir", help="the supernet folder")
    s.add_argument("--budget", type=positive_int, required=True, help="sub-network evaluations")
    s.add_argument("--strategy", default="auto", help="search strategy (default auto)")
    s.add_argument("--seed", type=non_negative_int, default=0, help="seed (default 0)")
    s.add_argument("--json", required=True, help="output JSON (has 'best', the best architecture string)")
    s.add_argument("--device", help="measured device to specialise for (e.g. cpu-ort)")
    s.add_argument("--latency-budget-ms", dest="latency_budget_ms", type=positive_float,
                   help="latency budget in ms on --device")
    s.add_argument("--export", help="folder for the specialised front: models/<name>.{onnx,pt,json}, heldout.npz")
    s.add_argument("--finetune-epochs", dest="finetune_epochs", type=non_negative_int, default=0,
                   help="fine-tune each exported sub-network for this many epochs (default 0)")
    s.add_argument("--storage", help="SQLite file keeping the search (resumable); default in memory")
    s.add_argument("--data", help="dataset path when it moved since training")
    scoring(s)
    common(s)
    s.set_defaults(fn=cmd_search)
    return p

