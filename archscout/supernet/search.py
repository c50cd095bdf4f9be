"""Searching a trained supernet, and specialising it for a device (Once-for-All's "train once, deploy many").

:func:`search_supernet` is an ordinary study over a :class:`~archscout.supernet.SupernetEvaluator`: any
strategy, any storage. With a device it becomes a two-objective search (``accuracy`` max, ``latency_ms`` min)
whose latency is the device's measured latency (cached in the supernet folder, so a second specialisation
for the same device measures nothing twice), constrained by a latency budget; the front can then be exported
with the usual checks (ONNX parity, held-out accuracy with ONNX Runtime, re-measured latency).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import check_int, check_number
from ..errors import ConfigError, InvalidArchitectureError
from .evaluator import SupernetEvaluator

__all__ = ["eval_supernet", "read_archs", "search_supernet"]


def read_archs(space: Any, archs: str | os.PathLike | Iterable[str]) -> list[Any]:
    """Architectures from a file (one string per line; blank lines and ``#`` comments skipped) or strings.

    Raises:
        ConfigError: the file is missing or holds no architecture.
        InvalidArchitectureError: a line is not an architecture of ``space`` (its line number is named).
    """
    if isinstance(archs, (str, os.PathLike)):
        path = Path(archs)
        if not path.is_file():
            raise ConfigError(f"--archs file {os.fspath(path)!r} does not exist; give a file with one architecture "
                              "string per line")
        lines = path.read_text(encoding="utf-8").splitlines()
        where = os.fspath(path)
    else:
        lines, where = [str(a) for a in archs], "the list"
    out = []
    for i, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            out.append(space.parse(text))
        except InvalidArchitectureError as e:
            raise InvalidArchitectureError(f"{where}, line {i}: {e}") from None
    if not out:
        raise ConfigError(f"{where} holds no architecture; give one architecture string per line")
    return out


def eval_supernet(folder: str | os.PathLike, archs: str | os.PathLike | Iterable[str],
                  json_out: str | os.PathLike | None = None, *, evaluator: SupernetEvaluator | None = None,
                  progress: bool = False) -> dict[str, float]:
    """Validation accuracy with inherited weights of every architecture in ``archs``.

    Returns (and writes to ``json_out`` when given) ``{architecture string: accuracy}``: each sub-network's own
    top-1 accuracy on the supernet's validation split, a fraction in [0, 1].
    """
    ev = evaluator or SupernetEvaluator(folder)
    items = read_archs(ev.space, archs)
    from tqdm import tqdm

    out: dict[str, float] = {}
    for a in tqdm(items, disable=not progress, unit="arch", file=sys.stderr):
        out[str(a)] = ev.evaluate(a)["accuracy"]
    if json_out is not None:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(out, indent=1), encoding="utf-8")
    return out


def _row(t: Any) -> dict[str, Any]:
    return {"trial": t.number, "arch": str(t.arch), **{k: float(v) for k, v in t.metrics.items()}}


def search_supernet(
    folder: str | os.PathLike,
    budget: int,
    *,
    strategy: str = "auto",
    seed: int = 0,
    device: str | None = None,
    latency_budget_ms: float | None = None,
    export: str | os.PathLike | None = None,
    storage: str | None = None,
    evaluator: SupernetEvaluator | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Search the sub-networks of a trained supernet with ``budget`` evaluations.

    Without ``device``: one objective, validation ``accuracy``; the result's ``"best"`` is the best
    architecture's string. With ``device`` (a measured device such as ``"cpu-ort"``): objectives ``accuracy``
    (max) and ``latency_ms`` (min, measured on the device, cached in ``folder``), constrained by
    ``latency_budget_ms``; ``"best"`` is the most accurate architecture within the budget and ``"front"`` the
    Pareto front. With ``export`` the front goes to ``export/models/<name>.{onnx,pt,json}`` (each checked:
    ONNX parity, held-out accuracy with ONNX Runtime, latency measured again) and ``export/heldout.npz``
    (``X`` exactly as the models take it, ``y``), as the demo does, and a summary ``export/export.json``.

    Args:
        folder: a trained supernet folder.
        budget: sub-network evaluations.
        strategy, seed: the search strategy and its seed (the same seed gives the same result).
        device, latency_budget_ms: specialisation (see above); the budget needs a device.
        export: a folder for the exported front (needs ``device``).
        storage: a study storage (SQLite path) to keep and resume the search; None keeps it in memory.
        evaluator: a configured :class:`SupernetEvaluator` (default: ``SupernetEvaluator(folder)``).

    Returns:
        ``{"best", "best_accuracy", "n_evaluated", "search_time_s", "strategy", "seed", ...}`` plus, with a
        device, ``"device"``, ``"latency_budget_ms"``, ``"best_latency_ms"``, ``"front"`` and, with ``export``,
        ``"exported"`` (the rows of :func:`archscout.export.export_front`) and ``"export_time_s"``.

    Raises:
        ConfigError: bad settings (a latency budget or export without a device, budget < 1...).
        ConstraintError: no evaluated sub-network meets the latency budget.
    """
    from .. import Constraint, Objective, create_study
    from ..errors import ConstraintError

    budget = check_int("budget", budget, 1)
    seed = check_int("seed", seed, 0)
    if device is None and (latency_budget_ms is not None or export is not None):
        raise ConfigError("--latency-budget-ms and --export specialise for a device: add --device (e.g. cpu-ort)")
    if latency_budget_ms is not None:
        latency_budget_ms = check_number("latency_budget_ms", latency_budget_ms, 0.0, low_open=True)
    ev = evaluator or SupernetEvaluator(folder)
    space = ev.space
    t0 = time.time()
    result: dict[str, Any] = {"strategy": strategy, "seed": seed, "budget": budget}
    if device is None:
        study = create_study(space, objectives=[Objective("accuracy", "max")], strategy=strategy, storage=storage,
                             seed=seed, name="supernet-search", load_if_exists=storage is not None,
                             metadata={"supernet": os.path.abspath(os.fspath(folder))})
        study.optimize(ev, budget, progress=progress)
        best = study.best_trial
        if best is None:
            raise ConfigError("no sub-network evaluation succeeded; see the failed trials' reasons")
        result.update(best=str(best.arch), best_accuracy=float(best.metrics["accuracy"]),
                      n_evaluated=study.n_evaluated, search_time_s=round(time.time() - t0, 2))
        return result

    from ..hardware import MeasuredLatency

    cache = Path(folder) / f"latency-{device}.json"
    cm = MeasuredLatency(device, factory=ev.factory, input_shape=ev.input_shape, cache_path=cache)
    constraints = [] if latency_budget_ms is None else [Constraint("latency_ms", "<=", latency_budget_ms)]
    study = create_study(space, objectives=[Objective("accuracy", "max"), Objective("latency_ms", "min")],
                         constraints=constraints, cost_models={"latency_ms": cm}, strategy=strategy, storage=storage,
                         seed=seed, name="supernet-specialise", load_if_exists=storage is not None,
                         metadata={"supernet": os.path.abspath(os.fspath(folder)), "device": device})
    study.optimize(ev, budget, progress=progress)
    front = study.pareto_front()
    feasible = [t for t in front if latency_budget_ms is None or t.metrics["latency_ms"] <= latency_budget_ms]
    if not feasible:
        raise ConstraintError(f"no evaluated sub-network meets the latency budget of {latency_budget_ms} ms on "
                              f"{device}; raise --latency-budget-ms or the --budget of evaluations")
    best = max(feasible, key=lambda t: (t.metrics["accuracy"], -t.metrics["latency_ms"]))
    result.update(best=str(best.arch), best_accuracy=float(best.metrics["accuracy"]),
                  best_latency_ms=float(best.metrics["latency_ms"]), device=device,
                  latency_budget_ms=latency_budget_ms, front=[_row(t) for t in front],
                  n_evaluated=study.n_evaluated, search_time_s=round(time.time() - t0, 2))
    if export is not None:
        t1 = time.time()
        rows = export_specialised(study, ev, export, cm, latency_budget_ms)
        result.update(exported=[r.to_dict() for r in rows], export_time_s=round(time.time() - t1, 2))
    return result


def export_specialised(study: Any, ev: SupernetEvaluator, out: str | os.PathLike, meter: Any,
                       latency_budget_ms: float | None, trials: Sequence[Any] | None = None) -> list[Any]:
    """Export the study's front: ``out/heldout.npz`` and ``out/models/<name>.{onnx,pt,json}`` (see
    :func:`archscout.export.export_front`); the weights are the supernet's, extracted and recalibrated."""
    from ..export import export_front

    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--export {os.fspath(out)!r} is a file; give a folder")
    root.mkdir(parents=True, exist_ok=True)
    X, y = ev.heldout()
    np.savez_compressed(root / "heldout.npz", X=np.ascontiguousarray(X, dtype=np.float32), y=np.asarray(y))
    rows = export_front(study, root / "models", ev, trials=trials, heldout=(X, y), device=meter,
                        latency_budget_ms=latency_budget_ms, summary_file=None)
    summary = {"device": meter.device.to_config(), "latency_budget_ms": latency_budget_ms, "heldout_size": len(y),
               "front": [r.to_dict() for r in rows], "exported": [r.name for r in rows if r.exported]}
    (root / "export.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return rows
