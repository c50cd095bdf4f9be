"""The synthetic objective the strategy tests share, and a loop that drives a strategy with it."""

from __future__ import annotations

from collections.abc import Callable

import archscout as asc
from archscout.results import Candidate, Result

SPACE = asc.create_space("nb201")
OPT = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
_TARGET = SPACE.parse(OPT).values[0]


def score(arch) -> float:
    """A deterministic objective on NB201: closeness to a target cell, plus a hash-based jitter."""
    same = sum(x == y for x, y in zip(arch.values[0], _TARGET))
    return same + 0.5 * int(arch.functional_hash()[:6], 16) / 16**6


def drive(strategy, n: int, objective: Callable = score, batch: int = 1) -> list[Candidate]:
    """Ask up to ``batch`` candidates at a time, then tell their ``objective`` as ``score``, until ``n``
    were told; returns the told candidates in order."""
    told: list[Candidate] = []
    while len(told) < n:
        cands = [strategy.ask() for _ in range(min(batch, n - len(told)))]
        for c in cands:
            strategy.tell(c, Result("complete", {"score": objective(c.arch)}))
            told.append(c)
    return told
