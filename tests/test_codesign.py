"""Accelerator designs as architectures (the ``systolic`` space, its evaluator and cost model), joint network x
accelerator spaces, co-design studies, and the ``auto`` / ``ls`` settings the lottery benchmark varies."""

from __future__ import annotations

import numpy as np
import pytest

import archscout as asc
from archscout.errors import ConfigError
from archscout.hardware import cost_model_from_config
from archscout.hardware.accelerator import ACCEL_METRICS, AcceleratorEvaluator, SystolicCost, accelerator_of
from archscout.hardware.codesign import PartEvaluator, joint_space, network_arch, part_of
from archscout.hardware.systolic import Accelerator, ConvLayer, simulate

SMALL = [ConvLayer("c1", 10, 10, 3, 3, 4, 8), ConvLayer("c2", 8, 8, 3, 3, 8, 16, 2, 2),
         ConvLayer("fc", 1, 1, 1, 1, 64, 10)]


def test_systolic_space_round_trips_and_has_every_accelerator_parameter():
    space = asc.create_space("systolic")
    assert space.size() == 5 ** 6 * 3
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = space.sample(rng)
        assert space.parse(str(a)) == a
    small = asc.create_space("systolic", rows=(4, 8), cols=(4,), bandwidth=(2, 4))
    assert small.size() == 2 * 1 * 3 * 5 * 5 * 5 * 2


def test_accelerator_of_reads_the_design_and_keeps_the_base_for_the_rest():
    space = asc.create_space("systolic")
    arch = space.make({"rows": 16, "cols": 64, "dataflow": "is", "ifmap_sram_kb": 32, "filter_sram_kb": 512,
                       "ofmap_sram_kb": 16, "bandwidth": 8})
    acc = accelerator_of(arch)
    assert (acc.rows, acc.cols, acc.dataflow, tuple(acc.sram_kb), acc.bandwidth) == (16, 64, "is", (32, 512, 16), 8)
    # a space with only some of the parameters: the others come from the base design
    part = asc.Space({"rows": asc.Ordinal([8, 16]), "dataflow": asc.Choice(["os", "ws"])})
    base = Accelerator(rows=32, cols=24, dataflow="is", bandwidth=4)
    acc = accelerator_of(part.make({"rows": 8, "dataflow": "ws"}), base)
    assert (acc.rows, acc.cols, acc.dataflow, acc.bandwidth) == (8, 24, "ws", 4)
    with pytest.raises(ConfigError, match="no accelerator parameters"):
        accelerator_of(asc.create_space("nb201").sample(np.random.default_rng(0)))


def test_accelerator_evaluator_reports_every_metric_consistently_with_simulate():
    space = asc.create_space("systolic")
    ev = AcceleratorEvaluator(SMALL)
    arch = space.sample(np.random.default_rng(3))
    m = ev.evaluate(arch)
    assert set(m) == set(ACCEL_METRICS)
    rep = simulate(accelerator_of(arch), SMALL)
    assert m["cycles"] == rep.total["cycles"] == m["compute_cycles"] + m["stall_cycles"]
    assert m["area_mm2"] > 0 and m["energy_mj"] > 0 and 0 < m["overall_utilization"] <= 100
    # a bigger array computes this workload in no more cycles and takes more area
    small = space.make({**arch.to_dict(), "rows": 8, "cols": 8})
    big = space.make({**arch.to_dict(), "rows": 64, "cols": 64})
    assert ev.evaluate(big)["compute_cycles"] <= ev.evaluate(small)["compute_cycles"]
    assert ev.evaluate(big)["area_mm2"] > ev.evaluate(small)["area_mm2"]


def test_builtin_workload_names_and_bad_workloads():
    ev = AcceleratorEvaluator("mobilenetv2")
    assert ev.evaluate(asc.create_space("systolic").sample(np.random.default_rng(0)))["cycles"] > 0
    with pytest.raises((ConfigError, asc.DataError)):
        AcceleratorEvaluator("no-such-topology")
    with pytest.raises((ConfigError, asc.DataError)):
        AcceleratorEvaluator("/nonexistent/topology.csv")
    with pytest.raises(ConfigError):
        AcceleratorEvaluator([])


def test_joint_space_parts_and_collisions():
    space = joint_space({"": "nb201", "hw_": "systolic"})
    assert space.name == "nb201+hw_systolic"
    assert set(space.names) == {"cell"} | {f"hw_{n}" for n in asc.create_space("systolic").names}
    rng = np.random.default_rng(0)
    arch = space.sample(rng)
    assert space.parse(str(arch)) == arch
    net = network_arch(arch)
    assert net.space == asc.create_space("nb201") and net["cell"] == arch["cell"]
    assert part_of(arch, "systolic", "hw_")["rows"] == arch["hw_rows"]
    assert accelerator_of(arch, prefix="hw_").rows == arch["hw_rows"]
    with pytest.raises(ConfigError, match="appears in two parts; give the parts distinct prefixes"):
        joint_space({"": asc.Space({"hw_rows": asc.Ordinal([1, 2])}), "hw_": "systolic"})
    with pytest.raises(ConfigError, match="at least one part"):
        joint_space({})
    with pytest.raises(ConfigError, match="no parameters"):
        part_of(arch, "mbv3")


