"""The ask/tell contract every strategy follows, with functional deduplication built in.

A strategy is a pure state machine: a seeded ``numpy.random.Generator``, no I/O, no clocks. ``ask()``
proposes a :class:`~archscout.results.Candidate`; ``tell(candidate, result)`` feeds back what the
evaluation returned. Several candidates may be pending at once (asynchronous parallel search).
``state_dict()`` is JSON-safe and ``load_state_dict()`` restores it exactly.

Writing a strategy (as with Optuna's ``BaseSampler``): subclass :class:`Strategy`, give it a ``name`` and its
:class:`Capabilities`, implement :meth:`Strategy._propose` (and usually :meth:`Strategy._observe`), and
register it with :func:`archscout.register_strategy`. The base class deduplicates: a proposal whose function
was already proposed or told is handed back to :meth:`Strategy._discard` and ``_propose`` is asked again,
up to ``max_proposals`` times; then :meth:`Strategy._fallback` gives an unseen architecture. A proposal may
carry a ``token`` (see :class:`~archscout.results.Proposal`) that comes back as ``candidate.token``.
``archscout.testing.check_strategy`` checks a strategy against this contract.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, SpaceExhaustedError
from ..objectives import Constraint, Objective, parse_constraints, parse_objectives
from ..results import Candidate, Proposal, Result, TrialState
from ..space import Architecture, Space
from .surrogate import candidate_pool

__all__ = [
    "ENUMERATE_LIMIT", "Capabilities", "Strategy", "as_proposal", "score_from_json", "score_to_json", "seen_key",
]

ENUMERATE_LIMIT = 2_000_000
"""Finite spaces up to this many points are enumerated when random proposals keep hitting seen functions."""


@dataclass(frozen=True)
class Capabilities:
    """What a strategy can handle. The study enforces it: a strategy is refused, with a message that names the
    fix, for a study it cannot serve.

    Attributes:
        multi_objective: optimises several objectives (else a study with more than one is refused).
        constraints: honours constraints (else a study with constraints is refused).
        fidelities: asks at the study's lower fidelities when it has several (else it always asks at full
            fidelity, which any study accepts).
        needs_fidelities: only makes sense with several fidelities (from the study or its own parameters): it
            refuses to propose without them.
    """

    multi_objective: bool = False
    constraints: bool = True
    fidelities: bool = False
    needs_fidelities: bool = False


def seen_key(arch: Architecture, fidelity: float | None) -> str:
    """Dedup key: the functional hash, qualified by the fidelity when one is given (a promotion of the same
    architecture to a higher fidelity is a new evaluation)."""
    h = arch.functional_hash()
    return h if fidelity is None else f"{h}@{float(fidelity):g}"


def score_to_json(x: float) -> float | None:
    """A score for a JSON state: ``-inf`` (failed, infeasible) becomes ``null``."""
    return None if x == -math.inf else float(x)


def score_from_json(x: float | None) -> float:
    """The inverse of :func:`score_to_json`."""
    return -math.inf if x is None else float(x)


def as_proposal(out: Architecture | tuple[Architecture, float | None] | Proposal) -> Proposal:
    """What ``_propose`` returned, as a :class:`Proposal`."""
    if isinstance(out, Proposal):
        return out
    if isinstance(out, tuple):
        return Proposal(out[0], out[1])
    return Proposal(out)


class Strategy(abc.ABC):
    """Base class of every strategy: subclasses implement :meth:`_propose` (and usually :meth:`_observe`).

    Args:
        space: the search space.
        objectives: objectives (default: one objective ``"score"`` to maximise).
        constraints: constraints; an infeasible result scores as the worst possible.
        seed: seed of the strategy's random generator (``None``: fresh entropy).
        dedup: never propose an architecture whose functional hash was already proposed or told.

    Raises:
        ConfigError: a bad setting, or objectives / constraints the strategy's :class:`Capabilities` exclude.
    """

    name: ClassVar[str] = "base"
    capabilities: ClassVar[Capabilities] = Capabilities()
    max_proposals: ClassVar[int] = 50
    """Calls of :meth:`_propose` per ask before :meth:`_fallback` is used."""

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
                "use a multi-objective strategy such as 'auto', 'mobo', 'nsga2' or 'random'"
            )
        if self.constraints and not self.capabilities.constraints:
            raise ConfigError(f"strategy {self.name!r} cannot honour constraints; drop them or use another strategy")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ConfigError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self.dedup = bool(dedup)
        self.rng = np.random.default_rng(self.seed)
        self._next_id = 0
        self._seen: set[str] = set()
        self._pending: dict[int, Candidate] = {}
        self._n_told = 0
        self._reps: list[Architecture] | None = None  # one architecture per function, for the fallback
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

    def check_ready(self) -> None:
        """Raise ConfigError when the strategy cannot propose in its current context (e.g. it needs
        fidelities and has none). The study calls it when it is created; :meth:`ask` calls it too."""
        if self.capabilities.needs_fidelities and not self.has_fidelities():
            raise ConfigError(
                f"strategy {self.name!r} needs several fidelities: create_study(..., fidelities=[...]) (the largest "
                "is full training; `archscout bench --multi-fidelity`) or give the strategy fidelities=[...]"
            )

    def has_fidelities(self) -> bool:
        """Whether the strategy has several fidelities to ask at (default: the study attached several)."""
        return self.fidelities is not None and len(self.fidelities) > 1

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
            ConfigError: the strategy cannot propose in its context (see :meth:`check_ready`).
        """
        if self._next_id == 0:
            self.check_ready()
        p = self._next_proposal()
        cand = Candidate(self._next_id, p.arch, p.fidelity, p.token)
        self._next_id += 1
        self._pending[cand.id] = cand
        if self.dedup:
            self._seen.add(seen_key(cand.arch, cand.fidelity))
        return cand

    def tell(self, candidate: Candidate, result: Result) -> None:
        """Report the result of ``candidate`` (one asked by this strategy, or any other architecture)."""
        if not isinstance(result, Result):
            raise TypeError(f"tell() needs a Result, got {result!r}")
        own = self._pending.pop(candidate.id, None)
        if own is not None and own.arch == candidate.arch:
            candidate = own  # the strategy's own candidate, with its token
        if self.dedup:
            self._seen.add(seen_key(candidate.arch, candidate.fidelity))
        self._n_told += 1
        self._observe(candidate, result)

    def note_pending(self, candidate: Candidate) -> None:
        """Learn that ``candidate`` is being evaluated elsewhere (by another driver of the study, or as a retry):
        it counts as pending, exactly like one this strategy asked, until it is told or failed. Its id need not
        come from this strategy; the study passes foreign candidates with negative ids."""
        self._pending[candidate.id] = candidate
        if self.dedup:
            self._seen.add(seen_key(candidate.arch, candidate.fidelity))

    def on_fail(self, candidate: Candidate) -> None:
        """Forget a pending candidate without a result (it will not be evaluated)."""
        self._pending.pop(candidate.id, None)

    @property
    def pending(self) -> list[Candidate]:
        """The candidates asked (or noted) and not yet told or failed."""
        return list(self._pending.values())

    @property
    def n_told(self) -> int:
        """Results told so far."""
        return self._n_told

    def score(self, result: Result) -> float:
        """Scalar to maximise for single-objective strategies: ``sign * objective``; ``-inf`` when the trial
        failed, was infeasible, or breaks a constraint."""
        if result.state != TrialState.COMPLETE or not result.feasible(self.constraints):
            return -math.inf
        v = result.values(self.objectives)[0]
        return float(v) if math.isfinite(v) else -math.inf

    def is_seen(self, arch: Architecture, fidelity: float | None = None) -> bool:
        """Whether ``arch``'s function was already proposed or told at ``fidelity`` (``None``: full)."""
        return self.dedup and seen_key(arch, fidelity) in self._seen

    # --- for subclasses ---------------------------------------------------------------------------
    @abc.abstractmethod
    def _propose(self) -> Architecture | tuple[Architecture, float | None] | Proposal:
        """The next architecture, as an :class:`Architecture`, an ``(arch, fidelity)`` pair or a
        :class:`~archscout.results.Proposal` (with a token); it may be a seen one, the base asks again."""

    def _observe(self, candidate: Candidate, result: Result) -> None:  # noqa: B027 - optional hook
        """Learn from a result (default: nothing)."""

    def _discard(self, proposal: Proposal) -> None:  # noqa: B027 - optional hook
        """A proposal of a function that was already proposed or told: it will not be evaluated (default:
        nothing; a strategy whose proposals hold resources, such as a sampler's trial, releases them here)."""

    def _fallback(self) -> Proposal:
        """The proposal used when :meth:`_propose` gave only seen functions ``max_proposals`` times in a row:
        an unseen architecture at full fidelity (see :meth:`find_unseen`).

        Raises:
            SpaceExhaustedError: no unseen architecture is left.
        """
        arch = self.find_unseen()
        if arch is None:
            raise self._exhausted_error()
        return Proposal(arch)

    def _params(self) -> dict[str, Any]:
        """Constructor parameters beyond the common ones (for ``to_config``)."""
        return {}

    def _state(self) -> dict[str, Any]:
        return {}

    def _load_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        pass

    # --- dedup machinery ---------------------------------------------------------------------------
    def _next_proposal(self) -> Proposal:
        for _ in range(self.max_proposals):
            p = as_proposal(self._propose())
            if not self.is_seen(p.arch, p.fidelity):
                return p
            self._discard(p)
        return self._fallback()

    def find_unseen(self, taken: Callable[[Architecture], bool] | None = None, tries: int = 200) -> Architecture | None:
        """An architecture whose function is not ``taken`` (default: not seen at full fidelity): up to ``tries``
        random draws, then a uniform pick among the unseen functions of a space of at most
        :data:`ENUMERATE_LIMIT` points (enumerated once per process, see
        :func:`~archscout.strategies.surrogate.candidate_pool`). ``taken`` must stay true once true.
        Returns ``None`` when nothing is left, or when the space is too large to enumerate and every draw was
        taken."""
        taken = taken or self.is_seen
        for _ in range(tries):
            arch = self.space.sample(self.rng)
            if not taken(arch):
                return arch
        size = self.space.size()
        if not math.isfinite(size) or size > ENUMERATE_LIMIT:
            return None
        if self._reps is None:
            pool = candidate_pool(self.space, ENUMERATE_LIMIT)
            assert pool is not None
            self._reps = pool.archs
        self._reps = [a for a in self._reps if not taken(a)]  # a new list: the pool is shared
        if not self._reps:
            return None
        return self._reps[int(self.rng.integers(len(self._reps)))]

    def _exhausted_error(self) -> SpaceExhaustedError:
        size = self.space.size()
        if not math.isfinite(size) or size > ENUMERATE_LIMIT:
            return SpaceExhaustedError(
                "could not find an architecture that was not proposed before after 250 tries; the space looks "
                "exhausted"
            )
        return SpaceExhaustedError(
            f"all {len(self._seen)} functionally distinct architectures of the space have been proposed"
        )

    # --- state -------------------------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        """``{"name": ..., **params}``: enough, with the space and seed, to rebuild the strategy."""
        return {"name": self.name, "dedup": self.dedup, **self._params()}

    def state_dict(self) -> dict[str, Any]:
        """JSON-safe snapshot of the whole state (random generator and pending candidates included)."""
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
        """Restore a :meth:`state_dict` snapshot (of a strategy of the same name and space).

        Raises:
            ConfigError: the snapshot is of another strategy.
        """
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
        self._reps = None
        self._load_state(state["state"])

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.to_config().items() if k != "name")
        return f"{type(self).__name__}({params})"


def _cand_to_json(c: Candidate) -> list[Any]:
    return [c.id, str(c.arch), c.fidelity, c.token]


def _cand_from_json(space: Space, data: list[Any]) -> Candidate:
    return Candidate(int(data[0]), space.parse(data[1]), data[2], data[3] if len(data) > 3 else None)
