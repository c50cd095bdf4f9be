"""Search strategies: ask/tell state machines in a registry.

Each strategy module lists its classes in ``STRATEGY_CLASSES``; they are registered under their ``name``.
Strategies that need an optional package import it when they are created, not here.
"""

from __future__ import annotations

from typing import Any

from .._registry import Registry
from . import auto, mcts, mobo, model_based, multifidelity, nsga2, optuna_adapter, reinforce, simple
from .base import Capabilities, Strategy
from .simple import LocalSearch, RandomSearch, RegularizedEvolution

__all__ = ["Strategy", "Capabilities", "STRATEGIES", "list_strategies", "create_strategy"]

STRATEGIES: Registry[Strategy] = Registry("strategy")


def _register_module(module: Any) -> None:
    for cls in module.STRATEGY_CLASSES:
        STRATEGIES.register(cls.name, cls, doc=(cls.__doc__ or "").strip().splitlines()[0])


for _mod in (simple, model_based, mobo, mcts, reinforce, nsga2, multifidelity, optuna_adapter, auto):
    _register_module(_mod)


def list_strategies() -> list[str]:
    """Names of the registered strategies."""
    return STRATEGIES.names()


def create_strategy(name: str, space, **params: Any) -> Strategy:
    """Build a registered strategy: ``create_strategy("rea", space, seed=0, population_size=20)``.

    Raises:
        UnknownNameError: no strategy has that name.
        ConfigError: a parameter is invalid or unknown.
    """
    return STRATEGIES.create(name, space, **params)
