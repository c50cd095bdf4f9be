"""Training a supernet: the weight-training methods, seeded and resumable from the last epoch.

Methods (a method is a strategy for *weights*; which sub-network a step trains):

``spos``      single-path one-shot (Guo et al.): each step trains one sub-network drawn uniformly. With
              ``sampling="fair"`` (cell supernets, FairNAS's strict fairness) the batch is cut into one chunk
              per op and, on every edge, the chunks use a random permutation of the ops: every op of every
              edge is trained on the same number of images in every step, at the cost of one path.
``sandwich``  BigNAS / OFA's sandwich rule with in-place distillation: each step trains the largest
              sub-network on the labels, then the smallest and two random ones on the largest's soft
              predictions (stage supernets: they have a largest and a smallest).
``ofa``       Once-for-All's progressive shrinking (stage supernets): the epochs are cut into phases; the first
              trains the largest network only, then kernel size, depth, and expand ratio / width become
              elastic in turn (channels sorted by importance when expand becomes elastic); every elastic
              phase uses the sandwich step restricted to the elastic dimensions.

A run writes into one folder: ``supernet.json`` (space, supernet, data and settings, history, epochs
done), ``checkpoint.pt`` (model and optimizer state dicts after the last finished epoch, read back with
``weights_only=True``) and, when training ends, ``supernet.pt`` (the model's state dict). The same command
started again resumes from ``checkpoint.pt``: each epoch's data order, augmentation and sampled paths derive
from ``(seed, epoch)`` alone, so a resumed run follows the trajectory of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import check_choice, check_int, check_number
from ..errors import ArchscoutError, ConfigError, require
from ..space import Space, create_space
from .differentiable import DIFF_METHODS

__all__ = [
    "FORMAT",
    "METHODS",
    "SupernetError",
    "TrainSettings",
    "default_settings",
    "read_meta",
    "resolve_accelerator",
    "train_supernet",
]

FORMAT = "archscout-supernet"
VERSION = 1
METHODS = ("spos", "sandwich", "ofa", *DIFF_METHODS, "few-shot")
SAMPLINGS = ("uniform", "fair")
ACCELERATORS = ("auto", "cpu", "cuda")


class SupernetError(ArchscoutError):
    """A supernet folder that cannot be used: missing, corrupt, foreign, or trained with other settings."""


@dataclass(frozen=True)
class TrainSettings:
    """How a supernet is trained (every field is stored in ``supernet.json``).

    Attributes:
        method: ``"spos"``, ``"sandwich"``, ``"ofa"`` (see the module docstring), a differentiable method
            (``"darts"``, ``"pc-darts"``, ``"proxylessnas"``, ``"rarts"``: :mod:`archscout.supernet.differentiable`)
            or ``"few-shot"`` (:mod:`archscout.supernet.fewshot`).
        epochs: passes over the training images (>= 1).
        batch_size: images per step (>= 2).
        lr: peak learning rate of SGD (momentum 0.9, Nesterov), cosine-annealed to 0 over all steps.
        weight_decay: L2 penalty of SGD.
        sampling: ``"fair"`` or ``"uniform"`` paths for ``spos`` (fair needs a cell supernet).
        augment: random crop (padding 4) and horizontal flip of 32x32 training images; ``None`` (auto):
            on for 32x32 inputs, off otherwise.
        seed: seeds the weights, the data order, the augmentation and the sampled paths.
    """

    method: str = "spos"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.05
    weight_decay: float = 5e-4
    sampling: str = "fair"
    augment: bool | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("method", self.method, METHODS)
        check_choice("sampling", self.sampling, SAMPLINGS)
        check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 2)
        check_number("lr", self.lr, 0.0, low_open=True)
        check_number("weight_decay", self.weight_decay, 0.0)
        check_int("seed", self.seed, 0)
        if self.augment is not None and not isinstance(self.augment, bool):
            raise ConfigError(f"augment must be True, False or None (auto), got {self.augment!r}")


@dataclass(frozen=True)
class DataSettings:
    """Which images train and validate the supernet.

    Attributes:
        data: a registered dataset name or a path (see :func:`archscout.data.load_splits`).
        train_subset: training images (stratified, seeded), or None for all.
        val_size: validation images drawn from the training set (never trained on); sub-network accuracy.
        split_seed: the seed of the subset and validation draws (fixed, whatever the training seed).
    """

    data: str
    train_subset: int | None = None
    val_size: int = 5000
    split_seed: int = 0


_DEFAULTS: dict[str, dict[str, Any]] = {
    # chosen by benchmarks/supernet_nb201.py and benchmarks/supernet_mbv3.py (docs/benchmarks.md)
    "cell": {"settings": {"method": "spos", "sampling": "fair", "epochs": 60, "batch_size": 128, "lr": 0.05},
             "train_subset": 20000, "val_size": 2500, "options": {"C": 8, "N": 1}},
    "stages": {"settings": {"method": "spos", "sampling": "uniform", "epochs": 25, "batch_size": 128,
                            "lr": 0.05, "weight_decay": 4e-5},
               "train_subset": 10000, "val_size": 2500, "options": {"stem_width": 16}},
}
_DIFF_DEFAULTS: dict[str, Any] = {
    # differentiable methods on cell spaces: DARTS' recipe (batch 64, lr 0.025, weight decay 3e-4) on 8,000 images
    # (4,000 train the weights, 4,000 the architecture) for 25 epochs, sized for 2 CPU cores
    # (benchmarks/differentiable_nb201.py, docs/benchmarks.md)
    "settings": {"sampling": "uniform", "epochs": 25, "batch_size": 64, "lr": 0.025, "weight_decay": 3e-4},
    "train_subset": 8000, "val_size": 2500, "options": {"C": 8, "N": 1},
}
CPU_WIDTHS = (16, 24, 40, 48, 64)
"""Default output channels per stage of stage supernets (MobileNetV3's are 24, 40, 80, 112, 160): CPU-sized;
a space with more stages repeats the last; pass ``widths`` to choose others."""


def default_settings(kind: str, method: str | None = None) -> dict[str, Any]:
    """The default settings, data sizes and supernet options of a supernet kind (``"cell"``/``"stages"``), or of
    a differentiable ``method`` on a cell space."""
    d = _DIFF_DEFAULTS if method in DIFF_METHODS and kind == "cell" else _DEFAULTS[kind]
    return {"settings": dict(d["settings"]), "train_subset": d["train_subset"], "val_size": d["val_size"],
            "options": dict(d["options"])}


def resolve_accelerator(accelerator: str) -> str:
    """``"cpu"`` or ``"cuda"`` for ``--accelerator auto|cpu|cuda``.

    Raises:
        ConfigError: an unknown value, or ``cuda`` asked for where no CUDA device is present.
    """
    torch = require("torch", "nn")
    check_choice("accelerator", accelerator, ACCELERATORS)
    if accelerator == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if accelerator == "cuda" and not torch.cuda.is_available():
        raise ConfigError("accelerator 'cuda' was asked for but torch sees no CUDA device; use --accelerator cpu "
                          "or auto")
    return accelerator


# --- the folder -------------------------------------------------------------------------------------------
def atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def read_meta(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``supernet.json`` of a supernet folder.

    Raises:
        SupernetError: the folder or its ``supernet.json`` is missing, unreadable or not a supernet's.
    """
    path = Path(folder) / "supernet.json"
    if not path.is_file():
        raise SupernetError(f"{os.fspath(folder)!r} holds no supernet.json; give the --out folder of "
                            "'archscout supernet train'")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise SupernetError(f"{os.fspath(path)!r} is not readable JSON ({str(e)[:100]}); it is corrupt: train "
                            "again into a fresh folder") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise SupernetError(f"{os.fspath(path)!r} is not an archscout supernet description; give the --out folder "
                            "of 'archscout supernet train'")
    if meta.get("version") != VERSION:
        raise SupernetError(f"{os.fspath(path)!r} has format version {meta.get('version')!r}; this archscout reads "
                            f"version {VERSION}")
    return meta


def load_state(path: Path, what: str) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)``, or a one-line :class:`SupernetError`."""
    torch = require("torch", "nn")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is reported the same way
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise SupernetError(f"{os.fspath(path)!r} is not a readable {what} ({first}); it is corrupt or foreign: "
                            "delete it (training starts again) or use another --out folder") from None
    if not isinstance(obj, dict):
        raise SupernetError(f"{os.fspath(path)!r} is not a {what} (holds {type(obj).__name__}); delete it or use "
                            "another --out folder")
    return obj


def load_weights_into(net: Any, state: Mapping[str, Any], path: Path) -> None:
    """Load a state dict into the supernet, or a one-line :class:`SupernetError` when it does not fit."""
    try:
        net.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise SupernetError(f"{os.fspath(path)!r} holds weights of another network ({first}); delete it or use "
                            "another --out folder") from None


# --- the steps ------------------------------------------------------------------------------------------
def _kd(student: Any, teacher_probs: Any) -> Any:
    F = require("torch.nn.functional", "nn")
    return -(teacher_probs * F.log_softmax(student, dim=1)).sum(dim=1).mean()


@dataclass
class _Stepper:
    net: Any
    settings: TrainSettings
    elastic: tuple[str, ...] | None = None
    region: list[list[int]] | None = None  # few-shot: the ops each edge may take (cell supernets)

    def step(self, x: Any, y: Any, rng: np.random.Generator) -> float:
        """Forward and backward one batch (gradients accumulate); returns the mean loss reported."""
        F = require("torch.nn.functional", "nn")
        net, s = self.net, self.settings
        if s.method == "spos" and self.region is not None:
            return self._region_step(x, y, rng)
        if s.method == "spos":
            if s.sampling == "fair":
                k = len(net.op_names)
                perms = [rng.permutation(k) for _ in range(net.n_edges)]
                chunks = list(zip(x.chunk(k), y.chunk(k)))
                total = 0.0
                for j, (xc, yc) in enumerate(chunks):
                    net.set_path([int(p[j]) for p in perms])
                    loss = F.cross_entropy(net(xc), yc) * (len(yc) / len(y))
                    loss.backward()
                    total += float(loss.detach())
                return total
            net.set_active(net.sample(rng))
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            return float(loss.detach())
        return self._sandwich(x, y, rng)

    def _region_step(self, x: Any, y: Any, rng: np.random.Generator) -> float:
        """SPOS inside a few-shot region: uniform paths, or fair ones (each allowed op of an edge once per round,
        edges with fewer ops repeating random ones of theirs)."""
        F = require("torch.nn.functional", "nn")
        net, region = self.net, self.region
        assert region is not None
        if self.settings.sampling != "fair":
            net.set_path([int(rng.choice(ops)) for ops in region])
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            return float(loss.detach())
        k = max(len(ops) for ops in region)
        seqs = []
        for ops in region:
            seq = [ops[int(i)] for i in rng.permutation(len(ops))]
            seqs.append(seq + [ops[int(i)] for i in rng.integers(0, len(ops), k - len(ops))])
        total = 0.0
        for j, (xc, yc) in enumerate(zip(x.chunk(k), y.chunk(k))):
            net.set_path([seq[j] for seq in seqs])
            loss = F.cross_entropy(net(xc), yc) * (len(yc) / len(y))
            loss.backward()
            total += float(loss.detach())
        return total

    def _sandwich(self, x: Any, y: Any, rng: np.random.Generator) -> float:
        F = require("torch.nn.functional", "nn")
        torch = require("torch", "nn")
        net = self.net
        # sandwich / ofa: largest on labels, then smallest + 2 random on its soft predictions
        elastic = self.elastic
        net.set_active(net.largest())
        out = net(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        reported = float(loss.detach())
        if elastic is not None and not elastic:
            return reported
        with torch.no_grad():
            soft = torch.softmax(out.detach(), dim=1)
        students = [net.smallest()] if elastic is None else [net.sample(rng, elastic=elastic)]
        students += [net.sample(rng, elastic=elastic) for _ in range(2)]
        for arch in students:
            net.set_active(arch)
            _kd(net(x), soft).backward()
        return reported


def ofa_phases(dims: tuple[str, ...], epochs: int) -> list[tuple[int, tuple[str, ...]]]:
    """OFA's progressive shrinking: ``(first epoch, elastic dims)`` per phase. The first phase trains the
    largest network only; then each elastic dimension joins in turn (``expand`` and ``width`` together)."""
    groups: list[tuple[str, ...]] = [()]
    for d in dims:
        if d == "width" and groups[-1] and "expand" in groups[-1]:
            groups[-1] = (*groups[-1], d)
        else:
            groups.append((*groups[-1], d))
    n = len(groups)
    starts = [round(i * epochs / n) for i in range(n)]
    return [(s, g) for s, g in zip(starts, groups)]


# --- training -------------------------------------------------------------------------------------------
def cosine_lr(peak: float, step: int, per_epoch: int, epochs: int, schedule: Mapping[str, int] | None) -> float:
    """The learning rate of ``step`` on a cosine schedule from ``peak`` to 0 over the run's ``epochs``, or with
    ``schedule = {"offset": o, "length": L}`` over ``L`` epochs of which this run is the part from epoch ``o``
    (few-shot: the parent trains the start of one schedule, each sub-supernet goes on from there)."""
    off, length = (0, epochs) if schedule is None else (int(schedule["offset"]), int(schedule["length"]))
    return 0.5 * peak * (1 + math.cos(math.pi * (off * per_epoch + step) / (length * per_epoch)))


def _model_config(model: Any) -> Any:
    """A latency model's config for ``supernet.json`` (None without one)."""
    if model is None:
        return None
    to_config = getattr(model, "to_config", None)
    return to_config() if callable(to_config) else {"name": type(model).__name__}

