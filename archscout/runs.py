"""Searches described by settings: the schema of ``archscout search`` configs, its validation, and the building of
the benchmark, evaluator, executor and study it describes. The CLI is a thin layer over these calls.

A config is a TOML file (or a dict) of sections; each section's keys, their types and their checks are listed in
:data:`SECTIONS`::

    [study]       name, storage, seed, budget, strategy, strategy_params
    [benchmark]   name, table, objective, report, direction, arch_column, cost_table, cost_column, space, hash_rule
    [execution]   executor, workers, replay_time_scale, timeout_s, retries, address

Paths in a file (``table``, ``cost_table``, a ``storage`` that is not a URL) are relative to the file::

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
            if base_dir is not None and schema[key].path and isinstance(value, str) and "://" not in value:
                value = os.path.join(base_dir, value)
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

    def _check_complete(self) -> None:
        if not self.get("benchmark", "name"):
            raise ConfigError("say what to search: --benchmark NAME --table PATH, or [benchmark] name and table "
                              "(see `archscout list benchmarks`)")
        budget = self.get("study", "budget")
        if budget is None:
            raise ConfigError(f"budget must be a positive integer, got {budget!r}; pass --budget N "
                              "(or [study] budget)")
        benchmark_params(self.sections["benchmark"])  # the table
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
        benchmark: ``{"name": ..., "params": {...}}``, what :func:`build_benchmark` takes.
        budget: trials the study should hold.
        executor: an executor name (``inline``, ``process``, ``simulated``, ``ray``).
        workers: parallel evaluations.
        replay_time_scale: the tabular evaluator really waits the table's training time times this.
        timeout_s: per-trial time limit in seconds, or None.
        retries: retries of a trial that timed out or whose worker died, or None.
        address: the Ray cluster address (Ray executor only), or None.

    Raises:
        ConfigError: a value of the wrong type or range, an unknown executor, an address without Ray.
    """

    benchmark: Mapping[str, Any]
    budget: int
    executor: str = "inline"
    workers: int = 1
    replay_time_scale: float = 0.0
    timeout_s: float | None = None
    retries: int | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        b = self.benchmark
        if not isinstance(b, Mapping) or not isinstance(b.get("name"), str) or not isinstance(b.get("params"), Mapping):
            raise ConfigError(f"benchmark must be {{'name': ..., 'params': {{...}}}}, got {b!r}")
        SECTIONS["study"]["budget"].validate("study", "budget", self.budget, "run")
        for key in ("executor", "workers", "replay_time_scale", "timeout_s", "retries", "address"):
            value = getattr(self, key)
            if value is not None or key in ("executor", "workers", "replay_time_scale"):
                SECTIONS["execution"][key].validate("execution", key, value, "run")
        if self.address and self.executor != "ray":
            raise ConfigError("address names a Ray cluster; use it with --executor ray")

    @classmethod
    def from_config(cls, config: SearchConfig) -> RunSettings:
        """The run a validated config describes (default workers: 2 with ``process`` or ``ray``, else 1)."""
        ex = config.sections["execution"]
        name = config.get("benchmark", "name")
        return cls(
            benchmark={"name": name, "params": benchmark_params(config.sections["benchmark"])},
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
        if not isinstance(run, Mapping) or "benchmark" not in run or "budget" not in run:
            raise ConfigError(f"the study header does not describe a search run (a benchmark and a budget), got "
                              f"{run!r}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in run.items() if k in known})

    def to_metadata(self) -> dict[str, Any]:
        """The dict kept in the study header, JSON-safe, with every key (None for unset options)."""
        return {
            "benchmark": {"name": self.benchmark["name"], "params": dict(self.benchmark["params"])},
            "replay_time_scale": self.replay_time_scale, "executor": self.executor, "workers": self.workers,
            "budget": self.budget, "timeout_s": self.timeout_s, "retries": self.retries, "address": self.address,
        }

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
        """The benchmark this run evaluates on."""
        return build_benchmark(self.benchmark["name"], self.benchmark["params"])

    def build_evaluator(self, bench: TabularBenchmark | None = None) -> Any:
        """The evaluator of the run (the benchmark's, with ``replay_time_scale``)."""
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
def start_search(config: SearchConfig) -> tuple[Study, Any, RunSettings]:
    """Build the benchmark, evaluator and study that ``config`` describes.

    The study is created in ``config.storage`` with the run in its header; when the storage already holds a
    study of that name with the same settings (another ``archscout search`` started on it), it is joined, and
    the drivers share its budget.

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
    bench = run.build_benchmark()
    evaluator = run.build_evaluator(bench)
    strategy: Any = config.get("study", "strategy", "auto")
    if config.get("study", "strategy_params"):
        strategy = {"name": strategy, **config.get("study", "strategy_params")}
    name = config.study_name
    study = create_study(bench.space, objectives=[bench.objective], strategy=strategy, storage=config.storage,
                         seed=config.get("study", "seed"), name=name, metadata={"run": run.to_metadata()},
                         load_if_exists=True)
    stored = study.config.get("metadata", {}).get("run") or {}
    wanted = run.to_metadata()
    for key in ("benchmark", "replay_time_scale"):
        if stored.get(key) != json.loads(json.dumps(wanted[key])):
            raise ConfigError(f"{study.storage.url} already holds a study {name!r} that evaluates with another {key} "
                              f"({stored.get(key)!r}); use the same settings to join it, or another --study name")
    return study, evaluator, run


def run_search(study: Study, evaluator: Any, run: RunSettings, progress: bool = True) -> Study:
    """Run ``study.optimize`` until the study holds ``run.budget`` trials, on the run's executor, with its
    retries. Returns ``study``. A KeyboardInterrupt propagates; every finished trial is recorded."""
    study.optimize(evaluator, budget=run.budget, executor=run.build_executor(), progress=progress,
                   retries=run.retries)
    return study


def resume_search(storage: str, name: str | None = None, *, on_stale: str = "requeue",
                  overrides: Mapping[str, Any] | None = None) -> tuple[Study, Any, RunSettings]:
    """Load a study that :func:`start_search` created and rebuild its evaluator from the header.

    Args:
        storage: the study's storage (file path or URL).
        name: the study's name (None: the storage's only study).
        on_stale: trials whose driver stopped while they ran: ``"requeue"`` or ``"fail"``.
        overrides: run settings to change for this driver (``budget``, ``executor``, ``workers``,
            ``timeout_s``, ``retries``, ``address``); None values are skipped.

    Returns:
        ``(study, evaluator, run)``, ready for :func:`run_search`.

    Raises:
        StorageError: the storage is missing or not a storage. ConfigError: the study was not started by a
        search (it does not record how to evaluate), or an override is invalid.
    """
    from .study import load_study

    study = load_study(storage, name, on_stale=on_stale)
    stored = study.config.get("metadata", {}).get("run") or {}
    if not stored:
        raise ConfigError(
            f"{storage} was not started by `archscout search`, so it does not record how to evaluate; "
            "resume it from Python with load_study(...).optimize(evaluator, budget)"
        )
    run = RunSettings.from_metadata(stored).with_overrides(**dict(overrides or {}))
    return study, run.build_evaluator(), run
