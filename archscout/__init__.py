"""archscout: hardware-aware neural architecture search.

``import archscout`` loads numpy and archscout's light modules only; torch, plotting and other heavy
dependencies load lazily where they are used.
"""

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    ArchscoutError, BuildError, ConfigError, ConstraintError, DataError, InvalidArchitectureError, SpaceExhaustedError, StorageError,
    StorageVersionError, StudyExistsError, UnknownNameError,
)
from .objectives import Candidate, Constraint, Objective, Result, TrialState  # noqa: E402
from .space import (  # noqa: E402
    Architecture, Cell, Choice, DigitCell, Float, Int, LinkOps, Ordinal, Skeleton, Space, Stages, create_space,
    list_spaces,
)
from .strategies import Strategy, create_strategy, list_strategies  # noqa: E402
from .storage import create_storage  # noqa: E402
from .execution import Executor, create_executor, list_executors  # noqa: E402
from .drivers import RetryPolicy  # noqa: E402
from .study import Study, Trial, create_study, load_study  # noqa: E402
from .benchmarks import TabularBenchmark, create_benchmark, list_benchmarks  # noqa: E402

__all__ = [
    "__version__",
    "ArchscoutError", "BuildError", "ConfigError", "ConstraintError", "DataError", "InvalidArchitectureError", "SpaceExhaustedError",
    "StorageError", "StorageVersionError", "StudyExistsError", "UnknownNameError",
    "Candidate", "Constraint", "Objective", "Result", "TrialState",
    "Architecture", "Cell", "Choice", "DigitCell", "Float", "Int", "LinkOps", "Ordinal", "Skeleton", "Space", "Stages",
    "create_space", "list_spaces",
    "Strategy", "create_strategy", "list_strategies", "create_storage",
    "Executor", "create_executor", "list_executors",
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
    "create_cost_model": "archscout.hardware",
    "list_cost_models": "archscout.hardware",
    "create_device": "archscout.hardware",
    "list_devices": "archscout.hardware",
    "run_demo": "archscout.demo",
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
