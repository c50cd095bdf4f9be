"""Export a study's Pareto front to files on disk, each model checked before it is handed over.

:func:`export_front` takes the front of a finished study (or the trials you name) and, for each trial:

1. gets its trained model: trains it again with the study's evaluator (a seeded
   :class:`~archscout.training.TrainingEvaluator` gives identical weights) or loads saved weights (state dicts,
   read with ``weights_only=True``) into a freshly built model;
2. exports it to ONNX and checks the file against PyTorch (largest absolute difference of the logits);
3. computes its top-1 accuracy on the held-out arrays with ONNX Runtime, from the exported file;
4. re-measures its latency from the exported file on a measured device (the ``measured-latency`` cost model's
   meter, runtime settings and protocol);
5. keeps the files (``<name>.onnx``, ``<name>.pt``, ``<name>.json``) only when the re-measured latency meets the
   latency budget; a model over the budget is reported (``exported=False``) and its files are removed.

The rows come back as frozen :class:`ExportedModel` values and are written to a summary JSON.
Needs ``archscout[nn]`` (torch, onnx, onnxruntime); importing this module does not import them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigError, ConstraintError, DataError, require
from .results import Trial, TrialState

if TYPE_CHECKING:
    from .hardware.measure import MeasuredLatency
    from .study import Study

__all__ = ["ROW_COLUMNS", "ExportedModel", "export_front", "export_study"]

ACCURACY = "accuracy"      # the metric a TrainingEvaluator reports and the held-out check reproduces
LATENCY = "latency_ms"     # the metric a latency budget bounds


@dataclass(frozen=True)
class ExportedModel:
    """One trial of the exported front: what was checked, and whether its files were kept.

    Attributes:
        name: file stem, ``trial`` plus the trial number on four digits (``"trial0007"``).
        trial: the trial number in the study.
        arch: the architecture's string form (``space.parse(arch)`` rebuilds it).
        accuracy: top-1 accuracy on the held-out arrays, a fraction in [0, 1], computed with ONNX Runtime from
            the exported file.
        accuracy_study: the ``accuracy`` the study recorded for the trial.
        onnx_max_abs_diff: largest absolute difference between PyTorch's and ONNX Runtime's logits on the first
            16 held-out inputs.
        latency_ms_predicted: the ``latency_ms`` the study recorded (a cost model's figure), or None.
        latency_ms_measured: median latency re-measured from the exported file on the device, in ms.
        latency_spread_ms: inter-quartile range of that measurement, in ms.
        latency_budget_ms: the budget it was checked against, in ms (None: no budget).
        params_m: parameters in millions as the study recorded them (``params_m``), or None.
        peak_mem_mb: peak activation memory in MB as the study recorded it (``peak_mem_mb``), or None.
        exported: True when the re-measured latency meets the budget and the files were kept.
        files: the files kept (``.onnx``, ``.pt``, ``.json``), empty when not exported.
    """

    name: str
    trial: int
    arch: str
    accuracy: float
    accuracy_study: float
    onnx_max_abs_diff: float
    latency_ms_predicted: float | None
    latency_ms_measured: float
    latency_spread_ms: float
    latency_budget_ms: float | None
    params_m: float | None
    peak_mem_mb: float | None
    exported: bool
    files: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The row as written to ``<name>.json`` and to the summary: every attribute but ``files``."""
        return {k: getattr(self, k) for k in ROW_COLUMNS}


ROW_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ExportedModel) if f.name != "files")


# --- checking the inputs, before any work -------------------------------------------------------------------
def _budget(study: Study, latency_budget_ms: Any) -> float | None:
    if latency_budget_ms is None:
        bounds = [c.bound for c in study.constraints if c.name == LATENCY and c.op in ("<=", "<")]
        return min(bounds) if bounds else None
    ok = isinstance(latency_budget_ms, (int, float)) and not isinstance(latency_budget_ms, bool)
    if not ok or not 0 < latency_budget_ms < math.inf:
        raise ConfigError(f"latency_budget_ms must be a positive number of ms (or None: the study's "
                          f"{LATENCY} constraint), got {latency_budget_ms!r}")
    return float(latency_budget_ms)


