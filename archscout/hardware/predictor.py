"""Learned latency: a scikit-learn regressor on architecture encodings and analytic per-layer features.

Features (``features=`` picks groups):

- ``"encoding"``: ``space.encode(arch)`` (one-hot choices, thermometer ordinals, cell edges);
- ``"analytic"``: total MFLOPs, parameters (M), peak activation memory (MB), leaf-module and convolution counts;
- ``"layers"``: per feature-map resolution (output side 1, 2, 4, ... 128 pixels, rounded to a power of 2):
  the MMACs and counts of dense and depthwise convolutions, the count of other leaf modules, and the output
  activations (M elements). A CPU runtime executes layers one after another, so latency is close to additive
  in these terms; this is what makes the predictor accurate.

``"analytic"`` and ``"layers"`` build the network with the factory (torch); ``"encoding"`` alone needs neither
torch nor a factory (e.g. to learn a table column).

Models (``model=``): ``"ridge"`` (standardised ridge regression on latency, with cross-validated strength),
``"gbr"`` (gradient boosting on log-latency), ``"ridge+gbr"`` (ridge, then gradient boosting on its log
residuals: additive structure first, interactions second), ``"rf"`` (random forest on log-latency).

The defaults (``"analytic"`` + ``"layers"``, ``"ridge"``) were chosen by 5-fold cross-validation on 250 measured
``mbv3`` networks (32x32 inputs, onnxruntime, one thread): 99 % within +-10 %, 2.5 % MAPE, about the
measurements' own repeatability; adding the encoding or boosted trees did not help there (more dimensions,
more variance). With encodings only (e.g. to learn a table column without building networks),
``"ridge+gbr"`` did slightly better than ridge in the same comparison.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, require
from ..space import Architecture, Space
from .analytic import ModuleStats, model_stats
from .base import (
    CostModel,
    create_cost_model,
    factory_config,
    latency_metrics,
    register_cost_model,
)
from .devices import DeviceProfile, get_device

__all__ = ["FEATURE_GROUPS", "MODELS", "LearnedLatency", "layer_features"]

FEATURE_GROUPS = ("encoding", "analytic", "layers")
MODELS = ("ridge", "gbr", "ridge+gbr", "rf")
_N_RES = 8  # resolution buckets: output side 1, 2, 4, ..., 128 pixels


def layer_features(stats: ModuleStats) -> np.ndarray:
    """Per-resolution layer features of one network, shape ``(8 * 6,)`` (see the module docstring)."""
    f = np.zeros((_N_RES, 6))
    for r in stats.layers:
        side = r.out_shape[-1] if len(r.out_shape) == 4 else 1
        b = int(min(_N_RES - 1, max(0, round(math.log2(max(side, 1))))))
        if r.op.startswith("Conv") and r.macs:
            in_ch = r.in_shape[1] if len(r.in_shape) > 1 else 1
            dw = r.groups > 1 and r.groups == in_ch
            f[b, 1 if dw else 0] += r.macs / 1e6
            f[b, 3 if dw else 2] += 1
        elif r.op == "Linear":
            f[b, 0] += r.macs / 1e6
            f[b, 2] += 1
        else:
            f[b, 4] += 1
        f[b, 5] += math.prod(r.out_shape[1:]) / 1e6 if len(r.out_shape) > 1 else 0.0
    return f.ravel()


def _analytic_features(stats: ModuleStats) -> np.ndarray:
    n_conv = sum(1 for r in stats.layers if r.macs)
    return np.array([stats.mflops, stats.params_m, stats.peak_mem_mb, len(stats.layers), n_conv], dtype=float)


class _Regressor:
    """The fitted scikit-learn model(s) behind :class:`LearnedLatency`."""

    def __init__(self, kind: str, seed: int) -> None:
        self.kind, self.seed = kind, seed
        self.ridge: Any = None  # sklearn estimators, once fitted
        self.trees: Any = None

    def _ridge(self):
        require("sklearn", "nn")
        from sklearn.linear_model import RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-4, 3, 15)))

    def _trees(self, n: int):
        require("sklearn", "nn")
        if self.kind == "rf":
            from sklearn.ensemble import RandomForestRegressor

            return RandomForestRegressor(n_estimators=300, min_samples_leaf=2, random_state=self.seed)
        from sklearn.ensemble import GradientBoostingRegressor

        return GradientBoostingRegressor(n_estimators=300 if n >= 100 else 100, learning_rate=0.05, max_depth=3,
                                         subsample=0.8, random_state=self.seed)

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Regressor:
        if self.kind in ("ridge", "ridge+gbr"):
            self.ridge = self._ridge().fit(X, y)
        if self.kind == "ridge+gbr":
            base = np.maximum(self.ridge.predict(X), 1e-6)
            self.trees = self._trees(len(y)).fit(X, np.log(y) - np.log(base))
        elif self.kind in ("gbr", "rf"):
            self.trees = self._trees(len(y)).fit(X, np.log(y))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.kind == "ridge":
            return self.ridge.predict(X)
        if self.kind == "ridge+gbr":
            return np.maximum(self.ridge.predict(X), 1e-6) * np.exp(self.trees.predict(X))
        return np.exp(self.trees.predict(X))


@register_cost_model
class LearnedLatency(CostModel):
    """Latency in ms predicted by a regressor trained on measurements. ``cheap=True``.

    ``fit(archs, latencies_ms)`` first holds out ``validation_fraction`` of the architectures, fits on the rest
    and reports the error on the held-out ones (:meth:`validation_report`), then refits on all of them.

    Args:
        device: the device the latencies come from (a name or profile; informational, and used by ``fit``
            when no latencies are given).
        factory: ``ModelFactory`` (or its config dict, or any callable ``arch -> torch.nn.Module``) for the
            ``"analytic"`` and ``"layers"`` features; None builds
            ``ModelFactory(input_shape or (3, 32, 32), num_classes=10)`` when needed.
        input_shape: per-sample input shape; defaults to ``factory.input_shape``.
        features: feature groups, a subset of ``("encoding", "analytic", "layers")`` (default
            ``("analytic", "layers")``).
        model: ``"ridge"`` (default), ``"gbr"``, ``"ridge+gbr"`` or ``"rf"``.
        validation_fraction: share of the training architectures held out for the report (0 for none).
        seed: seeds the split and the trees.
        train: stored training data, as in :meth:`to_config` (``{"space": ..., "archs": [...],
            "latencies_ms": [...]}``); the model is refitted from it.

    Raises:
        ConfigError: unknown feature groups or model, a bad fraction, or bad training data.
    """

    name, unit, cheap = "learned-latency", "ms", True

    def __init__(self, device: str | DeviceProfile | Mapping[str, Any] | None = "cpu-ort", factory: Any = None,
                 input_shape: Sequence[int] | None = None, features: Sequence[str] = ("analytic", "layers"),
                 model: str = "ridge", validation_fraction: float = 0.2, seed: int = 0,
                 train: Mapping[str, Any] | None = None) -> None:
        self.device = None if device is None else get_device(device)
        self._set_source(factory, input_shape)
        if isinstance(features, str) or not features or any(f not in FEATURE_GROUPS for f in features):
            raise ConfigError(f"features must be a non-empty subset of {FEATURE_GROUPS}, got {features!r}")
        self.features = tuple(features)
        if model not in MODELS:
            raise ConfigError(f"model must be one of {MODELS}, got {model!r}")
        self.model = model
        try:
            vf = float(validation_fraction)
        except (TypeError, ValueError):
            vf = -1.0
        if not 0.0 <= vf < 1.0:
            raise ConfigError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}")
        self.validation_fraction = vf
        self.seed = int(seed)
        self._regressor: _Regressor | None = None
        self._report: dict[str, float] = {}
        self._train_archs: list[Architecture] = []
        self._train_y: list[float] = []
        if train is not None:
            self._refit_from(train)

    def _refit_from(self, train: Mapping[str, Any]) -> None:
        try:
            space = Space.from_config(train["space"])
            archs = [space.parse(s) for s in train["archs"]]
            y = [float(v) for v in train["latencies_ms"]]
        except Exception as e:  # noqa: BLE001 - any malformed stored data is one config error
            raise ConfigError(f"bad training data for learned-latency ({type(e).__name__}: {e})") from None
        self.fit(archs, y)

    def featurize(self, arch: Architecture) -> np.ndarray:
        """Feature vector of ``arch`` (groups in ``features`` order)."""
        parts = []
        if "encoding" in self.features:
            parts.append(np.asarray(arch.encode("onehot"), dtype=float))
        if "analytic" in self.features or "layers" in self.features:
            stats = model_stats(arch, *self._ready())
            if "analytic" in self.features:
                parts.append(_analytic_features(stats))
            if "layers" in self.features:
                parts.append(layer_features(stats))
        return np.concatenate(parts)

    def _matrix(self, archs: Sequence[Architecture]) -> np.ndarray:
        return np.vstack([self.featurize(a) for a in archs])

    def fit(self, archs: Sequence[Architecture],
            latencies_ms: Sequence[float] | np.ndarray | None = None) -> LearnedLatency:
        """Train on measured latencies (ms), reporting the held-out error first (see the class docstring).

        With ``latencies_ms=None`` the architectures are measured on :attr:`device` (``measured-latency``).

        Raises:
            ConfigError: fewer than 2 architectures, lengths differ, or a latency is not a positive number.
        """
        archs = list(archs)
        if latencies_ms is None:
            if self.device is None:
                raise ConfigError("pass latencies_ms, or give the learned-latency model a measured device")
            meter = create_cost_model("measured-latency", device=self.device, factory=self._ready()[0],
                                       input_shape=self._input_shape)
            latencies_ms = [meter.predict(a) for a in archs]
        y = np.asarray(latencies_ms, dtype=float)
        if len(archs) < 2 or y.shape != (len(archs),):
            raise ConfigError(f"fit needs >= 2 architectures and as many latencies, got {len(archs)} and {y.shape}")
        if not np.all(np.isfinite(y)) or np.any(y <= 0):
            raise ConfigError("latencies must be positive finite numbers (ms)")
        X = self._matrix(archs)
        self._report = {}
        # validation_fraction may be a numpy float, whose round() is a float on numpy 1.x
        n_val = int(round(self.validation_fraction * len(archs)))  # noqa: RUF046
        if n_val >= 1 and len(archs) - n_val >= 2:
            perm = np.random.default_rng(self.seed).permutation(len(archs))
            val, tr = perm[:n_val], perm[n_val:]
            held = _Regressor(self.model, self.seed).fit(X[tr], y[tr])
            self._report = latency_metrics(held.predict(X[val]), y[val])
            self._report["n_train"] = len(tr)
        self._regressor = _Regressor(self.model, self.seed).fit(X, y)
        self._train_archs, self._train_y = archs, [float(v) for v in y]
        return self

    def validation_report(self) -> dict[str, float]:
        """Error on the architectures held out during :meth:`fit`: ``within10`` (share within +-10 %),
        ``within5``, ``mape`` (%), ``spearman``, ``rmse`` (ms), ``n`` (held out), ``n_train``.
        Empty when nothing was held out.

        Raises:
            ConfigError: the model is not fitted.
        """
        self._check_fitted()
        return dict(self._report)

    def evaluate(self, archs: Sequence[Architecture], latencies_ms: Sequence[float]) -> dict[str, float]:
        """The same metrics as :meth:`validation_report` on any measured architectures."""
        return latency_metrics(self.predict_many(archs), latencies_ms)

    def _check_fitted(self) -> None:
        if self._regressor is None:
            raise ConfigError("the learned-latency model is not fitted; call fit(archs, latencies_ms) first")

    def predict(self, arch: Architecture) -> float:
        self._check_fitted()
        return float(self._regressor.predict(self.featurize(arch)[None, :])[0])  # type: ignore[union-attr]

    def predict_many(self, archs: Iterable[Architecture]) -> np.ndarray:
        self._check_fitted()
        batch = list(archs)
        if not batch:
            return np.zeros(0)
        return self._regressor.predict(self._matrix(batch))  # type: ignore[union-attr]

    def to_config(self) -> dict[str, Any]:
        train = None
        if self._train_archs:
            train = {"space": self._train_archs[0].space.to_config(), "archs": [str(a) for a in self._train_archs],
                     "latencies_ms": list(self._train_y)}
        return {
            "name": self.name, "device": None if self.device is None else self.device.to_config(),
            "factory": factory_config(self.factory),
            "input_shape": None if self._input_shape is None else list(self._input_shape),
            "features": list(self.features), "model": self.model, "validation_fraction": self.validation_fraction,
            "seed": self.seed, "train": train,
        }
