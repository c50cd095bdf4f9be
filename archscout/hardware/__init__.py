"""Hardware cost models and device profiles.

- :func:`list_cost_models` / :func:`create_cost_model`: ``params`` (M), ``flops`` (MFLOPs), ``peak_mem_mb`` (MB),
  ``measured-latency``, ``lut-latency``, ``learned-latency``, ``table-latency`` (ms), ``table`` (a numeric column
  of a CSV table); :func:`cost_models_from_config` rebuilds a study header's cost models;
- :func:`list_devices` / :func:`create_device` / :func:`get_device`: ``cpu-ort``, ``cpu-torch`` and the NB201
  latency-table devices (``nb201-pixel3``, ...);
- :func:`run_latency_bench`: how well the latency predictors match measurements on this machine.

Importing this package does not import torch, onnxruntime or scikit-learn; they load when a model is built,
measured or fitted (``pip install 'archscout[nn]'``).
"""

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
from .devices import DEVICES, DeviceProfile, create_device, get_device, list_devices, register_device
from .latency_bench import add_latency_bench_parser, run_latency_bench
from .lut import LUTLatency, Unit, decompose
from .measure import LatencyMeter, MeasuredLatency
from .predictor import LearnedLatency
from .table import TableCost, TableLatency

__all__ = [
    "COST_MODELS",
    "DEVICES",
    "CostModel",
    "DeviceProfile",
    "FlopsModel",
    "LUTLatency",
    "LatencyMeter",
    "LayerRecord",
    "LearnedLatency",
    "MeasuredLatency",
    "Measurement",
    "ModuleStats",
    "ParamsModel",
    "PeakMemModel",
    "TableCost",
    "TableLatency",
    "Unit",
    "add_latency_bench_parser",
    "analyze_module",
    "cost_model_from_config",
    "cost_models_from_config",
    "create_cost_model",
    "create_device",
    "decompose",
    "get_device",
    "latency_metrics",
    "list_cost_models",
    "list_devices",
    "register_cost_model",
    "register_device",
    "run_latency_bench",
]