def _trials(study: Study, trials: Sequence[int | Trial] | None, metric: str = ACCURACY) -> list[Trial]:
    names = [o.name for o in study.objectives]
    if metric not in names:
        raise ConfigError(f"export_front checks each model's held-out accuracy against the study's {metric!r} "
                          f"objective, and study {study.name!r} has objectives {names}; export a study whose "
                          f"evaluator reports {metric!r} (a TrainingEvaluator) as an objective, or name the "
                          "accuracy objective with accuracy_metric=")
    if trials is None:
        chosen = study.pareto_front()
        if not chosen:
            counts: dict[str, int] = {}
            for t in study.trials:
                counts[t.state] = counts.get(t.state, 0) + 1
            seen = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trials"
            raise ConstraintError(f"study {study.name!r} has no feasible complete trial to export ({seen}); run more "
                                  "trials or relax the constraints")
    else:
        if isinstance(trials, (str, bytes)) or not isinstance(trials, Sequence) or not trials:
            raise ConfigError(f"trials must be a non-empty list of trial numbers or Trials, got {trials!r}")
        by_number = {t.number: t for t in study.trials}
        chosen = []
        for item in trials:
            number = item.number if isinstance(item, Trial) else item
            if isinstance(number, bool) or not isinstance(number, (int, np.integer)) or int(number) not in by_number:
                raise ConfigError(f"study {study.name!r} has no trial {item!r}; give trial numbers from 0 to "
                                  f"{len(by_number) - 1}")
            t = by_number[int(number)]
            if t.state != TrialState.COMPLETE or metric not in t.metrics:
                raise ConfigError(f"trial {t.number} is {t.state}, not complete with an {metric!r}; export "
                                  "complete trials only")
            chosen.append(t)
    inf = math.inf
    return sorted({t.number: t for t in chosen}.values(),
                  key=lambda t: (t.metrics.get(LATENCY, inf), t.number))


def _heldout(evaluator: Any, heldout: Any, input_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    if heldout is None:
        get = getattr(evaluator, "heldout", None)
        if not callable(get):
            raise ConfigError("export_front needs a held-out set: pass heldout=(X, y), or an evaluator with a "
                              "heldout() method (a TrainingEvaluator)")
        heldout = get()
    try:
        X, y = heldout
    except (TypeError, ValueError):
        raise ConfigError(f"heldout must be a pair (X, y) of arrays, got {type(heldout).__name__}") from None
    try:
        X = np.ascontiguousarray(X, dtype=np.float32)
        y = np.asarray(y)
    except (TypeError, ValueError) as e:
        raise DataError(f"held-out arrays must be numeric: {e}") from None
    if X.shape[1:] != tuple(input_shape) or len(X) == 0:
        raise DataError(f"held-out X must have shape (N >= 1, {', '.join(map(str, input_shape))}), the models' "
                        f"input, got {X.shape}")
    if y.shape != (len(X),) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"held-out y must be {len(X)} integer class labels (shape ({len(X)},)), got shape "
                        f"{y.shape} of {y.dtype}")
    return X, y


def _meter(device: Any, evaluator: Any, input_shape: tuple[int, ...]) -> MeasuredLatency:
    from .hardware import DeviceProfile, MeasuredLatency

    if isinstance(device, MeasuredLatency):
        cm = device
    elif isinstance(device, (str, DeviceProfile, Mapping)):
        factory = getattr(evaluator, "factory", None) or evaluator.build
        cm = MeasuredLatency(device, factory=factory, input_shape=input_shape)
    else:
        raise ConfigError(f"device must be a measured device (a name such as 'cpu-ort' or a DeviceProfile) or a "
                          f"'measured-latency' cost model, got {device!r}")
    if cm.meter.runtime != "onnxruntime":
        raise ConfigError(f"device {cm.device.name!r} runs {cm.meter.runtime!r}; export_front re-measures the "
                          "exported ONNX file, so use an onnxruntime device such as 'cpu-ort'")
    return cm


def _weights(weights: Any, front: Sequence[Trial]) -> dict[int, str] | None:
    if weights is None:
        return None
    if isinstance(weights, Mapping):
        out = {}
        for k, v in weights.items():
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not isinstance(v, (str, os.PathLike)):
                raise ConfigError(f"weights must map trial numbers to .pt files, got {k!r}: {v!r}")
            out[int(k)] = os.fspath(v)
        missing = [t.number for t in front if t.number not in out]
        if missing:
            raise ConfigError(f"weights has no file for trial(s) {missing}; give one per exported trial")
        return out
    if isinstance(weights, (str, os.PathLike)):
        folder = os.fspath(weights)
        if not os.path.isdir(folder):
            raise DataError(f"weights folder {folder!r} does not exist; pass the folder holding trialNNNN.pt files "
                            "(as export_front writes them) or a {trial number: path} mapping")
        return {t.number: os.path.join(folder, f"{_name(t)}.pt") for t in front}
    raise ConfigError(f"weights must be a folder or a {{trial number: .pt file}} mapping, got {weights!r}")


