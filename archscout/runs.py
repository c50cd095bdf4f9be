"""Searches described by settings: the schema of ``archscout search`` configs, its validation, and the building of
the benchmark, evaluator, executor and study it describes. The CLI is a thin layer over these calls.

A config is a TOML file (or a dict) of sections; each section's keys, their types and their checks are listed in
:data:`SECTIONS`::

    [study]       name, storage, seed, budget, strategy, strategy_params, objectives, constraints
    [benchmark]   name, table, objective, report, direction, arch_column, cost_table, cost_column, space, hash_rule
    [space]       name, builder, options                      (real training: with [data] and [training])
    [data]        data, train_subset, val_size
    [training]    epochs, batch_size, optimizer, lr, weight_decay, augment, threads
    [supernet]    dir, data, val_images                       (a trained supernet's sub-networks)
    [hardware]    device, latency, calibration, cache
    [execution]   executor, workers, replay_time_scale, timeout_s, retries, address

A search evaluates one of: a tabular ``[benchmark]``; real training (``[space]`` + ``[data]``, recipe in
``[training]``); a trained ``[supernet]``. ``[hardware] device`` gives ``latency_ms`` (see
:mod:`archscout.run_specs`).

Paths in a file (``table``, ``cost_table``, ``data``, ``dir``, ``cache``, a ``storage`` that is not a URL) are
relative to the file::

    config = SearchConfig.load("search.toml", overrides={"study": {"budget": 50}})   # validated at once
    study, evaluator, run = start_search(config)     # creates the study, or joins one with the same settings
    run_search(study, evaluator, run)                # the study's optimize loop on the run's executor
    study, evaluator, run = resume_search("runs/search.db", overrides={"budget": 80})

What a search evaluates and how it runs is kept in the study's header (``metadata["run"]``, see
:class:`RunSettings`), so :func:`resume_search` needs only the storage.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from .benchmarks import TabularBenchmark
    from .study import Study

__all__ = [
    "DEFAULT_STORAGE",
    "DEFAULT_STUDY",
    "SECTIONS",
    "RunSettings",
    "SearchConfig",
    "Setting",
    "benchmark_params",
    "build_benchmark",
    "resume_search",
    "run_search",
    "start_search",
]

DEFAULT_STORAGE = os.path.join("runs", "search.db")
DEFAULT_STUDY = "default"


def _executor_names() -> list[str]:
    from .execution import EXECUTORS

    return EXECUTORS.names()


def _real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


@dataclass(frozen=True)
class Setting:
    """One key of a config section.

    Attributes:
        types: the accepted Python types (``bool`` is never accepted as a number).
        what: what a valid value is, in words, for the error message (``"a positive integer"``).
        check: a further test of a value of the right type (e.g. ``> 0``), or None.
        choices: the names a value must be one of (called when checked, e.g. a registry's names), or None.
        path: a path that a config file gives relative to the file (a URL, with ``://``, is left as it is).
    """

    types: tuple[type, ...]
    what: str
    check: Callable[[Any], bool] | None = None
    choices: Callable[[], list[str]] | None = None
    path: bool = False

    def validate(self, section: str, key: str, value: Any, source: str) -> None:
        """Raise ConfigError (one line, naming ``source``, the section and the key) when ``value`` is not valid."""
        ok = isinstance(value, self.types) and not isinstance(value, bool)
        if ok and self.check is not None:
            ok = self.check(value)
        if not ok:
            raise ConfigError(f"{source}: [{section}] {key} must be {self.what}, got {value!r}")
        if self.choices is not None and value not in self.choices():
            raise ConfigError(f"{source}: [{section}] {key} {value!r} is unknown; use one of {self.choices()}")


_STR = Setting((str,), "a string")
_PATH = Setting((str,), "a string", path=True)

#: The schema: section name -> key -> :class:`Setting`. A new section is a new entry here plus what
#: :func:`start_search` builds from it.
SECTIONS: dict[str, dict[str, Setting]] = {
    "study": {
        "name": _STR,
        "storage": Setting((str,), "a path or URL string", path=True),
        "seed": Setting((int,), "an integer >= 0", lambda v: v >= 0),
        "budget": Setting((int,), "a positive integer", lambda v: v > 0),
        "strategy": Setting((str,), "a strategy name"),
        "strategy_params": Setting((dict,), "a table of parameters"),
        "objectives": Setting((list,), "a list of 'metric:max' / 'metric:min' strings",
                              lambda v: bool(v) and all(isinstance(o, str) for o in v)),
        "constraints": Setting((list,), "a list of strings such as 'latency_ms<=2'",
                               lambda v: all(isinstance(c, str) for c in v)),
    },
    "space": {
        "name": Setting((str,), "a registered space name or 'package.module:attribute'"),
        "builder": Setting((str,), "a registered builder name or 'package.module:function'"),
        "options": Setting((dict,), "a table of builder options (e.g. {C = 8, N = 1})"),
    },
    "data": {
        "data": Setting((str,), "a dataset name or a path (.npz, IDX or CIFAR-10 folder)", path=True),
        "train_subset": Setting((int,), "a positive integer", lambda v: v > 0),
        "val_size": Setting((int,), "a positive integer", lambda v: v > 0),
    },
    "training": {
        "epochs": Setting((int,), "a positive integer", lambda v: v > 0),
        "batch_size": Setting((int,), "an integer >= 2", lambda v: v >= 2),
        "optimizer": Setting((str,), "an optimizer name", choices=lambda: ["sgd", "adam"]),
        "lr": Setting((int, float), "a positive number", lambda v: _real(v) and 0 < v < math.inf),
        "weight_decay": Setting((int, float), "a number >= 0", lambda v: _real(v) and 0 <= v < math.inf),
        "augment": Setting((str,), "'crop-flip' or 'none'", choices=lambda: ["crop-flip", "none"]),
        "threads": Setting((int,), "a positive integer", lambda v: v > 0),
    },
    "supernet": {
        "dir": Setting((str,), "a supernet folder", path=True),
        "data": Setting((str,), "a dataset name or path", path=True),
        "val_images": Setting((int,), "a positive integer", lambda v: v > 0),
    },
    "hardware": {
        "device": Setting((str,), "a device name (see `archscout list devices`)"),
        "latency": Setting((str,), "'measured' or 'predicted'", choices=lambda: ["measured", "predicted"]),
        "calibration": Setting((int,), "an integer >= 10", lambda v: v >= 10),
        "cache": Setting((str,), "a file path", path=True),
    },
    "benchmark": {
        "name": _STR, "table": _PATH, "objective": _STR, "report": _STR, "direction": _STR, "arch_column": _STR,
        "cost_table": _PATH, "space": _STR, "hash_rule": _STR,
        "cost_column": Setting((list,), "a column name or a list of them",
                               lambda v: all(isinstance(c, str) for c in v)),
    },
    "execution": {
        "executor": Setting((str,), "an executor name", choices=_executor_names),
        "workers": Setting((int,), "a positive integer", lambda v: v > 0),
        "replay_time_scale": Setting((int, float), "a number >= 0", lambda v: _real(v) and 0 <= v < math.inf),
        "timeout_s": Setting((int, float), "a positive number", lambda v: _real(v) and 0 < v < math.inf),
        "retries": Setting((int,), "an integer >= 0", lambda v: v >= 0),
        "address": Setting((str,), "a Ray address string"),
    },
}


#: kind of search -> the (section, key) that says it
_KINDS = {"tabular": ("benchmark", "name"), "training": ("space", "name"), "supernet": ("supernet", "dir")}
#: kind of search -> the sections beyond [study] and [execution] that apply to it
_SECTIONS_OF = {"tabular": ("benchmark",), "training": ("space", "data", "training", "hardware"),
                "supernet": ("supernet", "hardware")}


def _load_toml(path: str) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path!r} does not exist")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path!r} is not valid TOML: {e}") from None


def _dataset_name(value: str) -> bool:
    from .data import list_datasets

    return value in list_datasets()


def _sections(data: Any, source: str, base_dir: str | None) -> dict[str, dict[str, Any]]:
    """Check the structure of ``data`` (known sections of known keys), resolve relative paths against
    ``base_dir`` and normalise a single ``cost_column`` to a list."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: settings must be a table of sections {sorted(SECTIONS)}, got {data!r}")
    out: dict[str, dict[str, Any]] = {k: {} for k in SECTIONS}
    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"{source}: unknown section [{section}]; use {sorted(SECTIONS)}")
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: {section} must be a table ([{section}] with keys), got {values!r}")
        schema = SECTIONS[section]
        unknown = set(values) - set(schema)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {sorted(unknown)} in [{section}]; allowed: {sorted(schema)}")
        for key, value in values.items():
            if value is None:
                continue
            if (base_dir is not None and schema[key].path and isinstance(value, str) and "://" not in value
                    and not (key == "data" and _dataset_name(value))):
                value = os.path.normpath(os.path.join(base_dir, value))
            if key == "cost_column" and isinstance(value, str):
                value = [value]
            out[section][key] = value
    return out


