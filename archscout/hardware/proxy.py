"""Learned proxy cost models: a scikit-learn regressor fitted to a study's logged (design -> metric) records.

As ArchGym's proxy models, a proxy stands in for a slow cost model or simulator in later studies: fit it on the
trials one study recorded (:func:`fit_proxy`), read its held-out error (RMSE, MAPE, Kendall's tau on designs it
did not see), save it, and pass it as a cheap cost model (``create_cost_model("proxy", path=..., metric=...)``).

Regressors: ``"gp"`` (the default) is a Gaussian process (Matern 3/2 kernel with one length scale per feature,
noise fitted) over ``log2`` of the numeric parameters (rows, SRAM sizes, bandwidth...) and the one-hot code of
the other non-categorical ones, fitted once per *context*: each combination of the space's small categorical
choices (e.g. the dataflow), since a dataflow changes the cost's whole shape; a context with too few records
falls back to one GP over every feature. The tree ensembles and k-nearest neighbours use the space's one-hot
encoding (thermometer codes for ordinals) followed by ``log2`` of the numeric values. With ``log_target=True``
(the default) the regressor fits ``log(metric)``: cycles, latency and energy are products of the design's
sizes, and relative errors are what matter; a non-positive target then raises.

scikit-learn is imported when a proxy is fitted or loaded (``pip install 'archscout[proxy]'``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validate import check_int, check_number
from ..errors import ArchscoutError, ConfigError, DataError, require
from ..space import Architecture, Space
from .base import CostModel, register_cost_model

__all__ = ["REGRESSORS", "ProxyCostModel", "ProxyFit", "design_features", "fit_proxy", "proxy_metrics"]

REGRESSORS = ("gp", "extra_trees", "random_forest", "gradient_boosting", "knn")
"""Regressors :func:`fit_proxy` builds by name (any scikit-learn regressor instance is accepted too)."""


def design_features(space: Space, archs: Iterable[Architecture]) -> np.ndarray:
    """Feature matrix of shape ``(n, d)``: the one-hot encoding of each design, then ``log2`` of each positive
    numeric parameter value (0 when the parameter is inactive or not numeric)."""
    numeric = [n for n, p in space.params.items() if _is_numeric(p)]
    rows = []
    for a in archs:
        enc = space.encode(a, "onehot")
        nums = [_log2(a[n]) for n in numeric]
        rows.append(np.concatenate([enc, np.asarray(nums, dtype=float)]))
    return np.asarray(rows, dtype=float).reshape(len(rows), -1)


def _is_numeric(p: Any) -> bool:
    opts = getattr(p, "options", None)
    if opts is not None:
        return all(isinstance(o, (int, float)) and not isinstance(o, bool) for o in opts)
    return p.numeric_range() is not None


def _log2(v: Any) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
        return math.log2(float(v))
    return 0.0


def proxy_metrics(predicted: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Held-out error of a proxy: ``rmse`` (in the metric's unit), ``rmse_pct`` (RMSE over the mean of the actual
    values, percent), ``mape`` (mean absolute percentage error, percent), ``kendall_tau`` and ``n``.

    Raises:
        ConfigError: the sequences differ in length or hold fewer than two values.
    """
    p, y = np.asarray(predicted, dtype=float), np.asarray(actual, dtype=float)
    if p.shape != y.shape or p.ndim != 1 or len(p) < 2:
        raise ConfigError(f"need two equal-length sequences of at least 2 values, got shapes {p.shape} and {y.shape}")
    stats = require("scipy.stats", "proxy")
    rmse = float(np.sqrt(np.mean((p - y) ** 2)))
    tau = stats.kendalltau(p, y).statistic
    return {
        "rmse": rmse,
        "rmse_pct": float(100.0 * rmse / max(abs(float(np.mean(y))), 1e-300)),
        "mape": float(100.0 * np.mean(np.abs(p - y) / np.maximum(np.abs(y), 1e-300))),
        "kendall_tau": float(tau) if tau is not None and math.isfinite(tau) else math.nan,
        "n": len(p),
    }


