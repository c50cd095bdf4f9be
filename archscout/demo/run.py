"""``archscout demo``: a hardware-aware search on an embedded default, end to end.

Digits (8x8 images, scikit-learn), this CPU through ONNX Runtime (batch 1, one thread). Two objectives,
accuracy (max) and latency_ms (min), and a latency budget. Steps:

1. calibrate: measure the latency of a sample of architectures and fit the learned latency predictor
   (its error on held-out architectures is reported);
2. search: a study recorded in SQLite; the predictor, parameter count and peak memory are cheap cost
   models, so a candidate predicted over the budget is recorded infeasible and never trained; the rest are
   really trained (PyTorch) in a pool of worker processes;
3. export: every Pareto-optimal model is trained again (seeded, so identically), exported to ONNX and a
   state dict, its ONNX Runtime accuracy is computed on the held-out split and its latency re-measured from
   the exported file; models whose re-measured latency breaks the budget are reported and not exported;
4. report: ``report.html``, ``pareto.png``, ``trials.csv``, ``heldout.npz``, ``models/``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..errors import ConfigError
from ..objectives import Constraint, Objective
from .space import demo_builder, demo_space

if TYPE_CHECKING:
    from ..export import ExportedModel
    from ..hardware.predictor import LearnedLatency
    from ..space import Architecture

__all__ = ["DemoSettings", "run_demo"]


@dataclass(frozen=True)
class DemoSettings:
    """Settings of :func:`run_demo` (all checked before any work starts).

    Args:
        budget: trained trials of the search.
        epochs: training epochs per trial.
        workers: training processes.
        calibration: architectures measured to fit the latency predictor.
        latency_budget_ms: the constraint; ``None`` sets it to the median measured latency of the
            calibration sample (so that about half of the space is over budget).
        seed: seeds the search, the training and the calibration sample.
        strategy: a multi-objective strategy name.
    """

    budget: int = 60
    epochs: int = 6
    workers: int = 2
    calibration: int = 60
    latency_budget_ms: float | None = None
    seed: int = 0
    strategy: str = "random"

    def __post_init__(self) -> None:
        for name in ("budget", "epochs", "workers", "calibration"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (1 if name != "calibration" else 10):
                raise ConfigError(f"{name} must be an integer >= {1 if name != 'calibration' else 10}, got {v!r}")
        if self.latency_budget_ms is not None and not (self.latency_budget_ms > 0):
            raise ConfigError(f"latency_budget_ms must be a positive number of ms, got {self.latency_budget_ms!r}")


def _log(msg: str) -> None:
    print(f"[archscout demo] {msg}", file=sys.stderr, flush=True)


def run_demo(out: str, settings: DemoSettings | None = None, progress: bool = True) -> dict[str, Any]:
    """Run the demo into folder ``out`` (created; must not already hold a demo study). Returns a summary.

    Raises:
        ConfigError: bad settings, or ``out`` already holds a demo run.
        ConstraintError: the latency budget is below every architecture's predicted latency.
    """
    from ..hardware import create_cost_model
    from ..nn import ModelFactory
    from ..study import create_study
    from ..training import TrainingEvaluator

    s = settings or DemoSettings()
    os.makedirs(os.path.join(out, "models"), exist_ok=True)
    db = os.path.join(out, "study.db")
    if os.path.exists(db):
        raise ConfigError(f"{out!r} already holds a demo run ({db}); choose another --out folder or delete it")
    t_start = time.perf_counter()
    space = demo_space()
    evaluator = TrainingEvaluator("digits", epochs=s.epochs, seed=s.seed, threads=1,
                                  factory=ModelFactory(input_shape=(1, 8, 8), num_classes=10, seed=s.seed,
                                                       builder=demo_builder))
    factory = evaluator.factory
    X_held, y_held = evaluator.heldout()
    np.savez_compressed(os.path.join(out, "heldout.npz"), X=X_held, y=y_held)

    # 1. calibration: measured latency of a seeded sample, learned predictor
    meter = create_cost_model("measured-latency", device="cpu-ort", factory=factory, repeats=50, warmup=20)
    rng = np.random.default_rng(s.seed + 10_000)
    calib: list[Architecture] = []
    seen: set[str] = set()
    while len(calib) < s.calibration:
        a = space.sample(rng)
        if a.functional_hash() not in seen:
            seen.add(a.functional_hash())
            calib.append(a)
    _log(f"calibrating: measuring {len(calib)} architectures on this CPU (ONNX Runtime, batch 1, 1 thread)")
    lat = [meter.predict(a) for a in calib]
    predictor = cast("LearnedLatency", create_cost_model("learned-latency", device="cpu-ort", factory=factory))
    predictor.fit(calib, lat)
    val = predictor.validation_report()
    budget_ms = float(s.latency_budget_ms) if s.latency_budget_ms is not None else float(np.median(lat))
    _log(f"latency predictor held-out error: {val.get('within10', float('nan')):.0%} within ±10 %, "
         f"MAPE {val.get('mape', float('nan')):.1f} %; latency budget {budget_ms:.4f} ms")

    # 2. search
    study = create_study(
        space,
        objectives=[Objective("accuracy", "max"), Objective("latency_ms", "min", "ms")],
        constraints=[Constraint("latency_ms", "<=", budget_ms)],
        strategy=s.strategy, storage=db, seed=s.seed, name="demo",
        cost_models={
            "latency_ms": predictor,
            "params_m": create_cost_model("params", factory=factory),
            "peak_mem_mb": create_cost_model("peak_mem_mb", factory=factory),
        },
        metadata={"demo": {k: getattr(s, k) for k in s.__dataclass_fields__}, "latency_budget_ms": budget_ms},
    )
    _log(f"searching: {s.budget} trained trials, {s.workers} worker processes, recorded in {db}")
    study.optimize(evaluator, budget=s.budget, executor="process", workers=s.workers, progress=progress)

    # 3. export the front: train again, export, check with ONNX Runtime, re-measure, keep what meets the budget
    rows: list[dict[str, Any]] = []
    front = study.pareto_front()
    if front:
        from ..export import export_front

        _log(f"exporting the front: {len(front)} models (train again, export, check with ONNX Runtime, re-measure)")
        models = export_front(study, os.path.join(out, "models"), evaluator, heldout=(X_held, y_held), device=meter,
                              latency_budget_ms=budget_ms, summary_file=None, on_model=_log_model)
        rows = [m.to_dict() for m in models]
    exported = [r for r in rows if r["exported"]]

    # 4. report
    from ..reports.study_report import plot_pareto, write_html_report, write_trials_csv

    write_trials_csv(study, os.path.join(out, "trials.csv"))
    plot_pareto(study, os.path.join(out, "pareto.png"), x="latency_ms", y="accuracy",
                remeasured={r["trial"]: r["latency_ms_measured"] for r in rows})
    notes = [
        f"Data: scikit-learn digits (8x8), split 60/20/20; accuracy is on the held-out test split saved as "
        f"heldout.npz ({len(y_held)} images). Training: {s.epochs} epochs, SGD, seed {s.seed}, 1 thread per worker.",
        f"Latency: this CPU, ONNX Runtime, batch 1, 1 thread, median of 50 runs. The search used a learned "
        f"predictor fitted on {len(calib)} measured architectures (held-out: {val.get('within10', float('nan')):.0%} "
        f"within ±10 %, MAPE {val.get('mape', float('nan')):.1f} %). Every front model was re-measured from its "
        f"exported ONNX file.",
        f"Budget: latency_ms <= {budget_ms:.4f} ms. {sum(not r['exported'] for r in rows)} front model(s) broke it "
        "when re-measured and were not exported." if rows else "No feasible trial.",
    ]
    cols = ["name", "trial", "accuracy", "accuracy_study", "latency_ms_predicted", "latency_ms_measured",
            "latency_spread_ms", "params_m", "peak_mem_mb", "exported", "arch"]
    write_html_report(study, out, rows, cols, title="archscout demo: digits on this CPU", notes=notes)
    elapsed = time.perf_counter() - t_start
    summary = {
        "out": out, "elapsed_s": elapsed, "latency_budget_ms": budget_ms, "predictor_validation": val,
        "trials": {st: sum(t.state == st for t in study.trials) for st in ("complete", "failed", "infeasible")},
        "front": rows, "exported": [r["name"] for r in exported],
    }
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    _log(f"done in {elapsed:.0f} s: {len(exported)} Pareto models exported to {out}/models; open {out}/report.html")
    return summary


def _log_model(m: ExportedModel) -> None:
    _log(f"  {m.name}: accuracy {m.accuracy:.3f} (study {m.accuracy_study:.3f}), latency predicted "
         f"{m.latency_ms_predicted:.4f} ms, re-measured {m.latency_ms_measured:.4f} ms"
         + ("" if m.exported else " > budget: not exported"))
