"""Hardware cost models and device profiles.

- :func:`list_cost_models` / :func:`create_cost_model`: ``params`` (M), ``flops`` (MFLOPs), ``peak_mem_mb`` (MB),
  ``measured-latency``, ``lut-latency``, ``learned-latency``, ``table-latency`` (ms), ``table`` (a numeric column
  of a CSV table); :func:`cost_models_from_config` rebuilds a study header's cost models;
- :func:`list_devices` / :func:`create_device` / :func:`get_device`: ``cpu-ort``, ``cpu-torch`` and the NB201
  latency-table devices (``nb201-pixel3``, ...);
- :func:`run_latency_bench`: how well the latency predictors match measurements on this machine;
- :func:`simulate` on an :class:`Accelerator` (systolic array, SCALE-Sim 3 closed forms) over :class:`ConvLayer` s
  from :func:`read_topology`, :func:`trace_workload` or :func:`builtin_workload`; :class:`AcceleratorEvaluator`
  for the ``systolic`` space and the ``systolic`` cost model (:class:`SystolicCost`); :func:`joint_space` and
  :class:`PartEvaluator` for co-design; :func:`fit_proxy` and the ``proxy`` cost model (learned from a study).

Importing this package does not import torch, onnxruntime or scikit-learn; they load when a model is built,
measured or fitted (``pip install 'archscout[nn]'``).
"""

from .accelerator import ACCEL_METRICS, AcceleratorEvaluator, SystolicCost, accelerator_of
from .analytic import FlopsModel, LayerRecord, ModuleStats, ParamsModel, PeakMemModel, analyze_module
from .base import (
    COST_MODELS,
    CostModel,
    Measurement,
    cost_model_from_config,
    cost_models_from_config,
    create_cost_model,
    latency_metrics,
    list_cost_models,
    register_cost_model,
)
from .codesign import PartEvaluator, joint_space, part_of
from .devices import DEVICES, DeviceProfile, create_device, get_device, list_devices, register_device
from .latency_bench import add_latency_bench_parser, run_latency_bench
from .lut import LUTLatency, Unit, decompose
from .measure import LatencyMeter, MeasuredLatency
from .predictor import LearnedLatency
from .proxy import ProxyCostModel, fit_proxy
from .systolic import DATAFLOWS, Accelerator, AccelReport, AreaModel, ConvLayer, EnergyTable, LayerReport, simulate
from .table import TableCost, TableLatency
from .workloads import builtin_workload, read_topology, trace_workload, workload_of, write_topology

__all__ = [
    "ACCEL_METRICS",
    "COST_MODELS",
    "DATAFLOWS",
    "DEVICES",
    "AccelReport",
    "Accelerator",
    "AcceleratorEvaluator",
    "AreaModel",
    "ConvLayer",
    "CostModel",
    "DeviceProfile",
    "EnergyTable",
    "FlopsModel",
    "LUTLatency",
    "LatencyMeter",
    "LayerRecord",
    "LayerReport",
    "LearnedLatency",
    "MeasuredLatency",
    "Measurement",
    "ModuleStats",
    "ParamsModel",
    "PartEvaluator",
    "PeakMemModel",
    "ProxyCostModel",
    "SystolicCost",
    "TableCost",
    "TableLatency",
    "Unit",
    "accelerator_of",
    "add_latency_bench_parser",
    "analyze_module",
    "builtin_workload",
    "cost_model_from_config",
    "cost_models_from_config",
    "create_cost_model",
    "create_device",
    "decompose",
    "fit_proxy",
    "get_device",
    "joint_space",
    "latency_metrics",
    "list_cost_models",
    "list_devices",
    "part_of",
    "read_topology",
    "register_cost_model",
    "register_device",
    "run_latency_bench",
    "simulate",
    "trace_workload",
    "workload_of",
    "write_topology",
]
