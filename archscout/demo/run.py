"""``archscout demo``: hardware-aware search on Fashion-MNIST for this CPU, end to end, in minutes on 2 cores.

Once-for-All's "train once, deploy many", measured:

1. **supernet**: the ``mbv3`` stage space (elastic depth, kernel, expand ratio, width) is trained once on a
   subset of Fashion-MNIST (:func:`archscout.supernet.train_supernet`, SPOS);
2. **latency calibration**: architectures of the space are measured on this CPU (ONNX Runtime, batch 1, one
   thread, paired with a reference network), a ``learned-latency`` predictor is fitted on them, and other
   architectures, measured afterwards, tell how far it is off (the figure is in the report);
3. **specialisation** for several latency budgets: each is a study over the supernet's sub-networks
   (:class:`~archscout.supernet.SupernetEvaluator`: validation accuracy with inherited weights), with the
   predictor as a cheap cost model, so a candidate predicted over the budget is never evaluated; each front is
   exported by :func:`archscout.export.export_front` (ONNX parity, held-out accuracy with ONNX Runtime on
   ``heldout.npz``, latency re-measured from the file; a model over its budget is reported, not exported);
4. **from scratch**, for comparison: a short search whose every candidate is trained from scratch
   (:class:`~archscout.training.TrainingEvaluator` on the same images, worker processes), under the middle
   budget;
5. **report**: ``report.html`` with the figures, ``summary.json``, ``study.db`` (every study), ``models/``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, DataError, require
from .settings import DemoSettings, auto_threads, busy_cores, usable_cores
from .steps import Console, EagerFactory, calibrate, from_scratch, specialise, trial_row

if TYPE_CHECKING:
    from ..data import Splits
    from ..export import ExportedModel

__all__ = ["DATA_HINT", "SPACE", "run_demo"]

SPACE = "mbv3"
RECAL_BATCHES = 1
"""Batches of 256 training images that recompute each sub-network's batch-norm statistics (1 instead of the
evaluator's 2: a sub-network's accuracy moved by < 0.01, the evaluation got a quarter cheaper)."""
WARMUP, REPEATS = 20, 100
"""Latency measurements: untimed runs, then timed runs (each paired with the reference network), median. At 30
timed runs, a busy 2-core machine left a few measurements off by up to 2x, and such outliers both spoil the
predictor's fit and count as its misses; at 100 the same architectures repeat within +-10 %."""
DATA_HINT = ("the demo runs on Fashion-MNIST: 'apt-get install dataset-fashion-mnist' puts it in "
             "/usr/share/datasets/fashion-mnist, or set $ARCHSCOUT_DATA to a folder holding it, or pass --data PATH "
             "(an .npz file or a folder of the four IDX files)")


