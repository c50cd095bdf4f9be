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

from .base import (
    COST_MODELS, CostModel, Measurement, cost_model_from_config, cost_models_from_config, create_cost_model,
    latency_metrics, list_cost_models, register_cost_model,
)
from .devices import DEVICES, DeviceProfile, create_device, get_device, list_devices, register_device
from .analytic import FlopsModel, LayerRecord, ModuleStats, ParamsModel, PeakMemModel, analyze_module
from .measure import LatencyMeter, MeasuredLatency
from .lut import LUTLatency, Unit, decompose
from .predictor import LearnedLatency
from .table import TableCost, TableLatency
from .latency_bench import add_latency_bench_parser, run_latency_bench

__all__ = [
    "CostModel", "Measurement", "COST_MODELS", "list_cost_models", "create_cost_model", "cost_model_from_config",
    "cost_models_from_config", "register_cost_model",
    "latency_metrics", "DeviceProfile", "DEVICES", "list_devices", "create_device", "get_device", "register_device",
    "ParamsModel", "FlopsModel", "PeakMemModel", "analyze_module", "ModuleStats", "LayerRecord",
    "LatencyMeter", "MeasuredLatency", "LUTLatency", "Unit", "decompose", "LearnedLatency", "TableCost",
    "TableLatency",
    "run_latency_bench", "add_latency_bench_parser",
]
