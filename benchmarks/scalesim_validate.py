"""Validate archscout's systolic-array model (``archscout.hardware.systolic``) against SCALE-Sim 3.0.

SCALE-Sim needs ``numpy<2.4``, so it runs in its own virtual environment (created here when missing, or reuse one
with ``--venv``) and in subprocesses; archscout never imports it. For every topology x array shape x dataflow the
script runs SCALE-Sim in CALC mode (no DRAM limit) and in USER mode (``--bandwidth`` words/cycle), runs
``archscout.hardware.simulate`` on the same layers and reports the per-layer relative error of the cycles (max and
mean) and of the stalls under the bandwidth cap.

Identical layers are simulated once; a grouped/depthwise layer is simulated as one group and multiplied by the
number of groups (SCALE-Sim's own ``DP`` expansion runs identical per-channel layers).

    python benchmarks/scalesim_validate.py --venv /work/scalesim-venv --out results/scalesim_validate.json

Options keep the run short: ``--image-size`` (default 224), ``--layers N`` (first N layers of each topology),
``--shapes``, ``--dataflows``, ``--jobs``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from archscout.hardware.systolic import Accelerator, ConvLayer, simulate
from archscout.hardware.workloads import builtin_workload, read_topology, write_topology

_RUNNER = r"""
import contextlib, io, sys
from scalesim.scale_sim import scalesim
cfg, topo, out = sys.argv[1:4]
with contextlib.redirect_stdout(io.StringIO()):
    s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=topo, input_type_gemm=False)
    s.run_scale(top_path=out)
"""

_CONFIG = """[general]
run_name = run

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: {sram[0]}
FilterSramSzkB: {sram[1]}
OfmapSramSzkB: {sram[2]}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth: {bw}
Dataflow: {df}
MemoryBanks: 1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: {bw}
IfmapSRAMBankNum: 1
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: {bw}
FilterSRAMBankNum: 1
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: {mode}
UseRamulatorTrace: False
"""


def ensure_venv(venv: str) -> str:
    """Path of the venv's python, creating the venv with ``numpy<2.4`` and ``scalesim`` when missing."""
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        print(f"creating {venv} (pip install 'numpy<2.4' scalesim)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "numpy<2.4", "scalesim"], check=True)
    subprocess.run([py, "-c", "import scalesim"], check=True)
    return py


def one_group(layer: ConvLayer) -> ConvLayer:
    """The layer's first group as an ungrouped layer, named by its shape (SCALE-Sim reads 'DP' as depthwise)."""
    g = layer.groups
    key = (layer.ifmap_h, layer.ifmap_w, layer.filter_h, layer.filter_w, layer.channels // g, layer.num_filters // g,
           layer.stride_h)
    return ConvLayer("L" + "_".join(map(str, key)), *key[:6], layer.stride_h, layer.stride_w)


def parse_reports(folder: str) -> list[dict[str, float]]:
    """Rows of SCALE-Sim's COMPUTE_REPORT.csv and DETAILED_ACCESS_REPORT.csv as dicts."""
    def rows(name: str) -> list[list[float]]:
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            lines = f.read().strip().splitlines()[1:]
        return [[float(x) for x in line.split(",") if x.strip()] for line in lines]

    out = []
    for c, d in zip(rows("COMPUTE_REPORT.csv"), rows("DETAILED_ACCESS_REPORT.csv"), strict=True):
        out.append({"cycles": c[2], "stall_cycles": c[3], "utilization": c[6], "mapping_efficiency": c[5],
                    "sram_ifmap_reads": d[3], "sram_filter_reads": d[6], "dram_ifmap_reads": d[12],
                    "dram_filter_reads": d[15], "dram_ofmap_writes": d[18]})
    return out


def run_scalesim(py: str, layers: list[ConvLayer], rows: int, cols: int, df: str, sram: tuple[int, int, int],
                 bw: int | None, work: str) -> tuple[list[dict[str, float]], float]:
    """SCALE-Sim's per-layer reports for ``layers`` and its wall time in seconds."""
    d = tempfile.mkdtemp(dir=work)
    topo, cfg = os.path.join(d, "topo.csv"), os.path.join(d, "scale.cfg")
    write_topology(layers, topo)
    with open(cfg, "w", encoding="utf-8") as f:
        f.write(_CONFIG.format(rows=rows, cols=cols, sram=sram, bw=bw or 10, df=df, mode="USER" if bw else "CALC"))
    t0 = time.perf_counter()
    subprocess.run([py, "-c", _RUNNER, cfg, topo, d], check=True)
    return parse_reports(os.path.join(d, "run")), time.perf_counter() - t0


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1.0)


