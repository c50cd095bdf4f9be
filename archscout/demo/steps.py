"""The demo's steps after the supernet is trained: latency calibration, specialisation, from-scratch search.

Each step is a function of plain values that returns a JSON-ready dict (or a small dataclass); :mod:`.run`
calls them in order and times them, :mod:`.report` draws what they return.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..objectives import Constraint, Objective

if TYPE_CHECKING:
    from ..export import ExportedModel
    from ..hardware import LearnedLatency, MeasuredLatency
    from ..space import Architecture
    from ..study import Study
    from ..supernet import SupernetEvaluator

__all__ = ["Calibration", "Console", "EagerFactory", "calibrate", "from_scratch", "specialise", "trial_row"]

OBJECTIVES = (Objective("accuracy", "max"), Objective("latency_ms", "min", "ms"))
SCRATCH_OBJECTIVES = (Objective("val_accuracy", "max"), Objective("latency_ms", "min", "ms"))


class Console:
    """What the demo tells a person: status lines and tqdm bars on stderr; nothing at all when ``quiet``.

    Args:
        progress: show progress bars.
        quiet: no bars and no status lines (errors and the final line only).
    """

    def __init__(self, progress: bool = True, quiet: bool = False) -> None:
        self.quiet = bool(quiet)
        self.bars = bool(progress) and not self.quiet

    def log(self, msg: str) -> None:
        """One status line on stderr (not when quiet)."""
        if not self.quiet:
            print(f"[archscout demo] {msg}", file=sys.stderr, flush=True)

    def bar(self, total: int, desc: str, unit: str = "arch") -> Any:
        """A tqdm bar on stderr (disabled without progress)."""
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not self.bars, dynamic_ncols=True,
                    mininterval=0.5)


# --- latency calibration --------------------------------------------------------------------------------------
class EagerFactory:
    """The networks of a :class:`~archscout.nn.ModelFactory` as its builder makes them, without the fx tracing
    ``build_model`` adds: the same layers (so the same latency-predictor features), analysed about 4x faster,
    which matters because the predictor builds every candidate a search proposes. Its config is the factory's.

    Args:
        factory: a ModelFactory with a registered builder name (e.g. ``"mbv3"``).
    """

    def __init__(self, factory: Any) -> None:
        self.factory = factory
        self.input_shape = tuple(factory.input_shape)
        self.num_classes = int(factory.num_classes)

    def __call__(self, arch: Any) -> Any:
        from ..nn.builders import BUILDERS

        builder = self.factory.builder
        fn = BUILDERS.get(builder) if isinstance(builder, str) else builder
        return fn(arch, self.input_shape, self.num_classes, **self.factory.options)

    def to_config(self) -> dict[str, Any]:
        """The ModelFactory's config (rebuilt, it gives the traced networks, whose features are the same)."""
        return dict(self.factory.to_config())

@dataclass
class Calibration:
    """Measured latencies and the predictor's error.

    Attributes:
        fit_archs / fit_ms / fit_pred: the architectures the predictor was fitted on, their measured latency
            and the fitted predictor's value for them (ms).
        test_archs / test_ms / test_pred: the held-out architectures, measured after the fit, and the same.
        validation: :func:`archscout.hardware.latency_metrics` on the held-out ones (``within10``, ``within5``,
            ``mape`` in %, ``spearman``, ``rmse`` in ms, ``n``) plus ``n_train``.
        internal: the predictor's own report on the part of the fit set it held out while fitting.
        smallest_ms / largest_ms: measured latency of the smallest and the largest sub-network.
    """

    fit_archs: list[Any]
    fit_ms: list[float]
    fit_pred: list[float]
    test_archs: list[Any]
    test_ms: list[float]
    test_pred: list[float]
    validation: dict[str, float]
    internal: dict[str, float] = field(default_factory=dict)
    smallest_ms: float = math.nan
    largest_ms: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        """``predictor_validation`` of the summary, with the points of the plot."""
        return {**self.validation, "internal": self.internal,
                "points": {"fit": [[str(a), m, p] for a, m, p in zip(self.fit_archs, self.fit_ms, self.fit_pred)],
                           "test": [[str(a), m, p] for a, m, p in zip(self.test_archs, self.test_ms,
                                                                      self.test_pred)]}}


