"""Any archscout space + evaluator as a ``gymnasium.Env``, in two shapes.

- :class:`DesignEnv`: one design per episode. The action is a whole architecture, ``MultiDiscrete(sizes)``
  over the space's decisions (:class:`~archscout.strategies.decisions.DecisionSpace`); ``step`` evaluates it
  and ends the episode. ArchGym's shape, for black-box agents (random walk, GA, BO, ACO) and one-step RL.
- :class:`DecisionEnv`: one decision per step, for sequential RL agents: the observation tells which decision
  comes next and which of its options are allowed; the reward comes with the last decision.

**Decisions and the action mapping.** Every architecture of a space is a walk through discrete decisions (a
cell's edges, a stage's depth then its layers' kernels, ...); slot ``k`` has ``sizes[k]`` options, and which
slots a walk meets may depend on earlier choices (define-by-run: a shallower stage skips its deeper layers).
Some steps allow only some options (so that every walk ends in a valid architecture). An action ``a`` at a
step with allowed options ``A`` (all ``n`` options when the step is unrestricted) chooses ``a`` when ``a`` is
in ``A``, else ``A[a % len(A)]``: deterministic, every action valid, every allowed option reachable by its own
index. Slots the walk does not meet ignore their action. Spaces with floats or very large integer ranges are
decided over a grid or a fixed sample of their values (see ``DecisionSpace``).

**Rewards and failures.** The reward is a :class:`~archscout.gym.Reward` of the evaluation's metrics. A
failing evaluation (an exception, non-numeric or non-finite metrics, a target metric missing) gives
``reward.fail_reward``, ``info["error"]`` says why, and the environment keeps working.

**Records.** Every evaluated design is recorded as one trial of :attr:`study` (in memory, or durable with a
path / ``sqlite:///`` URL as ``storage``), with the evaluator's metrics plus ``reward``; failures as failed
trials. A design evaluated twice is evaluated and recorded twice (no cache: an evaluator may be noisy; wrap it
in a cache when it is not). :attr:`last_trial` is the latest recorded trial. The trial number is deliberately
not in ``info``: it grows across episodes, and ``info`` must be a function of the seed and actions
(gymnasium's ``check_env`` checks it).

Observations are ``float32``; metrics keep their exact values in ``info["metrics"]`` and in the study.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..errors import ConfigError, InvalidArchitectureError
from ..results import Trial
from ..space import Architecture, Space, create_space
from ..space.decisions import Ask
from ..storage import Storage
from ..strategies.decisions import DecisionSpace
from .recording import Outcome, Recorder, as_metric_function, describe_evaluator
from .rewards import Reward

__all__ = ["DecisionEnv", "DesignEnv", "map_action"]

_RENDER_MODES = ["ansi"]
_OBS_MAX = float(np.finfo(np.float32).max)


def map_action(a: int, n: int, allowed: tuple[int, ...] | None) -> int:
    """The option chosen by action ``a`` at a step with ``n`` options, of which ``allowed`` (``None``: all):
    ``a`` itself when allowed, else ``allowed[a % len(allowed)]`` (``a % n`` when all are allowed)."""
    if allowed is None:
        return a if 0 <= a < n else a % n
    if a in allowed:
        return a
    return allowed[a % len(allowed)]


class _SpaceEnv(gym.Env[Any, Any]):
    """What both shapes share: the space and its decisions, the reward, the evaluator and the study."""

    metadata: dict[str, Any] = {"render_modes": _RENDER_MODES}  # noqa: RUF012 - gymnasium declares it so
    _kind = ""

    def __init__(self, space: Space | str, evaluator: Any, reward: Reward | Mapping[str, Any],
                 storage: str | Storage | None = None, study_name: str = "gym", render_mode: str | None = None) -> None:
        if isinstance(space, str):
            space = create_space(space)
        if not isinstance(space, Space):
            raise ConfigError(f"space must be a Space or a registered space name, got {space!r}")
        if not isinstance(reward, Reward):
            if not isinstance(reward, Mapping):
                raise ConfigError(f"reward must be a Reward or its config dict, got {reward!r}")
            reward = Reward.from_config(reward)
        if render_mode is not None and render_mode not in _RENDER_MODES:
            raise ConfigError(f"render_mode must be None or one of {_RENDER_MODES}, got {render_mode!r}")
        self.space: Space = space
        self.decisions = DecisionSpace(space)
        if not self.decisions.sizes:
            raise ConfigError("the space holds a single architecture: there is nothing to decide")
        self.reward: Reward = reward
        self.render_mode = render_mode
        evaluate = as_metric_function(evaluator)
        self._recorder = Recorder(space, evaluate, reward, storage, study_name,
                                  {"env": self._kind, "reward": reward.to_config(),
                                   "evaluator": describe_evaluator(evaluator)})
        self.last_trial: Trial | None = None
        self._last: Outcome | None = None

    @property
    def study(self) -> Any:
        """The :class:`~archscout.Study` recording every evaluated design (objectives: ``reward`` to maximise,
        then the reward's target metrics)."""
        return self._recorder.study

    @property
    def n_slots(self) -> int:
        """The number of decision slots of the space."""
        return self.decisions.n_slots

    def _evaluate(self, arch: Architecture) -> Outcome:
        out = self._recorder.evaluate(arch)
        self.last_trial = out.trial
        self._last = out
        return out

    def _metric_obs(self, out: Outcome | None) -> np.ndarray:
        """The reward's target metrics (``float32``, shape ``(n_targets,)``); zeros when ``out`` is None or
        failed."""
        if out is None or out.error is not None:
            return np.zeros(len(self.reward.metrics), dtype=np.float32)
        values = np.array([out.metrics[m] for m in self.reward.metrics], dtype=np.float64)
        return np.clip(values, -_OBS_MAX, _OBS_MAX).astype(np.float32)

    def render(self) -> str | None:
        """``"ansi"``: the last design, its reward and metrics, as text; ``None`` without a render mode."""
        if self.render_mode != "ansi":
            return None
        out = self._last
        if out is None:
            return "no design evaluated yet\n"
        text = f"{out.arch}\nreward={out.reward:.6g} met={out.met} metrics={out.info()['metrics']}\n"
        return text if out.error is None else text + f"error: {out.error.strip().splitlines()[-1]}\n"

    def close(self) -> None:
        """Close the study's storage (idempotent)."""
        self._recorder.close()


class DesignEnv(_SpaceEnv):
    """One design per episode: the action is a whole architecture; ``step`` evaluates it and terminates.

    - action: ``MultiDiscrete(sizes)``, one entry per decision slot of the space (see the module docstring for
      how an action becomes an architecture; :meth:`arch_of` and :meth:`action_of` convert both ways);
    - observation: ``Box(-F, F, (n_targets,), float32)`` with ``F`` the largest float32: the evaluated values
      of the reward's target metrics (clipped to ``[-F, F]``), in the order of ``reward.targets``; zeros after
      ``reset`` and after a failed evaluation;
    - ``step`` returns ``(obs, reward, terminated=True, truncated=False, info)`` with ``info["arch"]`` (the
      architecture string), ``info["metrics"]`` (every metric of the evaluator), ``info["met"]`` (all targets
      met) and ``info["error"]`` for a failed evaluation. ``step`` may be called again without ``reset``:
      each call is one design.

    Args:
        space: a :class:`~archscout.Space` or a registered space name.
        evaluator: an object with ``evaluate(arch, fidelity=None) -> {metric: value}``, a cost model (its metric
            is its ``name``), a ``{metric: cost model}`` mapping, or a function ``arch -> {metric: value}``.
        reward: a :class:`~archscout.gym.Reward` or its config dict.
        storage: where the study is recorded: ``None`` (in memory), a file path or ``sqlite:///...`` URL, or a
            :class:`~archscout.Storage`.
        study_name: the study's name; an existing study of that name and settings is joined.
        render_mode: ``None`` or ``"ansi"``.

    Raises:
        ConfigError: a bad space, evaluator, reward or render mode, a space with a single architecture, or a
            storage holding a study of that name with other settings.
        StorageError: the storage cannot be opened.
    """

    _kind = "design"

    def __init__(self, space: Space | str, evaluator: Any, reward: Reward | Mapping[str, Any],
                 storage: str | Storage | None = None, study_name: str = "gym", render_mode: str | None = None) -> None:
        super().__init__(space, evaluator, reward, storage, study_name, render_mode)
        self.action_space = spaces.MultiDiscrete(np.array(self.decisions.sizes, dtype=np.int64))
        self.observation_space = spaces.Box(-_OBS_MAX, _OBS_MAX, shape=(len(self.reward.metrics),), dtype=np.float32)

    def arch_of(self, action: Any) -> Architecture:
        """The architecture an action stands for (see the module docstring for the mapping).

        Raises:
            InvalidArchitectureError: ``action`` is not an integer array of shape ``(n_slots,)``.
        """
        a = np.asarray(action)
        if a.shape != (self.n_slots,) or not np.issubdtype(a.dtype, np.integer):
            raise InvalidArchitectureError(
                f"an action must be an integer array of shape ({self.n_slots},), got {a.dtype} of shape {a.shape}")
        values = [int(x) for x in a]
        arch, _ = self.decisions.run(lambda slot, n, allowed, steps: map_action(values[slot], n, allowed))
        return arch

    def action_of(self, arch: Architecture | str) -> np.ndarray:
        """The action that stands for ``arch`` (an architecture or its string): shape ``(n_slots,)``, ``int64``;
        slots its walk does not meet are 0. ``arch_of(action_of(arch)) == arch``.

        Raises:
            InvalidArchitectureError: ``arch`` is not in the space, or uses a value outside the decisions' grid
                or sample (a float or a large integer range).
        """
        arch = self.space.validate(arch)
        steps = self.decisions.decode(arch)
        if steps is None:
            raise InvalidArchitectureError(f"{arch} uses a value outside the values the space's decisions range "
                                           "over (a float or a large integer range), so no action stands for it")
        out = np.zeros(self.n_slots, dtype=np.int64)
        for slot, i, _allowed in steps:
            out[slot] = i
        return out

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode: zeros and an empty info (the environment has no randomness of its own; ``seed``
        seeds :attr:`np_random` as gymnasium requires)."""
        super().reset(seed=seed)
        return self._metric_obs(None), {}

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Evaluate the architecture of ``action``, record it, and end the episode."""
        out = self._evaluate(self.arch_of(action))
        return self._metric_obs(out), out.reward, True, False, out.info()


class DecisionEnv(_SpaceEnv):
    """One decision per step: an episode walks the space's decisions and evaluates the design at the end.

    - action: ``Discrete(max(sizes))``, the option of the current decision; an option that is not allowed
      here (or beyond this decision's options) is mapped onto the allowed ones (see the module docstring);
    - observation: a ``Dict`` with ``"slot"`` (``Discrete(n_slots + 1)``: the slot of the current decision,
      ``n_slots`` once the episode is over), ``"choices"`` (``MultiDiscrete(sizes + 1)``: per slot ``0`` when
      undecided, ``k + 1`` when option ``k`` was chosen) and ``"action_mask"`` (``MultiBinary(max(sizes))``,
      ``int8``: 1 for the options allowed now; all 0 once the episode is over). :meth:`action_masks` gives the
      mask as booleans (the convention of sb3-contrib's ``MaskablePPO``);
    - reward: 0 until the last decision, then the design's reward, with ``terminated=True`` and the info of
      :class:`DesignEnv` (``arch``, ``metrics``, ``met``, ``error``); an empty info before that.

    The number of steps varies with the design when the space decides by run (e.g. stage depths). Arguments
    and errors as for :class:`DesignEnv`.
    """

    _kind = "decision"

    def __init__(self, space: Space | str, evaluator: Any, reward: Reward | Mapping[str, Any],
                 storage: str | Storage | None = None, study_name: str = "gym", render_mode: str | None = None) -> None:
        super().__init__(space, evaluator, reward, storage, study_name, render_mode)
        sizes = np.array(self.decisions.sizes, dtype=np.int64)
        self.n_options = int(sizes.max())
        self.action_space = spaces.Discrete(self.n_options)
        self.observation_space = spaces.Dict({
            "slot": spaces.Discrete(self.n_slots + 1),
            "choices": spaces.MultiDiscrete(sizes + 1),
            "action_mask": spaces.MultiBinary(self.n_options),
        })
        self._walk: Generator[Ask, int, Architecture] | None = None
        self._ask: Ask | None = None
        self._choices = np.zeros(self.n_slots, dtype=np.int64)

    def _obs(self) -> dict[str, Any]:
        mask = np.zeros(self.n_options, dtype=np.int8)
        if self._ask is None:
            slot = self.n_slots
        else:
            slot, n, allowed = self._ask
            mask[list(range(n)) if allowed is None else list(allowed)] = 1
        return {"slot": np.int64(slot), "choices": self._choices.copy(), "action_mask": mask}

    def action_masks(self) -> np.ndarray:
        """The options allowed now, shape ``(max(sizes),)``, ``bool`` (all False once the episode is over)."""
        return self._obs()["action_mask"].astype(bool)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start a new design: nothing decided, the first decision pending."""
        super().reset(seed=seed)
        if self._walk is not None:
            self._walk.close()
        self._choices = np.zeros(self.n_slots, dtype=np.int64)
        self._walk = self.decisions.walk()
        self._ask = next(self._walk)  # the space has slots, so every walk decides at least once
        return self._obs(), {}

    def step(self, action: Any) -> tuple[dict[str, Any], SupportsFloat, bool, bool, dict[str, Any]]:
        """Take the current decision; after the last one, evaluate and record the design.

        Raises:
            gymnasium.error.ResetNeeded: no episode is running (call ``reset`` first).
            InvalidArchitectureError: ``action`` is not an integer.
        """
        if self._walk is None or self._ask is None:
            raise gym.error.ResetNeeded("call reset() before step(), and again after the episode has ended")
        a = np.asarray(action)
        if a.shape not in ((), (1,)) or not np.issubdtype(a.dtype, np.integer):
            raise InvalidArchitectureError(f"an action must be one integer, got {action!r}")
        slot, n, allowed = self._ask
        i = map_action(int(a.reshape(())), n, allowed)
        self._choices[slot] = i + 1
        try:
            self._ask = self._walk.send(i)
        except StopIteration as stop:
            self._ask, self._walk = None, None
            out = self._evaluate(stop.value)
            return self._obs(), out.reward, True, False, out.info()
        return self._obs(), 0.0, False, False, {}