class _Plain:
    """A scikit-learn regressor on :func:`design_features`."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def fit(self, space: Space, archs: Sequence[Architecture], y: np.ndarray) -> _Plain:
        self.model.fit(design_features(space, archs), y)
        return self

    def predict(self, space: Space, archs: Sequence[Architecture]) -> np.ndarray:
        return np.asarray(self.model.predict(design_features(space, archs)), dtype=float)


_CONTEXT_LIMIT = 16  # at most this many contexts (combinations of small categorical choices)


class _ContextGP:
    """One Gaussian process per context (combination of the space's small categorical choices) over log2 numeric
    values and one-hot codes of the other parameters; contexts with fewer than ``4 * d`` records share a GP over
    every feature (see the module docstring)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.models: dict[tuple, Any] = {}
        self.fallback: Any = None

    def thetas(self) -> dict[str, Any]:
        """The fitted kernel hyperparameters (log scale), per context and for the fallback: JSON-safe, so that a
        saved proxy is rebuilt by refitting with them fixed (no optimisation, no pickle)."""
        return {"contexts": [[list(k), m.kernel_.theta.tolist()] for k, m in self.models.items()],
                "fallback": None if self.fallback is None else self.fallback.kernel_.theta.tolist()}

    @staticmethod
    def _split(space: Space) -> tuple[list[str], list[str]]:
        choices = [n for n, p in space.params.items() if getattr(p, "kind", "") == "choice" and not _is_numeric(p)]
        ctx = choices if _ContextGP._n_contexts(space, choices) <= _CONTEXT_LIMIT else []
        return ctx, [n for n in space.names if n not in ctx]

    def _features(self, space: Space, archs: Sequence[Architecture], names: list[str]) -> np.ndarray:
        rows = []
        for a in archs:
            parts = []
            for n in names:
                p = space.params[n]
                if _is_numeric(p):
                    parts.append(np.array([_log2(a[n])]))
                else:
                    parts.append(p.encode(a[n], p.encoding_kind("onehot")))
            rows.append(np.concatenate(parts) if parts else np.zeros(1))
        return np.asarray(rows, dtype=float)

    @staticmethod
    def _n_contexts(space: Space, ctx: list[str]) -> int:
        sizes: list[int] = [len(getattr(space.params[n], "options", ())) for n in ctx]
        return math.prod(sizes)

    def _gp(self, d: int, restarts: int = 3, theta: Sequence[float] | None = None) -> Any:
        gp = require("sklearn.gaussian_process", "proxy")
        kernels = require("sklearn.gaussian_process.kernels", "proxy")
        kernel = (kernels.ConstantKernel(1.0) * kernels.Matern(length_scale=np.ones(d), nu=1.5)
                  + kernels.WhiteKernel(1e-4, (1e-8, 1e-1)))
        if theta is not None:  # rebuilt from a saved proxy: the fitted hyperparameters, kept fixed
            return gp.GaussianProcessRegressor(kernel.clone_with_theta(np.asarray(theta)), normalize_y=True,
                                               optimizer=None)
        return gp.GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=restarts,
                                           random_state=self.seed)

    def fit(self, space: Space, archs: Sequence[Architecture], y: np.ndarray,
            thetas: Mapping[str, Any] | None = None) -> _ContextGP:
        import warnings

        fixed = {tuple(k): t for k, t in thetas["contexts"]} if thetas else {}
        ctx, rest = self._split(space)
        x = self._features(space, archs, rest)
        keys = [tuple(a[n] for n in ctx) for a in archs]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence notes of the kernel optimiser
            short = False
            for key in sorted(set(keys), key=repr):
                idx = [i for i, k in enumerate(keys) if k == key]
                if (len(idx) >= 4 * x.shape[1] or not ctx) and (not thetas or key in fixed):
                    self.models[key] = self._gp(x.shape[1], theta=fixed.get(key)).fit(x[idx], y[idx])
                else:
                    short = True
            if ctx and (short or len(self.models) < self._n_contexts(space, ctx)):
                full = np.hstack([x, self._features(space, archs, ctx)])
                theta = thetas.get("fallback") if thetas else None
                self.fallback = self._gp(full.shape[1], restarts=0, theta=theta).fit(full, y)
        return self

    def predict(self, space: Space, archs: Sequence[Architecture]) -> np.ndarray:
        ctx, rest = self._split(space)
        x = self._features(space, archs, rest)
        out = np.empty(len(archs))
        groups: dict[tuple, list[int]] = {}
        for i, a in enumerate(archs):
            groups.setdefault(tuple(a[n] for n in ctx), []).append(i)
        for key, idx in groups.items():  # one batched prediction per context
            model = self.models.get(key)
            if model is not None:
                out[idx] = model.predict(x[idx])
            else:
                full = np.hstack([x[idx], self._features(space, [archs[i] for i in idx], ctx)])
                out[idx] = self.fallback.predict(full)
        return out