def sample_distinct(space: Any, n: int, rng: np.random.Generator, taken: set[str],
                    first: Sequence[Architecture] = ()) -> list[Architecture]:
    """``first`` then random architectures of ``space``, ``n`` in all, functionally distinct from each other
    and from the hashes in ``taken`` (which is updated)."""
    out: list[Architecture] = []
    for a in first:
        if a.functional_hash() not in taken:
            taken.add(a.functional_hash())
            out.append(a)
    tries = 0
    while len(out) < n and tries < 100 * n:
        tries += 1
        a = space.sample(rng)
        if a.functional_hash() not in taken:
            taken.add(a.functional_hash())
            out.append(a)
    return out


def _measure_all(meter: MeasuredLatency, archs: Sequence[Architecture], console: Console, desc: str) -> list[float]:
    out = []
    with console.bar(len(archs), desc) as bar:
        for a in archs:
            out.append(float(meter.predict(a)))
            bar.set_postfix_str(f"{out[-1]:.3f} ms", refresh=False)
            bar.update(1)
    return out


def calibrate(net: Any, meter: MeasuredLatency, predictor: LearnedLatency, n_fit: int, n_test: int, seed: int,
              console: Console) -> Calibration:
    """Measure ``n_fit`` architectures (the smallest and the largest sub-networks among them), fit ``predictor``
    on them, then measure ``n_test`` other architectures and judge the predictor on those.

    Args:
        net: the trained supernet (its ``space``, ``smallest()`` and ``largest()``).
        meter: the device's ``measured-latency`` cost model (its cache is shared with the export).
        predictor: an unfitted ``learned-latency`` cost model with the same factory.
    """
    rng = np.random.default_rng([seed, 7])
    taken: set[str] = set()
    small, large = net.smallest(), net.largest()
    fit_archs = sample_distinct(net.space, n_fit, rng, taken, first=(small, large))
    fit_ms = _measure_all(meter, fit_archs, console, "latency: measuring the fit set")
    predictor.fit(fit_archs, fit_ms)
    internal = predictor.validation_report()
    test_archs = sample_distinct(net.space, n_test, rng, taken)
    test_ms = _measure_all(meter, test_archs, console, "latency: measuring the held-out set")
    test_pred = [float(v) for v in predictor.predict_many(test_archs)]
    fit_pred = [float(v) for v in predictor.predict_many(fit_archs)]
    from ..hardware import latency_metrics

    validation = {**latency_metrics(test_pred, test_ms), "n_train": len(fit_archs)}
    return Calibration(fit_archs, fit_ms, fit_pred, test_archs, test_ms, test_pred, validation, internal,
                       smallest_ms=fit_ms[0], largest_ms=fit_ms[1])


# --- rows ----------------------------------------------------------------------------------------------------
def trial_row(t: Any) -> dict[str, Any]:
    """A trial as a JSON-ready row: number, state, architecture and metrics."""
    return {"trial": t.number, "state": str(t.state), "arch": str(t.arch),
            **{k: float(v) for k, v in t.metrics.items()}}


