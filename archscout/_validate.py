"""Validation of settings, shared by every component: constructors check their settings at once, with one
message style (``"<name> must be ..., got <value>"``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

from .errors import ConfigError

__all__ = ["check_choice", "check_int", "check_number"]

T = TypeVar("T")


def check_int(name: str, value: Any, low: int = 1) -> int:
    """``value`` as an int; ConfigError unless it is an integer (not a bool) >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_number(name: str, value: Any, low: float, high: float = math.inf, low_open: bool = False,
                 high_open: bool = False) -> float:
    """``value`` as a float; ConfigError unless it is a finite number in the interval (bounds closed unless
    ``low_open`` / ``high_open``)."""
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
          and math.isfinite(value))
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo = f"{'>' if low_open else '>='} {low:g}"
        hi = "" if math.isinf(high) else f" and {'<' if high_open else '<='} {high:g}"
        raise ConfigError(f"{name} must be a number {lo}{hi}, got {value!r}")
    return float(value)


def check_choice(name: str, value: T, options: Sequence[T]) -> T:
    """``value`` unchanged; ConfigError unless it is one of ``options``."""
    if value not in options:
        raise ConfigError(f"{name} must be one of {tuple(options)}, got {value!r}")
    return value