def _make_regressor(regressor: Any, seed: int) -> Any:
    if isinstance(regressor, str) and regressor == "gp":
        require("sklearn", "proxy")
        return _ContextGP(seed)
    return _Plain(_make_sklearn(regressor, seed))


def _make_sklearn(regressor: Any, seed: int) -> Any:
    if not isinstance(regressor, str):
        if not (callable(getattr(regressor, "fit", None)) and callable(getattr(regressor, "predict", None))):
            raise ConfigError(f"regressor must be one of {list(REGRESSORS)} or a scikit-learn regressor, "
                              f"got {regressor!r}")
        require("sklearn", "proxy")
        from sklearn.base import clone

        return clone(regressor)
    if regressor not in REGRESSORS:
        raise ConfigError(f"unknown regressor {regressor!r}; choose one of {list(REGRESSORS)} or pass an instance")
    ensemble = require("sklearn.ensemble", "proxy")
    if regressor == "extra_trees":
        return ensemble.ExtraTreesRegressor(n_estimators=300, random_state=seed, n_jobs=1)
    if regressor == "random_forest":
        return ensemble.RandomForestRegressor(n_estimators=300, random_state=seed, n_jobs=1)
    if regressor == "gradient_boosting":
        return ensemble.HistGradientBoostingRegressor(max_iter=400, learning_rate=0.05, random_state=seed)
    neighbors = require("sklearn.neighbors", "proxy")
    return neighbors.KNeighborsRegressor(n_neighbors=5, weights="distance")


