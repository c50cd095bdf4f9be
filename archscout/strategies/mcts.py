"""Placeholder; filled in by its strategies."""

STRATEGY_CLASSES: list = []
