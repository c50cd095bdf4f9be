"""Zero-cost proxies: scores of an untrained network, computed on one minibatch at initialisation, that may
rank architectures like their trained accuracy does (Abdelfattah et al., 2021; Mellor et al., 2021).

Registered proxies (see :func:`list_proxies`; higher is meant to be better for all but ``params`` and
``flops``, which are size baselines):

=============  ============================================================================================
``synflow``    sum over conv/linear weights of ``|w * dR/dw|`` where ``R`` is the summed output of the
               network with every parameter replaced by its absolute value, fed an all-ones input, in float64,
               BatchNorm in eval mode (Tanaka et al., 2020); data-independent
``jacob_cov``  ``-sum(log(v + k) + 1 / (v + k))``, ``k = 1e-5``, over the eigenvalues ``v`` of the correlation
               matrix of the per-sample input Jacobians of the summed output (NASWOT v1, Mellor et al.)
``snip``       sum over conv/linear weights of ``|w * dL/dw|``, ``L`` the cross-entropy on the batch
``grad_norm``  sum over conv/linear weights of ``||dL/dw||_2``
``params``     trainable parameters (count)
``flops``      floating-point operations of one forward pass of one sample, counted by
               ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add counts 2; convolutions and matrix
               products only)
=============  ============================================================================================

Every proxy runs on a deep copy of the model, so the caller's model and its gradients are left untouched.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._registry import Registry
from .errors import ConfigError, DataError, require

require("torch", "nn")
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from ._torch import resolve_factory, torch_threads  # noqa: E402
from ._validate import check_int  # noqa: E402
from .data import SPLIT_SEED, as_splits, dataset_info  # noqa: E402
from .space import Architecture  # noqa: E402

__all__ = [
    "PROXIES",
    "PROXY_PREFIX",
    "ProxyEvaluator",
    "RankCorrelation",
    "compute_proxy",
    "list_proxies",
    "proxy_rank_correlation",
]

PROXY_PREFIX = "proxy_"
"""Metric names of :class:`ProxyEvaluator` are ``proxy_<name>``."""

ProxyFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]
PROXIES: Registry[float] = Registry("proxy")


def _weights(model: nn.Module) -> list[torch.Tensor]:
    """Weights of the conv and linear layers (the layers the gradient-based proxies score)."""
    return [m.weight for m in model.modules()
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) and m.weight is not None]


def _ce_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    model.train()
    model.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    return _weights(model)


@PROXIES.register("synflow")
def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Synaptic flow of the linearised network (data-independent: only ``x``'s shape is used). Runs in
    float64 against overflow, in float32 for models that cannot run in float64."""
    try:
        return _synflow(copy.deepcopy(model), x.shape[1:], torch.float64)
    except RuntimeError:  # e.g. a module that makes float32 tensors of its own
        return _synflow(model, x.shape[1:], torch.float32)


def _synflow(model: nn.Module, shape: torch.Size, dtype: torch.dtype) -> float:
    model = model.to(dtype).eval()
    with torch.no_grad():
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.abs_()
    model.zero_grad(set_to_none=True)
    out = model(torch.ones((1, *shape), dtype=dtype))
    out.sum().backward()
    return float(sum((w.detach() * w.grad).abs().sum() for w in _weights(model) if w.grad is not None))


@PROXIES.register("jacob_cov")
def jacob_cov(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Correlation of per-sample input Jacobians (NASWOT v1); higher means more distinct local linear maps."""
    model.train()
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    out = model(x)
    out.backward(torch.ones_like(out))
    # no gradient reached x: the output does not depend on the input, i.e. all-zero Jacobians
    grad = x.grad if x.grad is not None else torch.zeros_like(x)
    jac = grad.reshape(len(x), -1).double().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.corrcoef(jac)
    corr = np.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0)  # constant Jacobians correlate with nothing
    v = np.linalg.eigvalsh((corr + corr.T) / 2)
    v = np.clip(v, 0.0, None)
    k = 1e-5
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


@PROXIES.register("snip")
def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Connection sensitivity: sum of ``|w * dL/dw|`` (Lee et al., 2019)."""
    return float(sum((w.detach() * w.grad).abs().sum() for w in _ce_grads(model, x, y) if w.grad is not None))


@PROXIES.register("grad_norm")
def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum of the per-layer L2 norms of the loss gradient."""
    return float(sum(w.grad.norm() for w in _ce_grads(model, x, y) if w.grad is not None))


@PROXIES.register("params")
def params(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Trainable parameters (count)."""
    return float(sum(p.numel() for p in model.parameters() if p.requires_grad))


@PROXIES.register("flops")
def flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """FLOPs of one forward pass of one sample (multiply-add = 2; convolutions and matrix products)."""
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x[:1])
    return float(counter.get_total_flops())