def _name(t: Trial) -> str:
    return f"trial{t.number:04d}"


def _input_shape(evaluator: Any, use_weights: bool) -> tuple[int, ...]:
    need = "build" if use_weights else "train"
    if not callable(getattr(evaluator, need, None)) or getattr(evaluator, "input_shape", None) is None:
        what = "build(arch) to load weights into" if use_weights else "train(arch) to train the models again"
        raise ConfigError(f"export_front needs the study's evaluator (a TrainingEvaluator) with {what} and an "
                          f"input_shape, got {evaluator!r}")
    try:
        shape = tuple(int(s) for s in evaluator.input_shape)
    except (TypeError, ValueError):
        raise ConfigError(f"the evaluator's input_shape must be a tuple of integers, got "
                          f"{evaluator.input_shape!r}") from None
    return shape


# --- the export ---------------------------------------------------------------------------------------------
def export_front(
    study: Study,
    out_dir: str | os.PathLike,
    evaluator: Any,
    *,
    trials: Sequence[int | Trial] | None = None,
    weights: str | os.PathLike | Mapping[int, str | os.PathLike] | None = None,
    heldout: tuple[np.ndarray, np.ndarray] | None = None,
    device: Any = "cpu-ort",
    latency_budget_ms: float | None = None,
    summary_file: str | None = "export.json",
    on_model: Callable[[ExportedModel], None] | None = None,
    accuracy_metric: str = ACCURACY,
) -> list[ExportedModel]:
    """Export the Pareto front of ``study`` (or ``trials``) to ``out_dir``, checking every model.

    Every setting is checked before any model is trained or written. For each trial, in order of the study's
    ``latency_ms`` (then trial number): get the model, export ``<name>.onnx``, compare it with PyTorch, compute
    its held-out accuracy with ONNX Runtime, re-measure its latency from the file, and keep ``<name>.onnx``,
    ``<name>.pt`` (the state dict) and ``<name>.json`` (the row) only if the latency meets the budget.

    Args:
        study: a study whose objectives include ``accuracy`` (as a TrainingEvaluator reports it).
        out_dir: the folder for the files (created).
        evaluator: the study's evaluator: ``train(arch)`` returning an object with ``.model`` (trains again;
            a seeded TrainingEvaluator gives the weights the study measured), ``build(arch)`` (with
            ``weights``) and ``input_shape``; its ``heldout()`` is the default held-out set.
        trials: trial numbers (or Trials) to export instead of the front; each must be complete.
        weights: load saved state dicts instead of training: a folder of ``trialNNNN.pt`` files (as this
            function writes them) or ``{trial number: path}``.
        heldout: ``(X, y)``: float32 inputs ``(N, *input_shape)`` and integer labels ``(N,)``; None uses
            ``evaluator.heldout()``.
        device: where latency is re-measured: a ``measured-latency`` cost model (its meter, runtime settings
            and reference protocol are used as they are), or a measured device name / profile (``"cpu-ort"``).
        latency_budget_ms: models whose re-measured latency is above it are not exported; None takes the
            study's ``latency_ms <= bound`` constraint, or no budget when it has none.
        summary_file: the summary JSON (``{"study", "device", "latency_budget_ms", "heldout_size", "front",
            "exported"}``), relative to ``out_dir``; None writes none.
        on_model: called with each row as soon as it is checked (e.g. to log progress).
        accuracy_metric: the study's objective that ``accuracy_study`` reports (default ``accuracy``; e.g. a
            tabular benchmark's ``valid_acc_200ep``, in its own units, when the front is trained again here).

    Returns:
        One :class:`ExportedModel` per trial, in the order above, exported or not.

    Raises:
        ConfigError: the study lacks an ``accuracy`` objective, an unknown or incomplete trial, a bad budget,
            no held-out set, an evaluator that cannot train or build, a device that is not measured with
            onnxruntime, or ``out_dir`` is a file.
        ConstraintError: the study has no feasible complete trial.
        DataError: held-out arrays of the wrong shape, a missing or mismatched weights file.
        BuildError: a model cannot be built or exported.
        OptionalDependencyError: torch, onnx or onnxruntime is missing.
    """
    require("torch", "nn")
    require("onnxruntime", "nn")
    front = _trials(study, trials, accuracy_metric)
    budget = _budget(study, latency_budget_ms)
    files = _weights(weights, front)
    input_shape = _input_shape(evaluator, files is not None)
    X, y = _heldout(evaluator, heldout, input_shape)
    cm = _meter(device, evaluator, input_shape)
    if summary_file is not None and (not isinstance(summary_file, str) or not summary_file):
        raise ConfigError(f"summary_file must be a file name (or None), got {summary_file!r}")
    out = os.fspath(out_dir)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"out_dir {out!r} is a file; give a folder")
    os.makedirs(out, exist_ok=True)

    rows = []
    for t in front:
        row = _export_one(t, evaluator, files, cm, budget, out, input_shape, X, y, accuracy_metric)
        rows.append(row)
        if on_model is not None:
            on_model(row)
    if summary_file is not None:
        summary = {
            "study": study.name, "device": cm.device.to_config(), "latency_budget_ms": budget,
            "heldout_size": len(y), "front": [r.to_dict() for r in rows],
            "exported": [r.name for r in rows if r.exported],
        }
        with open(os.path.join(out, summary_file), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1)
    return rows


