"""argparse argument types shared by the command-line modules (``archscout.cli``, ``archscout.supernet.cli``):
each parses one flag's text or raises ``argparse.ArgumentTypeError`` with the reason."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

__all__ = ["int_at_least", "key_values", "non_negative_float", "non_negative_int", "positive_float", "positive_int"]


def int_at_least(low: int):
    """argparse type: an integer >= ``low``."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < low:
            raise argparse.ArgumentTypeError(
                f"must be a positive integer, got {v}" if low == 1 else f"must be an integer >= {low}, got {v}"
            )
        return v

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def non_negative_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return v


def positive_float(text: str) -> float:
    v = non_negative_float(text)
    if not 0 < v < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return v


def key_values(items: Sequence[str] | None, example: str = "C=8") -> dict[str, Any]:
    """Repeated ``--option KEY=VALUE`` flags as a dict; a value is read as JSON when it parses, else kept as a
    string.

    Raises:
        ConfigError: an item without ``=`` or without a key.
    """
    from .errors import ConfigError

    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option needs KEY=VALUE (e.g. {example}), got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out
