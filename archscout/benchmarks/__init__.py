"""Tabular benchmarks and the protocol that compares strategies on them."""

from __future__ import annotations

import os
from typing import Any

from .._registry import Registry
from ..space import Space, create_space
from ..tables import read_columns
from .nb201 import nb201
from .nbgraph import nbgraph
from .tabular import TabularBenchmark, TabularEvaluator
from .transnas import transnas_macro, transnas_micro

__all__ = [
    "BENCHMARKS",
    "TabularBenchmark",
    "TabularEvaluator",
    "create_benchmark",
    "list_benchmarks",
    "read_columns",
]

BENCHMARKS: Registry[TabularBenchmark] = Registry("benchmark")
BENCHMARKS.register("nb201", nb201)
BENCHMARKS.register("transnas-micro", transnas_micro)
BENCHMARKS.register("transnas-macro", transnas_macro)
BENCHMARKS.register("nbgraph", nbgraph)


@BENCHMARKS.register("tabular")
def tabular(table: str | os.PathLike, space: str | Space | dict, **params: Any) -> TabularBenchmark:
    """Any table of (architecture string, metric columns) over a registered or declared space."""
    if isinstance(space, str):
        space = create_space(space)
    elif isinstance(space, dict):
        space = Space.from_config(space)
    return TabularBenchmark(table, space, **params)


def list_benchmarks() -> list[str]:
    return BENCHMARKS.names()


def create_benchmark(name: str, **params: Any) -> TabularBenchmark:
    """Build a registered benchmark: ``create_benchmark("nb201", table="path/nb201_cifar10.csv")``.

    Raises:
        UnknownNameError, ConfigError, DataError.
    """
    return BENCHMARKS.create(name, **params)