def _counts(study: Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.trials:
        counts[str(t.state)] = counts.get(str(t.state), 0) + 1
    return counts


# --- specialisation ------------------------------------------------------------------------------------------
def specialise(ev: SupernetEvaluator, predictor: LearnedLatency, meter: MeasuredLatency, budget_ms: float, *,
               evaluations: int, strategy: str, seed: int, storage: str, name: str, models_dir: str,
               heldout: tuple[np.ndarray, np.ndarray], console: Console,
               on_model: Callable[[ExportedModel], None] | None = None) -> tuple[Study, dict[str, Any]]:
    """Search the supernet's sub-networks under ``latency_ms <= budget_ms`` and export the front.

    The search is a study (recorded as ``name`` in ``storage``) with objectives ``accuracy`` (validation,
    inherited weights, max) and ``latency_ms`` (the predictor's, min); the predictor is a cheap cost model,
    so a candidate predicted over the budget is recorded infeasible and never evaluated. The front is then
    exported to ``models_dir`` by :func:`archscout.export.export_front`: each model extracted with its
    inherited weights, checked against ONNX Runtime, scored on ``heldout`` and re-measured on ``meter``; a
    model over the budget when re-measured is reported and not exported.

    Returns:
        ``(study, row)`` where ``row`` holds ``budget_ms``, ``name``, ``trials`` (counts by state),
        ``front`` (trial rows), ``exported`` (export rows), ``pick`` (the exported model with the best
        validation accuracy, or None), ``search_s`` and ``export_s``.
    """
    from ..export import export_front
    from ..study import create_study

    t0 = time.perf_counter()
    study = create_study(ev.space, objectives=list(OBJECTIVES),
                         constraints=[Constraint("latency_ms", "<=", budget_ms)],
                         cost_models={"latency_ms": predictor}, strategy=strategy, storage=storage, seed=seed,
                         name=name, metadata={"demo": "specialise", "supernet": ev.path,
                                              "latency_budget_ms": budget_ms})
    study.optimize(ev, evaluations, progress=console.bars)
    t1 = time.perf_counter()
    front = sorted(study.pareto_front(), key=lambda t: t.metrics["latency_ms"])
    console.log(f"  {name}: {len(front)} Pareto models under {budget_ms:.3f} ms (predicted); exporting: extract, "
                "ONNX, check with ONNX Runtime, re-measure")
    rows = export_front(study, models_dir, ev, heldout=heldout, device=meter, latency_budget_ms=budget_ms,
                        summary_file="export.json", on_model=on_model) if front else []
    exported = [r.to_dict() for r in rows]
    kept = [r for r in exported if r["exported"]]
    pick = max(kept, key=lambda r: (r["accuracy_study"], -r["latency_ms_measured"])) if kept else None
    return study, {"name": name, "budget_ms": budget_ms, "trials": _counts(study),
                   "front": [trial_row(t) for t in front], "exported": exported, "pick": pick,
                   "search_s": round(t1 - t0, 2), "export_s": round(time.perf_counter() - t1, 2)}


# --- from scratch --------------------------------------------------------------------------------------------
def from_scratch(space: Any, splits: Any, factory: Any, predictor: LearnedLatency, meter: MeasuredLatency,
                 budget_ms: float, *, trials: int, epochs: int, workers: int, strategy: str, seed: int, storage: str,
                 name: str, console: Console) -> tuple[Study, dict[str, Any]]:
    """The comparison: a search whose every candidate is trained from scratch (a
    :class:`~archscout.training.TrainingEvaluator` on ``splits``, ``epochs`` epochs, ``workers`` processes),
    the same predictor as a cheap cost model and ``latency_ms <= budget_ms``. Its objectives are
    ``val_accuracy`` (max) and ``latency_ms`` (min): the held-out test accuracy (``accuracy``) selects nothing.

    Returns:
        ``(study, row)``: ``row`` holds ``budget_ms``, ``trials`` (counts), ``front``, ``best`` (the feasible
        trial with the best validation accuracy, its latency re-measured as ``latency_ms_measured``) and
        ``wall_s``.
    """
    from ..study import create_study
    from ..training import TrainingEvaluator

    t0 = time.perf_counter()
    te = TrainingEvaluator(splits, epochs=epochs, seed=seed, threads=1, factory=factory)
    study = create_study(space, objectives=list(SCRATCH_OBJECTIVES),
                         constraints=[Constraint("latency_ms", "<=", budget_ms)],
                         cost_models={"latency_ms": predictor}, strategy=strategy, storage=storage, seed=seed,
                         name=name, metadata={"demo": "scratch", "evaluator": te.to_config(),
                                              "latency_budget_ms": budget_ms})
    study.optimize(te, trials, executor="process", workers=workers, progress=console.bars)
    wall = time.perf_counter() - t0
    front = sorted(study.pareto_front(), key=lambda t: t.metrics["latency_ms"])
    ok = [t for t in study.trials if str(t.state) == "complete" and t.metrics.get("latency_ms", math.inf) <= budget_ms]
    best = None
    if ok:
        b = max(ok, key=lambda t: (t.metrics["val_accuracy"], -t.metrics["latency_ms"]))
        best = {**trial_row(b), "latency_ms_measured": float(meter.predict(b.arch))}
    return study, {"name": name, "budget_ms": budget_ms, "trials": _counts(study),
                   "front": [trial_row(t) for t in front], "all": [trial_row(t) for t in study.trials],
                   "best": best, "epochs": epochs, "workers": workers, "wall_s": round(wall, 2)}

