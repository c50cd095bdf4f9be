"""The systolic-array model (archscout.hardware.systolic), its workloads and the ``accel`` CLI."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest

from archscout.errors import ConfigError
from archscout.hardware.systolic import (
    DATAFLOWS,
    Accelerator,
    AreaModel,
    ConvLayer,
    EnergyTable,
    simulate,
)
from archscout.hardware.workloads import builtin_workload, read_topology, write_topology

# A 3x3 conv, 2 -> 4 channels, on a 6x6 ifmap: 4x4 = 16 ofmap pixels, window K = 3*3*2 = 18.
SMALL = ConvLayer("small", 6, 6, 3, 3, 2, 4)


def test_conv_layer_dims():
    assert (SMALL.ofmap_h, SMALL.ofmap_w) == (4, 4)
    assert SMALL.gemm == (16, 18, 4)
    assert SMALL.macs == 16 * 18 * 4
    # SCALE-Sim's ceil((H - F + S) / S): a 28-wide ifmap, 1x1 filter, stride 2 gives 15 (not 14) columns
    assert ConvLayer("s2", 28, 28, 1, 1, 8, 8, 2, 2).ofmap_w == 15
    g = ConvLayer.from_gemm("fc", 3, 512, 10)
    assert g.gemm == (3, 512, 10) and g.macs == 3 * 512 * 10


@pytest.mark.parametrize("kwargs, word", [
    ({"channels": 0}, "channels"), ({"filter_h": 7}, "larger than the ifmap"),
    ({"groups": 3}, "divisible by groups"), ({"stride_h": 1.5}, "stride_h"), ({"name": "a,b"}, "commas"),
])
def test_conv_layer_validates(kwargs, word):
    base = {"name": "x", "ifmap_h": 6, "ifmap_w": 6, "filter_h": 3, "filter_w": 3, "channels": 2, "num_filters": 4}
    with pytest.raises(ConfigError, match=word):
        ConvLayer(**{**base, **kwargs})


def test_closed_forms_on_a_4x4_array():
    """Hand computation for SMALL on a 4x4 array (R = C = 4), each dataflow.

    os: Sr=16 pixels, Sc=4 filters, T=18 -> folds = ceil(16/4)*ceil(4/4) = 4, each T+R+C-2 = 24 cycles,
        cycles = 4*24 - 1 = 95; ifmap SRAM reads = col_folds*Sr*T = 288, filter = row_folds*Sc*T = 288,
        ofmap writes = 64; compute util = T/24 = 75 %.
    ws: Sr=18, Sc=4, T=16 -> folds = 5*1, each T+2R+C-2 = 26 -> 129 cycles; ifmap reads 1*16*18 = 288,
        filter 18*4 = 72, ofmap writes row_folds*T*Sc = 320; mapping = 72/(5*16) = 90 %;
        util = mean over folds of used*T/(16*(26+C-1)) = (4*256 + 128)/(5*16*29) = 49.66 %.
    is: Sr=18, Sc=16, T=4 -> folds = 5*4 = 20, each 14 -> 279 cycles; ifmap 288, filter 4*4*18 = 288,
        ofmap 320; util = 0.9*4*16/(16*17) = 21.18 %.
    These are also SCALE-Sim 3.0.0's numbers (CALC mode, 4x4, 64 KB SRAMs; its os ofmap count adds R+C per
    fold of bookkeeping, 96, which is not a write).
    """
    expect = {
        "os": (95, 288, 288, 64, 100.0, 75.0),
        "ws": (129, 288, 72, 320, 90.0, 49.6551724137931),
        "is": (279, 288, 288, 320, 90.0, 21.176470588235293),
    }
    for df, (cycles, ifr, flr, ofw, mapping, util) in expect.items():
        r = simulate(Accelerator(4, 4, df), [SMALL]).layers[0]
        assert (r.cycles, r.compute_cycles, r.stall_cycles) == (cycles, cycles, 0)
        assert (r.sram_ifmap_reads, r.sram_filter_reads, r.sram_ofmap_writes) == (ifr, flr, ofw)
        assert r.mapping_efficiency == pytest.approx(mapping)
        assert r.utilization == pytest.approx(util)
        assert r.overall_utilization == pytest.approx(100 * SMALL.macs / (cycles * 16))
        assert (r.dram_ifmap_reads, r.dram_filter_reads, r.dram_ofmap_writes) == (72, 72, ofw)


# Golden numbers from SCALE-Sim 3.0.0 (pip scalesim==3.0.0, numpy 2.3.5), CALC mode, SRAMs 2/2/2 KB:
# "Total Cycles" per layer (layer, rows, cols, dataflow) -> cycles.
GOLDEN = {
    (("A", 14, 14, 3, 3, 16, 32, 1), 4, 4): {"os": 43199, "ws": 44351, "is": 54431},
    (("B", 28, 28, 1, 1, 32, 64, 2), 4, 4): {"os": 34655, "ws": 30079, "is": 33743},
    (("C", 9, 9, 3, 3, 8, 70, 2), 8, 16): {"os": 939, "ws": 2069, "is": 899},
    (("D", 7, 7, 7, 7, 3, 5, 1), 8, 16): {"os": 168, "ws": 588, "is": 664},
}


def test_golden_scalesim_cycles():
    for (spec, rows, cols), by_df in GOLDEN.items():
        name, h, w, fh, fw, c, f, s = spec
        layer = ConvLayer(name, h, w, fh, fw, c, f, s, s)
        for df, cycles in by_df.items():
            acc = Accelerator(rows, cols, df, (2, 2, 2))
            assert simulate(acc, [layer]).layers[0].cycles == cycles, (spec, df)


def test_gemm_and_groups():
    acc = Accelerator(8, 8, "os")
    gemm = simulate(acc, [ConvLayer.from_gemm("g", 64, 32, 16)]).layers[0]
    # os: Sr=64, Sc=16, T=32 -> 8*2 folds of 32+8+8-2 = 46 cycles
    assert gemm.cycles == 16 * 46 - 1
    dw = ConvLayer("dw", 10, 10, 3, 3, 6, 6, groups=6)
    one = ConvLayer("one", 10, 10, 3, 3, 1, 1)
    r_dw, r_one = simulate(acc, [dw, one]).layers
    assert r_dw.cycles == 6 * r_one.cycles and r_dw.macs == 6 * r_one.macs
    assert r_dw.sram_ifmap_reads == 6 * r_one.sram_ifmap_reads


def test_stalls_zero_in_calc_and_monotone_in_bandwidth():
    layer = ConvLayer("c", 16, 16, 3, 3, 32, 64)
    for df in DATAFLOWS:
        base = simulate(Accelerator(8, 8, df, (4, 4, 4)), [layer]).layers[0]
        assert base.stall_cycles == 0
        stalls = [simulate(Accelerator(8, 8, df, (4, 4, 4), bandwidth=b), [layer]).layers[0] for b in (1, 4, 64)]
        assert [r.compute_cycles for r in stalls] == [base.compute_cycles] * 3
        assert stalls[0].stall_cycles >= stalls[1].stall_cycles >= stalls[2].stall_cycles >= 0
        assert stalls[0].stall_cycles > 0
        assert all(r.cycles == r.compute_cycles + r.stall_cycles for r in stalls)


def test_energy_is_the_table_weighted_sum():
    table = EnergyTable(mac_x=1, rf_x=1, array_x=2, sram_x=6, dram_x=200, mac_pj=0.5)
    r = simulate(Accelerator(4, 4, "ws", energy=table), [SMALL]).layers[0]
    sram = r.sram_ifmap_reads + r.sram_filter_reads + r.sram_ofmap_writes
    dram = r.dram_ifmap_reads + r.dram_filter_reads + r.dram_ofmap_writes
    pj = 0.5 * (r.macs * (1 + 3 * 1 + 2 * 2) + 6 * sram + 200 * dram)
    assert r.energy_mj == pytest.approx(pj * 1e-9)
    assert r.latency_ms == pytest.approx(r.cycles / 1e6)  # 1000 MHz default


def test_area_and_report_totals():
    acc = Accelerator(16, 8, "os", (10, 20, 30), area=AreaModel(pe_um2=100, sram_um2_per_kb=1000, overhead_mm2=0.5))
    assert acc.area.area_mm2(acc) == pytest.approx((16 * 8 * 100 + 60 * 1000) / 1e6 + 0.5)
    rep = simulate(acc, [SMALL, ConvLayer.from_gemm("fc", 4, 8, 16)])
    d = json.loads(json.dumps(rep.to_dict()))
    assert [x["name"] for x in d["layers"]] == ["small", "fc"]
    assert d["total"]["cycles"] == sum(x["cycles"] for x in d["layers"])
    assert d["total"]["area_mm2"] == pytest.approx(acc.area.area_mm2(acc))
    assert d["total"]["energy_mj"] == pytest.approx(sum(x["energy_mj"] for x in d["layers"]))


def test_config_round_trips_and_validation():
    acc = Accelerator(8, 16, "is", (1, 2, 3), bandwidth=4.0, clock_mhz=700, energy=EnergyTable(dram_x=100))
    cfg = json.loads(json.dumps(acc.to_config()))
    assert Accelerator.from_config(cfg) == acc
    assert EnergyTable.from_config(EnergyTable().to_config()) == EnergyTable()
    assert AreaModel.from_config({"pe_um2": 1}) == AreaModel(pe_um2=1)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"dataflow": "rs"}, "dataflow"), ({"rows": 0}, "rows"), ({"sram_kb": (1, 2)}, "sram_kb"),
        ({"bandwidth": 0}, "bandwidth"), ({"clock_mhz": -1}, "clock_mhz")]
    for kwargs, word in cases:
        with pytest.raises(ConfigError, match=word):
            Accelerator(**kwargs)
    with pytest.raises(ConfigError, match="unknown keys"):
        Accelerator.from_config({"row": 3})
    with pytest.raises(ConfigError, match="dram_x"):
        EnergyTable(dram_x=-1)


def test_read_and_write_topology(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                 "Conv1, 224, 224, 3, 3, 3, 32, 2,\n\nConv2_DP, 112, 112, 3, 3, 32, 1, 1,#dw\n"
                 "fc, 1, 1, 1, 1, 64, 10, 1\n")
    layers = read_topology(p)
    assert [x.name for x in layers] == ["Conv1", "Conv2_DP", "fc"]
    assert layers[0] == ConvLayer("Conv1", 224, 224, 3, 3, 3, 32, 2, 2)
    assert layers[1].groups == 32 and layers[1].num_filters == 32
    out = tmp_path / "o.csv"
    write_topology(layers, out)
    assert read_topology(out) == layers
    g = tmp_path / "g.csv"
    g.write_text("Layer, M, N, K,\nTest 1, 256, 128, 64,\n")
    assert read_topology(g) == [ConvLayer.from_gemm("Test 1", 256, 64, 128)]
    grouped = tmp_path / "grouped.csv"
    write_topology([ConvLayer("grp", 8, 8, 3, 3, 8, 4, groups=2)], grouped)
    assert [x.name for x in read_topology(grouped)] == ["grp_g0", "grp_g1"]


@pytest.mark.parametrize("body, where", [
    ("A, 8, 8, 3, 3, 2,\n", ":2: expected 8 columns"),
    ("A, 8, x, 3, 3, 2, 4, 1,\n", ":2: column 3 (IFMAP Width)"),
    ("A, 8, 8, 9, 3, 2, 4, 1,\n", ":2: ConvLayer 'A': filter"),
    ("A, 8, 8, 3, 3, 2, 4, 1, 2:4,\n", ":2: unexpected columns"),
])
def test_read_topology_errors(tmp_path, body, where):
    p = tmp_path / "bad.csv"
    p.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                 + body)
    with pytest.raises(ConfigError, match=re.escape(f"bad.csv{where}")):
        read_topology(p)
    with pytest.raises(ConfigError, match="no such topology file"):
        read_topology(tmp_path / "missing.csv")


def test_builtin_workloads():
    r18 = builtin_workload("resnet18")
    assert len(r18) == 21 and r18[0].name == "conv1" and r18[-1].name == "fc"
    assert sum(x.macs for x in r18) == pytest.approx(1.814e9, rel=1e-3)
    assert (r18[0].ofmap_h, r18[0].ofmap_w) == (112, 112)
    mb2 = builtin_workload("mobilenetv2")
    assert len(mb2) == 53 and sum(1 for x in mb2 if x.groups > 1) == 17
    assert sum(x.macs for x in mb2) == pytest.approx(300.8e6, rel=1e-3)
    with pytest.raises(ConfigError, match="unknown workload"):
        builtin_workload("vgg")


def test_trace_workload_matches_torch_shapes():
    torch = pytest.importorskip("torch")
    from archscout.hardware.workloads import trace_workload

    nn = torch.nn

    class Tiny(nn.Module):  # type: ignore[name-defined]
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.dw = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8)
            self.fc = nn.Linear(8, 5)

        def forward(self, x):
            x = self.dw(self.conv(x))
            x = self.dw(x)  # called twice
            return self.fc(x.mean((2, 3)).unsqueeze(1).repeat(1, 3, 1))

    layers = trace_workload(Tiny(), (3, 9, 9))
    assert [x.name for x in layers] == ["conv", "dw", "dw#2", "fc"]
    conv, dw = layers[0], layers[1]
    assert (conv.ofmap_h, conv.ofmap_w, conv.stride_h) == (5, 5, 2)
    assert (conv.ifmap_h, conv.filter_h) == (11, 3)  # 9 + 2*1 padding, all rows reached
    assert (dw.filter_h, dw.groups, dw.ofmap_h) == (5, 8, 5)  # dilation 2 -> effective 5x5
    assert layers[3] == ConvLayer.from_gemm("fc", 3, 8, 5)
    assert math.prod(layers[3].gemm) == 3 * 8 * 5


def test_cli_writes_json_in_topology_order(tmp_path, capsys):
    from archscout.cli import main

    topo = tmp_path / "t.csv"
    topo.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                    "Strides,\nzeta, 8, 8, 3, 3, 4, 8, 1,\nalpha, 6, 6, 1, 1, 8, 16, 1,\n")
    out = tmp_path / "o.json"
    assert main(["accel", "--topology", str(topo), "--array", "4x8", "--dataflow", "ws", "--sram-kb", "8,8,8",
                 "--bandwidth", "4", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert [x["name"] for x in d["layers"]] == ["zeta", "alpha"] and "total" in d
    assert "total" in capsys.readouterr().out
    assert main(["accel", "--workload", "mobilenetv2", "--json", str(out), "--quiet"]) == 0


@pytest.mark.parametrize("flags", [
    ["--topology", "missing.csv"], ["--workload", "resnet18", "--array", "8x"],
    ["--workload", "resnet18", "--dataflow", "rs"], ["--workload", "resnet18", "--sram-kb", "1,2"],
    ["--workload", "resnet18", "--bandwidth", "-3"],
])
def test_cli_bad_args_exit_2_and_write_nothing(tmp_path, flags, capsys):
    from archscout.cli import main

    out = tmp_path / "o.json"
    assert main(["accel", *flags, "--json", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith("archscout: error:") and "\n" not in err
