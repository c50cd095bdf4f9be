"""Baseline strategies: random sampling, regularized evolution and local search (all deduplicated).

None of them models the objective, so pending candidates (asked here, or noted as evaluated elsewhere) need
no fantasy: they are never proposed again (deduplication), regularized evolution counts them towards its
initial population, and local search waits for a pending neighbour before it moves.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from .._validate import check_int
from ..errors import ConfigError
from ..results import Candidate, Result
from ..space import Architecture
from .base import Capabilities, Strategy, score_from_json, score_to_json

__all__ = ["STRATEGY_CLASSES", "LocalSearch", "RandomSearch", "RegularizedEvolution", "Replay"]






class RandomSearch(Strategy):
    """Uniform random sampling without functional repeats (the baseline every strategy must beat)."""

    name = "random"
    capabilities = Capabilities(multi_objective=True)

    def _propose(self) -> Architecture:
        return self.space.sample(self.rng)


class RegularizedEvolution(Strategy):
    """Regularized (aging) evolution, Real et al. 2019.

    The first ``population_size`` proposals are random (pending candidates count towards them). Then each
    proposal mutates the best of ``sample_size`` members drawn from the population; every result joins the
    population and the oldest member leaves.

    Args:
        population_size: members kept (>= 2).
        sample_size: tournament size (1 <= sample_size <= population_size).
    """

    name = "rea"

    def __init__(self, space, objectives=None, constraints=(), seed=None, dedup=True,
                 population_size: int = 30, sample_size: int = 20) -> None:
        super().__init__(space, objectives, constraints, seed, dedup)
        self.population_size = check_int("population_size", population_size, 2)
        self.sample_size = check_int("sample_size", sample_size, 1)
        if sample_size > population_size:
            raise ConfigError(f"sample_size ({sample_size}) cannot exceed population_size ({population_size})")
        self._population: deque[tuple[Architecture, float]] = deque(maxlen=self.population_size)

    def _propose(self) -> Architecture:
        pop = self._population
        if len(pop) + len(self._pending) < self.population_size or not pop:
            return self.space.sample(self.rng)
        k = min(self.sample_size, len(pop))
        idx = self.rng.choice(len(pop), size=k, replace=False)
        parent = max((pop[int(i)] for i in idx), key=lambda m: m[1])[0]
        return self.space.mutate(parent, self.rng)

    def _observe(self, candidate: Candidate, result: Result) -> None:
        self._population.append((candidate.arch, self.score(result)))

    def _params(self) -> dict[str, Any]:
        return {"population_size": self.population_size, "sample_size": self.sample_size}

    def _state(self) -> dict[str, Any]:
        return {"population": [[str(a), score_to_json(s)] for a, s in self._population]}

    def _load_state(self, state: dict[str, Any]) -> None:
        self._population = deque(
            ((self.space.parse(a), score_from_json(s)) for a, s in state["population"]), maxlen=self.population_size
        )


class LocalSearch(Strategy):
    """Hill climbing over the space's neighbourhood with restarts (White et al., 2021).

    From the current architecture, the unevaluated neighbours are tried in random order; neighbours whose
    function was already evaluated count with their known score at no cost. By default
    (``first_improvement=True``) the search moves as soon as a neighbour is better; with ``False`` it
    finishes the neighbourhood and moves to the best neighbour. When no neighbour beats the current
    architecture it restarts from a random one. A neighbour that is pending (here or elsewhere) is waited
    for before the search moves; meanwhile proposals are random.

    Args:
        first_improvement: move at the first better neighbour (True) or to the best of the neighbourhood.
        n_init: random architectures evaluated before each walk (at the start and after each local optimum);
            the walk starts from the best of them (as NASLib's ``num_init``); 1 starts from the first one.
    """

    name = "ls"

    def __init__(self, space, objectives=None, constraints=(), seed=None, dedup=True,
                 first_improvement: bool = True, n_init: int = 1) -> None:
        super().__init__(space, objectives, constraints, seed, dedup)
        if not isinstance(first_improvement, bool):
            raise ConfigError(f"first_improvement must be true or false, got {first_improvement!r}")
        self.first_improvement = first_improvement
        self.n_init = check_int("n_init", n_init, 1)
        self._init: list[tuple[Architecture, float]] = []
        self._scores: dict[str, float] = {}
        self._current: tuple[Architecture, float] | None = None
        self._queue: list[Architecture] = []
        self._neighbors: list[Architecture] = []

    def _propose(self) -> Architecture:
        while self._queue:
            a = self._queue.pop()
            if not self.is_seen(a):
                return a
        return self.space.sample(self.rng)

    def _observe(self, candidate: Candidate, result: Result) -> None:
        s = self.score(result)
        self._scores[candidate.arch.functional_hash()] = s
        if self._current is None:
            self._init.append((candidate.arch, s))
            if len(self._init) >= self.n_init:
                best = max(range(len(self._init)), key=lambda i: self._init[i][1])
                self._move(*self._init[best])
                self._init = []
        elif self.first_improvement and s > self._current[1]:
            self._move(candidate.arch, s)
        self._advance()

    def on_fail(self, candidate: Candidate) -> None:
        """Forget a pending candidate; a neighbourhood that only waited for it is decided now."""
        super().on_fail(candidate)
        self._advance()

    def _move(self, arch: Architecture, score: float) -> None:
        self._current = (arch, score)
        nbrs = self.space.neighbors(arch)
        order = self.rng.permutation(len(nbrs))
        self._neighbors = [nbrs[int(i)] for i in order]
        self._queue = [a for a in reversed(self._neighbors) if not self.is_seen(a)]

    def _advance(self) -> None:
        """While the current neighbourhood is fully known, move to its best member or restart."""
        while self._current is not None and not self._queue:
            pending = {c.arch.functional_hash() for c in self._pending.values()}
            if any(a.functional_hash() in pending for a in self._neighbors):
                return
            best, best_s = None, self._current[1]
            for a in self._neighbors:
                s = self._scores.get(a.functional_hash(), -math.inf)
                if s > best_s:
                    best, best_s = a, s
            if best is None:
                self._current = None  # local optimum: restart from a random architecture
                self._neighbors = []
                return
            self._move(best, best_s)

    def _params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"first_improvement": self.first_improvement}
        if self.n_init != 1:
            out["n_init"] = self.n_init
        return out

    def _state(self) -> dict[str, Any]:
        return {
            "scores": {h: score_to_json(s) for h, s in self._scores.items()},
            "current": None if self._current is None else [str(self._current[0]), score_to_json(self._current[1])],
            "queue": [str(a) for a in self._queue],
            "neighbors": [str(a) for a in self._neighbors],
            **({"init": [[str(a), score_to_json(v)] for a, v in self._init]} if self._init else {}),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        p = self.space.parse
        self._scores = {h: score_from_json(s) for h, s in state["scores"].items()}
        cur = state["current"]
        self._current = None if cur is None else (p(cur[0]), score_from_json(cur[1]))
        self._queue = [p(a) for a in state["queue"]]
        self._neighbors = [p(a) for a in state["neighbors"]]
        self._init = [(p(a), score_from_json(v)) for a, v in state.get("init", [])]
class Replay(Strategy):
    """Proposes given architectures in order, then random ones (as Optuna's ``enqueue_trial``).

    The architectures come from ``archs`` (strings of the space, kept in the study's settings) and from
    :meth:`queue` (e.g. the cell a differentiable supernet derives after each epoch, recorded as a trial);
    when none is waiting, proposals are uniform random. Create it with ``dedup=False`` to record an
    architecture more than once (a search curve that stays on one cell).

    Args:
        archs: architecture strings proposed first, in order.
    """

    name = "replay"
    capabilities = Capabilities(multi_objective=True, constraints=True)

    def __init__(self, space, objectives=None, constraints=(), seed=None, dedup=True, archs: Any = ()) -> None:
        super().__init__(space, objectives, constraints, seed, dedup)
        if isinstance(archs, str) or not hasattr(archs, "__iter__"):
            raise ConfigError(f"archs must be a list of architecture strings, got {archs!r}")
        self.archs = [str(space.parse(a) if isinstance(a, str) else space.validate(a)) for a in archs]
        self._waiting: deque[Architecture] = deque(space.parse(a) for a in self.archs)

    def queue(self, arch: Architecture | str) -> None:
        """Propose ``arch`` next (after those already waiting).

        Raises:
            InvalidArchitectureError: ``arch`` is not an architecture of the space.
        """
        self._waiting.append(self.space.parse(arch) if isinstance(arch, str) else self.space.validate(arch))

    def _propose(self) -> Architecture:
        while self._waiting:
            a = self._waiting.popleft()
            if not self.is_seen(a):
                return a
        return self.space.sample(self.rng)

    def _params(self) -> dict[str, Any]:
        return {"archs": list(self.archs)}


STRATEGY_CLASSES = [RandomSearch, RegularizedEvolution, LocalSearch, Replay]