@dataclass(frozen=True)
class SearchConfig:
    """The validated settings of one search: section -> key -> value (see :data:`SECTIONS`).

    Build it with :meth:`load` (a TOML file and/or overrides) or the constructor (a dict of sections, paths as
    given). Everything is checked at once, before anything is built or written: unknown sections or keys,
    values of the wrong type, an unknown executor, and what a search needs (a benchmark with its table, a
    budget; a Ray address only with the Ray executor).

    Attributes:
        sections: read-only ``{section: {key: value}}``; keys not set are absent.
        source: where the settings came from, named in error messages (a file path, or ``"settings"``).

    Raises:
        ConfigError: the first setting that is wrong, on one line.
    """

    sections: Mapping[str, Mapping[str, Any]]
    source: str = "settings"

    def __post_init__(self) -> None:
        secs = _sections(self.sections, self.source, None)
        for section, values in secs.items():
            for key, value in values.items():
                SECTIONS[section][key].validate(section, key, value, self.source)
        object.__setattr__(self, "sections",
                           MappingProxyType({k: MappingProxyType(dict(v)) for k, v in secs.items()}))
        self._check_complete()

    @property
    def kind(self) -> str:
        """What the search evaluates: ``"tabular"``, ``"training"`` or ``"supernet"``."""
        kinds = [k for k, (sec, key) in _KINDS.items() if self.get(sec, key)]
        return kinds[0] if len(kinds) == 1 else ""

    def _check_complete(self) -> None:
        given = [k for k, (sec, key) in _KINDS.items() if self.get(sec, key)]
        if not given:
            raise ConfigError("say what to search: --benchmark NAME --table PATH (a tabular benchmark, see `archscout "
                              "list benchmarks`), --space NAME --data DATA (real training), or --supernet DIR")
        if len(given) > 1:
            flags = {"tabular": "--benchmark", "training": "--space", "supernet": "--supernet"}
            raise ConfigError(f"a search evaluates one thing, got {' and '.join(flags[k] for k in given)}; keep one")
        budget = self.get("study", "budget")
        if budget is None:
            raise ConfigError(f"budget must be a positive integer, got {budget!r}; pass --budget N "
                              "(or [study] budget)")
        kind = given[0]
        if kind == "tabular":
            benchmark_params(self.sections["benchmark"])  # the table
        for sec in ("space", "data", "training", "supernet", "hardware"):
            if self.sections[sec] and sec not in _SECTIONS_OF[kind]:
                raise ConfigError(f"[{sec}] does not apply to a {kind} search; remove it")
        if kind == "training" and not self.get("data", "data"):
            raise ConfigError("a search that trains needs data: --data NAME_OR_PATH (fashion-mnist, cifar10, digits, "
                              "mnist5k, an .npz, an IDX or CIFAR-10 folder), or [data] data")
        if kind == "tabular" and (self.get("study", "objectives") or self.get("study", "constraints")):
            raise ConfigError("a tabular search optimises its benchmark's --objective (with --cost-column for costs); "
                              "[study] objectives and constraints are for real training and supernets")
        if self.get("execution", "address") and self.executor != "ray":
            raise ConfigError("address names a Ray cluster; use it with --executor ray")

    @classmethod
    def load(cls, path: str | os.PathLike | None = None,
             overrides: Mapping[str, Mapping[str, Any]] | None = None) -> SearchConfig:
        """Read the TOML file ``path`` (if any; its relative paths are relative to it), then apply
        ``overrides`` (``{section: {key: value}}``; values that are None are skipped, paths are taken as given),
        and validate the result.

        Raises:
            ConfigError: the file is missing or not valid TOML, or a setting is wrong.
        """
        source = "settings" if path is None else os.fspath(path)
        merged: dict[str, dict[str, Any]] = {k: {} for k in SECTIONS}
        if path is not None:
            raw = _load_toml(source)
            base = os.path.dirname(os.path.abspath(source))
            for section, values in _sections(raw, source, base).items():
                merged[section].update(values)
        for section, values in _sections(overrides or {}, source, None).items():
            merged[section].update(values)
        return cls(merged, source)

    def get(self, section: str, key: str, default: Any = None) -> Any:
        """The value of ``[section] key``, or ``default`` when it is not set."""
        return self.sections.get(section, {}).get(key, default)

    @property
    def storage(self) -> str:
        """Where the study is recorded: ``[study] storage`` or ``runs/search.db``."""
        return self.get("study", "storage") or DEFAULT_STORAGE

    @property
    def study_name(self) -> str:
        """The study's name inside the storage: ``[study] name`` or ``"default"``."""
        return self.get("study", "name") or DEFAULT_STUDY

    @property
    def executor(self) -> str:
        return self.get("execution", "executor", "inline")

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain ``{section: {key: value}}`` (what :meth:`SearchConfig` takes back)."""
        return {k: dict(v) for k, v in self.sections.items()}


# --- what a search evaluates ---------------------------------------------------------------------------------
def benchmark_params(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of ``create_benchmark`` from ``[benchmark]`` settings (or ``argparse`` flags as a dict):
    absolute table paths, ``cost_column`` as the ``cost_columns`` list; ``name`` is not among them.

    Raises:
        ConfigError: no ``table``.
    """
    params: dict[str, Any] = {}
    table = settings.get("table")
    if table is None:
        raise ConfigError("a tabular benchmark needs its table: pass --table PATH (the benchmark CSV file)")
    params["table"] = os.path.abspath(table)
    for key in ("objective", "report", "direction", "arch_column"):
        if settings.get(key) is not None:
            params[key] = settings.get(key)
    cost_table = settings.get("cost_table")
    if cost_table is not None:
        params["cost_table"] = os.path.abspath(cost_table)
    cost_columns = settings.get("cost_column")
    if cost_columns:
        params["cost_columns"] = list(cost_columns)
    for key in ("space", "hash_rule"):
        if settings.get(key) is not None:
            params[key] = settings.get(key)
    return params