def _settings_for(kind: str, method: str | None, overrides: Mapping[str, Any]) -> TrainSettings:
    base = default_settings(kind, method)["settings"]
    if method is not None:
        base["method"] = method
        if method not in ("spos", "few-shot"):
            base["sampling"] = "uniform"
    if kind != "cell":
        base["sampling"] = "uniform"
    base.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TrainSettings(**base)
    except TypeError as e:
        raise ConfigError(f"unknown supernet training setting: {e}") from None


def _check_method(kind: str, s: TrainSettings, space: Space) -> None:
    """Whether the method fits the supernet kind; checked before any data is read."""
    if s.method in ("sandwich", "ofa") and kind != "stages":
        raise ConfigError(f"method {s.method!r} needs a supernet with a largest and a smallest sub-network (stage "
                          f"spaces such as 'mbv3'); the {kind} supernet of space {space.name!r} has none: "
                          "use --method spos")
    if s.method in ("darts", "pc-darts", "rarts", "few-shot") and kind != "cell":
        raise ConfigError(f"method {s.method!r} searches the ops of a cell; the {kind} supernet of space "
                          f"{space.name!r} has no cell: use spos, sandwich or ofa (stage spaces), or a cell space "
                          "such as nb201 (proxylessnas searches stage spaces too)")
    if s.method == "spos" and s.sampling == "fair" and kind != "cell":
        raise ConfigError("sampling 'fair' needs a cell supernet (one op per edge); use sampling='uniform'")


