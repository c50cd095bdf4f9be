"""Two ways to drive the gym environments: an archscout strategy, or a plain gymnasium agent.

Both return one record per evaluated design (a dict: ``episode``, ``trial``, ``arch``, ``metrics``,
``reward``, ``met``, and ``error`` for a failed evaluation), and the environment's study holds the same
designs, so samples-to-target is ``next(i for i, r in enumerate(records) if r["met"]) + 1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._validate import check_int
from ..errors import ConfigError, SpaceExhaustedError
from ..objectives import Objective
from ..results import Result, TrialState
from ..space.decisions import decisions_of
from ..strategies import Strategy, create_strategy
from .envs import DecisionEnv, DesignEnv
from .recording import REWARD_METRIC

__all__ = ["run_random_agent", "run_strategy"]


def _record(env: DesignEnv | DecisionEnv, episode: int, reward: float, info: Mapping[str, Any]) -> dict[str, Any]:
    trial = env.last_trial
    out = {"episode": episode, "trial": None if trial is None else trial.number, "arch": info["arch"],
           "metrics": dict(info["metrics"]), "reward": float(reward), "met": bool(info["met"])}
    if "error" in info:
        out["error"] = info["error"]
    return out


def _check_seed(seed: Any) -> int | None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ConfigError(f"seed must be a non-negative integer or None, got {seed!r}")
    return None if seed is None else int(seed)


def _make_strategy(env: DesignEnv, strategy: Strategy | str | Mapping[str, Any], seed: int | None) -> Strategy:
    if isinstance(strategy, str):
        strategy = {"name": strategy}
    if isinstance(strategy, Mapping):
        if "name" not in strategy:
            raise ConfigError(f"a strategy config needs a 'name', got {dict(strategy)!r}")
        params = {k: v for k, v in strategy.items() if k != "name"}
        return create_strategy(str(strategy["name"]), env.space, objectives=[Objective(REWARD_METRIC, "max")],
                               seed=seed, **params)
    if not isinstance(strategy, Strategy):
        raise ConfigError(f"strategy must be a Strategy, a registered strategy name or {{'name': ...}}, "
                          f"got {strategy!r}")
    if strategy.space.to_config() != env.space.to_config():
        raise ConfigError("the strategy searches another space than the environment's; create it on env.space")
    known = {REWARD_METRIC, *env.reward.metrics}
    unknown = sorted(o.name for o in strategy.objectives if o.name not in known)
    if unknown:
        raise ConfigError(f"the strategy optimises {unknown}, which the environment does not report; use "
                          f"objectives among {sorted(known)} (e.g. Objective('reward', 'max'))")
    return strategy


def run_strategy(env: DesignEnv, strategy: Strategy | str | Mapping[str, Any], budget: int,
                 seed: int | None = None) -> list[dict[str, Any]]:
    """Let an archscout strategy drive a :class:`DesignEnv`: ``ask`` an architecture, turn it into an action
    (``env.action_of``), ``env.step`` it, and ``tell`` the strategy the metrics and the reward.

    Args:
        env: the environment (its study records every step).
        strategy: a :class:`~archscout.Strategy` created on ``env.space`` (its objectives among ``reward`` and
            the reward's target metrics), or a registered name (``"rea"``, ``"random"``, ...) or
            ``{"name": ..., **params}``, created on ``env.space`` to maximise ``reward``.
        budget: designs to evaluate (>= 1); fewer when the strategy runs out of new architectures.
        seed: seeds a strategy created here and the first ``env.reset``.

    Returns:
        one record per step, in order (see the module docstring).

    Raises:
        ConfigError: a bad budget, seed or strategy, or a space whose decisions do not cover every architecture
            (a float or a large integer range: the strategy could propose what no action stands for).
    """
    if not isinstance(env, DesignEnv):
        raise ConfigError(f"run_strategy drives a DesignEnv (one design per step), got {type(env).__name__}")
    budget = check_int("budget", budget, 1)
    seed = _check_seed(seed)
    inexact = [n for n, p in env.space.params.items() if not decisions_of(p).exact]
    if inexact:
        raise ConfigError(f"parameters {inexact} are decided over a grid or a sample of their values, so a strategy "
                          "may propose architectures no action stands for; drive the environment with an agent")
    strat = _make_strategy(env, strategy, seed)
    records: list[dict[str, Any]] = []
    env.reset(seed=seed)
    for step in range(budget):
        try:
            cand = strat.ask()
        except SpaceExhaustedError:
            break
        if step:
            env.reset()
        _obs, reward, _term, _trunc, info = env.step(env.action_of(cand.arch))
        if "error" in info:
            result = Result(TrialState.FAILED, {}, str(info["error"]))
        else:
            result = Result(TrialState.COMPLETE, {**info["metrics"], REWARD_METRIC: float(reward)})
        strat.tell(cand, result)
        records.append(_record(env, step, float(reward), info))
    return records


def run_random_agent(env: DesignEnv | DecisionEnv, episodes: int, seed: int | None = None) -> list[dict[str, Any]]:
    """A plain gymnasium agent: actions drawn by ``env.action_space.sample()`` (with the observation's
    ``action_mask`` for a :class:`DecisionEnv`, so that every option allowed is equally likely).

    ``seed`` seeds the first ``reset`` and the action space, so the same seed gives the same trajectory (with a
    deterministic evaluator).

    Returns:
        one record per episode, i.e. per evaluated design (see the module docstring).

    Raises:
        ConfigError: ``episodes`` is not an integer >= 1, or a bad seed.
    """
    if not isinstance(env, (DesignEnv, DecisionEnv)):
        raise ConfigError(f"run_random_agent drives a DesignEnv or a DecisionEnv, got {type(env).__name__}")
    episodes = check_int("episodes", episodes, 1)
    seed = _check_seed(seed)
    env.action_space.seed(seed)
    records: list[dict[str, Any]] = []
    for ep in range(episodes):
        obs, _info = env.reset(seed=seed if ep == 0 else None)
        while True:
            if isinstance(env, DecisionEnv):
                action = env.action_space.sample(mask=obs["action_mask"])
            else:
                action = env.action_space.sample()
            obs, reward, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                records.append(_record(env, ep, float(reward), info))
                break
    return records
