"""Hardware cost models and device profiles. Timing is never real here: latencies come from a fake clock that
the tiny test modules advance when they run."""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import archscout as asc  # noqa: E402
from archscout.errors import ConfigError, DataError, UnknownNameError  # noqa: E402
from archscout.hardware import (  # noqa: E402
    LatencyMeter,
    Measurement,
    analyze_module,
    cost_model_from_config,
    create_cost_model,
    create_device,
    decompose,
    get_device,
    latency_metrics,
    list_cost_models,
    list_devices,
)

NB201_ARCH0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


# --- a fake clock and modules that advance it ----------------------------------------------------------------
class FakeClock:
    """A timer in seconds that only moves when a :class:`Tick` runs (or when told to)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.reads = 0
        self.slowdown = 1.0  # > 1: the machine is busy and everything takes longer

    def __call__(self) -> float:
        self.reads += 1
        return self.now


class ScriptedTimer:
    """Returns 0, d1, 0, d2, ... so timed run i takes exactly ``durations_ms[i]``; counts reads."""

    def __init__(self, durations_ms):
        self.values = [v for d in durations_ms for v in (0.0, d / 1000.0)]
        self.reads = 0

    def __call__(self) -> float:
        v = self.values[self.reads]
        self.reads += 1
        return v


class Tick(nn.Module):
    """Identity that advances ``clock`` by ``cost_ms`` per call and counts its calls."""

    def __init__(self, clock: FakeClock, cost_ms: float) -> None:
        super().__init__()
        self.clock, self.cost_ms, self.calls = clock, cost_ms, 0

    def forward(self, x):
        self.calls += 1
        self.clock.now += self.cost_ms * self.clock.slowdown / 1000.0
        return x


class Net(nn.Module):
    """``body`` (a Sequential of Ticks) plus a fixed overhead spent outside every unit."""

    def __init__(self, clock: FakeClock, costs, overhead_ms: float) -> None:
        super().__init__()
        self.clock, self.overhead_ms = clock, overhead_ms
        self.body = nn.Sequential(*[Tick(clock, c) for c in costs])

    def forward(self, x):
        self.clock.now += self.overhead_ms * self.clock.slowdown / 1000.0
        return self.body(x)


TINY = asc.Space({"width": asc.Choice([1, 2]), "depth": asc.Choice([1, 2, 3])}, name="tiny")


class TickFactory:
    """Builds ``Net``: ``depth`` ticks of ``width`` ms each, plus 0.5 ms of overhead."""

    input_shape = (1, 2, 2)

    def __init__(self, clock: FakeClock, overhead_ms: float = 0.5) -> None:
        self.clock, self.overhead_ms, self.builds = clock, overhead_ms, 0

    def __call__(self, arch):
        self.builds += 1
        return Net(self.clock, [float(arch["width"])] * arch["depth"], self.overhead_ms)

    def to_config(self):
        return {"kind": "tick", "overhead_ms": self.overhead_ms}


class ConvFactory:
    """Small real convolutional networks for the tiny space (for analytic features and ONNX)."""

    input_shape = (3, 8, 8)

    def __call__(self, arch):
        layers, c = [], 3
        for _ in range(arch["depth"]):
            layers += [nn.Conv2d(c, 4 * arch["width"], 3, padding=1), nn.ReLU()]
            c = 4 * arch["width"]
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 2))


# --- analytic --------------------------------------------------------------------------------------------------
def test_analytic_counts_a_single_conv_exactly():
    conv = nn.Conv2d(3, 8, 3, padding=1)  # 8*3*9 weights + 8 biases; 8x8 output
    stats = analyze_module(conv, (3, 8, 8))
    assert stats.params == 8 * 3 * 9 + 8
    assert stats.flops == 2 * (8 * 8 * 8) * (3 * 9)  # one MAC = 2 FLOPs, bias not counted
    assert stats.peak_activation_bytes == (3 * 64 + 8 * 64) * 4
    models = {n: create_cost_model(n, factory=lambda arch: nn.Conv2d(3, 8, 3, padding=1), input_shape=(3, 8, 8))
              for n in ("params", "flops", "peak_mem_mb")}
    arch = TINY.make({"width": 1, "depth": 1})
    assert models["params"].predict(arch) == pytest.approx(224 / 1e6)
    assert models["flops"].predict(arch) == pytest.approx(27648 / 1e6)
    assert models["peak_mem_mb"].predict(arch) == pytest.approx(2816 / 1e6)
    assert [models[n].unit for n in ("params", "flops", "peak_mem_mb")] == ["M", "MFLOPs", "MB"]
    assert all(m.cheap for m in models.values())


def test_analytic_linear_depthwise_and_inplace_activation():
    net = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False), nn.ReLU(inplace=True),
                        nn.Flatten(), nn.Linear(4 * 16, 5))
    stats = analyze_module(net, (4, 4, 4))
    assert stats.params == 4 * 9 + (64 * 5 + 5)
    assert stats.flops == 2 * (4 * 16 * 9) + 2 * (64 * 5)
    dw, relu = stats.layers[0], stats.layers[1]
    assert (dw.op, dw.groups, dw.kernel, dw.macs) == ("Conv2d", 4, 3, 4 * 16 * 9)
    assert relu.act_bytes == 64 * 4  # in place: input and output are one tensor
    assert stats.peak_activation_bytes == 2 * 64 * 4


# --- measured latency -----------------------------------------------------------------------------------------
def test_meter_takes_median_and_iqr_of_repeats_after_warmup():
    clock = FakeClock()
    tick = Tick(clock, 1.0)
    timer = ScriptedTimer([3.0, 1.0, 2.0, 10.0, 4.0])
    meter = LatencyMeter("torch", warmup=4, repeats=5, timer=timer)
    m = meter.measure(tick, (1, 2, 2))
    assert m.median_ms == pytest.approx(3.0)
    assert m.spread_ms == pytest.approx(4.0 - 2.0)  # IQR
    assert m.samples == pytest.approx((3.0, 1.0, 2.0, 10.0, 4.0))
    assert tick.calls == 4 + 5 and timer.reads == 2 * 5


def test_measured_latency_uses_the_clock_and_caches_per_function_and_device(tmp_path):
    clock = FakeClock()
    factory = TickFactory(clock)
    path = tmp_path / "lat.json"
    model = create_cost_model("measured-latency", device="cpu-torch", factory=factory, warmup=2, repeats=3,
                              timer=clock, cache_path=path, reference=None)
    assert model.cheap is False and model.unit == "ms"
    arch = TINY.make({"width": 2, "depth": 3})
    assert model.predict(arch) == pytest.approx(3 * 2.0 + 0.5)
    m = model.measure(arch)
    assert m.spread_ms == pytest.approx(0.0) and len(m.samples) == 3
    assert model.predict(TINY.make({"width": 2, "depth": 3})) == pytest.approx(6.5)
    assert model.n_measured == 1 and factory.builds == 1  # never measured twice
    # another device setting is another cache entry
    other = create_cost_model("measured-latency", device="cpu-torch", factory=factory, threads=2, repeats=3,
                              timer=clock, cache_path=path, reference=None)
    assert other.predict(arch) == pytest.approx(6.5) and other.n_measured == 1
    # the file round-trips: a fresh object reads both entries and measures nothing
    data = json.loads(path.read_text())
    assert data["format"] == "archscout-latency-cache" and len(data["entries"]) == 2
    again = create_cost_model("measured-latency", device="cpu-torch", factory=TickFactory(FakeClock()),
                              timer=lambda: pytest.fail("measured again"), cache_path=path, reference=None)
    assert again.predict(arch) == pytest.approx(6.5) and again.n_measured == 0
    assert again.measure(arch).samples == pytest.approx((6.5, 6.5, 6.5))
    # measuring again on purpose leaves the cache untouched
    assert model.measure(arch, cached=False).median_ms == pytest.approx(6.5) and model.n_measured == 2


def test_paired_protocol_cancels_a_busy_machine():
    clock = FakeClock()
    model = create_cost_model("measured-latency", device="cpu-torch", factory=TickFactory(clock), repeats=3,
                              timer=clock)  # reference="auto": a fixed sample of the space
    ref = TINY.sample(np.random.default_rng(0))
    arch = TINY.make({"width": 2, "depth": 3})
    assert model.predict(arch) == pytest.approx(6.5)
    assert model.meter.reference_ms == pytest.approx(ref["width"] * ref["depth"] + 0.5)
    clock.slowdown = 3.0
    assert model.measure(arch, cached=False).median_ms == pytest.approx(6.5)
    plain = create_cost_model("measured-latency", device="cpu-torch", factory=TickFactory(clock), repeats=3,
                              timer=clock, reference=None)
    assert plain.predict(arch) == pytest.approx(3 * 6.5)
    assert plain.cache_key(arch) != model.cache_key(arch)


def test_measured_latency_pickles_after_use_and_keeps_its_scale():
    clock = FakeClock()
    model = create_cost_model("measured-latency", device="cpu-torch", factory=TickFactory(clock), repeats=3,
                              timer=clock)
    a, b = TINY.make({"width": 1, "depth": 2}), TINY.make({"width": 2, "depth": 2})
    assert model.predict(a) == pytest.approx(2.5) and model.meter.paired
    copy = pickle.loads(pickle.dumps(model))  # e.g. sent to a worker process
    assert not copy.meter.paired and copy.meter.reference_ms == model.meter.reference_ms
    copy.meter.timer.slowdown = 2.0
    assert copy.predict(a) == pytest.approx(2.5) and copy.n_measured == 1  # cached, not measured again
    assert copy.predict(b) == pytest.approx(4.5) and copy.meter.paired  # paired again, same calibration


def test_measured_latency_keys_on_the_functional_hash():
    clock = FakeClock()
    space = asc.create_space("nb201")
    a = space.parse("|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    b = space.parse("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|nor_conv_3x3~0|none~1|none~2|")  # dead path differs
    assert a != b and a.functional_hash() == b.functional_hash()
    model = create_cost_model("measured-latency", device="cpu-torch", factory=lambda arch: Tick(clock, 1.5),
                              input_shape=(1, 2, 2), repeats=2, timer=clock, reference=None)
    assert model.predict(a) == model.predict(b) == pytest.approx(1.5)
    assert model.n_measured == 1


def test_measured_latency_onnxruntime_runs_a_real_model():
    pytest.importorskip("onnxruntime")
    model = create_cost_model("measured-latency", device="cpu-ort", factory=ConvFactory(), warmup=1, repeats=3)
    m = model.measure(TINY.make({"width": 1, "depth": 2}))
    assert len(m.samples) == 3 and m.median_ms > 0 and m.spread_ms >= 0
    assert model.meter.reference_ms > 0  # paired with the space's reference network by default
    from archscout.hardware.measure import onnx_bytes

    meter = LatencyMeter("onnxruntime", warmup=1, repeats=2)
    data = onnx_bytes(nn.Conv2d(3, 4, 3), torch.zeros(1, 3, 8, 8))
    assert len(meter.time(meter.prepare_onnx(data, (3, 8, 8))).samples) == 2


def test_analytic_default_factory_builds_archscout_models():
    pytest.importorskip("archscout.nn")
    arch = asc.create_space("mbv3").sample(np.random.default_rng(0))
    small = create_cost_model("flops", input_shape=(3, 16, 16))
    big = create_cost_model("flops")  # ModelFactory((3, 32, 32), num_classes=10)
    assert 0 < small.predict(arch) < big.predict(arch)
    assert big.to_config()["factory"]["input_shape"] == [3, 32, 32]


def test_measurement_summary():
    m = Measurement.from_samples([5.0, 1.0, 3.0])
    assert (m.median_ms, m.spread_ms) == (3.0, 2.0)
    assert Measurement.from_dict(m.to_dict()) == m
    with pytest.raises(ConfigError):
        Measurement.from_samples([])


def test_cache_file_that_is_not_a_cache_is_refused(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"something": 1}')
    with pytest.raises(DataError, match="latency cache"):
        create_cost_model("measured-latency", factory=TickFactory(FakeClock()), cache_path=bad)


# --- lookup table ---------------------------------------------------------------------------------------------
def test_lut_predicts_unit_sum_plus_fitted_overhead_exactly():
    clock = FakeClock()
    factory = TickFactory(clock, overhead_ms=0.5)
    lut = create_cost_model("lut-latency", device="cpu-torch", factory=factory, warmup=1, repeats=3, timer=clock)
    assert lut.cheap is True and lut.unit == "ms"
    archs = list(TINY.enumerate())
    units = lut.units(TINY.make({"width": 2, "depth": 3}))
    assert [u.name for u in units] == ["body.0", "body.1", "body.2"] and len({u.key for u in units}) == 1
    assert lut.build(archs[:2]) == 1  # width 1: one configuration, measured once
    assert lut.build(archs) == 1  # width 2 added
    assert lut.build(archs) == 0
    whole = create_cost_model("measured-latency", device="cpu-torch", factory=factory, repeats=3, timer=clock)
    calib = [archs[0], archs[1], archs[-1]]
    fit = lut.fit_overhead(calib, [whole.predict(a) for a in calib])
    assert fit["scale"] == pytest.approx(1.0) and fit["intercept"] == pytest.approx(0.5)
    assert fit["per_unit_ms"] == pytest.approx(0.0, abs=1e-9)
    for a in archs:
        assert lut.predict(a) == pytest.approx(a["width"] * a["depth"] + 0.5)
    # the table round-trips through the config: no measurement needed to predict
    cfg = json.loads(json.dumps(lut.to_config()))
    again = cost_model_from_config(cfg, factory=TickFactory(FakeClock()), timer=lambda: pytest.fail("measured"),
                                   measure_missing=False)
    assert again.predict(archs[-1]) == pytest.approx(lut.predict(archs[-1]))
    empty = create_cost_model("lut-latency", device="cpu-torch", factory=factory, measure_missing=False)
    with pytest.raises(DataError, match="build"):
        empty.predict(archs[0])


def test_lut_decomposes_compiled_graph_modules_into_blocks():
    nn_mod = pytest.importorskip("archscout.nn")
    space = asc.create_space("mbv3")
    arch = space.sample(np.random.default_rng(0))
    factory = nn_mod.ModelFactory(input_shape=(3, 16, 16), num_classes=10)
    units = decompose(factory(arch), (3, 16, 16))
    blocks = [u for u in units if u.op.startswith("MBConv")]
    assert len(blocks) == 1 + sum(len(stage) for stage in arch["stages"])
    assert units[0].input_shape == (3, 16, 16)
    same = decompose(factory(arch), (3, 16, 16))
    assert [u.key for u in same] == [u.key for u in units]  # keys ignore weights


# --- learned predictor ----------------------------------------------------------------------------------------
def _synthetic(archs):
    return [0.3 + 0.2 * a["width"] * a["depth"] + 0.05 * a["depth"] for a in archs]


def test_learned_latency_fits_and_reports_its_error():
    pytest.importorskip("sklearn")
    space = asc.Space({"width": asc.Ordinal([1, 2, 3]), "depth": asc.Ordinal([1, 2, 3, 4]),
                       "k": asc.Choice([3, 5])}, name="tiny3")
    archs = list(space.enumerate())
    model = create_cost_model("learned-latency", device="cpu-ort", factory=ConvFactory(), model="ridge",
                              validation_fraction=0.25)
    assert model.cheap is True and model.unit == "ms"
    model.fit(archs, _synthetic(archs))
    report = model.validation_report()
    assert {"within10", "within5", "mape", "spearman", "rmse", "n", "n_train"} <= set(report)
    assert report["n"] == 6 and report["n_train"] == 18
    assert 0.0 <= report["within10"] <= 1.0
    scores = model.evaluate(archs, _synthetic(archs))
    assert scores["within10"] > 0.9
    cfg = json.loads(json.dumps(model.to_config()))
    again = cost_model_from_config(cfg, factory=ConvFactory())
    assert again.predict_many(archs) == pytest.approx(model.predict_many(archs))


def test_learned_latency_on_encodings_only_and_other_regressors():
    pytest.importorskip("sklearn")
    space = asc.create_space("nb201")
    archs = [space.sample(np.random.default_rng(i)) for i in range(40)]
    y = [1.0 + sum(op == "nor_conv_3x3" for op in a["cell"]) for a in archs]
    for kind in ("gbr", "rf", "ridge+gbr"):
        model = create_cost_model("learned-latency", device=None, features=["encoding"], model=kind).fit(archs, y)
        assert np.all(model.predict_many(archs) > 0)
        assert model.validation_report()["n"] == 8


# --- tables and devices ---------------------------------------------------------------------------------------
def test_table_latency_reads_nb201_columns(latency_table):
    space = asc.create_space("nb201")
    arch0 = space.parse(NB201_ARCH0)
    pixel3 = create_cost_model("table-latency", device="nb201-pixel3", table=latency_table)
    assert pixel3.predict(arch0) == pytest.approx(3.60585) and pixel3.cheap and pixel3.unit == "ms"
    raspi4 = create_device("nb201-raspi4", table=latency_table).latency_model()
    assert raspi4.predict(arch0) == pytest.approx(10.481977)
    fpga = create_cost_model("table-latency", table=latency_table, column="fpga_ms")
    assert fpga.predict(arch0) == pytest.approx(2.57296)
    arch1 = space.parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    assert cost_model_from_config(pixel3.to_config()).predict(arch1) == pytest.approx(17.2381)
    with pytest.raises(DataError, match="no column"):
        create_cost_model("table-latency", table=latency_table, column="tpu_ms")


def test_device_registry():
    names = list_devices()
    assert {"cpu-ort", "cpu-torch", "nb201-eyeriss", "nb201-fpga", "nb201-pixel3", "nb201-raspi4", "nb201-2080ti",
            "nb201-gold6226"} <= set(names)
    assert create_device("nb201-2080ti").column == "2080ti_1_ms"
    assert create_device("nb201-gold6226", column="gold_6240_ms").column == "gold_6240_ms"
    ort = create_device("cpu-ort", threads=2)
    assert (ort.runtime, ort.batch_size, ort.threads) == ("onnxruntime", 1, 2)
    assert get_device(ort.to_config()) == ort
    with pytest.raises(UnknownNameError, match="cpu-ort"):
        create_device("tpu-v9")
    with pytest.raises(UnknownNameError):
        create_cost_model("measured-latency", device="pixel9")
    with pytest.raises(UnknownNameError):
        create_cost_model("magic-latency")


@pytest.mark.parametrize("name, params", [
    ("measured-latency", {"repeats": 0}),
    ("measured-latency", {"warmup": -1}),
    ("measured-latency", {"runtime": "tpu"}),
    ("measured-latency", {"threads": 0}),
    ("measured-latency", {"device": "nb201-pixel3"}),
    ("measured-latency", {"speed": "fast"}),
    ("measured-latency", {"timer": 3}),
    ("lut-latency", {"table": {"units": {"k": {}}}}),
    ("lut-latency", {"transparent": "Sequential"}),
    ("learned-latency", {"model": "xgboost"}),
    ("learned-latency", {"features": ["colour"]}),
    ("learned-latency", {"validation_fraction": 1.5}),
    ("table-latency", {"device": "nb201-pixel3"}),
    ("table-latency", {"device": "cpu-ort", "table": "x.csv"}),
    ("params", {"factory": 42}),
])
def test_bad_parameters_are_config_errors(name, params):
    params = {"factory": TickFactory(FakeClock()), **params} if name != "table-latency" else params
    with pytest.raises(ConfigError):
        create_cost_model(name, **params)


def test_every_registered_cost_model_follows_the_contract(latency_table, tmp_path):
    from archscout.hardware.proxy import fit_proxy

    pytest.importorskip("sklearn")
    systolic = asc.create_space("systolic")
    designs = [systolic.sample(np.random.default_rng(i)) for i in range(12)]
    proxy = fit_proxy([(d, 1.0 + d["rows"]) for d in designs], "cycles", regressor="knn").model
    proxy.save(tmp_path / "p.json")
    clock = FakeClock()
    factory = TickFactory(clock)
    arch = TINY.make({"width": 1, "depth": 2})
    conv = ConvFactory()
    built = {
        "params": create_cost_model("params", factory=conv),
        "flops": create_cost_model("flops", factory=conv),
        "peak_mem_mb": create_cost_model("peak_mem_mb", factory=conv),
        "measured-latency": create_cost_model("measured-latency", device="cpu-torch", factory=factory, timer=clock),
        "lut-latency": create_cost_model("lut-latency", device="cpu-torch", factory=factory, timer=clock),
        "learned-latency": create_cost_model("learned-latency", factory=conv, model="ridge").fit(
            list(TINY.enumerate()), _synthetic(TINY.enumerate())),
        "table-latency": create_cost_model("table-latency", device="nb201-fpga", table=latency_table),
        "table": create_cost_model("table", table=latency_table, column="raspi4_ms", space="nb201"),
        "systolic": create_cost_model("systolic", metric="latency_ms", factory=conv,
                                      accelerator={"rows": 4, "cols": 4, "dataflow": "os"}),
        "proxy": create_cost_model("proxy", path=tmp_path / "p.json"),
    }
    assert set(built) == set(list_cost_models())
    nb_arch = asc.create_space("nb201").parse(NB201_ARCH0)
    for name, model in built.items():
        assert model.name == name and model.unit and isinstance(model.cheap, bool)
        value = model.predict(nb_arch if name.startswith("table") else designs[0] if name == "proxy" else arch)
        assert np.isfinite(value) and value > 0
        cfg = model.to_config()
        assert cfg["name"] == name
        json.dumps(cfg)


def test_latency_metrics():
    m = latency_metrics([1.0, 2.2, 3.0, 5.0], [1.0, 2.0, 3.5, 4.0])
    assert m["within10"] == pytest.approx(0.5) and m["n"] == 4
    assert m["mape"] == pytest.approx(100 * (0 + 0.1 + 0.5 / 3.5 + 0.25) / 4)
    assert m["spearman"] == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        latency_metrics([1.0], [1.0, 2.0])


# --- latency-bench command ------------------------------------------------------------------------------------
def test_latency_bench_parser():
    from archscout.hardware import add_latency_bench_parser
    from archscout.hardware.latency_bench import cmd_latency_bench

    parser = argparse.ArgumentParser()
    add_latency_bench_parser(parser.add_subparsers(dest="command"))
    ns = parser.parse_args(["latency-bench", "--space", "mbv3", "--device", "cpu-ort", "--train", "300", "--test",
                            "200", "--json", "out.json", "--input-shape", "3,24,24"])
    assert (ns.space, ns.device, ns.train, ns.test, ns.json, ns.input_shape) == (
        "mbv3", "cpu-ort", 300, 200, "out.json", (3, 24, 24))
    assert ns.fn is cmd_latency_bench


def test_latency_bench_small_run(tmp_path):
    pytest.importorskip("archscout.nn")
    pytest.importorskip("onnxruntime")
    from archscout.hardware import run_latency_bench

    out = tmp_path / "bench.json"
    res = run_latency_bench("mbv3", "cpu-ort", n_train=6, n_test=2, json_path=out, input_shape=(3, 8, 8),
                            warmup=0, repeats=1, progress=False)
    saved = json.loads(out.read_text())
    for key in ("within10_learned", "within10_lut", "within10_flops", "repeatability_within10"):
        assert 0.0 <= saved[key] <= 1.0 and saved[key] == res[key]
    assert saved["n_train"] == 6 and saved["n_test"] == 2 and saved["runtime_s"] > 0
    with pytest.raises(ConfigError, match="table device"):
        run_latency_bench("mbv3", "nb201-pixel3", json_path=None)


def test_import_stays_light():
    code = ("import sys, archscout, archscout.hardware as hw; hw.list_cost_models(); "
            "print(sorted(m for m in ('torch', 'onnxruntime', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
