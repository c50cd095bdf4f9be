"""Multi-task, heterogeneous co-design (NASAIC's setting): two networks for two tasks, each on its own systolic
sub-accelerator, the two sub-accelerators sharing one area budget.

* task A: image classification, an NB201 cell, accuracy from the NB201 CIFAR-10 table;
* task B: object classification on Taskonomy, a TransNAS-Bench-101 micro cell, accuracy from its table;
* accelerators ``acc0_`` (runs A) and ``acc1_`` (runs B): every parameter of the ``systolic`` space each.

Objectives: both accuracies (max) and the system latency, the slower of the two networks on its accelerator
(min). Specs: ``area_mm2 <= A`` on the two accelerators together, and ``energy_mj <= E`` for both networks.

Network A is NB201 (C=16, N=5) on 32x32 inputs, traced by archscout; network B is priced as archscout's compilation
of the same cell in the NB201 skeleton on 64x64 inputs (TransNAS-Bench-101's own encoder is not built by archscout:
a stand-in with the cell's real operations, stated here).

    .venv/bin/python examples/codesign_multitask.py --budget 60 --strategy nsga2 \
        --nb201 ../shared/data/nas-bench-201/nb201_cifar10.csv \
        --transnas ../shared/data/transnas-bench-101/tnb101_class_object.csv
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import archscout as asc
from archscout.benchmarks import create_benchmark
from archscout.hardware import CostModel
from archscout.hardware.accelerator import accelerator_of, simulate_cached
from archscout.hardware.codesign import PartEvaluator, joint_space, part_of
from archscout.hardware.workloads import workload_of
from archscout.nn import ModelFactory

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")
NB201 = asc.create_space("nb201")
TASKS = {  # prefix of the network -> (prefix of its accelerator, network space, input shape)
    "a_": ("acc0_", "nb201", (3, 32, 32)),
    "b_": ("acc1_", "transnas-micro", (3, 64, 64)),
}
FACTORIES = {shape: ModelFactory(shape, num_classes=10, C=16, N=5) for _, _, shape in TASKS.values()}


def network_layers(arch: asc.Architecture, prefix: str) -> list:
    """The traced layers of one task's network (both tasks' cells have NB201's edge order and op names)."""
    _, space, shape = TASKS[prefix]
    cell = part_of(arch, space, prefix)["cell"]
    return workload_of(NB201.make({"cell": cell}), FACTORIES[shape], shape)


class SystemCost(CostModel):
    """A metric of the whole system: ``latency_ms`` (the slower task), ``energy_mj`` (both tasks) or ``area_mm2``
    (both accelerators)."""

    cheap = True

    def __init__(self, metric: str) -> None:
        self.name, self.metric = f"system-{metric}", metric
        self.unit = {"latency_ms": "ms", "energy_mj": "mJ", "area_mm2": "mm2"}[metric]

    def predict(self, arch: asc.Architecture) -> float:
        values = []
        for prefix, (acc_prefix, _, _) in TASKS.items():
            acc = accelerator_of(arch, prefix=acc_prefix)
            if self.metric == "area_mm2":
                values.append(acc.area.area_mm2(acc))
            else:
                values.append(simulate_cached(acc, network_layers(arch, prefix)).total[self.metric])
        return max(values) if self.metric == "latency_ms" else sum(values)

    def to_config(self) -> dict[str, Any]:
        return {"name": self.name, "metric": self.metric}


class BothTasks:
    """Accuracy of both networks, each from its own table."""

    def __init__(self, nb201_table: str, transnas_table: str) -> None:
        self.parts = [
            PartEvaluator(create_benchmark("nb201", table=nb201_table, objective="valid_acc_200ep").evaluator(),
                          "nb201", prefix="a_", rename={"valid_acc_200ep": "accuracy_a"}),
            PartEvaluator(create_benchmark("transnas-micro", table=transnas_table, objective="valid_top1").evaluator(),
                          "transnas-micro", prefix="b_", rename={"valid_top1": "accuracy_b"}),
        ]

    def evaluate(self, arch: asc.Architecture, fidelity: float | None = None) -> dict[str, float]:
        out: dict[str, float] = {}
        for part in self.parts:
            out.update(part.evaluate(arch, fidelity))
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nb201", default=os.path.join(DATA, "nas-bench-201", "nb201_cifar10.csv"))
    ap.add_argument("--transnas", default=os.path.join(DATA, "transnas-bench-101", "tnb101_class_object.csv"))
    ap.add_argument("--budget", type=int, default=60)
    ap.add_argument("--strategy", default="nsga2")
    ap.add_argument("--area-mm2", type=float, default=4.0, help="area budget of the two accelerators together")
    ap.add_argument("--energy-mj", type=float, default=1.0, help="energy budget of one inference of each task")
    ap.add_argument("--storage", default=None, help="e.g. runs/multitask.db to keep every design")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    space = joint_space({"a_": "nb201", "b_": "transnas-micro", "acc0_": "systolic", "acc1_": "systolic"},
                        name="multitask-codesign")
    study = asc.create_study(
        space, objectives=[("accuracy_a", "max"), ("accuracy_b", "max"), ("latency_ms", "min")],
        constraints=[f"area_mm2<={args.area_mm2}", f"energy_mj<={args.energy_mj}"],
        cost_models={m: SystemCost(m) for m in ("latency_ms", "energy_mj", "area_mm2")},
        strategy=args.strategy, storage=args.storage, seed=args.seed)
    study.optimize(BothTasks(args.nb201, args.transnas), budget=args.budget)
    front = sorted(study.pareto_front(), key=lambda t: t.metrics["latency_ms"])
    n_infeasible = sum(t.state == "infeasible" for t in study.trials)
    print(f"{len(study.trials)} designs: {args.budget} evaluated, {n_infeasible} screened out by the specs; "
          f"{len(front)} on the front")
    for t in front:
        m = t.metrics
        a0, a1 = accelerator_of(t.arch, prefix="acc0_"), accelerator_of(t.arch, prefix="acc1_")
        print(f"  A {m['accuracy_a']:.2f} %  B {m['accuracy_b']:.2f} %  latency {m['latency_ms']:.3f} ms  "
              f"energy {m['energy_mj']:.3f} mJ  area {m['area_mm2']:.2f} mm2 | "
              f"A on {a0.rows}x{a0.cols} {a0.dataflow}, B on {a1.rows}x{a1.cols} {a1.dataflow}")


if __name__ == "__main__":
    main()
