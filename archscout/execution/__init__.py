"""Executors behind one submit/poll contract: inline, process pool, simulated clock, Ray."""

from __future__ import annotations

from typing import Any

from .._registry import Registry
from ..errors import ConfigError
from .base import (
    FAILURE_ERROR,
    FAILURE_INVALID,
    FAILURE_TIMEOUT,
    FAILURE_WORKER_DIED,
    FAILURES,
    Completion,
    Evaluator,
    Executor,
    ExecutorCapabilities,
    FunctionEvaluator,
    Job,
    Outcome,
    as_evaluator,
    evaluation_outcome,
    run_evaluation,
)
from .executors import InlineExecutor, ProcessExecutor, SimulatedExecutor
from .ray_executor import RayExecutor  # imports Ray only when it starts

__all__ = [
    "EXECUTORS",
    "FAILURES",
    "FAILURE_ERROR",
    "FAILURE_INVALID",
    "FAILURE_TIMEOUT",
    "FAILURE_WORKER_DIED",
    "Completion",
    "Evaluator",
    "Executor",
    "ExecutorCapabilities",
    "FunctionEvaluator",
    "InlineExecutor",
    "Job",
    "Outcome",
    "ProcessExecutor",
    "RayExecutor",
    "SimulatedExecutor",
    "as_evaluator",
    "create_executor",
    "evaluation_outcome",
    "list_executors",
    "register_executor",
    "run_evaluation",
]

EXECUTORS: Registry[Executor] = Registry("executor")


def register_executor(cls: type[Executor]) -> type[Executor]:
    """Register an :class:`Executor` subclass under its ``name`` (usable as a class decorator), so that
    ``create_executor(name, ...)``, ``optimize(executor=name)`` and ``archscout list`` know it.

    Raises:
        ConfigError: ``cls`` is not an Executor subclass with a ``name``, or the name is taken.
    """
    if not (isinstance(cls, type) and issubclass(cls, Executor)) or not getattr(cls, "name", "") \
            or cls.name == "base":
        raise ConfigError(f"register_executor needs an Executor subclass with its own name, got {cls!r}")
    EXECUTORS.register(cls.name, cls)
    return cls


for _cls in (InlineExecutor, ProcessExecutor, SimulatedExecutor, RayExecutor):
    register_executor(_cls)


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