def _data_spec(data: Any) -> str:
    if isinstance(data, (str, os.PathLike)):
        text = os.fspath(data)
        return os.path.abspath(text) if os.path.exists(text) else text
    raise ConfigError(f"data must be a dataset name or a path (it is stored in supernet.json and read again by "
                      f"eval and search), got {type(data).__name__}")


def progress_bar(total: int, initial: int, enabled: bool) -> Any:
    tqdm = require("tqdm", "nn").tqdm
    return tqdm(total=total, initial=initial, unit="step", file=sys.stderr, disable=not enabled,
                bar_format="{desc} {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]",
                dynamic_ncols=True, mininterval=1.0)


def train_supernet(
    space: str | Space,
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    method: str | None = None,
    epochs: int | None = None,
    seed: int = 0,
    train_subset: int | str | None = "default",
    val_size: int | None = None,
    options: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    accelerator: str = "cpu",
    threads: int | None = None,
    progress: bool = False,
    stop_after_epoch: int | None = None,
    search: Mapping[str, Any] | None = None,
    latency_model: Any = None,
    storage: str | None = None,
    few_shot: Mapping[str, Any] | None = None,
    init_from: str | os.PathLike | None = None,
    _region: list[list[int]] | None = None,
    _schedule: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Train the supernet of ``space`` on ``data`` into the folder ``out`` (resuming a run found there).

    Args:
        space: a registered space name or a :class:`Space` (one Cell of library ops, or stages with
            ``kernel`` / ``expand`` layers and an optional ``width_mult``).
        data: a registered dataset name or a path (see :func:`archscout.data.load_splits`).
        out: the folder (created); holding an unfinished run of the same settings, that run resumes.
        method, epochs, seed: see :class:`TrainSettings`; None takes the kind's default.
        train_subset: training images (stratified, seeded); ``"default"`` takes the kind's default, None all.
        val_size: validation images kept out of training (None: the default).
        options: supernet options (cells: ``C``, ``N``; stages: ``widths``, ``stem_width``, ``use_se``,
            ``head_width``, ``strides``), over the kind's defaults.
        settings: other :class:`TrainSettings` fields (``batch_size``, ``lr``, ``weight_decay``, ``sampling``,
            ``augment``).
        accelerator: ``"cpu"`` (default), ``"cuda"`` or ``"auto"``; files and seeds do not depend on it.
        threads: torch intra-op threads (None: torch's default).
        progress: show a progress bar on stderr (epoch, loss, time left).
        stop_after_epoch: stop (resumably) after this many epochs; for tests and staged runs.
        search: settings of a differentiable method (:class:`~archscout.supernet.differentiable.SearchSettings`
            fields, over the method's defaults).
        latency_model: ProxylessNAS's latency term: any cost model with ``predict(arch) -> ms`` (table, LUT,
            learned predictor); needs ``latency_weight`` or ``latency_target_ms`` in ``search``.
        storage: differentiable methods: the study storage that records each epoch's derived cell (default
            ``study.db`` in ``out``).
        few_shot: settings of ``few-shot`` (:class:`~archscout.supernet.fewshot.FewShotSettings` fields).
        init_from: a trained supernet folder of the same space and supernet options whose weights (and, from a
            differentiable run, architecture weights) this run starts from, e.g. a ``spos`` supernet that a
            ``proxylessnas`` search continues ("train once, search many"); few-shot sub-supernets start from
            their parent so.
        _region: used by ``few-shot`` for its sub-supernets: the op indices each edge may take.
        _schedule: used by ``few-shot``: ``{"offset", "length"}`` of the shared learning-rate schedule (see
            :func:`cosine_lr`); a run with an offset also continues ``init_from``'s optimizer state.

    Returns:
        The folder's ``supernet.json`` content.

    Raises:
        ConfigError: bad settings, or a method the supernet cannot use.
        SupernetError: ``out`` holds a supernet of other settings, or a corrupt or foreign checkpoint.
        DataError / UnknownNameError: the data cannot be read.
    """
    torch = require("torch", "nn")
    from ..data import load_splits
    from .build import create_supernet, supernet_kind
    from .differentiable import save_checkpoint, save_final

    sp = create_space(space) if isinstance(space, str) else space
    if not isinstance(sp, Space):
        raise ConfigError(f"space must be a space name or a Space, got {type(space).__name__}")
    kind = supernet_kind(sp)
    defaults = default_settings(kind, method)
    s = _settings_for(kind, method, {**(settings or {}), "epochs": epochs, "seed": seed})
    _check_method(kind, s, sp)
    if s.method == "few-shot":
        from .fewshot import train_few_shot
        return train_few_shot(sp, data, out, settings=s, train_subset=train_subset, val_size=val_size,
                              options=options, accelerator=accelerator, threads=threads, progress=progress,
                              stop_after_epoch=stop_after_epoch, search=search, latency_model=latency_model,
                              storage=storage, few_shot=few_shot)
    search_settings = None
    if s.method in DIFF_METHODS:
        from .differentiable import make_search_settings
        search_settings = make_search_settings(s.method, s.epochs, search or {})
        has_term = search_settings.latency_weight is not None or search_settings.latency_target_ms is not None
        if has_term and latency_model is None:
            raise ConfigError("a latency weight or target needs a latency model: --cost-table FILE --cost-column COL "
                              "(or latency_model= any cheap cost model)")
        if latency_model is not None and not has_term:
            raise ConfigError("a latency model was given without a latency term: add --latency-target-ms T or "
                              "--latency-weight W")
    elif search or latency_model is not None:
        raise ConfigError(f"differentiable search settings and a latency model belong to darts, pc-darts, "
                          f"proxylessnas and rarts, not {s.method!r}")
    subset = defaults["train_subset"] if train_subset == "default" else train_subset
    ds = DataSettings(_data_spec(data), None if subset is None else check_int("train_subset", subset, 1),
                      defaults["val_size"] if val_size is None else check_int("val_size", val_size, 1))
    opts = {**defaults["options"], **dict(options or {})}
    if search_settings is not None and search_settings.partial_k > 1:
        opts["partial"] = search_settings.partial_k
    if kind == "stages" and "widths" not in opts:
        n = sp.params["stages"].n  # type: ignore[attr-defined]
        opts["widths"] = [CPU_WIDTHS[min(i, len(CPU_WIDTHS) - 1)] for i in range(n)]
    device = resolve_accelerator(accelerator)
    if threads is not None:
        torch.set_num_threads(check_int("threads", threads, 1))
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {os.fspath(out)!r} is a file; give a folder")

    splits = load_splits(ds.data, train_subset=ds.train_subset, val_size=ds.val_size, seed=ds.split_seed)
    g = torch.Generator().manual_seed(s.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
        net = create_supernet(sp, splits.input_shape, splits.num_classes, **opts)
    if s.method == "ofa" and not net.elastic_dims():
        raise ConfigError(f"method 'ofa' needs elastic dimensions; the supernet of space {sp.name!r} has none (every "
                          "kernel, depth, expand and width has one option): use spos")
    augment = s.augment if s.augment is not None else splits.input_shape[1:] == (32, 32)
    meta: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "space": sp.to_config(), "supernet": net.to_config(),
        "settings": asdict(s), "augment": augment, "data": asdict(ds), "data_sizes": splits.sizes(),
        "data_name": splits.name,
    }
    if search_settings is not None:
        meta["search"] = asdict(search_settings)
        meta["latency_model"] = _model_config(latency_model)
    if _region is not None:
        meta["region"] = [[int(k) for k in ops] for ops in _region]
    if _schedule is not None:
        meta["schedule"] = {"offset": int(_schedule["offset"]), "length": int(_schedule["length"])}
    if init_from is not None:
        meta["init"] = os.path.abspath(os.fspath(init_from))
        other = read_meta(init_from)
        if other.get("space") != json.loads(json.dumps(meta["space"])) or \
                other.get("supernet") != json.loads(json.dumps(meta["supernet"])):
            raise SupernetError(f"init_from {os.fspath(init_from)!r} holds a supernet of another space or other "
                                f"options ({other.get('supernet', {}).get('options')}); give a supernet of space "
                                f"{sp.name!r} with options {meta['supernet']['options']}")
    folder.mkdir(parents=True, exist_ok=True)  # only once the settings, the data and the supernet are known good
    keys = ("space", "supernet", "settings", "data", "search", "latency_model", "region", "init", "schedule")
    meta_path, ckpt_path = folder / "supernet.json", folder / "checkpoint.pt"
    start, history = 0, []
    if meta_path.exists():
        old = read_meta(folder)
        same = {k: old.get(k) for k in keys} == {k: json.loads(json.dumps(meta.get(k))) for k in keys}
        if not same:
            raise SupernetError(f"{os.fspath(folder)!r} holds a supernet trained with other settings; give the same "
                                "command to resume it, or another --out folder")
        history = list(old.get("history", []))
        for k in ("stopped_early", "derived"):
            if k in old:
                meta[k] = old[k]
        if ckpt_path.exists():
            ckpt = load_state(ckpt_path, "supernet checkpoint")
            if not {"model", "optimizer", "epoch"} <= set(ckpt):
                raise SupernetError(f"{os.fspath(ckpt_path)!r} is not an archscout supernet checkpoint; delete it or "
                                    "use another --out folder")
            load_weights_into(net, ckpt["model"], ckpt_path)
            start = int(ckpt["epoch"])
            history = history[:start]
    if start == 0 and init_from is not None:  # e.g. a few-shot sub-supernet starts from its parent's weights
        parent = Path(init_from) / "supernet.pt"
        if not parent.exists():
            raise SupernetError(f"init_from {os.fspath(init_from)!r} has not finished training (no supernet.pt); "
                                "finish it first")
        load_weights_into(net, load_state(parent, "supernet state dict"), parent)
    net.to(device)
    opt = torch.optim.SGD(net.parameters(), lr=s.lr, momentum=0.9, nesterov=True, weight_decay=s.weight_decay)
    if start == 0 and init_from is not None and _schedule is not None and _schedule["offset"] > 0:
        parent_ckpt = Path(init_from) / "checkpoint.pt"  # the sub-supernet goes on with the parent's momentum
        if parent_ckpt.exists():
            state = load_state(parent_ckpt, "supernet checkpoint")
            with contextlib.suppress(ValueError, KeyError, RuntimeError):
                opt.load_state_dict(state["optimizer"])
    if start:
        try:
            opt.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError, RuntimeError) as e:
            raise SupernetError(f"{os.fspath(ckpt_path)!r}: optimizer state does not fit ({str(e)[:100]}); delete "
                                "it or use another --out folder") from None
    meta.update(epochs_done=start, history=history, finished=start >= s.epochs or "stopped_early" in meta)
    atomic_json(meta_path, meta)
    if search_settings is not None:
        from .differentiable import run_search
        from .stage_search import run_stage_search
        augment_fn = None
        if augment:
            from ..data.augment import random_crop_flip
            augment_fn = random_crop_flip
        stop = s.epochs if stop_after_epoch is None else min(s.epochs,
                                                             check_int("stop_after_epoch", stop_after_epoch, 1))
        runner = run_stage_search if kind == "stages" else run_search
        return runner(net=net, opt=opt, meta=meta, folder=folder, splits=splits, search=search_settings,
                          device=device, start=start, ckpt=ckpt if start else None, augment_fn=augment_fn, stop=stop,
                          progress=progress, latency_model=latency_model, storage=storage,
                          write_meta=lambda m: atomic_json(meta_path, m))
    if start >= s.epochs:
        if not (folder / "supernet.pt").exists():
            torch.save(net.state_dict(), folder / "supernet.pt")
        return meta

    X = torch.from_numpy(np.array(splits.X_train))  # a writable copy
    Y = torch.from_numpy(np.array(splits.y_train))
    n = len(Y)
    per_epoch = max(1, n // s.batch_size)  # the last partial batch is dropped (BN needs >= 2 images)
    total_steps = per_epoch * s.epochs
    phases = ofa_phases(net.elastic_dims(), s.epochs) if s.method == "ofa" else []
    augment_fn = None
    if augment:
        from ..data.augment import random_crop_flip
        augment_fn = random_crop_flip
    stop = s.epochs if stop_after_epoch is None else min(s.epochs, check_int("stop_after_epoch", stop_after_epoch, 1))
    bar = progress_bar(total_steps, start * per_epoch, progress)
    net.train()
    try:
        for epoch in range(start, stop):
            elastic: tuple[str, ...] | None = None
            if phases:
                elastic = [g_ for e0, g_ in phases if e0 <= epoch][-1]
                first = min((e0 for e0, g_ in phases if "expand" in g_), default=-1)
                if epoch == first:  # expand becomes elastic: keep the most important channels first (OFA)
                    net.reorganize_channels()
                    opt.state.clear()
            stepper = _Stepper(net, s, elastic, meta.get("region"))
            order = np.random.default_rng([s.seed, epoch]).permutation(n)
            rng = np.random.default_rng([s.seed, epoch, 1])
            gen = torch.Generator().manual_seed(s.seed * 100_003 + epoch)
            t0, losses = time.time(), []
            for b in range(per_epoch):
                idx = torch.from_numpy(order[b * s.batch_size:(b + 1) * s.batch_size])
                x, y = X[idx], Y[idx]
                if augment_fn is not None:
                    x = augment_fn(x, gen)
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                step = epoch * per_epoch + b
                for group in opt.param_groups:
                    group["lr"] = cosine_lr(s.lr, step, per_epoch, s.epochs, meta.get("schedule"))
                opt.zero_grad(set_to_none=True)
                loss = stepper.step(x, y, rng)
                if not math.isfinite(loss):
                    from ..training import TrainingDivergedError
                    raise TrainingDivergedError(f"the supernet's training loss became {loss} in epoch {epoch + 1}; "
                                                "lower --lr (settings lr) or check the data")
                torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                opt.step()
                losses.append(loss)
                bar.set_description_str(f"epoch {epoch + 1}/{s.epochs} loss {np.mean(losses[-50:]):.3f}", refresh=False)
                bar.update(1)
            history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "time_s": round(time.time() - t0, 2),
                            **({"elastic": list(elastic)} if elastic is not None else {})})
            save_checkpoint(folder, net, opt, epoch + 1)
            meta.update(epochs_done=epoch + 1, history=history, finished=epoch + 1 >= s.epochs)
            atomic_json(meta_path, meta)
    finally:
        bar.close()
    if meta["finished"]:
        save_final(folder, net)
    return meta

