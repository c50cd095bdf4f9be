"""REINFORCE: a policy-gradient controller over the space's decision sequence (Zoph et al., NASNet).

The policy is factorised: one independent softmax per decision slot of the space's
:class:`~archscout.strategies.decisions.DecisionSpace` (an edge of a cell, a stage depth, a layer choice, a
position of a skeleton...). Architectures are sampled slot by slot (steps that allow only some options
renormalise over them). Each told result updates the logits of the decisions that built it by
``learning_rate * (reward - baseline) * grad log p``, plus an optional entropy bonus, where the reward is
the rank of the score among all scores told so far (in ``[0, 1]``, so the step size does not depend on
the objective's scale; failed and infeasible results rank lowest) and the baseline is an exponential
moving average of past rewards. Pure numpy, seeded by the strategy's generator.

Asynchronous search: the policy learns only from results, so pending candidates (asked here, or noted as
evaluated elsewhere) change nothing but the deduplication: they are never proposed again.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np

from .._validate import check_number
from ..errors import ConfigError
from ..results import Candidate, Result
from ..space import Architecture
from .base import Capabilities, Strategy, score_from_json, score_to_json
from .decisions import DecisionSpace, Step, rank_reward, softmax_of

__all__ = ["STRATEGY_CLASSES", "Reinforce"]




class Reinforce(Strategy):
    """REINFORCE with a factorised softmax policy over the decision sequence and a moving-average baseline.

    Args:
        learning_rate: step size on the logits (> 0); rewards lie in ``[0, 1]``.
        baseline_decay: decay of the exponential moving-average baseline, in ``[0, 1)`` (0: the baseline
            is the last reward).
        entropy_weight: weight of the entropy bonus (>= 0) that keeps the policy from collapsing.

    The defaults come from a sweep on NAS-Bench-201 CIFAR-10 (``valid_acc_200ep``, 300 queries;
    ``benchmarks/so_sweep.py --budget 300 CONFIGS``).

    Raises:
        ConfigError: a parameter is out of range.
    """

    name = "reinforce"
    capabilities = Capabilities()

    def __init__(self, space, objectives=None, constraints=(), seed=None, dedup=True,
                 learning_rate: float = 2.0, baseline_decay: float = 0.95, entropy_weight: float = 0.1) -> None:
        super().__init__(space, objectives, constraints, seed, dedup)
        self.learning_rate = check_number("learning_rate", learning_rate, 0.0, math.inf, True, True)
        self.baseline_decay = check_number("baseline_decay", baseline_decay, 0.0, 1.0, False, True)
        self.entropy_weight = check_number("entropy_weight", entropy_weight, 0.0, math.inf, False, True)
        self._dec = DecisionSpace(space)
        self._logits = [np.zeros(n) for n in self._dec.sizes]
        self._probs: list[np.ndarray | None] = [None] * len(self._logits)
        self._cdf: list[list[float] | None] = [None] * len(self._logits)
        self._baseline: float | None = None
        self._scores: list[float] = []  # every told score, sorted (for rank rewards)

    # --- policy ---------------------------------------------------------------------------------------
    def _distribution(self, slot: int, allowed: tuple[int, ...] | None) -> np.ndarray:
        """Probabilities of the allowed options of ``slot`` (all options when ``allowed`` is None)."""
        return softmax_of(self._logits[slot], self._probs, slot, allowed)

    def probabilities(self, slot: int) -> np.ndarray:
        """The policy's probabilities over the options of decision ``slot``, shape ``(n_options,)`` (slots
        are those of :class:`~archscout.strategies.decisions.DecisionSpace`; for a cell, slot ``e`` is edge
        ``e`` and the options are the cell's ops in order).

        Raises:
            IndexError: the space has no such slot.
        """
        return self._distribution(slot, None).copy()

    def _propose(self) -> Architecture:
        draws = self.rng.random(self._dec.n_slots + 1)

        def choose(slot: int, n: int, allowed: tuple[int, ...] | None, steps: list[Step]) -> int:
            if allowed is None:
                cdf = self._cdf[slot]
                if cdf is None:
                    cdf = self._cdf[slot] = np.cumsum(self._distribution(slot, None)).tolist()
            else:
                cdf = np.cumsum(self._distribution(slot, allowed)).tolist()
            j = min(bisect.bisect_right(cdf, draws[len(steps)] * cdf[-1]), len(cdf) - 1)
            return j if allowed is None else allowed[j]

        arch, _ = self._dec.run(choose)
        return arch

    # --- learning -------------------------------------------------------------------------------------
    def _reward(self, score: float) -> float:
        """Rank of ``score`` among all told scores (itself included), in ``[0, 1]``; ties share a rank."""
        return rank_reward(self._scores, score)

    def _observe(self, candidate: Candidate, result: Result) -> None:
        reward = self._reward(self.score(result))
        baseline = reward if self._baseline is None else self._baseline
        advantage = reward - baseline
        self._baseline = self.baseline_decay * baseline + (1.0 - self.baseline_decay) * reward
        steps = self._dec.decode(candidate.arch)
        if steps is None:  # outside the decisions' values: nothing to credit
            return
        for slot, i, allowed in steps:
            p = self._distribution(slot, allowed)
            j = i if allowed is None else allowed.index(i)
            grad = -advantage * p
            grad[j] += advantage
            if self.entropy_weight:
                logp = np.log(np.maximum(p, 1e-300))
                entropy = -float(p @ logp)
                grad -= self.entropy_weight * p * (logp + entropy)
            if allowed is None:
                self._logits[slot] += self.learning_rate * grad
            else:
                self._logits[slot][list(allowed)] += self.learning_rate * grad
            self._probs[slot] = self._cdf[slot] = None

    # --- config and state -----------------------------------------------------------------------------
    def _params(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "baseline_decay": self.baseline_decay,
                "entropy_weight": self.entropy_weight}

    def _state(self) -> dict[str, Any]:
        return {
            "logits": [z.tolist() for z in self._logits],
            "baseline": self._baseline,
            "scores": [score_to_json(s) for s in self._scores],
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        logits = state["logits"]
        if len(logits) != len(self._logits) or any(len(z) != len(w) for z, w in zip(logits, self._logits)):
            raise ConfigError("the saved REINFORCE policy does not match this space's decisions")
        self._logits = [np.array(z, dtype=float) for z in logits]
        self._probs = [None] * len(self._logits)
        self._cdf = [None] * len(self._logits)
        self._baseline = None if state["baseline"] is None else float(state["baseline"])
        self._scores = [score_from_json(s) for s in state["scores"]]


STRATEGY_CLASSES = [Reinforce]
