"""``latency-bench``: how well each latency predictor matches measurements on this machine.

Samples functionally distinct architectures, measures each on the device (median of repeats), fits the
learned predictor, a lookup table (per-unit latencies + fitted overhead) and a FLOPs-linear baseline
(``latency = a * MFLOPs + b``) on the training architectures, and scores all three on the test ones. Also
measures every test architecture a second time, at the end, to show how repeatable the measurements are.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validate import check_int
from ..errors import ConfigError, SpaceExhaustedError
from ..space import Architecture, Space, create_space
from .analytic import FlopsModel
from .base import latency_metrics
from .devices import DeviceProfile, get_device
from .lut import LUTLatency
from .measure import MeasuredLatency
from .predictor import MODELS, LearnedLatency

__all__ = ["add_latency_bench_parser", "cmd_latency_bench", "run_latency_bench", "sample_distinct"]


def sample_distinct(space: Space, n: int, rng: np.random.Generator, max_tries: int | None = None) -> list[Architecture]:
    """``n`` architectures with distinct functional hashes, sampled uniformly.

    Raises:
        SpaceExhaustedError: fewer than ``n`` distinct ones were found in ``max_tries`` draws (default 50 n).
    """
    seen: set[str] = set()
    out: list[Architecture] = []
    tries = 0
    limit = max_tries if max_tries is not None else 50 * n + 100
    while len(out) < n:
        if tries >= limit:
            raise SpaceExhaustedError(f"found only {len(out)} functionally distinct architectures in {limit} draws")
        tries += 1
        a = space.sample(rng)
        h = a.functional_hash()
        if h not in seen:
            seen.add(h)
            out.append(a)
    return out


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def run_latency_bench(
    space: str | Space = "mbv3",
    device: str | DeviceProfile = "cpu-ort",
    n_train: int = 300,
    n_test: int = 200,
    json_path: str | os.PathLike | None = "results/latency-bench.json",
    input_shape: Sequence[int] = (3, 32, 32),
    seed: int = 0,
    *,
    warmup: int = 20,
    repeats: int = 50,
    model: str = "ridge",
    cache_path: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the benchmark and write its JSON (when ``json_path`` is given); returns the same dict.

    Keys: ``within10_learned``, ``within10_lut``, ``within10_flops`` (shares in [0, 1] of test architectures
    predicted within +-10 % of the measured median), ``repeatability_within10`` (share of second measurements
    within +-10 % of the first), ``mape_*`` (%), ``spearman_*``, ``learned_validation`` (the predictor's own
    held-out report), ``runtime_s`` and the settings.

    Raises:
        ConfigError: bad settings (e.g. a table device). UnknownNameError: unknown space or device.
    """
    t_start = time.perf_counter()
    n_train = check_int("n_train", n_train, 2)
    n_test = check_int("n_test", n_test, 1)
    dev = get_device(device)
    if dev.kind != "measured":
        raise ConfigError(f"latency-bench measures on this machine; {dev.name!r} is a table device "
                          "(use cpu-ort or cpu-torch)")
    if model not in MODELS:
        raise ConfigError(f"model must be one of {MODELS}, got {model!r}")
    sp = create_space(space) if isinstance(space, str) else space
    from ..errors import require

    nn = require("archscout.nn", "nn")
    factory = nn.ModelFactory(input_shape=tuple(int(s) for s in input_shape), num_classes=10, seed=seed)
    rng = np.random.default_rng(seed)
    archs = sample_distinct(sp, n_train + n_test, rng)
    train, test = archs[:n_train], archs[n_train:]

    meter = MeasuredLatency(dev, factory, warmup=warmup, repeats=repeats, cache_path=cache_path)
    times: dict[str, float] = {}
    t = time.perf_counter()
    measured: list[float] = []
    spreads: list[float] = []
    for i, a in enumerate(archs):
        m = meter.measure(a)
        measured.append(m.median_ms)
        spreads.append(m.spread_ms / m.median_ms)
        if (i + 1) % 50 == 0 or i + 1 == len(archs):
            _log(progress, f"measured {i + 1}/{len(archs)} architectures ({time.perf_counter() - t:.0f} s)")
    times["measure_s"] = time.perf_counter() - t
    y = np.asarray(measured)
    y_train, y_test = y[:n_train], y[n_train:]

    t = time.perf_counter()
    learned = LearnedLatency(dev, factory, model=model, seed=seed).fit(train, y_train)
    p_learned = learned.predict_many(test)
    times["learned_fit_s"] = time.perf_counter() - t
    _log(progress, f"learned predictor fitted ({times['learned_fit_s']:.0f} s)")

    t = time.perf_counter()
    flops = FlopsModel(factory)
    f_train = np.array([flops.predict(a) for a in train])
    f_test = np.array([flops.predict(a) for a in test])
    (fa, fb), *_ = np.linalg.lstsq(np.column_stack([f_train, np.ones_like(f_train)]), y_train, rcond=None)
    p_flops = fa * f_test + fb
    times["flops_fit_s"] = time.perf_counter() - t

    t = time.perf_counter()
    lut = LUTLatency(dev, factory, warmup=warmup, repeats=repeats, measure_missing=False)
    n_units = lut.build(archs)
    overhead = lut.fit_overhead(train, y_train)
    p_lut = lut.predict_many(test)
    times["lut_s"] = time.perf_counter() - t
    _log(progress, f"lookup table built: {n_units} unit configurations ({times['lut_s']:.0f} s)")

    t = time.perf_counter()
    again = np.array([meter.measure(a, cached=False).median_ms for a in test])
    times["repeat_s"] = time.perf_counter() - t
    rep = latency_metrics(again, y_test)

    res: dict[str, Any] = {}
    for label, pred in (("learned", p_learned), ("lut", p_lut), ("flops", p_flops)):
        met = latency_metrics(pred, y_test)
        res[f"within10_{label}"] = met["within10"]
        res[f"within5_{label}"] = met["within5"]
        res[f"mape_{label}"] = met["mape"]
        res[f"spearman_{label}"] = met["spearman"]
    res.update({
        "repeatability_within10": rep["within10"], "repeatability_within5": rep["within5"],
        "repeatability_mape": rep["mape"],
        "learned_validation": learned.validation_report(),
        "lut_units": len(lut.entries), "lut_overhead": overhead,
        "flops_fit": {"ms_per_mflop": float(fa), "intercept_ms": float(fb)},
        "latency_ms": {"min": float(y.min()), "median": float(np.median(y)), "max": float(y.max())},
        "relative_iqr_median": float(np.median(spreads)),
        "space": sp.name, "device": dev.to_config() | {"host": dev.host}, "input_shape": list(factory.input_shape),
        "n_train": n_train, "n_test": n_test, "seed": seed, "warmup": warmup, "repeats": repeats, "model": model,
        "times_s": {k: round(v, 1) for k, v in times.items()},
        "runtime_s": round(time.perf_counter() - t_start, 1),
    })
    if json_path is not None:
        path = os.fspath(json_path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=2)
    return res


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(t) for t in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 3,32,32") from None
    if len(dims) != 3 or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 3,32,32")
    return dims