@register_cost_model
class ProxyCostModel(CostModel):
    """A fitted regressor as a cheap cost model: ``predict(arch)`` is the proxy's estimate of ``metric``.

    Build it with :func:`fit_proxy`, or load a saved one: ``ProxyCostModel(path="cycles.json")`` (what
    ``create_cost_model("proxy", path=...)`` and a study header rebuild). The file holds the regressor, the space
    and the metric; it is checked against a digest kept in the config, so a study does not silently use a
    different proxy after the file was replaced.

    Args:
        path: a file written by :meth:`save`.
        metric: the metric the proxy predicts; checked against the file when given.
        unit: the metric's unit (default: the one saved with the proxy).
        digest: the file's digest from :meth:`to_config`; a mismatch raises.

    Raises:
        DataError: the file is missing, unreadable, not a proxy, or not the one the digest names.
        ConfigError: ``metric`` differs from the saved one.
    """

    name = "proxy"
    cheap = True

    def __init__(self, path: str | os.PathLike | None = None, metric: str | None = None, unit: str | None = None,
                 digest: str | None = None, *, _state: Mapping[str, Any] | None = None, _model: Any = None) -> None:
        if _state is None:
            if path is None:
                raise ConfigError("a proxy cost model needs path=FILE (written by ProxyCostModel.save); "
                                  "fit one with archscout.hardware.fit_proxy")
            _state, found = _load(os.fspath(path)), _digest(os.fspath(path))
            if digest is not None and digest != found:
                raise DataError(f"proxy file {os.fspath(path)!r} changed since the study stored it (digest {found} "
                                f"instead of {digest}); point the study at the original file")
            self.digest: str | None = found
        else:
            self.digest = None
        self.path = None if path is None else os.fspath(path)
        self._state = dict(_state)
        if metric is not None and metric != self._state["metric"]:
            raise ConfigError(f"proxy file predicts {self._state['metric']!r}, not {metric!r}")
        self.metric: str = self._state["metric"]
        self.unit = unit if unit is not None else str(self._state.get("unit") or _unit_of(self._state["metric"]))
        self.space: Space = Space.from_config(self._state["space"])
        self.log_target: bool = bool(self._state["log_target"])
        self._model = _model if _model is not None else self._refit()

    def _refit(self) -> Any:
        """The regressor of a saved proxy, fitted again on its saved designs (the Gaussian process with its saved
        hyperparameters fixed; the named ensembles with their seed): the same predictions, no pickle."""
        st = self._state
        try:
            archs = [self.space.parse(a) for a in st["designs"]]
            model = _make_regressor(st["regressor"], int(st["seed"]))
            if isinstance(model, _ContextGP):
                return model.fit(self.space, archs, np.asarray(st["targets"], dtype=float), thetas=st["thetas"])
            return model.fit(self.space, archs, np.asarray(st["targets"], dtype=float))
        except ArchscoutError as e:
            raise DataError(f"proxy file {self.path!r} cannot be rebuilt: {e}") from None

    def predict(self, arch: Architecture) -> float:
        return float(self.predict_many([arch])[0])

    def predict_many(self, archs: Iterable[Architecture]) -> np.ndarray:
        items = [self._project(a) for a in archs]
        if not items:
            return np.zeros(0)
        y = np.asarray(self._model.predict(self.space, items), dtype=float)
        return np.exp(y) if self.log_target else y

    def _project(self, arch: Architecture) -> Architecture:
        if arch.space == self.space:
            return arch
        try:
            return self.space.make({n: arch[n] for n in self.space.names})
        except Exception as e:  # noqa: BLE001 - any mismatch is the same user error
            raise ConfigError(f"the proxy was fitted on space {self.space.name!r}; architecture {str(arch)!r} "
                              f"does not carry its parameters {list(self.space.names)}: {e}") from None

    def save(self, path: str | os.PathLike) -> str:
        """Write the proxy to ``path`` (JSON: the metric, the space, the regressor's name and seed, the designs and
        values it was fitted on and, for ``gp``, its fitted hyperparameters) and return the path; the model then
        round-trips through :meth:`to_config`. Loading refits, so no pickle is ever read.

        Raises:
            ConfigError: the proxy uses a scikit-learn regressor instance (only named regressors are saved).
        """
        if self._state.get("regressor") is None:
            raise ConfigError("only proxies with a named regressor (one of "
                              f"{list(REGRESSORS)}) can be saved; fit with regressor='gp' or another name")
        path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump({"archscout_proxy": 2, **self._state}, f)
        os.replace(path + ".tmp", path)
        self.path, self.digest = path, _digest(path)
        return path

    def to_config(self) -> dict[str, Any]:
        if self.path is None:
            raise ConfigError("save the proxy first (proxy.save(path)) so that a study header can rebuild it")
        return {"name": self.name, "path": self.path, "metric": self.metric, "unit": self.unit, "digest": self.digest}


_UNITS = {"ms": "ms", "s": "s", "mj": "mJ", "uj": "uJ", "mm2": "mm2", "mb": "MB", "m": "M", "mflops": "MFLOPs",
          "pct": "%", "cycles": "cycles"}


def _unit_of(metric: str) -> str:
    """A unit read from a metric's name (``latency_ms`` -> ``ms``), else the name itself."""
    return _UNITS.get(metric.rsplit("_", 1)[-1].lower(), metric)


