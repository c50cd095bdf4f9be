"""The ask/tell contract every strategy follows, with functional deduplication built in.

A strategy is a pure state machine: a seeded ``numpy.random.Generator``, no I/O, no clocks. ``ask()``
proposes a :class:`~archscout.objectives.Candidate`; ``tell(candidate, result)`` feeds back what the
evaluation returned. Several candidates may be pending at once (asynchronous parallel search).
``state_dict()`` is JSON-safe and ``load_state_dict()`` restores it exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, SpaceExhaustedError
from ..objectives import Candidate, Constraint, Objective, Result, TrialState, parse_constraints, parse_objectives
from ..space import Architecture, Space

__all__ = ["Strategy", "Capabilities"]

# Finite spaces up to this many points are enumerated when random proposals keep hitting seen functions.
_ENUMERATE_LIMIT = 2_000_000


@dataclass(frozen=True)
class Capabilities:
    """What a strategy can handle; the study refuses combinations a strategy does not declare."""

    multi_objective: bool = False
    constraints: bool = True
    fidelities: bool = False
    batch: bool = True


class Strategy:
    """Base class: subclasses implement :meth:`_propose` (and usually :meth:`_observe`).

    Args:
        space: the search space.
        objectives: objectives (default: one objective ``"score"`` to maximise).
        constraints: constraints; an infeasible result scores as the worst possible.
        seed: seed of the strategy's random generator (``None``: fresh entropy).
        dedup: never propose an architecture whose functional hash was already proposed or told.
    """

    name: ClassVar[str] = "base"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(
        self,
        space: Space,
        objectives: Sequence[Objective] | None = None,
        constraints: Sequence[Constraint] = (),
        seed: int | None = None,
        dedup: bool = True,
    ) -> None:
        if not isinstance(space, Space):
            raise ConfigError(f"a strategy needs a Space, got {space!r}")
        self.space = space
        self.objectives = parse_objectives(objectives if objectives is not None else [Objective("score")])
        self.constraints = parse_constraints(constraints)
        if len(self.objectives) > 1 and not self.capabilities.multi_objective:
            raise ConfigError(
                f"strategy {self.name!r} optimises one objective, but {len(self.objectives)} were given; "
                "use a multi-objective strategy such as 'random'"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ConfigError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self.dedup = bool(dedup)
        self.rng = np.random.default_rng(self.seed)
        self._next_id = 0
        self._seen: set[str] = set()
        self._pending: dict[int, Candidate] = {}
        self._n_told = 0
        self._unseen_pool: list[Architecture] | None = None
        self.cost_models: dict[str, Any] = {}
        self.fidelities: tuple[float, ...] | None = None
        self._cost_cache: dict[str, dict[str, float]] = {}

    # --- context from the study ----------------------------------------------------------------------
    def attach(self, cost_models: Mapping[str, Any] | None = None,
               fidelities: Sequence[float] | None = None) -> None:
        """Give the strategy what the study knows before any evaluation (called by the study before the
        first ``ask``):

        Args:
            cost_models: cheap cost models ``{metric: model with predict(arch) -> float}``; strategies may
                query them freely through :meth:`known_costs` (e.g. latency from a table or a predictor).
            fidelities: the evaluator's fidelities (e.g. epochs ``[12, 200]``); the largest is the full one.
                Strategies without the ``fidelities`` capability ignore them and ask at full fidelity.
        """
        self.cost_models = dict(cost_models or {})
        self._cost_cache = {}
        if fidelities is not None:
            fids = sorted({float(f) for f in fidelities})
            if not fids or any(not math.isfinite(f) or f <= 0 for f in fids):
                raise ConfigError(f"fidelities must be positive numbers, got {list(fidelities)!r}")
            self.fidelities = tuple(fids)
        else:
            self.fidelities = None

    def known_costs(self, arch: Architecture) -> dict[str, float]:
        """Values of the attached cheap cost models for ``arch`` (cached per function); ``{}`` when none
        are attached. A model that raises gives no value for that metric."""
        if not self.cost_models:
            return {}
        key = arch.functional_hash()
        out = self._cost_cache.get(key)
        if out is None:
            out = {}
            for name, model in self.cost_models.items():
                try:
                    v = float(model.predict(arch))
                except Exception:  # noqa: BLE001 - an unbuildable arch simply has no known cost
                    continue
                if math.isfinite(v):
                    out[name] = v
            self._cost_cache[key] = out
        return out

    # --- public contract ---------------------------------------------------------------------------
    def ask(self) -> Candidate:
        """Propose the next candidate.

        Raises:
            SpaceExhaustedError: every functionally distinct architecture has been proposed already.
        """
        arch, fidelity = self._propose_new()
        cand = Candidate(self._next_id, arch, fidelity)
        self._next_id += 1
        self._pending[cand.id] = cand
        if self.dedup:
            self._seen.add(_seen_key(arch, fidelity))
        return cand

    def tell(self, candidate: Candidate, result: Result) -> None:
        """Report the result of ``candidate`` (one asked by this strategy, or any other architecture)."""
        if not isinstance(result, Result):
            raise TypeError(f"tell() needs a Result, got {result!r}")
        self._pending.pop(candidate.id, None)
        if self.dedup:
            self._seen.add(_seen_key(candidate.arch, candidate.fidelity))
        self._n_told += 1
        self._observe(candidate, result)

    def note_pending(self, candidate: Candidate) -> None:
        """Learn that ``candidate`` is being evaluated elsewhere (by another driver of the study, or as a retry):
        it counts as pending, exactly like one this strategy asked, until it is told or failed. Its id need not
        come from this strategy; the study passes foreign candidates with negative ids."""
        self._pending[candidate.id] = candidate
        if self.dedup:
            self._seen.add(_seen_key(candidate.arch, candidate.fidelity))

    def on_fail(self, candidate: Candidate) -> None:
        """Forget a pending candidate without a result (it will not be evaluated)."""
        self._pending.pop(candidate.id, None)

    @property
    def pending(self) -> list[Candidate]:
        return list(self._pending.values())

    def score(self, result: Result) -> float:
        """Scalar to maximise for single-objective strategies: ``sign * objective``; ``-inf`` when the trial
        failed, was infeasible, or breaks a constraint."""
        if result.state != TrialState.COMPLETE or not result.feasible(self.constraints):
            return -math.inf
        v = result.values(self.objectives)[0]
        return float(v) if math.isfinite(v) else -math.inf

    def is_seen(self, arch: Architecture, fidelity: float | None = None) -> bool:
        """Whether ``arch``'s function was already proposed or told at ``fidelity`` (``None``: full)."""
        return self.dedup and _seen_key(arch, fidelity) in self._seen

    # --- for subclasses ---------------------------------------------------------------------------
    def _propose(self) -> Architecture | tuple[Architecture, float | None]:
        """Return the next architecture (or ``(arch, fidelity)``); may return a seen one, the base retries."""
        raise NotImplementedError

    def _observe(self, candidate: Candidate, result: Result) -> None:
        """Learn from a result (default: nothing)."""

    def _params(self) -> dict[str, Any]:
        """Constructor parameters beyond the common ones (for ``to_config``)."""
        return {}

    def _state(self) -> dict[str, Any]:
        return {}

    def _load_state(self, state: dict[str, Any]) -> None:
        pass

    # --- dedup machinery ---------------------------------------------------------------------------
    def _propose_new(self) -> tuple[Architecture, float | None]:
        for _ in range(50):
            out = self._propose()
            arch, fid = out if isinstance(out, tuple) else (out, None)
            if not self.is_seen(arch, fid):
                return arch, fid
        for _ in range(200):
            arch = self.space.sample(self.rng)
            if not self.is_seen(arch):
                return arch, None
        return self._from_unseen_pool(), None

    def _from_unseen_pool(self) -> Architecture:
        size = self.space.size()
        if not math.isfinite(size) or size > _ENUMERATE_LIMIT:
            raise SpaceExhaustedError(
                "could not find an architecture that was not proposed before after 250 tries; "
                "the space looks exhausted"
            )
        if self._unseen_pool is None:
            reps: dict[str, Architecture] = {}
            for a in self.space.enumerate():
                reps.setdefault(a.functional_hash(), a)
            self._unseen_pool = list(reps.values())
        self._unseen_pool = [a for a in self._unseen_pool if not self.is_seen(a)]
        if not self._unseen_pool:
            raise SpaceExhaustedError(
                f"all {len(self._seen)} functionally distinct architectures of the space have been proposed"
            )
        return self._unseen_pool[int(self.rng.integers(len(self._unseen_pool)))]

    # --- state -------------------------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        """``{"name": ..., **params}``: enough, with the space and seed, to rebuild the strategy."""
        return {"name": self.name, "dedup": self.dedup, **self._params()}

    def state_dict(self) -> dict[str, Any]:
        """JSON-safe snapshot of the whole state (random generator included)."""
        return {
            "name": self.name,
            "rng": self.rng.bit_generator.state,
            "next_id": self._next_id,
            "seen": sorted(self._seen),
            "pending": [_cand_to_json(c) for c in self._pending.values()],
            "n_told": self._n_told,
            "state": self._state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ConfigError(f"state of strategy {state.get('name')!r} cannot be loaded into {self.name!r}")
        self.rng.bit_generator.state = state["rng"]
        self._next_id = int(state["next_id"])
        self._seen = set(state["seen"])
        self._pending = {}
        for c in state["pending"]:
            cand = _cand_from_json(self.space, c)
            self._pending[cand.id] = cand
        self._n_told = int(state["n_told"])
        self._unseen_pool = None
        self._load_state(state["state"])

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.to_config().items() if k != "name")
        return f"{type(self).__name__}({params})"


def _seen_key(arch: Architecture, fidelity: float | None) -> str:
    """Dedup key: the functional hash, qualified by the fidelity when one is given (a promotion of the same
    architecture to a higher fidelity is a new evaluation)."""
    h = arch.functional_hash()
    return h if fidelity is None else f"{h}@{float(fidelity):g}"


def _cand_to_json(c: Candidate) -> list:
    return [c.id, str(c.arch), c.fidelity]


def _cand_from_json(space: Space, data: list) -> Candidate:
    return Candidate(int(data[0]), space.parse(data[1]), data[2])