class _Clock:
    """Wall time of each named step, in seconds."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.times: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] = round(time.perf_counter() - t0, 2)

    def elapsed(self) -> float:
        return round(time.perf_counter() - self.start, 2)


def load_data(settings: DemoSettings) -> Splits:
    """The demo's splits, or a one-line :class:`DataError` saying how to get the data.

    Raises:
        DataError: the dataset is missing or unreadable, or the subset sizes do not fit it.
    """
    from ..data import load_splits
    from ..errors import UnknownNameError

    try:
        return load_splits(settings.data, train_subset=settings.train_subset, val_size=settings.val_size, seed=0)
    except (DataError, UnknownNameError) as e:
        msg = " ".join(str(e).split())
        raise DataError(msg if "apt-get" in msg else f"{msg}; {DATA_HINT}") from None


def _check_out(out: str) -> Path:
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--out {out!r} is a file; give a folder")
    for name in ("summary.json", "study.db"):
        if (root / name).exists():
            raise ConfigError(f"{out!r} already holds a demo run ({root / name}); choose another --out folder or "
                              "delete it")
    return root


def run_demo(out: str | os.PathLike, settings: DemoSettings | None = None, progress: bool = True,
             quiet: bool = False) -> dict[str, Any]:
    """Run the demo into the folder ``out`` (created; it must not hold a demo run already).

    Args:
        out: the output folder: ``report.html``, ``summary.json``, ``study.db``, ``heldout.npz``, ``fronts.png``,
            ``predictor.png``, ``models/``, ``studies/``, ``supernet/``.
        settings: :class:`DemoSettings` (default: the 10-minute defaults).
        progress: progress bars on stderr.
        quiet: no bars and no status lines (for scripts).

    Returns:
        The summary (also written to ``out/summary.json``): ``elapsed_s``, ``steps`` (seconds per step),
        ``settings``, ``data``, ``supernet``, ``latency``, ``predictor_validation`` (``within10``, ``mape``,
        ``n``, ...), ``budgets``, ``specialised`` (per budget: ``front``, ``exported``, ``pick``, ...),
        ``scratch``, ``exported`` (``"<budget folder>/<name>"`` of every exported model, under ``models/``).

    Raises:
        ConfigError: bad settings, or ``out`` already holds a demo run.
        DataError: the dataset is missing (the message says how to get it) or too small for the settings.
        OptionalDependencyError: torch, onnxruntime or matplotlib is missing.
        ConstraintError: no sub-network is predicted within a latency budget.
    """
    s = settings if settings is not None else DemoSettings()
    if not isinstance(s, DemoSettings):
        raise ConfigError(f"settings must be a DemoSettings, got {type(s).__name__}")
    console = Console(progress, quiet)
    for module in ("torch", "onnxruntime"):
        require(module, "nn")
    require("matplotlib", "plot")
    root = _check_out(os.fspath(out))
    clock = _Clock()
    with clock.step("data"):
        splits = load_data(s)  # before any work: a missing dataset fails here, in one line
    root.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        summary = _run(root, s, splits, console, clock)
    return summary


def _run(root: Path, s: DemoSettings, splits: Splits, console: Console, clock: _Clock) -> dict[str, Any]:
    from ..hardware import LearnedLatency, MeasuredLatency
    from ..supernet import SupernetEvaluator, train_supernet

    n_train, n_val, n_test = (len(splits.y_train), len(splits.y_val), len(splits.y_test))
    busy = busy_cores() if s.threads is None else None
    threads = s.threads if s.threads is not None else auto_threads(busy)
    held = "all" if s.heldout_size is None or s.heldout_size >= n_test else f"the first {s.heldout_size}"
    console.log(f"data: {splits.name} ({'x'.join(map(str, splits.input_shape))}), {n_train} training and {n_val} "
                f"validation images, {n_test} test images ({held} held out); output in {root}")

    # 1. the supernet, trained once
    sn_dir = root / "supernet"
    why = "" if busy is None else f" (other processes keep {busy:.1f} of {usable_cores()} cores busy)"
    console.log(f"step 1/5: training the {SPACE} supernet once: {s.epochs} epochs on {n_train} images, "
                f"{threads} thread{'s' if threads > 1 else ''}{why}")
    with clock.step("supernet"):
        meta = train_supernet(SPACE, s.data, sn_dir, epochs=s.epochs, seed=s.seed, train_subset=s.train_subset,
                              val_size=s.val_size, threads=threads, settings={"batch_size": s.batch_size},
                              progress=console.bars)
        ev = SupernetEvaluator(sn_dir, threads=threads, recal_batches=RECAL_BATCHES)
        net = ev.supernet
        acc_large = ev.evaluate(net.largest())["accuracy"]
        acc_small = ev.evaluate(net.smallest())["accuracy"]
    train_s = float(sum(h["time_s"] for h in meta["history"]))
    console.log(f"  supernet trained in {clock.times['supernet']:.0f} s; validation accuracy with inherited weights: "
                f"largest sub-network {acc_large:.4f}, smallest {acc_small:.4f}")
    X_test, y_test = ev.heldout()  # the same test split as `splits` (same data, sizes and split seed)
    n_held = len(y_test) if s.heldout_size is None else min(s.heldout_size, len(y_test))
    X_held, y_held = np.ascontiguousarray(X_test[:n_held], dtype=np.float32), np.asarray(y_test[:n_held])
    np.savez_compressed(root / "heldout.npz", X=X_held, y=y_held)

    # 2. latency: measure, fit the predictor, judge it on architectures measured afterwards
    meter = MeasuredLatency("cpu-ort", factory=ev.factory, input_shape=ev.input_shape, warmup=WARMUP,
                            repeats=REPEATS, cache_path=sn_dir / "latency-cpu-ort.json")
    predictor = LearnedLatency("cpu-ort", factory=EagerFactory(ev.factory), input_shape=ev.input_shape, seed=s.seed)
    console.log(f"step 2/5: latency on this CPU (ONNX Runtime, batch 1, 1 thread): measuring {s.calibration} "
                f"architectures to fit the predictor, then {s.calibration_test} others to test it")
    with clock.step("calibration"):
        cal = calibrate(net, meter, predictor, s.calibration, s.calibration_test, s.seed, console)
    pv = cal.validation
    console.log(f"  predictor on {pv['n']} held-out architectures: {pv['within10']:.0%} within ±10 %, MAPE "
                f"{pv['mape']:.1f} %; sub-networks span {cal.smallest_ms:.3f}-{cal.largest_ms:.3f} ms")
    if s.budgets_ms is not None:
        budgets = list(s.budgets_ms)
    else:
        budgets = [round(cal.smallest_ms + f * (cal.largest_ms - cal.smallest_ms), 3) for f in s.budget_fractions]

    # 3. specialise for each budget, export each front
    db = str(root / "study.db")
    special: list[dict[str, Any]] = []
    studies = {}
    console.log(f"step 3/5: specialising the supernet for {len(budgets)} latency budgets "
                f"({', '.join(f'{b:.3g}' for b in budgets)} ms): {s.search_budget} sub-network evaluations each "
                f"({s.strategy}), then export")
    for i, b in enumerate(budgets, 1):
        name, folder = f"specialise-{i}", f"budget-{b:g}ms"
        with clock.step(name):
            study, row = specialise(ev, predictor, meter, b, evaluations=s.search_budget, strategy=s.strategy,
                                    seed=s.seed, storage=db, name=name, models_dir=str(root / "models" / folder),
                                    heldout=(X_held, y_held), console=console, on_model=_model_line(console))
        row.update(folder=folder, all=[trial_row(t) for t in study.trials])
        special.append(row)
        studies[name] = study
        pick = row["pick"]
        console.log(f"  budget {b:.3g} ms: {row['trials'].get('complete', 0)} evaluated, "
                    f"{row['trials'].get('infeasible', 0)} predicted over budget (not evaluated); "
                    + (f"pick {pick['name']}: held-out accuracy {pick['accuracy']:.4f}, "
                       f"{pick['latency_ms_measured']:.3f} ms re-measured" if pick else "nothing exported"))

    # 4. from scratch, at the middle budget
    mid = budgets[len(budgets) // 2]
    console.log(f"step 4/5: for comparison, a search ({s.scratch_strategy}) that trains {s.scratch_trials} candidates "
                f"from scratch ({s.scratch_epochs} epoch(s) on the same {n_train} images, {s.workers} worker "
                f"processes) under {mid:.3g} ms")
    with clock.step("scratch"):
        scratch_splits = dataclasses.replace(splits, X_test=X_held, y_test=y_held)
        scratch_study, scratch = from_scratch(
            ev.space, scratch_splits, ev.factory, predictor, meter, mid, trials=s.scratch_trials,
            epochs=s.scratch_epochs, workers=s.workers, strategy=s.scratch_strategy, seed=s.seed, storage=db,
            name="scratch", console=console)
    scratch["strategy"] = s.scratch_strategy
    studies["scratch"] = scratch_study
    best = scratch["best"]
    console.log("  from scratch: " + (f"best by validation {best['val_accuracy']:.4f}, held-out "
                                      f"{best['accuracy']:.4f}, {best['latency_ms_measured']:.3f} ms"
                                      if best else "no feasible trial") + f" in {scratch['wall_s']:.0f} s")

    # 5. report
    console.log("step 5/5: writing the report")
    summary: dict[str, Any] = {
        "out": str(root), "settings": s.to_dict(),
        "threads": threads, "busy_cores_at_start": busy,
        "data": {"name": splits.name, "spec": s.data, "train": n_train, "val": n_val, "test": n_held,
                 "test_split": n_test,
                 "input_shape": list(splits.input_shape)},
        "supernet": {"space": SPACE, "method": meta["settings"]["method"], "epochs": meta["settings"]["epochs"],
                     "train_s": round(train_s, 2), "time_s": clock.times["supernet"], "options": meta["supernet"],
                     "accuracy_largest": acc_large, "accuracy_smallest": acc_small,
                     "largest": str(net.largest()), "smallest": str(net.smallest()), "folder": "supernet"},
        "latency": {"device": "cpu-ort", "smallest_ms": cal.smallest_ms, "largest_ms": cal.largest_ms,
                    "measurements": meter.n_measured},
        "predictor_validation": cal.to_dict(),
        "export_check": _export_check(special),
        "budgets": budgets,
        "specialised": special,
        "scratch": scratch,
        "exported": [f"{sp['folder']}/{r['name']}" for sp in special for r in sp["exported"] if r["exported"]],
    }
    with clock.step("report"):
        _write_report(root, summary, studies)
    summary["steps"] = dict(clock.times)
    summary["elapsed_s"] = clock.elapsed()
    from .report import write_demo_html

    write_demo_html(str(root), summary)
    with open(root / "summary.json", "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, default=str)
    return summary


def _export_check(special: list[dict[str, Any]]) -> dict[str, Any]:
    """The predictor against the latency re-measured from each exported file (every front model of every budget,
    exported or not): :func:`archscout.hardware.latency_metrics` plus the points ``[predicted, re-measured]``."""
    from ..hardware import latency_metrics

    pts = [[r["latency_ms_predicted"], r["latency_ms_measured"]] for sp in special for r in sp["exported"]
           if r["latency_ms_predicted"] is not None]
    if not pts:
        return {"n": 0, "points": []}
    return {**latency_metrics([p for p, _ in pts], [m for _, m in pts]), "points": pts}


def _model_line(console: Console) -> Any:
    def line(m: ExportedModel) -> None:
        verdict = "exported" if m.exported else f"over the budget of {m.latency_budget_ms:.3f} ms: not exported"
        console.log(f"    {m.name}: held-out accuracy {m.accuracy:.4f} (validation {m.accuracy_study:.4f}), latency "
                    f"predicted {m.latency_ms_predicted or float('nan'):.3f} ms, re-measured "
                    f"{m.latency_ms_measured:.3f} ms: {verdict}")

    return line


def _write_report(root: Path, summary: dict[str, Any], studies: dict[str, Any]) -> None:
    """The figures, and each study's own page (``studies/<name>/``: report, Pareto plot, trials.csv)."""
    from ..reports.study_report import plot_pareto, write_html_report, write_trials_csv
    from .report import plot_fronts, plot_predictor

    plot_fronts(summary["specialised"], summary["scratch"], str(root / "fronts.png"))
    plot_predictor(summary["predictor_validation"]["points"], summary["predictor_validation"],
                   str(root / "predictor.png"), exported=summary["export_check"]["points"])
    by_name = {sp["name"]: sp for sp in summary["specialised"]}
    for name, study in studies.items():
        folder = root / "studies" / name
        folder.mkdir(parents=True, exist_ok=True)
        write_trials_csv(study, str(folder / "trials.csv"))
        sp = by_name.get(name)
        rows = sp["exported"] if sp else summary["scratch"]["front"]
        y = "accuracy" if sp else "val_accuracy"
        plot_pareto(study, str(folder / "pareto.png"), x="latency_ms", y=y,
                    remeasured={r["trial"]: r["latency_ms_measured"] for r in rows if "latency_ms_measured" in r})
        if sp:
            cols = ["name", "trial", "accuracy", "accuracy_study", "latency_ms_predicted", "latency_ms_measured",
                    "latency_spread_ms", "params_m", "exported", "arch"]
            notes = [f"Specialisation of the supernet for latency_ms <= {sp['budget_ms']:g} ms: accuracy is the "
                     "validation accuracy with inherited weights, latency_ms the learned predictor's (candidates "
                     "predicted over the budget were not evaluated). The table is the exported front: accuracy "
                     "there is the held-out accuracy with ONNX Runtime, latency re-measured from the ONNX file."]
        else:
            cols = ["trial", "val_accuracy", "accuracy", "latency_ms", "train_time_s", "arch"]
            notes = ["From-scratch comparison: every candidate trained by a TrainingEvaluator; val_accuracy is the "
                     "validation accuracy (the objective), accuracy the held-out test accuracy, latency_ms the "
                     "learned predictor's."]
        write_html_report(study, str(folder), rows, cols, title=f"archscout demo: study {name}", notes=notes,
                          front_title="Pareto front" if sp is None else "Pareto front and exported models")