def _digest(path: str) -> str:
    h = hashlib.blake2b(digest_size=8)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load(path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise DataError(f"proxy file {path!r} does not exist; fit one with archscout.hardware.fit_proxy and save it")
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except Exception as e:  # noqa: BLE001 - any unreadable file is reported the same way
        raise DataError(f"cannot read proxy file {path!r}: {type(e).__name__}: {e}") from None
    if not isinstance(state, dict) or state.get("archscout_proxy") != 2:
        raise DataError(f"{path!r} is not an archscout proxy file (write one with ProxyCostModel.save)")
    return state


@dataclass(frozen=True)
class ProxyFit:
    """What :func:`fit_proxy` returns.

    Attributes:
        model: the fitted proxy (refitted on every record when ``refit=True``).
        report: held-out error (:func:`proxy_metrics`) on the test split, plus ``n_train``, ``n_test``,
            ``fit_s`` (seconds to fit) and ``predict_us`` (microseconds per design, batched).
        test_archs / test_actual / test_predicted: the held-out designs, their logged values and predictions.
    """

    model: ProxyCostModel
    report: dict[str, float]
    test_archs: tuple[Architecture, ...] = field(repr=False)
    test_actual: np.ndarray = field(repr=False)
    test_predicted: np.ndarray = field(repr=False)


def _records(source: Any, metric: str) -> tuple[Space, list[Architecture], np.ndarray]:
    """(space, designs, values) of the complete trials of a study (or a list of trials, or (arch, value) pairs)
    that report ``metric``; a design logged twice is kept once (its first value)."""
    space = getattr(source, "space", None)
    items = source.trials if hasattr(source, "trials") else list(source)
    archs: list[Architecture] = []
    values: list[float] = []
    seen: set[Architecture] = set()
    for t in items:
        if isinstance(t, tuple):
            arch, value = t
        else:
            if getattr(t, "state", "complete") != "complete" or metric not in (t.metrics or {}):
                continue
            arch, value = t.arch, t.metrics[metric]
        if arch in seen or not math.isfinite(float(value)):
            continue
        seen.add(arch)
        archs.append(arch)
        values.append(float(value))
        space = space if space is not None else arch.space
    if space is None or not archs:
        raise DataError(f"no complete record reports {metric!r}; a proxy needs logged (design -> {metric}) records")
    return space, archs, np.asarray(values)


def fit_proxy(source: Any, metric: str, *, regressor: Any = "gp", test_size: float = 0.2,
              seed: int = 0, log_target: bool = True, unit: str | None = None, refit: bool = False) -> ProxyFit:
    """Fit a proxy of ``metric`` to logged records and measure it on held-out designs.

    Args:
        source: a :class:`~archscout.Study` (its complete trials), a list of trials, or ``(arch, value)`` pairs.
        metric: the metric to predict (e.g. ``"cycles"``).
        regressor: one of :data:`REGRESSORS` (default ``"gp"``, see the module docstring) or a scikit-learn
            regressor (cloned; it sees :func:`design_features`).
        test_size: share of the distinct designs held out, in ``(0, 1)``; the split is random with ``seed``.
        log_target: fit ``log(metric)`` (needs positive values).
        unit: the metric's unit, kept with the proxy (default: read from the name, e.g. ``latency_ms`` -> ``ms``,
            ``cycles`` -> ``cycles``; else the metric's name).
        refit: after scoring, fit again on every record (the report still describes the held-out split).

    Raises:
        DataError: fewer than 10 usable records, or a non-positive value with ``log_target``.
        ConfigError: a bad ``test_size`` or regressor. OptionalDependencyError: scikit-learn is missing.
    """
    if not isinstance(metric, str) or not metric:
        raise ConfigError(f"metric must be a metric name such as 'cycles', got {metric!r}")
    check_number("test_size", test_size, 0.0, 1.0, True, True)
    check_int("seed", seed, 0)
    space, archs, y = _records(source, metric)
    if len(archs) < 10:
        raise DataError(f"only {len(archs)} distinct designs report {metric!r}; a proxy needs at least 10")
    if log_target and np.any(y <= 0):
        raise DataError(f"{metric!r} has non-positive values; fit with log_target=False")
    target = np.log(y) if log_target else y
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(archs))
    n_test = max(1, round(test_size * len(archs)))
    test, train = order[:n_test], order[n_test:]
    model = _make_regressor(regressor, seed)
    t0 = time.perf_counter()
    fitted = [archs[i] for i in train]
    model.fit(space, fitted, target[train])
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    raw = np.asarray(model.predict(space, [archs[i] for i in test]), dtype=float)
    predict_us = 1e6 * (time.perf_counter() - t0) / len(test)
    pred = np.exp(raw) if log_target else raw
    report = {**proxy_metrics(pred, y[test]), "n_train": len(train), "n_test": len(test), "fit_s": fit_s,
              "predict_us": predict_us}
    if refit:
        model = _make_regressor(regressor, seed)
        fitted = list(archs)
        model.fit(space, fitted, target)
    state = {"metric": metric, "unit": unit or _unit_of(metric), "space": space.to_config(),
             "log_target": bool(log_target), "regressor": regressor if isinstance(regressor, str) else None,
             "seed": seed, "designs": [str(a) for a in fitted],
             "targets": [float(v) for v in (target[train] if not refit else target)], "report": report,
             "thetas": model.thetas() if isinstance(model, _ContextGP) else None}
    proxy = ProxyCostModel(_state=state, _model=model)
    return ProxyFit(proxy, report, tuple(archs[i] for i in test), y[test], pred)