def test_part_evaluator_projects_and_renames():
    class Net:
        def evaluate(self, arch, fidelity=None):
            assert arch.space.name == "nb201"
            return {"acc": float(len(str(arch)))}

    space = joint_space({"a_": "nb201", "b_": "nb201", "acc0_": "systolic", "acc1_": "systolic"})
    arch = space.sample(np.random.default_rng(1))
    ev = PartEvaluator(Net(), "nb201", prefix="b_", rename={"acc": "accuracy_b"})
    assert ev.evaluate(arch) == {"accuracy_b": float(len(str(part_of(arch, "nb201", "b_"))))}
    with pytest.raises(ConfigError):
        PartEvaluator(object(), "nb201")


torch = pytest.importorskip("torch")
from archscout.hardware.workloads import trace_workload  # noqa: E402
from archscout.nn import ModelFactory  # noqa: E402

FACTORY = ModelFactory((3, 16, 16), num_classes=10, C=4, N=1)


def test_systolic_cost_on_a_fixed_accelerator_and_in_a_joint_space_round_trips():
    nb = asc.create_space("nb201")
    rng = np.random.default_rng(0)
    fixed = SystolicCost("latency_ms", accelerator=Accelerator(rows=16, cols=16, dataflow="ws"), factory=FACTORY)
    cells = [nb.sample(rng) for _ in range(3)]
    lat = [fixed.predict(c) for c in cells]
    assert all(v > 0 for v in lat)
    again = cost_model_from_config(fixed.to_config())
    assert [again.predict(c) for c in cells] == lat
    space = joint_space({"": "nb201", "hw_": "systolic"})
    joint = SystolicCost("energy_mj", prefix="hw_", factory=FACTORY)
    arch = space.sample(rng)
    direct = simulate(accelerator_of(arch, prefix="hw_"), trace_workload(FACTORY(network_arch(arch)), (3, 16, 16)))
    assert joint.predict(arch) == pytest.approx(direct.total["energy_mj"])
    assert cost_model_from_config(joint.to_config()).predict(arch) == pytest.approx(joint.predict(arch))
    with pytest.raises(ConfigError, match="unknown accelerator metric"):
        SystolicCost("joules")


def test_mbv3_networks_trace_into_depthwise_workloads_that_the_model_prices():
    space = asc.create_space("mbv3")
    arch = space.sample(np.random.default_rng(0))
    layers = trace_workload(ModelFactory((3, 32, 32), num_classes=10)(arch), (3, 32, 32))
    assert any(x.groups > 1 and x.groups == x.channels for x in layers)  # depthwise convolutions
    assert layers[-1].ifmap_h == 1 and layers[-1].filter_h == 1  # the classifier as a GEMM
    cost = SystolicCost("cycles", accelerator=Accelerator(rows=8, cols=8, dataflow="os"),
                        factory=ModelFactory((3, 32, 32), num_classes=10))
    assert cost.predict(arch) == simulate(Accelerator(rows=8, cols=8, dataflow="os"), layers).total["cycles"]


def test_codesign_study_screens_designs_by_area_and_records_everything(tmp_path):
    space = joint_space({"": "nb201", "hw_": "systolic"})

    class Net:  # a deterministic stand-in for the NB201 table: more convolutions, more accuracy
        def evaluate(self, arch, fidelity=None):
            s = str(arch)
            return {"accuracy": 50.0 + 5 * s.count("conv_3x3") + 2 * s.count("conv_1x1")}

    area = SystolicCost("area_mm2", prefix="hw_", factory=FACTORY)
    sizes = [area.predict(space.sample(np.random.default_rng(i))) for i in range(30)]
    limit = float(np.median(sizes))
    study = asc.create_study(
        space, objectives=[("accuracy", "max"), ("latency_ms", "min")], constraints=[f"area_mm2<={limit}"],
        cost_models={"latency_ms": SystolicCost("latency_ms", prefix="hw_", factory=FACTORY), "area_mm2": area},
        strategy="nsga2", storage=str(tmp_path / "co.db"), seed=0)
    study.optimize(PartEvaluator(Net(), "nb201"), budget=12)
    again = asc.load_study(str(tmp_path / "co.db"))
    done = [t for t in again.trials if t.state == "complete"]
    assert len(done) == 12
    assert all(t.metrics["area_mm2"] <= limit and t.metrics["latency_ms"] > 0 for t in done)
    assert all(t.metrics["area_mm2"] > limit for t in again.trials if t.state == "infeasible")


def test_auto_passes_its_settings_to_the_strategy_it_picks():
    space = asc.create_space("systolic")
    s = asc.create_strategy("auto", space, seed=0, settings={"smbo": {"beta": 1.0, "n_init": 5}})
    assert s.choose() == {"name": "smbo", "beta": 1.0, "n_init": 5}
    assert s.to_config()["settings"] == {"smbo": {"beta": 1.0, "n_init": 5}}
    assert "settings" not in asc.create_strategy("auto", space).to_config()
    with pytest.raises(ConfigError, match="auto chooses among"):
        asc.create_strategy("auto", space, settings={"rea": {}})
    with pytest.raises(ConfigError, match="unknown or reserved"):
        asc.create_strategy("auto", space, settings={"smbo": {"seed": 3}})


def test_local_search_starts_from_the_best_of_n_init_random_designs():
    space = asc.Space({"x": asc.Ordinal(list(range(40)))})
    ls = asc.create_strategy("ls", space, seed=1, n_init=5)
    told = []
    for _ in range(5):
        c = ls.ask()
        told.append(c.arch["x"])
        ls.tell(c, asc.Result("complete", {"score": float(c.arch["x"])}))
    nxt = ls.ask().arch["x"]
    assert abs(nxt - max(told)) == 1  # a neighbour of the best of the five
    with pytest.raises(ConfigError, match="n_init"):
        asc.create_strategy("ls", space, n_init=0)