def list_proxies() -> list[str]:
    """Names of the registered proxies."""
    return PROXIES.names()


def compute_proxy(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Score ``model`` (untrained) with proxy ``name`` on the minibatch ``x`` ``(B, C, H, W)`` float32, ``y``
    ``(B,)`` int64; the model is copied first and left as it was.

    Raises:
        UnknownNameError: no proxy has that name.
        FloatingPointError: the score is NaN or infinite (e.g. synflow overflowing on a very deep network).
    """
    fn = PROXIES.get(name)
    x = torch.as_tensor(x, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.int64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        value = float(fn(copy.deepcopy(model), x, y))
    if not math.isfinite(value):
        raise FloatingPointError(f"proxy {name!r} is {value} for this model (overflow or a degenerate network)")
    return value


class ProxyEvaluator:
    """A cheap evaluator: builds each architecture, untrained, and returns ``{"proxy_<name>": score}``.

    The minibatch is ``batch_size`` training images drawn once with ``seed`` from the train split of the same
    splits :class:`~archscout.training.TrainingEvaluator` uses, so proxies never see validation or test data.

    Args:
        dataset: as for :class:`~archscout.training.TrainingEvaluator` (name, Splits, ArrayDataset, torch Dataset).
        proxies: proxy names (default: every registered proxy).
        batch_size: minibatch size for the data-dependent proxies.
        seed: seeds the minibatch choice and the model's initialisation when the factory is built here.
        threads: ``torch.set_num_threads`` while scoring.
        factory: a ModelFactory, a callable ``arch -> Module``, ModelFactory options, or ``None``.

    Raises:
        ConfigError, UnknownNameError, DataError: invalid settings or data, at construction.
    """

    def __init__(self, dataset: Any = "digits", proxies: Sequence[str] | None = None, batch_size: int = 64,
                 seed: int = 0, threads: int = 1, factory: Any = None) -> None:

        self.proxies = tuple(list_proxies() if proxies is None else proxies)
        if isinstance(proxies, str) or not self.proxies:
            raise ConfigError(f"proxies must be a non-empty list of names, got {proxies!r}")
        for p in self.proxies:
            PROXIES.get(p)
        self.batch_size = check_int("batch_size", batch_size, 2)
        self.seed = check_int("seed", seed, 0)
        self.threads = check_int("threads", threads)
        if isinstance(dataset, str):
            info = dataset_info(dataset)
            self.dataset_name: str | None = dataset
            self._splits = None
            shape, classes = info.input_shape, info.num_classes
        else:
            self.dataset_name = None
            self._splits = as_splits(dataset, seed=SPLIT_SEED)
            shape, classes = self._splits.input_shape, self._splits.num_classes
        self._split_seed = SPLIT_SEED
        self.factory = resolve_factory(factory, shape, classes, self.seed)
        self._batch: tuple[torch.Tensor, torch.Tensor] | None = None

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed minibatch: images ``(B, C, H, W)`` float32 and labels ``(B,)`` int64 from the train split."""
        if self._batch is None:
            splits = self._splits if self._splits is not None else as_splits(self.dataset_name, seed=self._split_seed)
            X, y = splits.train
            idx = np.sort(np.random.default_rng(self.seed).choice(len(y), min(self.batch_size, len(y)), replace=False))
            self._batch = (torch.from_numpy(np.array(X[idx])), torch.from_numpy(np.array(y[idx])))
        return self._batch

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_batch"] = None
        return state

    def evaluate(self, arch: Architecture, fidelity: float | None = None) -> dict[str, float]:
        """Scores of ``arch`` at initialisation, as ``{"proxy_<name>": value}`` (``fidelity`` is ignored).

        Raises:
            BuildError: the factory cannot build ``arch``. FloatingPointError: a score is not finite.
        """
        x, y = self.batch()
        with torch_threads(self.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = self.factory(arch)
            return {PROXY_PREFIX + p: compute_proxy(p, model, x, y) for p in self.proxies}

    def to_config(self) -> dict:
        fac = self.factory
        return {
            "type": "proxy", "dataset": self.dataset_name or self._splits.to_config(),  # type: ignore[union-attr]
            "proxies": list(self.proxies), "batch_size": self.batch_size, "seed": self.seed, "threads": self.threads,
            "factory": fac.to_config() if hasattr(fac, "to_config") else {"callable": type(fac).__qualname__},
        }


# --- how well do proxies rank? -----------------------------------------------------------------------
@dataclass(frozen=True)
class RankCorrelation:
    """Spearman rank correlation of one proxy with a metric over ``n`` architectures (``rho`` in [-1, 1],
    NaN when either side is constant; ``pvalue`` of the test of no correlation)."""

    proxy: str
    metric: str
    rho: float
    pvalue: float
    n: int


def _records(source: Any) -> list[tuple[Any, Mapping[str, float]]]:
    """(key, metrics) pairs: trials are keyed by their architecture's functional hash, mappings by position."""
    trials = source.trials if hasattr(source, "trials") and not isinstance(source, Mapping) else source
    out: list[tuple[Any, Mapping[str, float]]] = []
    for i, r in enumerate(trials):
        if isinstance(r, Mapping):
            out.append((i, r))
        elif hasattr(r, "metrics") and hasattr(r, "arch"):
            if getattr(r, "state", "complete") == "complete":
                out.append((r.arch.functional_hash(), r.metrics))
        else:
            raise ConfigError(f"records must be trials or mappings of metric values, got {type(r).__name__}")
    return out


def proxy_rank_correlation(
    source: Any, proxies: str | Iterable[str] | None = None, metric: str = "accuracy",
) -> dict[str, RankCorrelation]:
    """Spearman rank correlation (``scipy.stats.spearmanr``) of each proxy with a trained metric.

    Args:
        source: a :class:`~archscout.Study` or a list of its trials (complete trials of the same architecture,
            by functional hash, are merged: proxies may come from one trial and the trained metric from another;
            repeated values are averaged), or a list of mappings that each hold the proxies and the metric.
        proxies: proxy names (with or without the ``proxy_`` prefix); ``None``: every ``proxy_*`` metric found.
        metric: the trained metric, e.g. ``"accuracy"`` (test split) or ``"val_accuracy"``.

    Returns:
        ``{proxy name: RankCorrelation}`` over the architectures that have both values.

    Raises:
        DataError: fewer than 3 architectures have both the proxy and the metric.
    """
    stats = require("scipy.stats", "stats")
    merged: dict[Any, dict[str, list[float]]] = {}
    for key, m in _records(source):
        slot = merged.setdefault(key, {})
        for k, v in m.items():
            slot.setdefault(str(k), []).append(float(v))
    rows = {k: {n: float(np.mean(v)) for n, v in d.items()} for k, d in merged.items()}
    if proxies is None:
        names = sorted({n for r in rows.values() for n in r if n.startswith(PROXY_PREFIX)})
    else:
        names = [proxies] if isinstance(proxies, str) else list(proxies)
        names = [n if n.startswith(PROXY_PREFIX) or n in {k for r in rows.values() for k in r} else PROXY_PREFIX + n
                 for n in names]
    if not names:
        raise DataError("no proxy_* metrics in the records; evaluate the architectures with ProxyEvaluator first")
    out: dict[str, RankCorrelation] = {}
    for col in names:
        pairs = [(r[col], r[metric]) for r in rows.values()
                 if col in r and metric in r and math.isfinite(r[col]) and math.isfinite(r[metric])]
        if len(pairs) < 3:
            raise DataError(f"only {len(pairs)} architectures have both {col!r} and {metric!r}; a rank correlation "
                            "needs at least 3 (train more architectures or check the metric names)")
        a = np.array(pairs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant input: scipy warns and returns NaN
            res = stats.spearmanr(a[:, 0], a[:, 1])
        name = col[len(PROXY_PREFIX):] if col.startswith(PROXY_PREFIX) else col
        out[name] = RankCorrelation(name, metric, float(res.statistic), float(res.pvalue), len(pairs))
    return out
