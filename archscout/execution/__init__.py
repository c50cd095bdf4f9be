"""Executors behind one submit/poll contract: inline, process pool, simulated clock, Ray."""

from __future__ import annotations

from typing import Any

from .._registry import Registry
from .base import (
    FAILURE_ERROR, FAILURE_INVALID, FAILURE_TIMEOUT, FAILURE_WORKER_DIED, FAILURES, Completion, Evaluator, Executor,
    FunctionEvaluator, Job, Outcome, as_evaluator, evaluation_outcome, run_evaluation,
)
from .executors import InlineExecutor, ProcessExecutor, SimulatedExecutor
from .ray_executor import RayExecutor  # imports Ray only when it starts

__all__ = [
    "Completion", "Evaluator", "Executor", "FunctionEvaluator", "Job", "Outcome", "as_evaluator", "run_evaluation",
    "evaluation_outcome", "FAILURE_ERROR", "FAILURE_INVALID", "FAILURE_TIMEOUT", "FAILURE_WORKER_DIED", "FAILURES",
    "InlineExecutor", "ProcessExecutor", "SimulatedExecutor", "RayExecutor",
    "EXECUTORS", "list_executors", "create_executor",
]

EXECUTORS: Registry[Executor] = Registry("executor")
for _cls in (InlineExecutor, ProcessExecutor, SimulatedExecutor, RayExecutor):
    EXECUTORS.register(_cls.name, _cls, doc=(_cls.__doc__ or "").strip().splitlines()[0])


def list_executors() -> list[str]:
    """Names of the registered executors."""
    return EXECUTORS.names()


def create_executor(name: str | Executor, **params: Any) -> Executor:
    """Build an executor by name (``"inline"``, ``"process"``, ``"simulated"``, ``"ray"``) with its settings
    (``workers``, ``timeout_s``, ...), or pass an :class:`Executor` through.

    Raises:
        UnknownNameError: no executor has that name.
        ConfigError: a bad setting.
    """
    if isinstance(name, Executor):
        return name
    return EXECUTORS.create(name, **params)
