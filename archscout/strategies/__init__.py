"""Search strategies: ask/tell state machines in a registry.

Each strategy module lists its classes in ``STRATEGY_CLASSES``; they are registered under their ``name``.
Strategies that need an optional package import it when they are created, not here.
"""

from __future__ import annotations

from typing import Any

from .._registry import Registry
from ..errors import ConfigError
from . import auto, marl, mcts, mobo, model_based, multifidelity, nsga2, optuna_adapter, reinforce, simple
from .base import Capabilities, Strategy
from .simple import LocalSearch, RandomSearch, RegularizedEvolution

__all__ = [
    "STRATEGIES", "Capabilities", "LocalSearch", "RandomSearch", "RegularizedEvolution", "Strategy", "create_strategy",
    "list_strategies", "register_strategy",
]

STRATEGIES: Registry[Strategy] = Registry("strategy")


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Register a :class:`Strategy` subclass under its ``name`` (usable as a class decorator), so that studies,
    ``archscout bench`` and ``archscout list`` know it. Check it with ``archscout.testing.check_strategy``.

    Raises:
        ConfigError: ``cls`` is not a Strategy subclass with its own ``name``, or the name is taken.
    """
    if not (isinstance(cls, type) and issubclass(cls, Strategy)) or cls.name in ("", "base"):
        raise ConfigError(f"register_strategy needs a Strategy subclass with its own name, got {cls!r}")
    STRATEGIES.register(cls.name, cls)
    return cls


for _mod in (simple, model_based, mobo, mcts, reinforce, marl, nsga2, multifidelity, optuna_adapter, auto):
    for _cls in _mod.STRATEGY_CLASSES:
        register_strategy(_cls)


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
