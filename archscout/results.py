"""The typed values that flow between the layers: what a strategy proposes (:class:`Proposal`,
:class:`Candidate`), what an evaluation returned (:class:`Result`), and what a study recorded
(:class:`Trial`, in a :class:`TrialState`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .objectives import Constraint, Objective
from .space import Architecture

__all__ = ["Candidate", "Proposal", "Result", "Trial", "TrialState"]


class TrialState:
    """Trial states (plain strings, stored as they are)."""

    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    INFEASIBLE = "infeasible"  # rejected by a cheap cost model before dispatch, never trained
    FINISHED = (COMPLETE, FAILED, INFEASIBLE)


@dataclass(frozen=True)
class Proposal:
    """What a strategy's ``_propose`` may return: an architecture, the fidelity to evaluate it at (``None``:
    full), and a ``token`` the strategy gets back with the candidate (``candidate.token``) when the result
    is told, e.g. the number of the trial of an underlying sampler. A token must be JSON-safe (it is kept in
    :meth:`~archscout.strategies.Strategy.state_dict` with the pending candidates)."""

    arch: Architecture
    fidelity: float | None = None
    token: Any = None


@dataclass(frozen=True)
class Candidate:
    """What a strategy proposes: an architecture, optionally at a fidelity (e.g. epochs).

    ``id`` numbers the strategy's proposals in order; the study maps it to a trial number. ``token`` is the
    strategy's own note on the proposal (see :class:`Proposal`); it does not take part in comparisons.
    """

    id: int
    arch: Architecture
    fidelity: float | None = None
    token: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class Result:
    """What an evaluation returned: metric values (for a complete trial) and the state."""

    state: str = TrialState.COMPLETE
    metrics: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None

    def values(self, objectives: Sequence[Objective]) -> np.ndarray:
        """Objective values, shape ``(len(objectives),)``, signed so that larger is better; ``-inf``
        for a trial that did not complete."""
        if self.state != TrialState.COMPLETE:
            return np.full(len(objectives), -np.inf)
        return np.array([o.sign * float(self.metrics.get(o.name, -o.sign * np.inf)) for o in objectives])

    def feasible(self, constraints: Sequence[Constraint]) -> bool:
        """Whether the result is complete and meets every constraint."""
        return self.state == TrialState.COMPLETE and all(
            c.satisfied(self.metrics.get(c.name, math.nan)) for c in constraints
        )


@dataclass(frozen=True)
class Trial:
    """One evaluation of a study, as recorded. Times are seconds since the epoch (or simulated seconds
    when the study ran on the simulated executor)."""

    number: int
    arch: Architecture
    fidelity: float | None = None
    state: str = TrialState.RUNNING
    metrics: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    failure: str | None = None  # why a failed trial failed: error, invalid, timeout, worker_died, driver_died

    @property
    def result(self) -> Result:
        """The trial as a :class:`Result` (state, metrics, error)."""
        return Result(self.state, self.metrics, self.error)

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "state": self.state,
            "arch": str(self.arch),
            "functional_hash": self.arch.functional_hash(),
            "fidelity": self.fidelity,
            "metrics": dict(self.metrics),
            "error": self.error,
            "failure": self.failure,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
