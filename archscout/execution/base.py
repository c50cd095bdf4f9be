"""One submit/poll contract for every executor, and the evaluator contract it runs."""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..space import Architecture

__all__ = [
    "Evaluator", "FunctionEvaluator", "WithCosts", "Job", "Completion", "Executor", "run_evaluation", "as_evaluator",
]


@runtime_checkable
class Evaluator(Protocol):
    """Anything with ``evaluate(arch, fidelity) -> {metric: value}``.

    Optional: ``duration(arch, fidelity) -> seconds`` (the simulated clock uses it) and
    ``lookup(arch, fidelity)`` (the same metrics without any real waiting), and ``to_config()``.
    """

    def evaluate(self, arch: Architecture, fidelity: float | None = None) -> Mapping[str, float]: ...


class FunctionEvaluator:
    """Wraps a plain function ``f(arch) -> {metric: value}`` (or ``f(arch, fidelity)``)."""

    def __init__(self, fn: Callable[..., Mapping[str, float]]) -> None:
        self.fn = fn
        import inspect

        try:
            n = len(inspect.signature(fn).parameters)
        except (TypeError, ValueError):  # pragma: no cover
            n = 1
        self._with_fidelity = n >= 2

    def evaluate(self, arch: Architecture, fidelity: float | None = None) -> Mapping[str, float]:
        return self.fn(arch, fidelity) if self._with_fidelity else self.fn(arch)

    def to_config(self) -> dict:
        return {"type": "function", "name": getattr(self.fn, "__qualname__", repr(self.fn))}


class WithCosts:
    """An evaluator followed by expensive cost models (e.g. measured latency), run in the same worker:
    ``evaluate`` returns the evaluator's metrics plus ``{name: model.predict(arch)}``."""

    def __init__(self, evaluator: Evaluator, cost_models: Mapping[str, Any]) -> None:
        self.evaluator = evaluator
        self.cost_models = dict(cost_models)

    def evaluate(self, arch: Architecture, fidelity: float | None = None) -> dict[str, float]:
        out = dict(self.evaluator.evaluate(arch, fidelity))
        for name, model in self.cost_models.items():
            out[name] = float(model.predict(arch))
        return out

    def __getattr__(self, name: str) -> Any:  # duration/lookup of the wrapped evaluator
        if name in ("evaluator", "cost_models"):
            raise AttributeError(name)
        return getattr(self.evaluator, name)

    def lookup(self, arch: Architecture, fidelity: float | None = None) -> dict[str, float]:
        inner = getattr(self.evaluator, "lookup", self.evaluator.evaluate)
        out = dict(inner(arch, fidelity))
        for name, model in self.cost_models.items():
            out[name] = float(model.predict(arch))
        return out


def as_evaluator(obj: Any) -> Evaluator:
    if hasattr(obj, "evaluate"):
        return obj
    if callable(obj):
        return FunctionEvaluator(obj)
    raise TypeError(f"an evaluator needs an evaluate(arch, fidelity) method or must be callable, got {obj!r}")


@dataclass(frozen=True)
class Job:
    """An evaluation to run: trial ``number`` of ``arch`` at ``fidelity``."""

    number: int
    arch: Architecture
    fidelity: float | None = None


@dataclass(frozen=True)
class Completion:
    """A finished job: metrics (``None`` when it failed), the failure reason, and start/finish times
    on the executor's clock (seconds since the epoch, or simulated seconds)."""

    number: int
    metrics: Mapping[str, float] | None
    error: str | None
    started_at: float
    finished_at: float


def run_evaluation(evaluator: Evaluator, arch: Architecture, fidelity: float | None,
                   method: str = "evaluate") -> tuple[dict[str, float] | None, str | None]:
    """Run one evaluation, turning exceptions and non-finite or non-numeric metrics into a failure reason."""
    try:
        out = getattr(evaluator, method)(arch, fidelity)
    except Exception:  # noqa: BLE001 - any failure of user code fails the trial, not the study
        return None, traceback.format_exc(limit=20).strip()
    if not isinstance(out, Mapping):
        return None, f"the evaluator returned {type(out).__name__}, not a mapping of metric values"
    metrics: dict[str, float] = {}
    for k, v in out.items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            return None, f"metric {k!r} is not a number: {v!r}"
        if not math.isfinite(f):
            return None, f"metric {k!r} is {f} (not finite)"
        metrics[str(k)] = f
    return metrics, None


class Executor:
    """Runs jobs. ``submit`` never blocks while ``free_slots() > 0``; ``poll`` waits until at least one
    job finished (or ``timeout`` seconds passed) and returns the finished ones."""

    name: str = "base"
    workers: int = 1

    def start(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator

    def submit(self, job: Job) -> None:
        raise NotImplementedError

    def poll(self, timeout: float | None = None) -> list[Completion]:
        raise NotImplementedError

    def free_slots(self) -> int:
        raise NotImplementedError

    def now(self) -> float:
        return time.time()

    def shutdown(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
