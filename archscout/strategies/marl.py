"""Multi-agent reinforcement learning over groups of design parameters (Krishnan et al., 2022, "Multi-Agent
Reinforcement Learning for Microprocessor Design Space Exploration").

The space's decision slots (:class:`~archscout.strategies.decisions.DecisionSpace`) are split among *agents*:
by default one agent per parameter (``split="slot"``: one per decision slot, e.g. one per edge of a cell), or
the groups of parameters the user names. Each agent owns an independent softmax per slot of its group (a
policy conditioned on nothing: the agents act together in one walk of the space, and an agent whose slots a
walk does not visit, e.g. behind a condition, does not act in it), its own baseline (an exponential moving
average of the shared reward over the results it acted in), its own learning rate and its own update. All
agents learn from one shared reward: the rank of the result's score among all scores told so far (in
``[0, 1]``, failed and infeasible results lowest, so the objective's scale does not matter), as
:mod:`~archscout.strategies.reinforce` does.

Updates (per agent, on the samples it acted in):

- ``algorithm="ppo"`` (default): the agent keeps its last samples (its actions, their log-probability under
  its policy when the result was told, and the advantage ``reward - baseline``); once it holds
  ``batch_size`` of them it takes ``epochs`` gradient steps on the clipped surrogate
  ``mean(min(r * A, clip(r, 1 - clip, 1 + clip) * A))`` plus ``entropy_weight`` times the policy's entropy,
  where ``r`` is the ratio of the probabilities of the agent's joint action (all its slots) under the new and
  the old policy, then clears the batch.
- ``algorithm="reinforce"``: a REINFORCE step with baseline on every result (``batch_size``, ``epochs`` and
  ``clip`` are not used).

Proposals draw each slot from ``(1 - epsilon) * policy + epsilon * uniform`` over the allowed options (the PPO
ratio uses the policy alone, treating the small uniform mix as exploration noise). Pure
numpy, seeded by the strategy's generator. Asynchronous search: pending candidates change nothing but the
deduplication (they are never proposed again); a result told late is credited under the policy of the moment
it is told.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validate import check_choice, check_int, check_number
from ..errors import ConfigError
from ..results import Candidate, Result
from ..space import Architecture, Space
from ..space.decisions import decisions_of
from .base import Capabilities, Strategy, score_from_json, score_to_json
from .decisions import DecisionSpace, Step, rank_reward, softmax_of

__all__ = ["STRATEGY_CLASSES", "Agent", "MultiAgent"]

ALGORITHMS = ("ppo", "reinforce")
SPLITS = ("param", "slot")
DEFAULT_RATES = {"ppo": 8.0, "reinforce": 2.0}

# One learning sample of an agent: (its steps in one walk, their summed log-probability when told, advantage).
_Sample = tuple[list[Step], float, float]


@dataclass(frozen=True)
class Agent:
    """One agent of a :class:`MultiAgent` strategy.

    Attributes:
        params: the names of the parameters of its group.
        slots: the decision slots it owns (those of its parameters, or one slot with ``split="slot"``).
        learning_rate: its step size on its logits.
    """

    params: tuple[str, ...]
    slots: tuple[int, ...]
    learning_rate: float


def parameter_slots(space: Space) -> dict[str, tuple[int, ...]]:
    """The decision slots of each parameter of ``space``, in declaration order, numbered as in
    :class:`~archscout.strategies.decisions.DecisionSpace` (a parameter's slots are consecutive)."""
    out: dict[str, tuple[int, ...]] = {}
    offset = 0
    for name, p in space.params.items():
        n = len(decisions_of(p).sizes)
        out[name] = tuple(range(offset, offset + n))
        offset += n
    return out


def check_groups(groups: Any, names: Sequence[str]) -> list[list[str]]:
    """``groups`` as a list of lists of parameter names, each parameter of ``names`` in exactly one group.

    Raises:
        ConfigError: not a list of non-empty lists of strings, or a name is unknown, duplicated or missing
            (the message names them).
    """
    if isinstance(groups, (str, bytes)) or not isinstance(groups, Sequence) or not groups:
        raise ConfigError(f"groups must be a non-empty list of lists of parameter names, got {groups!r}")
    out: list[list[str]] = []
    for g in groups:
        if (isinstance(g, (str, bytes)) or not isinstance(g, Sequence) or not g
                or not all(isinstance(n, str) for n in g)):
            raise ConfigError(f"each group must be a non-empty list of parameter names, got {g!r} in {groups!r}")
        out.append(list(g))
    flat = [n for g in out for n in g]
    known = set(names)
    unknown = sorted({n for n in flat if n not in known})
    duplicated = sorted({n for n in flat if flat.count(n) > 1})
    missing = [n for n in names if n not in set(flat)]
    problems = []
    if unknown:
        problems.append(f"unknown parameters {unknown}")
    if duplicated:
        problems.append(f"parameters in more than one group {duplicated}")
    if missing:
        problems.append(f"parameters in no group {missing}")
    if problems:
        raise ConfigError(f"groups must hold every parameter of the space ({list(names)}) exactly once: "
                          + "; ".join(problems))
    return out


class MultiAgent(Strategy):
    """Multi-agent policy gradient: one softmax policy per group of parameters, all trained on one shared
    rank reward (PPO-style clipped updates by default, or REINFORCE).

    Args:
        groups: the agents' parameters: ``None`` (one agent per parameter, or per decision slot with
            ``split="slot"``) or a list of lists of parameter names, every parameter of the space in exactly
            one list, e.g. ``[["rows", "cols"], ["dataflow", "sram"]]``.
        split: with ``groups=None``, ``"param"`` (one agent per parameter: a cell's edges or a stage's
            decisions form one agent) or ``"slot"`` (one agent per decision slot). Only ``"param"`` goes
            with explicit ``groups``.
        algorithm: ``"ppo"`` (clipped surrogate on batches) or ``"reinforce"`` (a step per result).
        learning_rate: step size on the logits (> 0), one for all agents or a list with one per agent (per
            group of ``groups``; per parameter in declaration order with ``split="param"``; per decision slot
            with ``split="slot"``); ``None``: 8.0 with PPO (its step is a mean over the batch), 2.0 with
            REINFORCE. Rewards lie in ``[0, 1]``.
        batch_size: samples an agent collects before a PPO update (>= 1).
        epochs: gradient steps per PPO update (>= 1).
        clip: PPO clipping range of the probability ratio, in ``(0, 1)``.
        entropy_weight: weight of the entropy bonus (>= 0) that keeps the policies from collapsing.
        epsilon: probability mass mixed uniformly over the allowed options when sampling, in ``[0, 1]``.
        baseline_decay: decay of each agent's moving-average baseline, in ``[0, 1)`` (0: the last reward).

    The defaults come from a small sweep on synthetic objectives (a separable one over four hardware
    parameters, 40-100 queries, and the NB201 cell objective of the test suite), not from a benchmark.

    Raises:
        ConfigError: a parameter is out of range, or the groups do not partition the space's parameters.
    """

    name = "marl"
    capabilities = Capabilities()

    def __init__(self, space, objectives=None, constraints=(), seed=None, dedup=True,
                 groups: Sequence[Sequence[str]] | None = None, split: str = "param", algorithm: str = "ppo",
                 learning_rate: float | Sequence[float] | None = None, batch_size: int = 4, epochs: int = 4,
                 clip: float = 0.2, entropy_weight: float = 0.01, epsilon: float = 0.05,
                 baseline_decay: float = 0.9) -> None:
        super().__init__(space, objectives, constraints, seed, dedup)
        self.split = check_choice("split", split, SPLITS)
        self.algorithm = check_choice("algorithm", algorithm, ALGORITHMS)
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.epochs = check_int("epochs", epochs, 1)
        self.clip = check_number("clip", clip, 0.0, 1.0, True, True)
        self.entropy_weight = check_number("entropy_weight", entropy_weight, 0.0, math.inf)
        self.epsilon = check_number("epsilon", epsilon, 0.0, 1.0)
        self.baseline_decay = check_number("baseline_decay", baseline_decay, 0.0, 1.0, False, True)
        self.groups = None if groups is None else check_groups(groups, space.names)
        if self.groups is not None and self.split != "param":
            raise ConfigError("split='slot' applies to groups=None only; with explicit groups, list the "
                              "parameters of each agent")
        self._dec = DecisionSpace(space)
        slots = parameter_slots(space)
        members: list[tuple[str, ...]]
        owned: list[tuple[int, ...]]
        if self.split == "slot":
            members = [(n,) for n in space.names for _ in slots[n]]
            owned = [(s,) for n in space.names for s in slots[n]]
        else:
            members = [(n,) for n in space.names] if self.groups is None else [tuple(g) for g in self.groups]
            owned = [tuple(sorted(s for n in g for s in slots[n])) for g in members]
        if learning_rate is None:
            rates = [DEFAULT_RATES[self.algorithm]] * len(members)
            self.learning_rate: float | list[float] | None = None
        else:
            rates = self._check_rates(learning_rate, len(members))
            self.learning_rate = list(rates) if isinstance(learning_rate, Sequence) else rates[0]
        self.agents: list[Agent] = [Agent(m, o, r) for m, o, r in zip(members, owned, rates)]
        self._owner = [0] * self._dec.n_slots
        for k, a in enumerate(self.agents):
            for s in a.slots:
                self._owner[s] = k
        self._logits = [np.zeros(n) for n in self._dec.sizes]
        self._probs: list[np.ndarray | None] = [None] * self._dec.n_slots
        self._baselines: list[float | None] = [None] * len(self.agents)
        self._buffers: list[list[_Sample]] = [[] for _ in self.agents]
        self._scores: list[float] = []  # every told score, sorted (for rank rewards)

    @staticmethod
    def _check_rates(learning_rate: Any, n_agents: int) -> list[float]:
        if isinstance(learning_rate, (str, bytes)) or not isinstance(learning_rate, Sequence):
            return [check_number("learning_rate", learning_rate, 0.0, math.inf, True)] * n_agents
        if len(learning_rate) != n_agents:
            raise ConfigError(f"learning_rate must be a number or a list of {n_agents} numbers (one per agent), "
                              f"got {len(learning_rate)}: {list(learning_rate)!r}")
        return [check_number(f"learning_rate[{k}]", r, 0.0, math.inf, True) for k, r in enumerate(learning_rate)]

    # --- policy ---------------------------------------------------------------------------------------
    def _distribution(self, slot: int, allowed: tuple[int, ...] | None) -> np.ndarray:
        """The policy's probabilities of the allowed options of ``slot`` (all when ``allowed`` is None)."""
        return softmax_of(self._logits[slot], self._probs, slot, allowed)

    def probabilities(self, slot: int) -> np.ndarray:
        """The policy's probabilities over the options of decision ``slot``, shape ``(n_options,)`` (without the
        ``epsilon`` mix; slots are those of :class:`~archscout.strategies.decisions.DecisionSpace`).

        Raises:
            IndexError: the space has no such slot.
        """
        return self._distribution(slot, None).copy()

    def _propose(self) -> Architecture:
        draws = self.rng.random(self._dec.n_slots + 1)

        def choose(slot: int, n: int, allowed: tuple[int, ...] | None, steps: list[Step]) -> int:
            p = self._distribution(slot, allowed)
            if self.epsilon:
                p = (1.0 - self.epsilon) * p + self.epsilon / len(p)
            cdf = np.cumsum(p)
            j = min(int(np.searchsorted(cdf, draws[len(steps)] * cdf[-1], side="right")), len(cdf) - 1)
            return j if allowed is None else allowed[j]

        arch, _ = self._dec.run(choose)
        return arch

    # --- learning -------------------------------------------------------------------------------------
    def _reward(self, score: float) -> float:
        """Rank of ``score`` among all told scores (itself included), in ``[0, 1]``; ties share a rank."""
        return rank_reward(self._scores, score)

    def _log_prob(self, steps: list[Step]) -> float:
        total = 0.0
        for slot, i, allowed in steps:
            p = self._distribution(slot, allowed)
            total += math.log(max(float(p[i if allowed is None else allowed.index(i)]), 1e-300))
        return total

    def _observe(self, candidate: Candidate, result: Result) -> None:
        reward = self._reward(self.score(result))
        steps = self._dec.decode(candidate.arch)
        if steps is None:  # outside the decisions' values: nothing to credit
            return
        by_agent: dict[int, list[Step]] = {}
        for step in steps:
            by_agent.setdefault(self._owner[step[0]], []).append(step)
        for k, own in by_agent.items():  # only the agents that acted in this walk
            b = self._baselines[k]
            baseline = reward if b is None else b
            advantage = reward - baseline
            self._baselines[k] = self.baseline_decay * baseline + (1.0 - self.baseline_decay) * reward
            if self.algorithm == "reinforce":
                self._step(k, [(own, 0.0, advantage)], clipped=False)
                continue
            self._buffers[k].append((own, self._log_prob(own), advantage))
            if len(self._buffers[k]) >= self.batch_size:
                for _ in range(self.epochs):
                    self._step(k, self._buffers[k], clipped=True)
                self._buffers[k] = []

    def _step(self, k: int, batch: list[_Sample], clipped: bool) -> None:
        """One gradient-ascent step of agent ``k`` on the mean over ``batch`` of its (clipped) surrogate plus the
        entropy bonus."""
        grads: dict[int, np.ndarray] = {}
        for steps, old_logp, advantage in batch:
            ratio = 1.0
            if clipped:
                ratio = math.exp(min(self._log_prob(steps) - old_logp, 50.0))
                if (advantage > 0 and ratio > 1.0 + self.clip) or (advantage < 0 and ratio < 1.0 - self.clip):
                    ratio = 0.0  # the clipped term is the minimum: no gradient
            for slot, i, allowed in steps:
                p = self._distribution(slot, allowed)
                j = i if allowed is None else allowed.index(i)
                g = -advantage * ratio * p
                g[j] += advantage * ratio
                if self.entropy_weight:
                    logp = np.log(np.maximum(p, 1e-300))
                    g -= self.entropy_weight * p * (logp - float(p @ logp))
                full = grads.setdefault(slot, np.zeros(len(self._logits[slot])))
                if allowed is None:
                    full += g
                else:
                    full[list(allowed)] += g
        rate = self.agents[k].learning_rate / len(batch)
        for slot, g in grads.items():
            self._logits[slot] += rate * g
            self._probs[slot] = None

    # --- config and state -----------------------------------------------------------------------------
    def _params(self) -> dict[str, Any]:
        return {"groups": self.groups, "split": self.split, "algorithm": self.algorithm,
                "learning_rate": self.learning_rate, "batch_size": self.batch_size, "epochs": self.epochs,
                "clip": self.clip, "entropy_weight": self.entropy_weight, "epsilon": self.epsilon,
                "baseline_decay": self.baseline_decay}

    def _state(self) -> dict[str, Any]:
        return {
            "logits": [z.tolist() for z in self._logits],
            "baselines": self._baselines,
            "buffers": [[[[[s, i, None if a is None else list(a)] for s, i, a in steps], old, adv]
                         for steps, old, adv in buf] for buf in self._buffers],
            "scores": [score_to_json(s) for s in self._scores],
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        logits, buffers = state["logits"], state["buffers"]
        if (len(logits) != len(self._logits) or any(len(z) != len(w) for z, w in zip(logits, self._logits))
                or len(buffers) != len(self.agents)):
            raise ConfigError("the saved multi-agent policy does not match this space's decisions and groups")
        self._logits = [np.array(z, dtype=float) for z in logits]
        self._probs = [None] * len(self._logits)
        self._baselines = [None if b is None else float(b) for b in state["baselines"]]
        self._buffers = [[([(int(s), int(i), None if a is None else tuple(int(x) for x in a)) for s, i, a in steps],
                           float(old), float(adv)) for steps, old, adv in buf] for buf in buffers]
        self._scores = [score_from_json(s) for s in state["scores"]]


STRATEGY_CLASSES = [MultiAgent]