def _export_one(t: Trial, evaluator: Any, files: dict[int, str] | None, cm: MeasuredLatency, budget: float | None,
                out: str, input_shape: tuple[int, ...], X: np.ndarray, y: np.ndarray,
                accuracy_metric: str = ACCURACY) -> ExportedModel:
    import torch

    from .nn import export_onnx, load_weights, onnx_parity

    name = _name(t)
    if files is None:
        model = evaluator.train(t.arch).model
    else:
        model = load_weights(evaluator.build(t.arch), files[t.number])
    model.eval()
    paths = {ext: os.path.join(out, f"{name}.{ext}") for ext in ("onnx", "pt", "json")}
    export_onnx(model, paths["onnx"], input_shape, batch_size=1)
    parity = onnx_parity(model, paths["onnx"], X[:16])
    session = cm.meter.session(paths["onnx"])
    feed = session.get_inputs()[0].name
    logits = np.concatenate([session.run(None, {feed: X[i:i + 256]})[0] for i in range(0, len(X), 256)])
    accuracy = float(np.mean(np.argmax(logits, axis=1) == y))
    m = cm.measure_onnx(paths["onnx"], t.arch, input_shape)
    exported = budget is None or m.median_ms <= budget

    def metric(key: str) -> float | None:
        v = t.metrics.get(key)
        return None if v is None else float(v)

    row = ExportedModel(
        name=name, trial=t.number, arch=str(t.arch), accuracy=accuracy,
        accuracy_study=float(t.metrics[accuracy_metric]), onnx_max_abs_diff=parity,
        latency_ms_predicted=metric(LATENCY), latency_ms_measured=m.median_ms, latency_spread_ms=m.spread_ms,
        latency_budget_ms=budget, params_m=metric("params_m"), peak_mem_mb=metric("peak_mem_mb"),
        exported=exported, files=tuple(paths.values()) if exported else (),
    )
    if exported:
        torch.save(model.state_dict(), paths["pt"])
        with open(paths["json"], "w", encoding="utf-8") as f:
            json.dump(row.to_dict(), f, indent=1)
    else:  # over the budget: nothing of it stays on disk (not even files of an earlier export)
        source = None if files is None else os.path.abspath(files[t.number])
        for p in paths.values():
            if os.path.exists(p) and os.path.abspath(p) != source:  # never the weights it was loaded from
                os.remove(p)
    return row


