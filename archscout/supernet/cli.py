"""``archscout supernet train|eval|search``: the shell face of :mod:`archscout.supernet`."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from .._argtypes import int_at_least, non_negative_int, positive_float, positive_int

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
    options: dict[str, Any] = {}
    for item in ns.option or ():
        key, sep, value = item.partition("=")
        if not sep:
            from ..errors import ConfigError
            raise ConfigError(f"--option needs KEY=VALUE (e.g. C=16), got {item!r}")
        try:
            options[key.strip()] = json.loads(value)
        except ValueError:
            options[key.strip()] = value
    meta = train_supernet(ns.space, ns.data, ns.out, method=ns.method, epochs=ns.epochs, seed=ns.seed,
                          train_subset="default" if ns.train_subset is None else (ns.train_subset or None),
                          val_size=ns.val_size, options=options, settings=settings, accelerator=ns.accelerator,
                          threads=ns.threads, progress=not ns.no_progress)
    total = sum(h["time_s"] for h in meta["history"])
    n = meta["epochs_done"]
    print(f"supernet of {meta['space'].get('name') or 'the space'} trained: {n} epoch{'s' if n != 1 else ''} "
          f"({meta['settings']['method']}), {total / 60:.1f} min of training; folder {ns.out}")
    return 0


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
    sub = p.add_subparsers(dest="supernet_command", metavar="{train,eval,search}")
    sub.required = True

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--accelerator", choices=["auto", "cpu", "cuda"], default="cpu",
                       help="where training / evaluation run (default cpu; auto takes CUDA when present)")
        q.add_argument("--threads", type=positive_int, help="torch threads (default: torch's choice)")
        q.add_argument("--no-progress", dest="no_progress", action="store_true", help="no progress bar")

    def scoring(q: argparse.ArgumentParser) -> None:
        q.add_argument("--val-images", dest="val_images", type=positive_int,
                       help="score on the first N validation images only (faster, noisier; default all)")

    t = sub.add_parser("train", help="train a supernet into a folder (resumes a run found there)")
    t.add_argument("--space", required=True, help="space name (nb201, mbv3, ...)")
    t.add_argument("--data", required=True,
                   help="dataset name (fashion-mnist, cifar10, digits, mnist5k) or path (.npz, IDX or CIFAR folder)")
    t.add_argument("--out", required=True, help="the supernet folder")
    t.add_argument("--method", choices=["spos", "sandwich", "ofa"], help="training method (default per space)")
    t.add_argument("--epochs", type=positive_int, help="epochs (default per space)")
    t.add_argument("--seed", type=non_negative_int, default=0, help="seed (default 0)")
    t.add_argument("--train-subset", dest="train_subset", type=_subset,
                   help="training images, stratified and seeded, or 'all' (default per space)")
    t.add_argument("--val-size", dest="val_size", type=positive_int, help="validation images kept out of training")
    t.add_argument("--batch-size", dest="batch_size", type=int_at_least(2), help="images per step")
    t.add_argument("--lr", type=positive_float, help="peak learning rate (cosine schedule)")
    t.add_argument("--sampling", choices=["fair", "uniform"], help="spos path sampling (default fair for cells)")
    t.add_argument("--augment", choices=["on", "off"], help="crop+flip augmentation (default: on for 32x32)")
    t.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="supernet option, e.g. C=16 or N=1 (cells), stem_width=16 (stages); repeatable")
    common(t)
    t.set_defaults(fn=cmd_train)

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

