"""Gymnasium environments over any archscout space and evaluator (``pip install 'archscout[gym]'``).

- :class:`DesignEnv`: one design per episode (the action is a whole architecture, ``MultiDiscrete``);
- :class:`DecisionEnv`: one decision per step (``Discrete`` with an action mask), for sequential RL agents;
- :class:`Reward`: ArchGym's reward forms (``"distance"``, ``"hinge"``, ``"reciprocal"``) over any metrics;
- :func:`run_strategy` / :func:`run_random_agent`: drive an environment with an archscout strategy or a plain
  gymnasium agent.

Every evaluated design is recorded in the environment's study (``env.study``), so a run is also a dataset.
The environments are registered with gymnasium as ``archscout/Design-v0`` and ``archscout/Decision-v0``::

    gymnasium.make("archscout/Design-v0", space="nb201", evaluator=f, reward={"kind": "hinge", ...})

Importing this package imports gymnasium; ``import archscout`` does not.
"""

from __future__ import annotations

from ..errors import require

_gym = require("gymnasium", "gym")

from .drive import run_random_agent, run_strategy  # noqa: E402
from .envs import DecisionEnv, DesignEnv, map_action  # noqa: E402
from .recording import REWARD_METRIC, as_metric_function  # noqa: E402
from .rewards import REWARD_KINDS, Reward, RewardError  # noqa: E402

__all__ = [
    "ENV_IDS",
    "REWARD_KINDS",
    "REWARD_METRIC",
    "DecisionEnv",
    "DesignEnv",
    "Reward",
    "RewardError",
    "as_metric_function",
    "map_action",
    "run_random_agent",
    "run_strategy",
]

ENV_IDS = {"archscout/Design-v0": "archscout.gym.envs:DesignEnv",
           "archscout/Decision-v0": "archscout.gym.envs:DecisionEnv"}
"""The gymnasium ids of the environments (each takes ``space``, ``evaluator``, ``reward`` and the other
constructor arguments as ``gymnasium.make`` keyword arguments)."""


def _register() -> None:
    for env_id, entry_point in ENV_IDS.items():
        if env_id not in _gym.registry:
            _gym.register(id=env_id, entry_point=entry_point)


_register()