def compare(py: str, name: str, layers: list[ConvLayer], shape: tuple[int, int], df: str, args: Any) -> dict:
    """Errors of the model against SCALE-Sim for one topology x shape x dataflow (CALC and USER)."""
    uniq: dict[ConvLayer, int] = {}
    for layer in layers:
        uniq.setdefault(one_group(layer), len(uniq))
    ulayers = list(uniq)
    res: dict[str, Any] = {"topology": name, "array": f"{shape[0]}x{shape[1]}", "dataflow": df,
                           "layers": len(layers), "unique_layers": len(ulayers)}
    for mode, bw in (("calc", None), ("user", args.bandwidth)):
        if mode not in args.modes:
            continue
        ss, wall = run_scalesim(py, ulayers, shape[0], shape[1], df, args.sram_kb, bw, args.work)
        acc = Accelerator(shape[0], shape[1], df, args.sram_kb, bandwidth=bw)
        model = simulate(acc, ulayers).layers
        cyc, stall, dram = [], [], []
        for layer in layers:
            i = uniq[one_group(layer)]
            s, m = ss[i], model[i]
            cyc.append(_rel(m.cycles, s["cycles"]))
            stall.append(abs(m.stall_cycles - s["stall_cycles"]) / max(s["cycles"], 1.0))
            dram.append(_rel(m.dram_ifmap_reads + m.dram_filter_reads, s["dram_ifmap_reads"] + s["dram_filter_reads"]))
        tot_m = sum(model[uniq[one_group(la)]].cycles * la.groups for la in layers)
        tot_s = sum(ss[uniq[one_group(la)]]["cycles"] * la.groups for la in layers)
        res[mode] = {"cycles_err_max": max(cyc), "cycles_err_mean": sum(cyc) / len(cyc),
                     "stall_err_max": max(stall), "stall_err_mean": sum(stall) / len(stall),
                     "dram_reads_err_mean": sum(dram) / len(dram), "total_cycles_err": _rel(tot_m, tot_s),
                     "scalesim_total_cycles": tot_s, "model_total_cycles": tot_m, "scalesim_s": wall}
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--venv", default=".cache/scalesim-venv", help="SCALE-Sim venv (created when missing)")
    p.add_argument("--topology", action="append", help="SCALE-Sim topology CSV (repeatable; default: resnet18 "
                                                       "and mobilenetv2 from builtin_workload)")
    p.add_argument("--image-size", dest="image_size", type=int, default=224, help="built-in workloads' image size")
    p.add_argument("--layers", type=int, default=0, help="only the first N layers of each topology (0: all)")
    p.add_argument("--shapes", default="8x8,32x32,16x64", help="array shapes, comma separated")
    p.add_argument("--dataflows", default="os,ws,is")
    p.add_argument("--bandwidth", type=int, default=10, help="USER-mode DRAM words/cycle (default 10)")
    p.add_argument("--sram-kb", dest="sram_kb", default="64,64,64")
    p.add_argument("--modes", default="calc,user", help="calc (no DRAM limit), user (--bandwidth), or both")
    p.add_argument("--jobs", type=int, default=2, help="SCALE-Sim processes in parallel")
    p.add_argument("--out", default="results/scalesim_validate.json")
    args = p.parse_args(argv)
    args.sram_kb = tuple(int(x) for x in args.sram_kb.split(","))
    args.modes = [m for m in args.modes.split(",") if m]
    if not args.modes or set(args.modes) - {"calc", "user"}:
        p.error(f"--modes takes calc, user or calc,user, got {','.join(args.modes)!r}")
    py = ensure_venv(args.venv)
    os.makedirs(".cache", exist_ok=True)
    args.work = tempfile.mkdtemp(prefix="scalesim-", dir=".cache")
    topos = {os.path.basename(t): read_topology(t) for t in args.topology or ()} or {
        n: builtin_workload(n, args.image_size) for n in ("resnet18", "mobilenetv2")}
    if args.layers:
        topos = {k: v[:args.layers] for k, v in topos.items()}
    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
    jobs = [(n, ls, sh, df) for n, ls in topos.items() for sh in shapes for df in args.dataflows.split(",")]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as ex:
        results = list(ex.map(lambda j: compare(py, j[0], j[1], j[2], j[3], args), jobs))
    print(f"{'topology':<14}{'array':>7}{'df':>4} | {'CALC cycles err max/mean %':>27} | "
          f"{'USER cycles err max/mean %':>27} | {'USER stall err max/mean %':>26} | total err %")
    nan = {k: float("nan") for k in ("cycles_err_max", "cycles_err_mean", "stall_err_max", "stall_err_mean",
                                      "total_cycles_err")}
    for r in results:
        c, u = r.get("calc", nan), r.get("user", nan)
        print(f"{r['topology']:<14}{r['array']:>7}{r['dataflow']:>4} | {100 * c['cycles_err_max']:>13.3f} / "
              f"{100 * c['cycles_err_mean']:<11.3f} | {100 * u['cycles_err_max']:>13.2f} / "
              f"{100 * u['cycles_err_mean']:<11.2f} | {100 * u['stall_err_max']:>12.2f} / "
              f"{100 * u['stall_err_mean']:<11.2f} | {100 * u['total_cycles_err']:.2f}")
    wall = time.perf_counter() - t0
    print(f"{len(results)} configurations in {wall:.0f} s -> {args.out}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"bandwidth": args.bandwidth, "sram_kb": args.sram_kb, "image_size": args.image_size,
                   "layers_limit": args.layers, "runtime_s": wall, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
