"""Zero-cost proxies, the proxy evaluator and the rank-correlation helper."""

from __future__ import annotations

import json
import math
import pickle

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")
from torch import nn  # noqa: E402

import archscout as asc  # noqa: E402
from archscout.errors import ConfigError, DataError, UnknownNameError  # noqa: E402
from archscout.proxies import (  # noqa: E402
    ProxyEvaluator,
    compute_proxy,
    list_proxies,
    proxy_rank_correlation,
)
from archscout.results import Trial  # noqa: E402

ALL = ["flops", "grad_norm", "jacob_cov", "params", "snip", "synflow"]
SPACE = asc.Space({"width": asc.Choice([4, 8, 16, 32])})


class WidthFactory:
    """Stand-in model factory: conv - BN - ReLU - conv - BN - ReLU - pool - linear of the arch's width."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def __call__(self, arch) -> nn.Module:
        torch.manual_seed(self.seed)
        w = arch["width"]
        return nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(w, 10),
        )


class InputBlind(nn.Module):
    """Output independent of the input (like a cell of 'none' edges)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(1, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.new_ones(len(x), 1)) + 0 * x.sum()


def batch(n: int = 16):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 8, 8, generator=g), torch.arange(n) % 10


def test_registry_lists_every_proxy():
    assert list_proxies() == ALL
    with pytest.raises(UnknownNameError, match="did you mean 'snip'"):
        compute_proxy("snipp", nn.Linear(2, 2), *batch())


@pytest.mark.parametrize("name", ALL)
def test_each_proxy_is_finite_and_leaves_the_model_untouched(name):
    model = WidthFactory()(SPACE.make({"width": 8}))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    value = compute_proxy(name, model, *batch())
    assert isinstance(value, float) and math.isfinite(value)
    assert compute_proxy(name, model, *batch()) == value  # deterministic
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters()) and model.training
    assert math.isfinite(compute_proxy(name, InputBlind(), *batch()))


def test_size_proxies_are_exact_and_grow_with_width():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 64, 10))
    x, y = batch()
    assert compute_proxy("params", model, x, y) == (4 * 9 + 4) + (256 * 10 + 10)
    assert compute_proxy("flops", model, x, y) == 2 * (4 * 9 * 64 + 256 * 10)  # one sample, multiply-add = 2
    archs = [SPACE.make({"width": w}) for w in (4, 8, 16, 32)]
    for name in ("params", "flops", "synflow"):
        vals = [compute_proxy(name, WidthFactory()(a), x, y) for a in archs]
        assert vals == sorted(vals) and vals[-1] > 2 * vals[0], name


def test_jacob_cov_ranks_an_input_blind_network_last():
    x, y = batch(32)
    blind = compute_proxy("jacob_cov", InputBlind(), x, y)
    assert compute_proxy("jacob_cov", WidthFactory()(SPACE.make({"width": 16})), x, y) > blind


def test_proxy_evaluator_is_deterministic_picklable_and_uses_train_data():
    ev = ProxyEvaluator("digits", proxies=["synflow", "params", "snip"], batch_size=32, factory=WidthFactory())
    a = SPACE.make({"width": 8})
    m = ev.evaluate(a)
    assert set(m) == {"proxy_synflow", "proxy_params", "proxy_snip"}
    clone = pickle.loads(pickle.dumps(ev))
    assert clone._batch is None and clone.evaluate(a) == m
    X, y = ev.batch()
    assert X.shape == (32, 1, 8, 8) and X.dtype == torch.float32 and y.dtype == torch.int64
    from archscout.data import as_splits

    train = {r.tobytes() for r in as_splits("digits").X_train}
    assert all(r.numpy().tobytes() in train for r in X)
    json.dumps(ev.to_config())
    with pytest.raises(UnknownNameError):
        ProxyEvaluator("digits", proxies=["nope"], factory=WidthFactory())
    with pytest.raises(ConfigError):
        ProxyEvaluator("digits", proxies="snip", factory=WidthFactory())


def test_proxy_evaluator_with_real_models():
    pytest.importorskip("archscout.nn")
    space = asc.create_space("nb201")
    ev = ProxyEvaluator("digits", factory={"C": 4, "N": 1}, batch_size=16)
    for s in ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
              "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"):
        m = ev.evaluate(space.parse(s))
        assert set(m) == {f"proxy_{p}" for p in ALL} and all(math.isfinite(v) for v in m.values())


def test_spearman_helper_on_constructed_records():
    acc = [0.1, 0.3, 0.2, 0.5, 0.4]
    recs = [{"proxy_a": float(i), "proxy_b": -float(i), "accuracy": v} for i, v in enumerate(acc)]
    out = proxy_rank_correlation(recs)
    # ranks of acc: 1 3 2 5 4 against 1 2 3 4 5 -> sum d^2 = 4, rho = 1 - 6 * 4 / (5 * 24) = 0.8
    assert out["a"].rho == pytest.approx(0.8) and out["b"].rho == pytest.approx(-0.8)
    assert out["a"].n == 5 and 0 < out["a"].pvalue < 1 and out["a"].metric == "accuracy"
    assert list(proxy_rank_correlation(recs, "a")) == ["a"]
    const = [{"proxy_c": 1.0, "accuracy": v} for v in acc]
    assert math.isnan(proxy_rank_correlation(const)["c"].rho)
    with pytest.raises(DataError, match="only 2 architectures"):
        proxy_rank_correlation(recs[:2])
    with pytest.raises(DataError, match="no proxy"):
        proxy_rank_correlation([{"accuracy": 1.0}] * 3)


def test_spearman_helper_merges_trials_of_one_architecture():
    archs = [SPACE.make({"width": w}) for w in (4, 8, 16, 32)]
    acc = [0.5, 0.7, 0.6, 0.9]
    trials = [Trial(i, a, state="complete", metrics={"proxy_params": float(i)}) for i, a in enumerate(archs)]
    trials += [Trial(4 + i, a, state="complete", metrics={"accuracy": v}) for i, (a, v) in enumerate(zip(archs, acc))]
    trials.append(Trial(9, archs[0], state="failed", metrics={"accuracy": 1.0}))
    assert proxy_rank_correlation(trials, ["params"])["params"].rho == pytest.approx(0.8)
    study = asc.create_study(SPACE, objectives=[asc.Objective("accuracy", "max")], seed=0)
    for _ in range(4):
        t = study.ask()
        study.tell(t, {"accuracy": acc[archs.index(t.arch)], "proxy_params": float(t.arch["width"])})
    assert proxy_rank_correlation(study)["params"].rho == pytest.approx(0.8)
