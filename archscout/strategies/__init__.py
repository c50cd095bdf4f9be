"""Search strategies: ask/tell state machines in a registry."""

from __future__ import annotations

from typing import Any

from .._registry import Registry
from .base import Capabilities, Strategy
from .simple import LocalSearch, RandomSearch, RegularizedEvolution

__all__ = ["Strategy", "Capabilities", "STRATEGIES", "list_strategies", "create_strategy"]

STRATEGIES: Registry[Strategy] = Registry("strategy")
for _cls in (RandomSearch, RegularizedEvolution, LocalSearch):
    STRATEGIES.register(_cls.name, _cls, doc=(_cls.__doc__ or "").strip().splitlines()[0])


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