def build_benchmark(name: str, params: Mapping[str, Any]) -> TabularBenchmark:
    """``create_benchmark(name, **params)``. Raises UnknownNameError, ConfigError, DataError."""
    from .benchmarks import create_benchmark

    return create_benchmark(name, **params)


@dataclass(frozen=True)
class RunSettings:
    """How a search evaluates and runs, as kept in its study's header (``metadata["run"]``).

    Attributes:
        benchmark: ``{"name": ..., "params": {...}}``, what :func:`build_benchmark` takes (tabular searches; None
            for the others).
        budget: trials the study should hold.
        executor: an executor name (``inline``, ``process``, ``simulated``, ``ray``).
        workers: parallel evaluations.
        replay_time_scale: the tabular evaluator really waits the table's training time times this.
        timeout_s: per-trial time limit in seconds, or None.
        retries: retries of a trial that timed out or whose worker died, or None.
        address: the Ray cluster address (Ray executor only), or None.
        training: a real-training search's spec (space, data, recipe, seed; see :mod:`archscout.run_specs`).
        supernet: a supernet search's spec (``dir``, ``data``, ``val_images``).
        hardware: the device spec behind ``latency_ms`` (``device``, ``latency``, ``calibration``, ``cache``).

    Raises:
        ConfigError: a value of the wrong type or range, an unknown executor, an address without Ray.
    """

    benchmark: Mapping[str, Any] | None
    budget: int
    executor: str = "inline"
    workers: int = 1
    replay_time_scale: float = 0.0
    timeout_s: float | None = None
    retries: int | None = None
    address: str | None = None
    training: Mapping[str, Any] | None = None
    supernet: Mapping[str, Any] | None = None
    hardware: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        b = self.benchmark
        if sum(x is not None for x in (b, self.training, self.supernet)) != 1:
            raise ConfigError("a run evaluates exactly one of a benchmark, a training spec or a supernet")
        if b is not None and (not isinstance(b, Mapping) or not isinstance(b.get("name"), str)
                              or not isinstance(b.get("params"), Mapping)):
            raise ConfigError(f"benchmark must be {{'name': ..., 'params': {{...}}}}, got {b!r}")
        for key in ("training", "supernet", "hardware"):
            if getattr(self, key) is not None and not isinstance(getattr(self, key), Mapping):
                raise ConfigError(f"{key} must be a mapping, got {getattr(self, key)!r}")
        SECTIONS["study"]["budget"].validate("study", "budget", self.budget, "run")
        for key in ("executor", "workers", "replay_time_scale", "timeout_s", "retries", "address"):
            value = getattr(self, key)
            if value is not None or key in ("executor", "workers", "replay_time_scale"):
                SECTIONS["execution"][key].validate("execution", key, value, "run")
        if self.address and self.executor != "ray":
            raise ConfigError("address names a Ray cluster; use it with --executor ray")

    @property
    def kind(self) -> str:
        """``"tabular"``, ``"training"`` or ``"supernet"``."""
        return "tabular" if self.benchmark is not None else "training" if self.training is not None else "supernet"

    @classmethod
    def from_config(cls, config: SearchConfig) -> RunSettings:
        """The run a validated config describes (default workers: 2 with ``process`` or ``ray``, else 1)."""
        ex = config.sections["execution"]
        kind = config.kind
        specs: dict[str, Any] = {"benchmark": None}
        if kind == "tabular":
            specs["benchmark"] = {"name": config.get("benchmark", "name"),
                                  "params": benchmark_params(config.sections["benchmark"])}
        elif kind == "training":
            sp, data, tr = (dict(config.sections[k]) for k in ("space", "data", "training"))
            if "data" in data and not _dataset_name(data["data"]):
                data["data"] = os.path.abspath(data["data"])
            if "augment" in tr:
                tr["augment"] = None if tr["augment"] == "none" else tr["augment"]
            specs["training"] = {"space": {"name": sp["name"], "builder": sp.get("builder"),
                                           "options": dict(sp.get("options") or {})},
                                 "data": data, "recipe": tr, "seed": config.get("study", "seed") or 0}
        else:
            sn = dict(config.sections["supernet"])
            sn["dir"] = os.path.abspath(sn["dir"])
            specs["supernet"] = sn
        if config.sections["hardware"]:
            hw = dict(config.sections["hardware"])
            if hw.get("device") and "cache" not in hw and "://" not in config.storage:
                stem = os.path.splitext(os.path.abspath(config.storage))[0]
                hw["cache"] = f"{stem}.latency-{hw['device']}.json"
            elif "cache" in hw:
                hw["cache"] = os.path.abspath(hw["cache"])
            specs["hardware"] = hw
        return cls(
            **specs,
            budget=config.get("study", "budget"),
            executor=ex.get("executor", "inline"),
            workers=int(ex.get("workers", 2 if ex.get("executor") in ("process", "ray") else 1)),
            replay_time_scale=ex.get("replay_time_scale", 0.0),
            timeout_s=ex.get("timeout_s"), retries=ex.get("retries"), address=ex.get("address"),
        )

    @classmethod
    def from_metadata(cls, run: Mapping[str, Any]) -> RunSettings:
        """Read a study header's ``metadata["run"]`` (older headers may lack the optional keys).

        Raises:
            ConfigError: it does not describe a run.
        """
        if not isinstance(run, Mapping) or "budget" not in run or not any(
                run.get(k) is not None for k in ("benchmark", "training", "supernet")):
            raise ConfigError(f"the study header does not describe a search run (what it evaluates and a budget), "
                              f"got {run!r}")
        known = {f.name for f in fields(cls)}
        return cls(**{"benchmark": None, **{k: v for k, v in run.items() if k in known}})

    def to_metadata(self) -> dict[str, Any]:
        """The dict kept in the study header, JSON-safe, with every key (None for unset options; the
        ``training``, ``supernet`` and ``hardware`` specs only when set)."""
        b = self.benchmark
        out: dict[str, Any] = {
            "benchmark": None if b is None else {"name": b["name"], "params": dict(b["params"])},
            "replay_time_scale": self.replay_time_scale, "executor": self.executor, "workers": self.workers,
            "budget": self.budget, "timeout_s": self.timeout_s, "retries": self.retries, "address": self.address,
        }
        for key in ("training", "supernet", "hardware"):
            if getattr(self, key) is not None:
                out[key] = json.loads(json.dumps(getattr(self, key)))
        return out

    def with_overrides(self, **overrides: Any) -> RunSettings:
        """A copy with the given settings replaced; None values keep the current ones.

        Raises:
            ConfigError: an unknown setting or an invalid value.
        """
        allowed = ("budget", "executor", "workers", "timeout_s", "retries", "address")
        unknown = sorted(set(overrides) - set(allowed))
        if unknown:
            raise ConfigError(f"cannot override {unknown} of a stored run; allowed: {list(allowed)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def build_benchmark(self) -> TabularBenchmark:
        """The benchmark this run evaluates on.

        Raises:
            ConfigError: the run trains or uses a supernet, not a benchmark."""
        if self.benchmark is None:
            raise ConfigError(f"this {self.kind} run has no tabular benchmark")
        return build_benchmark(self.benchmark["name"], self.benchmark["params"])

    def build_evaluator(self, bench: TabularBenchmark | None = None) -> Any:
        """The evaluator of the run: the benchmark's (with ``replay_time_scale``), a
        :class:`~archscout.training.TrainingEvaluator` or a :class:`~archscout.supernet.SupernetEvaluator`."""
        from .run_specs import supernet_evaluator, training_evaluator

        if self.training is not None:
            return training_evaluator(self.training)
        if self.supernet is not None:
            return supernet_evaluator(self.supernet)
        bench = bench if bench is not None else self.build_benchmark()
        return bench.evaluator(replay_time_scale=self.replay_time_scale)

    def build_executor(self) -> Any:
        """The executor the run names, with its workers, per-trial timeout and (Ray) cluster address."""
        from .execution import create_executor

        params: dict[str, Any] = {"workers": self.workers}
        for key in ("timeout_s", "address"):
            if getattr(self, key):
                params[key] = getattr(self, key)
        return create_executor(self.executor, **params)


# --- starting, running, resuming -----------------------------------------------------------------------------
def start_search(config: SearchConfig, progress: bool = True) -> tuple[Study, Any, RunSettings]:
    """Build the benchmark, evaluator and study that ``config`` describes.

    The study is created in ``config.storage`` with the run in its header; when the storage already holds a
    study of that name with the same settings (another ``archscout search`` started on it), it is joined, and
    the drivers share its budget (and its cost models, rebuilt from the header: a latency predictor is calibrated
    once, by the first driver). ``progress`` shows a bar while a latency predictor is calibrated.

    Returns:
        ``(study, evaluator, run)``, ready for :func:`run_search`.

    Raises:
        UnknownNameError, ConfigError, DataError: an unknown benchmark or strategy, a missing table or column.
        ConfigError: the storage holds a study of that name with other settings.
        StorageError: the storage cannot be opened.
    """
    from .study import create_study

    if not isinstance(config, SearchConfig):
        raise ConfigError(f"start_search takes a SearchConfig (SearchConfig.load(path)), got {config!r}")
    run = RunSettings.from_config(config)
    strategy: Any = config.get("study", "strategy", "auto")
    if config.get("study", "strategy_params"):
        strategy = {"name": strategy, **config.get("study", "strategy_params")}
    name = config.study_name
    if run.kind == "tabular":
        bench = run.build_benchmark()
        evaluator = run.build_evaluator(bench)
        study = create_study(bench.space, objectives=[bench.objective], strategy=strategy, storage=config.storage,
                             seed=config.get("study", "seed"), name=name, metadata={"run": run.to_metadata()},
                             load_if_exists=True)
    else:
        study, evaluator = _start_model_search(config, run, strategy, progress)
    stored = study.config.get("metadata", {}).get("run") or {}
    wanted = run.to_metadata()
    for key in ("benchmark", "replay_time_scale", "training", "supernet", "hardware"):
        if stored.get(key) != json.loads(json.dumps(wanted.get(key))):
            raise ConfigError(f"{study.storage.url} already holds a study {name!r} that evaluates with another {key} "
                              f"({stored.get(key)!r}); use the same settings to join it, or another --study name")
    return study, evaluator, run


def parse_objective_flags(items: Any) -> list[Any]:
    """``["accuracy:max", "latency_ms:min"]`` (or one comma-separated string) as :class:`~archscout.Objective`
    values.

    Raises:
        ConfigError: an entry that is not ``metric:max`` or ``metric:min``.
    """
    from .objectives import Objective

    if isinstance(items, str):
        items = [t.strip() for t in items.split(",") if t.strip()]
    out = []
    for item in items:
        metric, sep, direction = str(item).partition(":")
        if not sep or direction not in ("max", "min") or not metric:
            raise ConfigError(f"objective {item!r} must be METRIC:max or METRIC:min (e.g. accuracy:max,latency_ms:min)")
        out.append(Objective(metric, direction, "ms" if metric.endswith("_ms") else ""))
    return out


def _start_model_search(config: SearchConfig, run: RunSettings, strategy: Any,
                        progress: bool) -> tuple[Study, Any]:
    """The study and evaluator of a real-training or supernet search (see :func:`start_search`)."""
    from .hardware import cost_models_from_config
    from .objectives import parse_constraints
    from .run_specs import build_space, cost_models_for
    from .storage import create_storage
    from .study import create_study

    space = build_space(run.training["space"]) if run.training is not None else None
    evaluator = run.build_evaluator()
    space = space if space is not None else evaluator.space
    objectives = parse_objective_flags(config.get("study", "objectives") or ["accuracy:max"])
    constraints = parse_constraints(list(config.get("study", "constraints") or []))
    metrics = {o.name for o in objectives} | {c.name for c in constraints}
    seed = config.get("study", "seed")

    def stored_costs() -> Any:
        if "://" not in config.storage and not os.path.exists(config.storage):
            return None  # not created yet (and not created here: a setting found wrong below writes nothing)
        store = create_storage(config.storage)
        try:
            if config.study_name not in store.study_names():
                return None
            return store.study_config(config.study_name).get("cost_models") or {}
        finally:
            store.close()

    def create(cost_models: dict[str, Any]) -> Study:
        return create_study(space, objectives=objectives, constraints=constraints, strategy=strategy,
                            storage=config.storage, seed=seed, name=config.study_name,
                            metadata={"run": run.to_metadata()}, cost_models=cost_models, load_if_exists=True)

    stored = stored_costs()
    if stored is not None:  # another driver started it: its cost models (a calibrated predictor) are the study's
        return create(cost_models_from_config(stored)), evaluator
    cost_models = cost_models_for(metrics, run.kind, space, evaluator.factory, run.hardware, seed or 0, progress)
    try:
        return create(cost_models), evaluator
    except ConfigError:
        stored = stored_costs()  # another driver created the study while this one calibrated: join it
        if stored is None:
            raise
        return create(cost_models_from_config(stored)), evaluator


def run_search(study: Study, evaluator: Any, run: RunSettings, progress: bool = True) -> Study:
    """Run ``study.optimize`` until the study holds ``run.budget`` trials, on the run's executor, with its
    retries. Returns ``study``. A KeyboardInterrupt propagates; every finished trial is recorded."""
    study.optimize(evaluator, budget=run.budget, executor=run.build_executor(), progress=progress,
                   retries=run.retries)
    return study


def resume_search(storage: str, name: str | None = None, *, on_stale: str = "requeue",
                  overrides: Mapping[str, Any] | None = None, replay: bool = True) -> tuple[Study, Any, RunSettings]:
    """Load a study that :func:`start_search` created and rebuild its evaluator from the header.

    Args:
        storage: the study's storage (file path or URL).
        name: the study's name (None: the storage's only study).
        on_stale: trials whose driver stopped while they ran: ``"requeue"`` or ``"fail"``.
        overrides: run settings to change for this driver (``budget``, ``executor``, ``workers``,
            ``timeout_s``, ``retries``, ``address``); None values are skipped.
        replay: False reads the study without re-proposing its trajectory (see :func:`archscout.load_study`):
            for export and reports, not for continuing the search.

    Returns:
        ``(study, evaluator, run)``, ready for :func:`run_search`.

    Raises:
        StorageError: the storage is missing or not a storage. ConfigError: the study was not started by a
        search (it does not record how to evaluate), or an override is invalid.
    """
    from .study import load_study

    # a study that screens by cost gets its cost models back from the header (a predictor refitted on its data);
    # a header without any gives none
    study = load_study(storage, name, on_stale=on_stale, cost_models="stored", replay=replay)
    stored = study.config.get("metadata", {}).get("run") or {}
    if not stored:
        raise ConfigError(
            f"{storage} was not started by `archscout search`, so it does not record how to evaluate; "
            "resume it from Python with load_study(...).optimize(evaluator, budget)"
        )
    run = RunSettings.from_metadata(stored).with_overrides(**dict(overrides or {}))
    return study, run.build_evaluator(), run
