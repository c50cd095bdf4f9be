"""Objectives and constraints: what a study optimises and the bounds it must respect."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError

__all__ = ["Constraint", "Objective", "pareto_mask", "parse_constraints", "parse_objectives"]

_DIRECTIONS = ("max", "min")
_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
# "name <op> bound": the name is everything before the first comparison
_CONSTRAINT_RE = re.compile(r"\s*([^<>=]*?)\s*(<=|>=|<|>)\s*(.*?)\s*\Z", re.DOTALL)


def _check_name(name: Any, what: str) -> None:
    """Raise ConfigError unless ``name`` is a non-empty metric name without surrounding spaces."""
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ConfigError(f"{what} needs a metric name (a non-empty string without surrounding spaces), got {name!r}")


def _build(cls: type, args: Any, what: str, example: str) -> Any:
    """``cls(**args)`` or ``cls(*args)``, with wrong fields reported as ConfigError."""
    try:
        return cls(**args) if isinstance(args, Mapping) else cls(*args)
    except TypeError as e:
        raise ConfigError(f"cannot read {what} {args!r} ({e}); use {example}") from None


@dataclass(frozen=True)
class Objective:
    """A named objective with a direction and a unit (e.g. ``Objective("latency_ms", "min", "ms")``)."""

    name: str
    direction: str = "max"
    unit: str = ""

    def __post_init__(self) -> None:
        _check_name(self.name, "an objective")
        if not isinstance(self.unit, str):
            raise ConfigError(f"objective {self.name!r}: unit must be a string such as 'ms', got {self.unit!r}")
        if self.direction not in _DIRECTIONS:
            raise ConfigError(f"objective {self.name!r}: direction must be 'max' or 'min', got {self.direction!r}")

    @property
    def sign(self) -> float:
        """+1 for max, -1 for min: ``sign * value`` is always to be maximised."""
        return 1.0 if self.direction == "max" else -1.0

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "max" else a < b

    def to_config(self) -> dict:
        return {"name": self.name, "direction": self.direction, "unit": self.unit}


@dataclass(frozen=True)
class Constraint:
    """A bound on a metric or cost, e.g. ``Constraint("latency_ms", "<=", 2.0)``."""

    name: str
    op: str
    bound: float

    def __post_init__(self) -> None:
        _check_name(self.name, "a constraint")
        if not isinstance(self.op, str) or self.op not in _OPS:
            raise ConfigError(f"constraint on {self.name!r}: op must be one of {list(_OPS)}, got {self.op!r}")
        try:
            b = float(self.bound)
        except (TypeError, ValueError):
            raise ConfigError(f"constraint on {self.name!r}: bound must be a number, got {self.bound!r}") from None
        if not math.isfinite(b):
            raise ConfigError(f"constraint on {self.name!r}: bound must be finite, got {self.bound!r}")
        object.__setattr__(self, "bound", b)

    def satisfied(self, value: float) -> bool:
        return value is not None and math.isfinite(value) and _OPS[self.op](value, self.bound)

    def violation(self, value: float) -> float:
        """How far ``value`` is outside the bound (0 when satisfied)."""
        if value is None or not math.isfinite(value):
            return math.inf
        return 0.0 if self.satisfied(value) else abs(value - self.bound)

    def to_config(self) -> dict:
        return {"name": self.name, "op": self.op, "bound": self.bound}


def parse_objectives(objectives: Any) -> tuple[Objective, ...]:
    """Accept ``Objective`` objects, ``"name"``, ``("name", "max")``, ``{"name":..., "direction":...}``."""
    if objectives is None:
        raise ConfigError("give at least one objective, e.g. objectives=[Objective('accuracy', 'max')]")
    if isinstance(objectives, (str, Objective, Mapping)):
        objectives = [objectives]
    if not isinstance(objectives, Iterable):
        raise ConfigError(f"cannot read objectives {objectives!r}; give a list such as [Objective('accuracy', 'max')]")
    example = "Objective(name, 'max'|'min'), a name, (name, direction) or {'name': ..., 'direction': ...}"
    out = []
    for o in objectives:
        if isinstance(o, Objective):
            out.append(o)
        elif isinstance(o, str):
            out.append(Objective(o))
        elif isinstance(o, (Mapping, tuple, list)):
            out.append(_build(Objective, o, "objective", example))
        else:
            raise ConfigError(f"cannot read objective {o!r}; use Objective(name, 'max'|'min')")
    if not out:
        raise ConfigError("give at least one objective, e.g. objectives=[Objective('accuracy', 'max')]")
    names = [o.name for o in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"objective names {names} are not distinct")
    return tuple(out)


def parse_constraints(constraints: Any) -> tuple[Constraint, ...]:
    """Accept ``Constraint`` objects, ``("name", "<=", bound)``, dicts, or strings like ``"latency_ms<=2"``
    (a list of them, or one).

    Raises:
        ConfigError: an entry that is none of these, or a constraint with a bad name, op or bound.
    """
    if constraints is None:
        return ()
    if isinstance(constraints, (str, Constraint, Mapping)):
        constraints = [constraints]
    if not isinstance(constraints, Iterable):
        raise ConfigError(f"cannot read constraints {constraints!r}; give a list such as ['latency_ms<=2.0']")
    example = "Constraint(name, '<=', bound), (name, op, bound) or 'latency_ms<=2.0'"
    out = []
    for c in constraints:
        if isinstance(c, Constraint):
            out.append(c)
        elif isinstance(c, (Mapping, tuple, list)):
            out.append(_build(Constraint, c, "constraint", example))
        elif isinstance(c, str):
            m = _CONSTRAINT_RE.match(c)
            if m is None:
                raise ConfigError(f"cannot read constraint {c!r}; write it like 'latency_ms<=2.0'")
            # the bound stays text here: Constraint.__post_init__ converts it and reports a non-number
            out.append(Constraint(m.group(1), m.group(2), m.group(3)))  # type: ignore[arg-type]
        else:
            raise ConfigError(f"cannot read constraint {c!r}; use Constraint(name, '<=', bound)")
    return tuple(out)


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``points`` (shape ``(n, m)``, every column maximised).
    Duplicated points are all kept."""
    pts = np.asarray(points, dtype=float)
    if len(pts) == 0:
        return np.zeros(0, dtype=bool)
    uniq, inverse = np.unique(pts.reshape(len(pts), -1), axis=0, return_inverse=True)  # equal rows: one test
    n = len(uniq)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        if not mask[i]:
            continue
        dominated = np.all(uniq[i] >= uniq, axis=1) & np.any(uniq[i] > uniq, axis=1)
        mask &= ~dominated
    return mask[inverse.reshape(-1)]
