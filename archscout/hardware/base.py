"""The cost-model contract, its registry, and the helpers every cost model shares.

A cost model maps an architecture to one number with a unit (``"ms"``, ``"M"``, ``"MFLOPs"``, ``"MB"``).
*Cheap* models (analytic counts, lookup tables, learned predictors, benchmark tables) may run before an
architecture is dispatched, to filter infeasible candidates; measured ones (``cheap=False``) run like
evaluators and are cached per architecture and device.

Nothing here imports torch: models that need it import it when they first build a network.
"""

from __future__ import annotations

import abc
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._registry import Registry
from .._torch import default_factory, resolve_factory
from ..errors import ConfigError, DataError, UnknownNameError
from ..space import Architecture

__all__ = [
    "COST_MODELS",
    "CostModel",
    "Measurement",
    "cost_model_from_config",
    "cost_models_from_config",
    "create_cost_model",
    "factory_config",
    "factory_key",
    "latency_metrics",
    "list_cost_models",
    "register_cost_model",
    "resolve_input_shape",
]


@dataclass(frozen=True)
class Measurement:
    """One latency measurement.

    Attributes:
        median_ms: median of the timed runs, in milliseconds.
        spread_ms: inter-quartile range (75th minus 25th percentile, linear interpolation) of the runs, in ms.
        samples: every timed run, in ms, in the order measured.
    """

    median_ms: float
    spread_ms: float
    samples: tuple[float, ...]

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> Measurement:
        """Summarise timed runs (ms). Raises ConfigError when ``samples_ms`` is empty."""
        if len(samples_ms) == 0:
            raise ConfigError("a measurement needs at least one timed run")
        a = np.asarray(samples_ms, dtype=float)
        q25, q50, q75 = np.percentile(a, [25, 50, 75])
        return cls(float(q50), float(q75 - q25), tuple(float(x) for x in a))

    def to_dict(self) -> dict[str, Any]:
        return {"median_ms": self.median_ms, "spread_ms": self.spread_ms, "samples": list(self.samples)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Measurement:
        return cls(float(d["median_ms"]), float(d["spread_ms"]), tuple(float(x) for x in d.get("samples", ())))


class CostModel(abc.ABC):
    """Base class: ``predict(arch) -> float`` in :attr:`unit`. Register a new one with
    :func:`register_cost_model`; check it with ``archscout.testing.check_cost_model``.

    Attributes:
        name: registry name (``create_cost_model(name, ...)`` builds it).
        unit: unit of the predicted number (``"ms"``, ``"M"``, ``"MFLOPs"``, ``"MB"``).
        cheap: True when the model may run before dispatch (no measurement on the device).
    """

    name: str = ""
    unit: str = ""
    cheap: bool = True

    @abc.abstractmethod
    def predict(self, arch: Architecture) -> float:
        """The cost of ``arch`` in :attr:`unit`."""

    def predict_many(self, archs: Iterable[Architecture]) -> np.ndarray:
        """``predict`` over several architectures; shape ``(n,)``."""
        return np.array([self.predict(a) for a in archs], dtype=float)

    def _set_source(self, factory: Any, input_shape: Sequence[int] | None) -> None:
        """Keep the model factory (``ModelFactory``, its config or a callable) and per-sample input shape of a
        cost model that builds networks; both may be completed lazily by :meth:`_ready`."""
        self.factory = resolve_factory(factory)
        self._input_shape = None if self.factory is None and input_shape is None else resolve_input_shape(
            input_shape, self.factory)

    def _ready(self) -> tuple[Callable[[Architecture], Any], tuple[int, ...]]:
        """The factory and input shape, defaulting to ``archscout.nn.ModelFactory`` when none was given."""
        if self.factory is None:
            self.factory = default_factory(self._input_shape)
        if self._input_shape is None:
            self._input_shape = resolve_input_shape(None, self.factory)
        return self.factory, self._input_shape

    def __call__(self, arch: Architecture) -> float:
        return self.predict(arch)

    @abc.abstractmethod
    def to_config(self) -> dict[str, Any]:
        """A plain dict (JSON-safe) with ``name`` and the settings; :func:`cost_model_from_config` rebuilds it."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, unit={self.unit!r}, cheap={self.cheap})"


COST_MODELS: Registry[CostModel] = Registry("cost model")


def register_cost_model(cls: type[CostModel]) -> type[CostModel]:
    """Register a :class:`CostModel` subclass under its ``name`` (usable as a class decorator), so that
    :func:`create_cost_model` and :func:`cost_model_from_config` can build it.

    Raises:
        ConfigError: ``cls`` is not a CostModel subclass with a ``name``, or the name is taken.
    """
    if not (isinstance(cls, type) and issubclass(cls, CostModel)) or not getattr(cls, "name", ""):
        raise ConfigError(f"register_cost_model needs a CostModel subclass with a name, got {cls!r}")
    COST_MODELS.register(cls.name, cls)
    return cls


def list_cost_models() -> list[str]:
    """Names of the registered cost models."""
    return COST_MODELS.names()


def create_cost_model(name: str, **params: Any) -> CostModel:
    """Build a registered cost model, e.g. ``create_cost_model("measured-latency", device="cpu-ort")``.

    Raises:
        UnknownNameError: no cost model has that name.
        ConfigError: a parameter is unknown or invalid.
    """
    return COST_MODELS.create(name, **params)


def cost_model_from_config(cfg: Mapping[str, Any], **overrides: Any) -> CostModel:
    """Rebuild a cost model from its :meth:`CostModel.to_config` dict.

    ``overrides`` replace stored settings, e.g. ``factory=...`` when the model was built from a plain callable
    (which a config cannot hold) or ``timer=...``.

    Raises:
        ConfigError: the dict has no ``name`` or holds bad settings.
    """
    if not isinstance(cfg, Mapping) or "name" not in cfg:
        raise ConfigError(f"a cost-model config must be a dict with a 'name', got {cfg!r}")
    params = {k: v for k, v in cfg.items() if k != "name"}
    params.update(overrides)
    return create_cost_model(str(cfg["name"]), **params)


# --- shared helpers ---------------------------------------------------------------------------------------
def factory_config(factory: Any) -> dict[str, Any] | None:
    """The factory's ``to_config()`` dict, or None for a plain callable."""
    to_config = getattr(factory, "to_config", None)
    if to_config is None:
        return None
    try:
        cfg = to_config()
    except Exception:  # noqa: BLE001 - a user callable with an odd to_config is just not serialisable
        return None
    return dict(cfg) if isinstance(cfg, Mapping) else None


def factory_key(factory: Any) -> str:
    """A short stable digest of what the factory builds (its config), or of its identity when it has none."""
    cfg = factory_config(factory)
    text = json.dumps(cfg, sort_keys=True, default=str) if cfg is not None else f"callable:{id(factory)}"
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def resolve_input_shape(input_shape: Sequence[int] | None, factory: Any) -> tuple[int, ...]:
    """The per-sample input shape (e.g. ``(3, 32, 32)``): ``input_shape`` or ``factory.input_shape``.

    Raises:
        ConfigError: neither gives a shape of positive integers.
    """
    shape = input_shape if input_shape is not None else getattr(factory, "input_shape", None)
    if shape is None:
        raise ConfigError("pass input_shape=(C, H, W) (the factory has no input_shape attribute)")
    try:
        out = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise ConfigError(f"input_shape must be a tuple of positive integers, got {shape!r}") from None
    if not out or any(s < 1 for s in out):
        raise ConfigError(f"input_shape must be a tuple of positive integers, got {shape!r}")
    return out


def latency_metrics(predicted: Sequence[float] | np.ndarray,
                    measured: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Error of predictions against measurements (same units, same order).

    Returns:
        ``within10``: share of predictions within +-10 % of the measurement; ``within5``: within +-5 %;
        ``mape``: mean absolute percentage error (percent); ``spearman``: rank correlation;
        ``rmse``: root mean squared error (in the inputs' unit); ``n``: number of pairs.

    Raises:
        ConfigError: the sequences differ in length or are empty.
    """
    p = np.asarray(predicted, dtype=float)
    m = np.asarray(measured, dtype=float)
    if p.shape != m.shape or p.ndim != 1 or len(p) == 0:
        raise ConfigError(f"need two equal-length, non-empty sequences, got shapes {p.shape} and {m.shape}")
    rel = np.abs(p - m) / np.maximum(np.abs(m), 1e-12)
    return {
        "within10": float(np.mean(rel <= 0.10 + 1e-9)),
        "within5": float(np.mean(rel <= 0.05 + 1e-9)),
        "mape": float(100.0 * np.mean(rel)),
        "spearman": _spearman(p, m),
        "rmse": float(np.sqrt(np.mean((p - m) ** 2))),
        "n": len(p),
    }


def _ranks(a: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank)."""
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a), dtype=float)
    sa = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and sa[j + 1] == sa[i]:
            j += 1
        ranks[order[i : j + 1]] = 0.5 * (i + j)
        i = j + 1
    return ranks


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2:
        return math.nan
    ra, rb = _ranks(a), _ranks(b)
    sa, sb = ra.std(), rb.std()
    if sa == 0 or sb == 0:
        return math.nan
    return float(np.mean((ra - ra.mean()) * (rb - rb.mean())) / (sa * sb))


# --- rebuilding a study's cost models -----------------------------------------------------------------------
def cost_models_from_config(configs: Mapping[str, Mapping[str, Any]],
                            overrides: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, CostModel]:
    """Rebuild the live cost models of a study header (``study.config["cost_models"]``: metric name ->
    :meth:`CostModel.to_config` dict plus the ``cheap`` flag the header adds).

    Args:
        overrides: per metric, settings that replace stored ones (as for :func:`cost_model_from_config`), e.g.
            ``{"latency_ms": {"factory": f}}`` for a model built from a plain callable.

    Raises:
        ConfigError: ``configs`` is not a mapping of metric names to dicts, or a config cannot be rebuilt (it
            names no registered cost model, e.g. a custom model whose ``to_config`` gave only a ``type``, or
            holds bad settings); the message names the metric.
        DataError: a model's data (e.g. its table file) cannot be read; the message names the metric.
    """
    if not isinstance(configs, Mapping):
        raise ConfigError(f"cost-model configs must map metric names to config dicts, got {configs!r}")
    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(configs))
    if unknown:
        raise ConfigError(f"overrides name metrics without a cost model: {unknown}; the metrics are {sorted(configs)}")
    out: dict[str, CostModel] = {}
    for metric, cfg in configs.items():
        if not isinstance(cfg, Mapping) or not isinstance(cfg.get("name"), str):
            raise ConfigError(
                f"cost model {metric!r} cannot be rebuilt from its stored config {cfg!r}: it names no registered "
                "cost model; give its class a name, register it with register_cost_model and return the name "
                "from to_config(), or pass the live model")
        settings = {k: v for k, v in cfg.items() if k != "cheap"}
        try:
            out[str(metric)] = cost_model_from_config(settings, **dict(overrides.get(metric, {})))
        except UnknownNameError as e:
            raise ConfigError(f"cost model {metric!r} cannot be rebuilt: {e}; import the module that registers it, "
                              "or pass the live model") from None
        except DataError as e:
            raise DataError(f"cost model {metric!r}: {e}") from None
        except ConfigError as e:
            raise ConfigError(f"cost model {metric!r} cannot be rebuilt from its stored config: {e}") from None
    return out
