"""Fault injection for the reliability tests: an evaluator that fails on purpose, and driver processes.

Importable by spawned worker and driver processes (the tests folder is on their ``sys.path``).
"""

from __future__ import annotations

import hashlib
import math
import os
import signal
import time

import archscout as asc

# 7 choices of 5 values: 78,125 distinct architectures, so 10,000 trials never run out of new ones
SOAK_SPACE = asc.Space({f"p{i}": asc.Choice(["a", "b", "c", "d", "e"]) for i in range(7)})

# what each injected fault is recorded as
FAULT_KINDS = {"raise": "error", "nan": "invalid", "inf": "invalid", "kill": "worker_died", "hang": "timeout"}
# share of each fault among the injected ones
_MIX = (("raise", 0.45), ("nan", 0.2), ("inf", 0.2), ("kill", 0.1), ("hang", 0.05))


def _unit(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / 16**12


class FaultyEvaluator:
    """Scores any architecture instantly; a ``rate`` share of them (chosen by a seeded hash of the
    architecture, so the injected set is known in advance) fails: raises, returns NaN or inf, kills its own
    worker process with SIGKILL, or hangs for ``hang_s`` seconds (to be cut by the per-trial timeout)."""

    def __init__(self, rate: float = 0.1, seed: int = 0, hang_s: float = 600.0, kinds: tuple = ()) -> None:
        self.rate, self.seed, self.hang_s = rate, seed, hang_s
        self.kinds = tuple(kinds) or tuple(k for k, _ in _MIX)

    def fault(self, arch) -> str | None:
        """The fault injected for ``arch`` (``None``: it evaluates normally)."""
        if _unit(f"{self.seed}:{arch}") >= self.rate:
            return None
        mix = [(k, w) for k, w in _MIX if k in self.kinds]
        u = _unit(f"kind:{self.seed}:{arch}") * sum(w for _, w in mix)
        for k, w in mix:
            if u < w:
                return k
            u -= w
        return mix[-1][0]

    def evaluate(self, arch, fidelity=None) -> dict:
        f = self.fault(arch)
        if f == "raise":
            raise RuntimeError(f"injected failure for {arch}")
        if f == "nan":
            return {"score": math.nan}
        if f == "inf":
            return {"score": math.inf}
        if f == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if f == "hang":
            time.sleep(self.hang_s)
        return {"score": _unit(f"score:{arch}")}


def quick_score(arch) -> dict:
    """A plain evaluator for drivers: instant and deterministic."""
    return {"score": _unit(f"score:{arch}")}


def drive(url: str, budget: int, seed: int, start=None, name: str = "shared") -> None:
    """One driver process: join (or create) study ``name`` in storage ``url`` and run it to ``budget``, once
    every driver is ready (``start``: a barrier shared by the drivers)."""
    study = asc.create_study(SOAK_SPACE, objectives=["score"], strategy="random", storage=url, seed=0,
                             name=name, load_if_exists=True)
    study.strategy.rng = __import__("numpy").random.default_rng(seed)  # each driver samples its own sequence
    if start is not None:
        start.wait(timeout=120)
    study.optimize(quick_score, budget=budget)
    study.close()