# --- a stored study, from its header ---------------------------------------------------------------------------
def export_study(
    storage: str,
    out_dir: str | os.PathLike,
    *,
    study: str | None = None,
    device: str | None = None,
    latency_budget_ms: float | None = None,
    training: Mapping[str, Any] | None = None,
    on_model: Callable[[ExportedModel], None] | None = None,
) -> dict[str, Any]:
    """Export the front of a study that ``archscout search`` recorded, rebuilding its evaluator from the header.

    Writes ``out_dir/heldout.npz`` (``X`` exactly as the models take it, ``y``), ``out_dir/models/<name>.{onnx,pt,
    json}`` for every model that passes :func:`export_front`'s checks, and ``out_dir/export.json`` (the summary:
    ``study``, ``kind``, ``device``, ``latency_budget_ms``, ``heldout_size``, ``front``, ``exported``).

    - a real-training study: each front model is trained again by the study's seeded evaluator (identical weights);
    - a supernet study: the sub-network's weights are extracted from the supernet and recalibrated;
    - a tabular study: the table has no weights, so each front architecture is trained here with its space's
      builder on ``training`` (``{"data": ..., "epochs": ..., "train_subset": ..., "val_size": ...}``, required);
      ``accuracy_study`` is then the table's objective, in the table's units.

    Args:
        storage: the study's storage (SQLite file or URL).
        out_dir: the export folder (created).
        study: the study's name when the storage holds several.
        device: the measured device the latency is re-measured on; None: the study's ``[hardware] device``, else
            ``cpu-ort``.
        latency_budget_ms: models re-measured above it are reported and not exported; None: the study's
            ``latency_ms`` constraint, if any.
        training: how to train a tabular study's front (see above); ignored for the other kinds.
        on_model: called with each checked row.

    Returns:
        The summary written to ``export.json``.

    Raises:
        StorageError: no such storage or study. ConfigError: the study was not started by ``archscout search``,
        a tabular study without ``training``, bad settings (see :func:`export_front`). ConstraintError: no
        feasible complete trial.
    """
    from .runs import resume_search

    st, evaluator, run = resume_search(storage, study, replay=False)  # reads only: stale trials stay as they are
    try:
        hw = dict(run.hardware or {})
        dev = device or hw.get("device") or "cpu-ort"
        metric = ACCURACY
        if run.kind == "tabular":
            evaluator, metric = _tabular_trainer(run, training, st)
        elif training:
            raise ConfigError(f"--data / --epochs train a tabular study's front; this {run.kind} study has its own "
                              "evaluator, so leave them out")
        from .hardware import MeasuredLatency

        root = os.fspath(out_dir)
        if os.path.exists(root) and not os.path.isdir(root):
            raise ConfigError(f"--out {root!r} is a file; give a folder")
        factory = getattr(evaluator, "factory", None)
        cache = hw.get("cache") if dev == hw.get("device") else None
        meter = MeasuredLatency(dev, factory=factory, input_shape=evaluator.input_shape, cache_path=cache)
        X, y = evaluator.heldout()
        X = np.ascontiguousarray(X, dtype=np.float32)
        os.makedirs(root, exist_ok=True)
        np.savez_compressed(os.path.join(root, "heldout.npz"), X=X, y=np.asarray(y))
        rows = export_front(st, os.path.join(root, "models"), evaluator, heldout=(X, y), device=meter,
                            latency_budget_ms=latency_budget_ms, summary_file=None, on_model=on_model,
                            accuracy_metric=metric)
        summary = {"study": st.name, "kind": run.kind, "device": meter.device.to_config(),
                   "latency_budget_ms": rows[0].latency_budget_ms if rows else latency_budget_ms,
                   "heldout_size": len(y), "front": [r.to_dict() for r in rows],
                   "exported": [r.name for r in rows if r.exported]}
        with open(os.path.join(root, "export.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1)
        return summary
    finally:
        st.close()


def _tabular_trainer(run: Any, training: Mapping[str, Any] | None, study: Study) -> tuple[Any, str]:
    """A TrainingEvaluator for a tabular study's space (its registered builder) and the study's objective."""
    from .run_specs import training_evaluator

    if not training or not training.get("data"):
        raise ConfigError("a tabular study has no weights to export: train its front here with --data DATA "
                          "[--epochs E] [--train-subset N] (e.g. --data cifar10.npz for NB201's CIFAR-10 table)")
    space = study.config["space"].get("name") or run.benchmark["name"]
    keys = ("train_subset", "val_size")
    spec = {"space": {"name": space, "builder": None, "options": dict(training.get("options") or {})},
            "data": {"data": training["data"], **{k: training[k] for k in keys if training.get(k) is not None}},
            "recipe": {k: training.get(k) for k in ("epochs", "batch_size", "optimizer", "lr", "augment")},
            "seed": int(study.config.get("seed") or 0)}
    return training_evaluator(spec), study.objectives[0].name
