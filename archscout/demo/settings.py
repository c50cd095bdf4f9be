"""The demo's settings: one frozen value, every field checked when it is made (before any work starts)."""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import ConfigError

__all__ = ["DEFAULT_FRACTIONS", "DemoSettings", "auto_threads", "busy_cores", "usable_cores"]

DEFAULT_FRACTIONS = (0.25, 0.4, 0.6)
"""Where the latency budgets sit between the smallest and the largest sub-network's measured latency. Random
``mbv3`` architectures sit at 0.2-0.6 of that range on 28x28 inputs (median 0.37), so about 15 %, 65 % and 97 % of
them meet these budgets."""

# the minimum of each integer setting
_INT_MIN = {"epochs": 1, "batch_size": 2, "train_subset": 100, "val_size": 50, "heldout_size": 50, "search_budget": 2,
            "calibration": 10, "calibration_test": 5, "scratch_trials": 1, "scratch_epochs": 1, "workers": 1,
            "threads": 1, "seed": 0}


@dataclass(frozen=True)
class DemoSettings:
    """Settings of :func:`archscout.demo.run_demo`. The defaults are the ones that run end to end in under
    10 minutes on 2 CPU cores (set-up included); every field is checked at once.

    Args:
        data: the dataset: a registered name (``"fashion-mnist"``), an ``.npz`` file or a folder of IDX files
            (anything :func:`archscout.data.load_splits` reads).
        epochs: epochs of the supernet's training.
        batch_size: images per step of the supernet's training (64: at this budget, twice the steps of 128 for
            the same time gave a lower loss).
        train_subset: training images (stratified, seeded) for the supernet and the from-scratch search.
        val_size: validation images (drawn from the training set, never trained on): they score sub-networks.
        heldout_size: the first this many images of the dataset's test split are the held-out set (``heldout.npz``):
            the exported models' accuracy with ONNX Runtime and the from-scratch models' test accuracy are
            computed on it, and it selects nothing; None: the whole test split (Fashion-MNIST's 10,000 images,
            which costs about 3 s more per exported model on this CPU).
        search_budget: sub-network evaluations of each specialisation.
        budgets_ms: the latency budgets in ms; None places them at ``budget_fractions`` of the way from the
            smallest to the largest sub-network's measured latency.
        budget_fractions: see ``budgets_ms``; each in (0, 1).
        calibration: architectures measured to fit the latency predictor (the smallest and the largest
            sub-networks among them).
        calibration_test: other architectures, measured after the fit, on which the predictor is judged.
        scratch_trials: architectures trained from scratch by the comparison search.
        scratch_epochs: epochs of each from-scratch training.
        workers: worker processes of the from-scratch search.
        threads: torch threads of the supernet's training and evaluation; None (default) picks them when the
            demo starts (:func:`auto_threads`: 2 on an idle 2-core machine, 1 where other processes already keep
            a core busy: two threads that wait for each other on a shared core were 2.7x slower than one).
        strategy: the strategy of the specialisations (multi-objective; ``nsga2`` asks the latency predictor
            only for the candidates it proposes).
        scratch_strategy: the strategy of the from-scratch search.
        seed: seeds the training, the samples and the searches.

    Raises:
        ConfigError: a setting out of range (the message names it).
    """

    data: str = "fashion-mnist"
    epochs: int = 4
    batch_size: int = 64
    train_subset: int = 5000
    val_size: int = 1000
    heldout_size: int | None = 5000
    search_budget: int = 20
    budgets_ms: tuple[float, ...] | None = None
    budget_fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    calibration: int = 40
    calibration_test: int = 20
    scratch_trials: int = 2
    scratch_epochs: int = 1
    workers: int = 2
    threads: int | None = None
    strategy: str = "nsga2"
    scratch_strategy: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        for name, low in _INT_MIN.items():
            v = getattr(self, name)
            if v is None and name in ("threads", "heldout_size"):
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {v!r}")
        if isinstance(self.data, os.PathLike):
            object.__setattr__(self, "data", os.fspath(self.data))
        if not isinstance(self.data, str) or not self.data.strip():
            raise ConfigError(f"data must be a dataset name or a path (.npz file, IDX folder), got {self.data!r}")
        if self.budgets_ms is not None:
            object.__setattr__(self, "budgets_ms", _numbers("budgets_ms", self.budgets_ms, 0.0, math.inf))
        object.__setattr__(self, "budget_fractions", _numbers("budget_fractions", self.budget_fractions, 0.0, 1.0))
        from ..strategies import list_strategies

        for name in ("strategy", "scratch_strategy"):
            if getattr(self, name) not in list_strategies():
                raise ConfigError(f"{name} must be one of {', '.join(list_strategies())}, got {getattr(self, name)!r}")

    @property
    def n_budgets(self) -> int:
        """How many latency budgets (specialisations) the demo runs."""
        return len(self.budgets_ms if self.budgets_ms is not None else self.budget_fractions)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-safe dict (``DemoSettings(**d)`` rebuilds them)."""
        d = asdict(self)
        for k in ("budgets_ms", "budget_fractions"):
            d[k] = None if d[k] is None else list(d[k])
        return d

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def busy_cores(window_s: float = 0.5) -> float:
    """Cores that other processes keep busy: sampled from ``/proc/stat`` over ``window_s`` seconds (this process
    sleeps meanwhile), or where that cannot be read the 1-minute load average (0 when neither is known)."""
    def sample() -> tuple[int, int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            lines = f.read().splitlines()
        n = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
        ticks = [int(v) for v in lines[0].split()[1:]]
        return sum(ticks), ticks[3] + (ticks[4] if len(ticks) > 4 else 0), n  # total, idle + iowait, cpus

    try:
        total0, idle0, n = sample()
        time.sleep(window_s)
        total1, idle1, _ = sample()
        if total1 > total0 and n >= 1:
            return n * (1.0 - (idle1 - idle0) / (total1 - total0))
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def auto_threads(busy: float | None = None, max_threads: int = 4) -> int:
    """Torch threads for this machine now: the usable cores that other processes leave idle (``busy``: cores they
    keep busy, default :func:`busy_cores`), at least 1 and at most ``max_threads``."""
    cores = usable_cores()
    busy = busy_cores() if busy is None else busy
    return max(1, min(max_threads, cores, int(cores - busy + 0.5)))


def _numbers(name: str, values: Any, low: float, high: float) -> tuple[float, ...]:
    """``values`` as a non-empty, strictly increasing tuple of floats in the open interval (low, high)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ConfigError(f"{name} must be a non-empty list of numbers, got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not low < float(v) < high:
            raise ConfigError(f"{name}: every value must be a number in ({low:g}, {high:g}), got {v!r}")
        out.append(float(v))
    if any(b <= a for a, b in itertools.pairwise(out)):
        raise ConfigError(f"{name} must increase strictly, got {list(out)}")
    return tuple(out)
