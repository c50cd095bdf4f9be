"""archscout: hardware-aware neural architecture search.

``import archscout`` loads numpy and archscout's light modules only; torch, plotting and other heavy
dependencies load lazily where they are used.
"""

from ._version import __version__
from .errors import (
    ArchscoutError, BuildError, ConfigError, ConstraintError, DataError, InvalidArchitectureError, SpaceExhaustedError, StorageError,
    StorageVersionError, StudyExistsError, UnknownNameError,
)
from .objectives import Constraint, Objective
from .results import Candidate, Proposal, Result, Trial, TrialState
from .space import (
    Architecture, Cell, Choice, DigitCell, Float, Int, LinkOps, Ordinal, Skeleton, Space, Stages, create_space,
    list_spaces, register_space,
)
from .strategies import Capabilities, Strategy, create_strategy, list_strategies, register_strategy
from .storage import Storage, create_storage, list_storages, register_storage
from .execution import Executor, ExecutorCapabilities, create_executor, list_executors, register_executor
from .drivers import RetryPolicy
from .study import Study, create_study, load_study
from .benchmarks import TabularBenchmark, create_benchmark, list_benchmarks

__all__ = [
    "__version__",
    "ArchscoutError", "BuildError", "ConfigError", "ConstraintError", "DataError", "InvalidArchitectureError", "SpaceExhaustedError",
    "StorageError", "StorageVersionError", "StudyExistsError", "UnknownNameError",
    "Candidate", "Constraint", "Objective", "Proposal", "Result", "TrialState",
    "Architecture", "Cell", "Choice", "DigitCell", "Float", "Int", "LinkOps", "Ordinal", "Skeleton", "Space", "Stages",
    "create_space", "list_spaces", "register_space",
    "Capabilities", "Strategy", "create_strategy", "list_strategies", "register_strategy",
    "Storage", "create_storage", "list_storages", "register_storage",
    "Executor", "ExecutorCapabilities", "create_executor", "list_executors", "register_executor",
    "RetryPolicy", "Study", "Trial", "create_study", "load_study",
    "TabularBenchmark", "create_benchmark", "list_benchmarks",
]

# Heavier parts load on first use (PEP 562), so that `import archscout` stays light.
_LAZY = {
    "TrainingEvaluator": "archscout.training",
    "ProxyEvaluator": "archscout.proxies",
    "list_proxies": "archscout.proxies",
    "load_dataset": "archscout.data",
    "list_datasets": "archscout.data",
    "ArrayDataset": "archscout.data",
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


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'archscout' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
