"""Executors behind one submit/poll contract: inline, process pool, simulated clock."""

from __future__ import annotations

from typing import Any

from .._registry import Registry
from .base import Completion, Evaluator, Executor, FunctionEvaluator, Job, as_evaluator, run_evaluation
from .executors import InlineExecutor, ProcessExecutor, SimulatedExecutor

__all__ = [
    "Completion", "Evaluator", "Executor", "FunctionEvaluator", "Job", "as_evaluator", "run_evaluation",
    "InlineExecutor", "ProcessExecutor", "SimulatedExecutor", "EXECUTORS", "list_executors", "create_executor",
]

EXECUTORS: Registry[Executor] = Registry("executor")
for _cls in (InlineExecutor, ProcessExecutor, SimulatedExecutor):
    EXECUTORS.register(_cls.name, _cls, doc=(_cls.__doc__ or "").strip().splitlines()[0])


def list_executors() -> list[str]:
    return EXECUTORS.names()


def create_executor(name: str | Executor, **params: Any) -> Executor:
    """Build an executor by name (``"inline"``, ``"process"``, ``"simulated"``) or pass one through."""
    if isinstance(name, Executor):
        return name
    return EXECUTORS.create(name, **params)