def add_latency_bench_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``latency-bench`` subcommand to an argparse ``subparsers`` object; returns its parser."""
    p = subparsers.add_parser("latency-bench",
                              help="measure architectures on this machine and score latency predictors")
    p.add_argument("--space", default="mbv3", help="space to sample (default mbv3)")
    p.add_argument("--device", default="cpu-ort", help="measured device (cpu-ort or cpu-torch)")
    p.add_argument("--train", type=int, default=300, help="training architectures (default 300)")
    p.add_argument("--test", type=int, default=200, help="test architectures (default 200)")
    p.add_argument("--json", default="results/latency-bench.json", help="output JSON file")
    p.add_argument("--input-shape", dest="input_shape", type=_shape, default=(3, 32, 32),
                   help="C,H,W (default 3,32,32)")
    p.add_argument("--seed", type=int, default=0, help="sampling and model seed")
    p.add_argument("--warmup", type=int, default=20, help="untimed runs per measurement")
    p.add_argument("--repeats", type=int, default=50, help="timed runs per measurement (median)")
    p.add_argument("--model", choices=list(MODELS), default="ridge", help="learned predictor's regressor")
    p.add_argument("--cache", help="JSON file caching measurements across runs")
    p.add_argument("--quiet", action="store_true", help="no progress lines (for scripts)")
    p.set_defaults(fn=cmd_latency_bench)
    return p


def cmd_latency_bench(ns: argparse.Namespace) -> int:
    """Handler of ``latency-bench``: runs :func:`run_latency_bench` and prints the scores."""
    res = run_latency_bench(ns.space, ns.device, ns.train, ns.test, ns.json, ns.input_shape, ns.seed,
                            warmup=ns.warmup, repeats=ns.repeats, model=ns.model, cache_path=ns.cache,
                            progress=not ns.quiet)
    print(f"{'predictor':<10} {'within10':>9} {'MAPE %':>8} {'Spearman':>9}")
    for label in ("learned", "lut", "flops"):
        print(f"{label:<10} {res[f'within10_{label}']:>9.3f} {res[f'mape_{label}']:>8.2f} "
              f"{res[f'spearman_{label}']:>9.3f}")
    print(f"repeatability within10 {res['repeatability_within10']:.3f}; runtime {res['runtime_s']:.0f} s; -> {ns.json}")
    return 0
