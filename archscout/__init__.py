"""archscout: hardware-aware neural architecture search.

``import archscout`` loads numpy and archscout's light modules only; torch, plotting and other heavy
dependencies load lazily where they are used.
"""

from typing import Any as _Any

from ._version import __version__
from .benchmarks import TabularBenchmark, create_benchmark, list_benchmarks
from .drivers import RetryPolicy
from .errors import (
    ArchscoutError,
    BuildError,
    ConfigError,
    ConstraintError,
    DataError,
    InvalidArchitectureError,
    SpaceExhaustedError,
    StorageError,
    StorageVersionError,
    StudyExistsError,
    UnknownNameError,
)
from .execution import Executor, ExecutorCapabilities, create_executor, list_executors, register_executor
from .objectives import Constraint, Objective
from .results import Candidate, Proposal, Result, Trial, TrialState
from .space import (
    Architecture,
    Cell,
    Choice,
    DigitCell,
    Float,
    Int,
    LinkOps,
    Ordinal,
    Skeleton,
    Space,
    Stages,
    create_space,
    list_spaces,
    register_space,
)
from .storage import Storage, create_storage, list_storages, register_storage
from .strategies import Capabilities, Strategy, create_strategy, list_strategies, register_strategy
from .study import Study, create_study, load_study

__all__ = [
    "Architecture",
    "ArchscoutError",
    "BuildError",
    "Candidate",
    "Capabilities",
    "Cell",
    "Choice",
    "ConfigError",
    "Constraint",
    "ConstraintError",
    "DataError",
    "DigitCell",
    "Executor",
    "ExecutorCapabilities",
    "Float",
    "Int",
    "InvalidArchitectureError",
    "LinkOps",
    "Objective",
    "Ordinal",
    "Proposal",
    "Result",
    "RetryPolicy",
    "Skeleton",
    "Space",
    "SpaceExhaustedError",
    "Stages",
    "Storage",
    "StorageError",
    "StorageVersionError",
    "Strategy",
    "Study",
    "StudyExistsError",
    "TabularBenchmark",
    "Trial",
    "TrialState",
    "UnknownNameError",
    "__version__",
    "create_benchmark",
    "create_executor",
    "create_space",
    "create_storage",
    "create_strategy",
    "create_study",
    "list_benchmarks",
    "list_executors",
    "list_spaces",
    "list_storages",
    "list_strategies",
    "load_study",
    "register_executor",
    "register_space",
    "register_storage",
    "register_strategy",
]

# Heavier parts load on first use (PEP 562), so that `import archscout` stays light.
_LAZY = {
    "TrainingEvaluator": "archscout.training",
    "ProxyEvaluator": "archscout.proxies",
    "list_proxies": "archscout.proxies",
    "load_dataset": "archscout.data",
    "list_datasets": "archscout.data",
    "ArrayDataset": "archscout.data",
    "load_splits": "archscout.data",
    "SupernetEvaluator": "archscout.supernet",
    "train_supernet": "archscout.supernet",
    "create_supernet": "archscout.supernet",
    "ModelFactory": "archscout.nn",
    "build_model": "archscout.nn",
    "register_builder": "archscout.nn",
    "export_onnx": "archscout.nn",
    "CostModel": "archscout.hardware",
    "create_cost_model": "archscout.hardware",
    "list_cost_models": "archscout.hardware",
    "register_cost_model": "archscout.hardware",
    "cost_model_from_config": "archscout.hardware",
    "cost_models_from_config": "archscout.hardware",
    "create_device": "archscout.hardware",
    "list_devices": "archscout.hardware",
    "register_device": "archscout.hardware",
    "run_demo": "archscout.demo",
    "export_front": "archscout.export",
    "ExportedModel": "archscout.export",
    "SearchConfig": "archscout.runs",
    "RunSettings": "archscout.runs",
    "start_search": "archscout.runs",
    "run_search": "archscout.runs",
    "resume_search": "archscout.runs",
    "RayExecutor": "archscout.execution.ray_executor",
}
__all__ += list(_LAZY)


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'archscout' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
