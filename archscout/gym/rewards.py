"""ArchGym's reward forms, as one value class: :class:`Reward`.

ArchGym (Krishnan et al., ISCA 2023; https://github.com/srivatsankrishnan/oss-arch-gym) turns the metrics of a
simulated design into a reward in three ways, one per simulator family. :class:`Reward` reproduces each of
them over any metrics, with the sign convention of gymnasium (a larger reward is better):

``"distance"`` (DRAMGym, ``arch_gym/envs/DRAMEnv_RL.py``, ``calculate_reward``)
    ArchGym: ``target / abs(value - target)`` per metric (power, latency), their product for the joint form,
    capped at ``reward_cap = 1e3``. Here::

        reward = min(cap, prod_m (|t_m| / |v_m - t_m|) ** w_m)

    Larger when every metric is closer to its target, in either direction (the reward aims at an operating
    point; use ``"hinge"`` to reward *meeting* targets). A metric exactly on target gives ``cap``.

``"hinge"`` (TimeloopGym, ``arch_gym/envs/TimeloopEnv.py``, ``calculate_reward``)
    ArchGym: ``max((value - target) / target, 0)`` per metric (energy, area, cycles), summed for the joint
    form, returned as a *cost* its agents minimise (the joint form starts from ``1e-3``, and a zero cost
    becomes ``1e-5`` because ACO cannot take 0). Here the same relative violations, only violations counting,
    with the direction of each metric, negated so that larger is better and without those offsets::

        reward = -sum_m w_m * max(0, (v_m - t_m) / |t_m|)    for a metric to minimise
        reward = -sum_m w_m * max(0, (t_m - v_m) / |t_m|)    for a metric to maximise

    ``0`` exactly when every target is met, negative otherwise.

``"reciprocal"`` (MaestroGym, ``arch_gym/envs/MasteroEnv.py``, ``calculate_reward``)
    ArchGym: ``1 / latency`` (or ``1 / area``; ``1 / (latency * energy * 1e4)`` for energy, the reciprocal of
    an energy-delay product). Here the reciprocal of the weighted product of the metrics to minimise, times
    the metrics to maximise::

        reward = prod_{m: max} v_m ** w_m / prod_{m: min} v_m ** w_m

    so one ``"min"`` metric gives ``1 / v`` and latency plus energy gives ``1 / EDP``. Every metric must be
    positive; the targets only serve :meth:`Reward.met`.

A failed evaluation gets :attr:`Reward.fail_reward`; its default follows ArchGym where ArchGym has one: ``-1``
for ``"reciprocal"`` (MaestroGym's value for a failed run), ``-500`` per unit of weight for ``"hinge"``
(TimeloopGym's failed-run cost ``500 * n_targets``, negated), and ``0`` for ``"distance"`` (the infimum of
that reward; DRAMGym has no failure value).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import ArchscoutError, ConfigError

__all__ = ["DEFAULT_CAP", "REWARD_KINDS", "Reward", "RewardError"]

REWARD_KINDS = ("distance", "hinge", "reciprocal")
"""The reward forms, see the module docstring."""

DEFAULT_CAP = 1e3
"""The cap of the ``"distance"`` reward (DRAMGym's ``reward_cap``)."""

_DIRECTIONS = ("min", "max")
_KEYS = ("kind", "targets", "directions", "weights", "cap", "fail_reward")


class RewardError(ArchscoutError, ValueError):
    """Metrics cannot be turned into a reward: a target metric is missing, not a finite number, or (for the
    reciprocal reward) not positive."""


def _number(what: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{what} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ConfigError(f"{what} must be finite, got {value!r}")
    return out


class Reward:
    """A reward computed from an evaluation's metrics, in one of ArchGym's forms (see the module docstring).

    Args:
        kind: ``"distance"``, ``"hinge"`` or ``"reciprocal"``.
        targets: ``{metric: target value}``, at least one; their order is the order of the metrics in a
            :class:`~archscout.gym.DesignEnv` observation. ``"distance"`` and ``"hinge"`` normalise by
            ``|target|``, so their targets must be non-zero.
        directions: ``{metric: "min" | "max"}``; metrics not named are ``"min"`` (costs such as latency).
        weights: ``{metric: weight > 0}`` (default 1 each): exponents of the ``"distance"`` and
            ``"reciprocal"`` products, coefficients of the ``"hinge"`` sum.
        cap: the largest ``"distance"`` reward (default 1e3, DRAMGym's ``reward_cap``); > 0.
        fail_reward: the reward of a failed evaluation (default: see the module docstring).

    Raises:
        ConfigError: an unknown kind, no targets, a zero target where the form divides by it, a direction
            other than ``"min"``/``"max"``, a non-positive weight or cap, a direction or weight for a metric
            without a target, or a non-finite number.
    """

    def __init__(self, kind: str, targets: Mapping[str, float], directions: Mapping[str, str] | None = None,
                 weights: Mapping[str, float] | None = None, cap: float = DEFAULT_CAP,
                 fail_reward: float | None = None) -> None:
        if kind not in REWARD_KINDS:
            raise ConfigError(f"reward kind must be one of {list(REWARD_KINDS)}, got {kind!r}")
        if not isinstance(targets, Mapping) or not targets:
            raise ConfigError(f"a reward needs targets, a non-empty mapping {{metric: value}}, got {targets!r}")
        self.kind: str = kind
        self.targets: dict[str, float] = {}
        for m, t in targets.items():
            if not isinstance(m, str) or not m.strip() or m != m.strip():
                raise ConfigError(f"target metric names must be non-empty strings without surrounding spaces, "
                                  f"got {m!r}")
            self.targets[m] = _number(f"target of {m!r}", t)
            if kind != "reciprocal" and self.targets[m] == 0:
                raise ConfigError(f"the {kind!r} reward divides by the target, so the target of {m!r} cannot be 0")
        self.directions: dict[str, str] = dict.fromkeys(self.targets, "min")
        for m, d in self._per_metric("directions", directions).items():
            if d not in _DIRECTIONS:
                raise ConfigError(f"direction of {m!r} must be 'min' or 'max', got {d!r}")
            self.directions[m] = d
        self.weights: dict[str, float] = dict.fromkeys(self.targets, 1.0)
        for m, w in self._per_metric("weights", weights).items():
            self.weights[m] = _number(f"weight of {m!r}", w)
            if self.weights[m] <= 0:
                raise ConfigError(f"weight of {m!r} must be > 0, got {w!r}")
        self.cap: float = _number("cap", cap)
        if self.cap <= 0:
            raise ConfigError(f"cap must be > 0, got {cap!r}")
        if fail_reward is None:
            fail_reward = {"distance": 0.0, "hinge": -500.0 * sum(self.weights.values()), "reciprocal": -1.0}[kind]
        self.fail_reward: float = _number("fail_reward", fail_reward)

    def _per_metric(self, what: str, given: Mapping[str, Any] | None) -> Mapping[str, Any]:
        if given is None:
            return {}
        if not isinstance(given, Mapping):
            raise ConfigError(f"{what} must be a mapping {{metric: value}}, got {given!r}")
        unknown = sorted(str(m) for m in given if m not in self.targets)
        if unknown:
            raise ConfigError(f"{what} name metrics without a target: {unknown}; the targets are {list(self.targets)}")
        return given

    @property
    def metrics(self) -> tuple[str, ...]:
        """The target metrics, in the order the targets were given."""
        return tuple(self.targets)

    # --- evaluation -------------------------------------------------------------------------------------
    def values(self, metrics: Mapping[str, Any]) -> dict[str, float]:
        """The target metrics of ``metrics`` as floats.

        Raises:
            RewardError: a target metric is missing or not a finite number.
        """
        if not isinstance(metrics, Mapping):
            raise RewardError(f"metrics must be a mapping of names to numbers, got {type(metrics).__name__}")
        out: dict[str, float] = {}
        for m in self.targets:
            if m not in metrics:
                raise RewardError(f"metric {m!r} of the reward's targets is missing from the evaluation "
                                  f"(it gave {sorted(str(k) for k in metrics)})")
            v = metrics[m]
            try:
                f = float(v) if not isinstance(v, bool) else math.nan
            except (TypeError, ValueError):
                f = math.nan
            if not math.isfinite(f):
                raise RewardError(f"metric {m!r} is {v!r}, not a finite number")
            out[m] = f
        return out

    def __call__(self, metrics: Mapping[str, Any]) -> float:
        """The reward of an evaluation's ``metrics`` (other metrics are ignored); larger is better.

        Raises:
            RewardError: a target metric is missing or not finite, or (``"reciprocal"``) not positive.
        """
        v = self.values(metrics)
        if self.kind == "distance":
            log_r = 0.0  # in logs, so that a tiny gap cannot overflow the product
            for m, t in self.targets.items():
                gap = abs(v[m] - t)
                if gap == 0:  # on target: an infinite factor, capped
                    return self.cap
                log_r += self.weights[m] * (math.log(abs(t)) - math.log(gap))
            return self.cap if log_r >= math.log(self.cap) else math.exp(log_r)
        if self.kind == "hinge":
            total = 0.0
            for m, t in self.targets.items():
                excess = (v[m] - t) if self.directions[m] == "min" else (t - v[m])
                total += self.weights[m] * max(0.0, excess / abs(t))
            return 0.0 - total  # not -0.0 when every target is met
        log_r = 0.0  # reciprocal, in logs so that large products neither overflow nor underflow early
        for m in self.targets:
            if v[m] <= 0:
                raise RewardError(f"the reciprocal reward needs positive metrics, but {m!r} is {v[m]!r}")
            sign = 1.0 if self.directions[m] == "max" else -1.0
            log_r += sign * self.weights[m] * math.log(v[m])
        return math.exp(log_r) if log_r < 709.0 else math.inf

    def met(self, metrics: Mapping[str, Any]) -> bool:
        """Whether every target is met: ``value <= target`` for a metric to minimise, ``>=`` to maximise.

        Raises:
            RewardError: a target metric is missing or not finite.
        """
        v = self.values(metrics)
        return all(v[m] <= t if self.directions[m] == "min" else v[m] >= t for m, t in self.targets.items())

    # --- config -----------------------------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        """A JSON-safe dict that :meth:`from_config` turns back into an equal reward."""
        return {"kind": self.kind, "targets": dict(self.targets), "directions": dict(self.directions),
                "weights": dict(self.weights), "cap": self.cap, "fail_reward": self.fail_reward}

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Reward:
        """Rebuild a reward from :meth:`to_config` (missing optional keys take their defaults).

        Raises:
            ConfigError: not a mapping, an unknown key, or invalid settings.
        """
        if isinstance(cfg, Reward):
            return cfg
        if not isinstance(cfg, Mapping) or "kind" not in cfg or "targets" not in cfg:
            raise ConfigError(f"a reward config must be a mapping with 'kind' and 'targets', got {cfg!r}")
        unknown = sorted(str(k) for k in cfg if k not in _KEYS)
        if unknown:
            raise ConfigError(f"unknown reward settings {unknown}; the settings are {list(_KEYS)}")
        return cls(**{k: cfg[k] for k in _KEYS if k in cfg})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Reward):
            return NotImplemented
        return self.to_config() == other.to_config()

    __hash__ = None  # type: ignore[assignment]  # mutable dict settings: not hashable

    def __repr__(self) -> str:
        return (f"Reward(kind={self.kind!r}, targets={self.targets!r}, directions={self.directions!r}, "
                f"weights={self.weights!r}, cap={self.cap!r}, fail_reward={self.fail_reward!r})")
