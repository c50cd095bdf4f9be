"""What the gym environments share: turning any evaluator into metrics, and recording each design in a study.

An environment evaluates with :func:`as_metric_function`, which accepts an evaluator object, a cost model, a
``{metric: cost model}`` mapping or a plain function, and records every evaluation with a :class:`Recorder`:
a study (strategy ``replay`` without deduplication) in which each evaluated design is one trial, so that a run
of an agent is also a dataset that ``archscout.load_study`` reads back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError, StorageError
from ..execution import FunctionEvaluator, evaluation_outcome
from ..objectives import Objective
from ..results import Trial, TrialState
from ..space import Architecture, Space
from ..storage import Storage
from ..strategies.simple import Replay
from .rewards import Reward

__all__ = ["REWARD_METRIC", "Outcome", "Recorder", "as_metric_function", "describe_evaluator"]

REWARD_METRIC = "reward"
"""The name under which the reward is recorded with the metrics (an evaluator metric of that name is kept as
``evaluator_reward``)."""

MetricFunction = Callable[[Architecture], Mapping[str, Any]]


class _Adapter:
    """``evaluate(arch, fidelity)`` over a metric function (for :func:`evaluation_outcome`)."""

    def __init__(self, fn: MetricFunction) -> None:
        self.fn = fn

    def evaluate(self, arch: Architecture, fidelity: float | None = None) -> Mapping[str, Any]:
        return self.fn(arch)


def _cost_models_function(models: Mapping[str, Any]) -> MetricFunction:
    def metrics(arch: Architecture) -> dict[str, float]:
        return {name: float(model.predict(arch)) for name, model in models.items()}

    return metrics


def as_metric_function(evaluator: Any) -> MetricFunction:
    """``arch -> {metric: value}`` for any of the evaluators an environment accepts:

    - an object with ``evaluate(arch, fidelity=None) -> {metric: value}`` (called at full fidelity);
    - a cost model (``predict(arch) -> float``), whose metric is named by its ``name``;
    - a mapping ``{metric: cost model}`` of several;
    - a function ``f(arch) -> {metric: value}`` (or ``f(arch, fidelity)``).

    Raises:
        ConfigError: ``evaluator`` is none of these (or a cost model has no name, or a mapping holds a value
            without ``predict``).
    """
    if isinstance(evaluator, Mapping):
        if not evaluator:
            raise ConfigError("a mapping of cost models must name at least one {metric: cost model}")
        for name, model in evaluator.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(f"cost-model metric names must be non-empty strings, got {name!r}")
            if not callable(getattr(model, "predict", None)):
                raise ConfigError(f"cost model {name!r} needs a predict(arch) method, got {model!r}")
        return _cost_models_function(dict(evaluator))
    if callable(getattr(evaluator, "evaluate", None)):
        return lambda arch: evaluator.evaluate(arch, None)
    if callable(getattr(evaluator, "predict", None)):
        name = getattr(evaluator, "name", None)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"cost model {evaluator!r} has no name to call its metric; pass {{metric: model}}")
        return _cost_models_function({name: evaluator})
    if callable(evaluator):
        return FunctionEvaluator(evaluator).evaluate
    raise ConfigError(
        f"evaluator must have evaluate(arch, fidelity=None), be a cost model (predict(arch)), a mapping "
        f"{{metric: cost model}} or a function arch -> {{metric: value}}; got {evaluator!r}"
    )


def describe_evaluator(evaluator: Any) -> dict[str, Any]:
    """A JSON-safe description of ``evaluator`` for the study header (its ``to_config()`` when it has one)."""
    if isinstance(evaluator, Mapping):
        return {"cost_models": {str(n): describe_evaluator(m) for n, m in evaluator.items()}}
    to_config = getattr(evaluator, "to_config", None)
    if callable(to_config):
        try:
            cfg = to_config()
            if isinstance(cfg, Mapping):
                return {str(k): (v if isinstance(v, (str, int, float, bool, type(None))) else repr(v))
                        for k, v in cfg.items()}
        except Exception:  # noqa: BLE001 - a description is best effort
            pass
    return {"type": type(evaluator).__name__, "name": str(getattr(evaluator, "__qualname__", repr(evaluator)))}


class Outcome:
    """One evaluated design: its metrics (with ``reward``), reward, whether it met the targets, the error of
    a failed evaluation (``None`` otherwise) and the recorded trial."""

    __slots__ = ("arch", "error", "met", "metrics", "reward", "trial")

    def __init__(self, arch: Architecture, metrics: dict[str, float], reward: float, met: bool,
                 error: str | None, trial: Trial) -> None:
        self.arch, self.metrics, self.reward, self.met = arch, metrics, reward, met
        self.error, self.trial = error, trial

    def info(self) -> dict[str, Any]:
        """A fresh ``info`` dict: ``arch`` (string), ``metrics`` (the evaluator's), ``met`` and ``error`` when it
        failed."""
        out: dict[str, Any] = {"arch": str(self.arch),
                               "metrics": {k: v for k, v in self.metrics.items() if k != REWARD_METRIC},
                               "met": self.met}
        if self.error is not None:
            out["error"] = self.error
        return out


class Recorder:
    """Evaluates designs and records each one as a trial of a study.

    Args:
        space: the space of the designs.
        evaluate: ``arch -> {metric: value}`` (see :func:`as_metric_function`).
        reward: turns the metrics into the reward.
        storage: ``None`` (in memory), a file path or ``sqlite:///...`` URL, or a :class:`Storage`.
        study_name: the study's name in the storage; an existing study of that name with the same settings is
            joined (its trials stay, new ones are appended).
        metadata: kept in the study header under ``"gym"``.

    Raises:
        ConfigError: the storage holds a study of that name with other settings (another reward), or the
            reward has a target named ``reward``.
        StorageError: the storage cannot be opened.
    """

    def __init__(self, space: Space, evaluate: MetricFunction, reward: Reward, storage: str | Storage | None,
                 study_name: str, metadata: Mapping[str, Any]) -> None:
        from ..study import create_study

        if REWARD_METRIC in reward.targets:
            raise ConfigError(f"a reward target cannot be named {REWARD_METRIC!r}: the environment records its "
                              "reward under that name")
        self.space = space
        self.reward = reward
        self._evaluator = _Adapter(evaluate)
        objectives = [Objective(REWARD_METRIC, "max")] + [Objective(m, reward.directions[m]) for m in reward.metrics]
        self.study = create_study(space, objectives=objectives, strategy={"name": "replay", "dedup": False},
                                  storage=storage, name=study_name, load_if_exists=True,
                                  metadata={"gym": dict(metadata)})
        self._closed = False

    def evaluate(self, arch: Architecture) -> Outcome:
        """Evaluate ``arch``, compute its reward and record both as a trial. A failure of the evaluator or of the
        reward (a missing or non-finite metric) is recorded as a failed trial with ``reward.fail_reward``."""
        raw, error, _kind = evaluation_outcome(self._evaluator, arch, None)
        metrics: dict[str, float] = {}
        if raw is not None:
            metrics = {("evaluator_reward" if k == REWARD_METRIC else k): v for k, v in raw.items()}
        reward, met = self.reward.fail_reward, False
        if error is None:
            try:
                r = self.reward(metrics)
                met = self.reward.met(metrics)
            except Exception as e:  # noqa: BLE001 - a reward that cannot be computed fails this design only
                error = f"{type(e).__name__}: {e}"
            else:
                if r == r and abs(r) != float("inf"):
                    reward = float(r)
                else:
                    error = f"the reward of these metrics is {r} (not finite)"
        metrics[REWARD_METRIC] = reward
        trial = self._record(arch, metrics, error)
        return Outcome(arch, metrics, reward, met and error is None, error, trial)

    def _record(self, arch: Architecture, metrics: dict[str, float], error: str | None) -> Trial:
        study = self.study
        while study.has_queued:  # trials of a stopped driver of this study: their episodes are gone
            stale = study.ask()
            if stale is not None:
                study.tell(stale, state=TrialState.FAILED, error="a design of a stopped environment, never evaluated",
                           failure="driver_died")
        replay = study.strategy
        assert isinstance(replay, Replay)  # the study was created with strategy "replay"
        replay.queue(arch)
        trial = study.ask()
        if trial is None or trial.arch != arch:  # pragma: no cover - replay without dedup proposes the queued one
            raise StorageError(f"the study proposed {trial and trial.arch} instead of the queued design {arch}")
        if error is None:
            out = study.tell(trial, metrics)
        else:
            out = study.tell(trial, metrics, state=TrialState.FAILED, error=error)
        return out if out is not None else trial

    def close(self) -> None:
        """Close the study's storage (idempotent)."""
        if not self._closed:
            self._closed = True
            self.study.close()
