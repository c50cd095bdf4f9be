"""The ``archscout`` command: list, bench, search, resume, export, show (and demo, supernet, latency-bench).

Everything here is also a Python call; the CLI only parses flags, calls the library and prints: ``search`` and
``resume`` go through :mod:`archscout.runs` (the config schema, its validation, building the study), ``demo``
through :mod:`archscout.demo` (which exports with :func:`archscout.export_front`). Errors a user can fix are
printed as one line, with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from ._argtypes import int_at_least, key_values, non_negative_float, non_negative_int, positive_float, positive_int
from ._version import __version__
from .errors import ArchscoutError, ConfigError
from .runs import RunSettings, SearchConfig, benchmark_params, build_benchmark, resume_search, run_search, start_search

__all__ = ["main"]


def _csv_list(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("give at least one name, comma-separated")
    return items


def _add_execution_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=["inline", "process", "simulated", "ray"],
                   help="where evaluations run (ray: needs archscout[ray])")
    p.add_argument("--workers", type=positive_int, help="parallel evaluations (default 2 with process or ray)")
    p.add_argument("--timeout", dest="timeout_s", type=positive_float,
                   help="per-trial time limit in seconds; a trial over it is recorded as failed (timeout)")
    p.add_argument("--retries", type=non_negative_int,
                   help="retry a trial that timed out or whose worker died, up to this many times (default 0)")
    p.add_argument("--address", help="Ray cluster address for --executor ray (e.g. auto or ray://host:10001)")


# --- building benchmarks from flags (archscout.runs does the work) --------------------------------------------
def _benchmark_params(ns: argparse.Namespace | Mapping[str, Any]) -> dict[str, Any]:
    return benchmark_params(ns if isinstance(ns, Mapping) else vars(ns))


def _build_benchmark(name: str, params: Mapping[str, Any]):
    return build_benchmark(name, params)


# --- list -----------------------------------------------------------------------------------------------
NN_EXTRA_LINE = "ops and builders: need torch: pip install 'archscout[nn]'"


def _registries() -> dict[str, Any]:
    """Every kind ``archscout list`` shows: a function giving ``[(name, one-line doc)]``, or None when it needs
    torch and torch is missing."""
    from .benchmarks import BENCHMARKS
    from .data import DATASETS
    from .execution import EXECUTORS
    from .hardware import COST_MODELS, DEVICES
    from .space.registry import SPACES
    from .storage import STORAGES
    from .strategies import STRATEGIES

    def entries(reg: Any) -> Any:
        return lambda: [(n, reg.doc(n)) for n in reg.names()]

    def ops() -> list[tuple[str, str]]:
        from .nn import list_ops

        return sorted(list_ops().items())

    def builders() -> list[tuple[str, str]]:
        from .nn.builders import BUILDERS

        return [(n, BUILDERS.doc(n)) for n in BUILDERS.names()]

    return {"strategies": entries(STRATEGIES), "spaces": entries(SPACES), "benchmarks": entries(BENCHMARKS),
            "executors": entries(EXECUTORS), "storages": entries(STORAGES), "cost-models": entries(COST_MODELS),
            "devices": entries(DEVICES), "datasets": entries(DATASETS), "ops": ops, "builders": builders}


LIST_KINDS = ("strategies", "spaces", "benchmarks", "executors", "storages", "cost-models", "devices", "datasets",
              "ops", "builders")
_NEEDS_TORCH = ("ops", "builders")


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken install counts as missing
        return False
    return True


def cmd_list(ns: argparse.Namespace) -> int:
    kinds = _registries()
    wanted = [ns.what] if ns.what else list(LIST_KINDS)
    torch_ok = not any(k in _NEEDS_TORCH for k in wanted) or _torch_available()
    said = False
    for kind in wanted:
        if kind in _NEEDS_TORCH and not torch_ok:
            if not said:
                print(NN_EXTRA_LINE)
                said = True
            continue
        print(f"{kind}:")
        for name, doc in kinds[kind]():
            print(f"  {name:<16} {doc}")
    return 0


# --- bench ----------------------------------------------------------------------------------------------
def _float_list(text: str) -> list[float]:
    """argparse type: comma-separated numbers >= 0."""
    out = []
    for t in _csv_list(text):
        try:
            v = float(t)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{t!r} is not a number") from None
        if not v >= 0 or v == float("inf"):
            raise argparse.ArgumentTypeError(f"regret levels must be finite numbers >= 0, got {t}")
        out.append(v)
    return out


def _bench_cost_column(ns: argparse.Namespace) -> str | None:
    """The cost column of a two-objective ``bench`` run (one ``--cost-column``), or None."""
    cols = list(ns.cost_column or [])
    if len(cols) > 1:
        raise ConfigError(f"bench compares two objectives, so give one --cost-column, got {cols}")
    return cols[0] if cols else None


def _bench_baseline(ns: argparse.Namespace) -> str | None:
    """The baseline of the significance tests: --baseline, else the second strategy listed (none with one)."""
    names = list(ns.strategies)
    if ns.baseline is not None:
        if ns.baseline not in names:
            raise ConfigError(f"--baseline {ns.baseline!r} is not one of --strategies {','.join(names)}; "
                              "name one of them")
        return ns.baseline
    return names[1] if len(names) >= 2 else None


def _bench_time_target(ns: argparse.Namespace) -> tuple[str, int] | None:
    if ns.time_target_strategy is None and ns.time_target_queries is None:
        return None
    if ns.time_target_strategy is None:
        raise ConfigError("--time-target-queries needs --time-target-strategy NAME (e.g. rea)")
    if ns.time_target_strategy not in ns.strategies:
        raise ConfigError(f"--time-target-strategy {ns.time_target_strategy!r} is not one of --strategies "
                          f"{','.join(ns.strategies)}")
    q = ns.time_target_queries if ns.time_target_queries is not None else ns.budget
    if q > ns.budget:
        raise ConfigError(f"--time-target-queries {q} exceeds --budget {ns.budget}; give at most the budget")
    return ns.time_target_strategy, q


def cmd_bench(ns: argparse.Namespace) -> int:
    from .benchmarks.runner import run_protocol
    from .benchmarks.stats import summarize
    from .reports.bench import format_table, plot_anytime

    cost_column = _bench_cost_column(ns)
    baseline = _bench_baseline(ns)
    time_target = _bench_time_target(ns)
    params = _benchmark_params(ns)
    bench = _build_benchmark(ns.benchmark, params)
    checkpoints = [int(c) for c in ns.checkpoints.split(",")] if ns.checkpoints else None
    t0 = time.perf_counter()
    runs = run_protocol(bench, ns.strategies, ns.seeds, ns.budget, workers=ns.workers, sim_workers=ns.sim_workers,
                        cost_column=cost_column, cost_mode=ns.cost_mode, multi_fidelity=ns.multi_fidelity)
    elapsed = time.perf_counter() - t0
    summary = summarize(runs, bench, ns.budget, checkpoints, cost_column=cost_column,
                        cost_mode=ns.cost_mode if cost_column else None, baseline=baseline,
                        regret_levels=ns.regret_levels, time_target=time_target)
    summary["seeds"] = ns.seeds
    summary["elapsed_s"] = elapsed
    summary["command"] = "archscout " + " ".join(sys.argv[1:]) if sys.argv else ""
    os.makedirs(ns.out, exist_ok=True)
    with open(os.path.join(ns.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(format_table(summary))
    print(f"{len(ns.strategies)} strategies x {ns.seeds} seeds x {ns.budget} queries in {elapsed:.1f} s")
    try:
        plot_anytime(summary, os.path.join(ns.out, "anytime.png"))
        print(f"wrote {ns.out}/summary.json and {ns.out}/anytime.png")
    except ImportError as e:
        print(f"wrote {ns.out}/summary.json (no plot: {e})")
    return 0


# --- search / resume (archscout.runs does the work) ----------------------------------------------------------
def _overrides(ns: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The flags of ``archscout search`` as config overrides (None: not given). ``--space`` names the space of a
    generic tabular benchmark with ``--benchmark``, else the space a real-training search trains."""
    tabular = ns.benchmark is not None
    return {
        "study": {
            "name": ns.study, "storage": ns.storage, "seed": ns.seed, "budget": ns.budget, "strategy": ns.strategy,
            "objectives": ns.objectives, "constraints": ns.constraint,
        },
        "benchmark": {"name": ns.benchmark, "table": ns.table, "objective": ns.objective, "report": ns.report,
                      "direction": ns.direction, "arch_column": ns.arch_column, "cost_table": ns.cost_table,
                      "cost_column": ns.cost_column, "space": ns.space if tabular else None,
                      "hash_rule": ns.hash_rule},
        "space": {"name": None if tabular else ns.space, "builder": ns.builder,
                  "options": key_values(ns.option) or None},
        "data": {"data": ns.data, "train_subset": ns.train_subset, "val_size": ns.val_size},
        "training": {"epochs": ns.epochs, "batch_size": ns.batch_size, "optimizer": ns.optimizer, "lr": ns.lr,
                     "augment": ns.augment},
        "supernet": {"dir": ns.supernet, "val_images": ns.val_images},
        "hardware": {"device": ns.device, "latency": ns.latency, "calibration": ns.calibration},
        "execution": {"executor": ns.executor, "workers": ns.workers, "replay_time_scale": ns.replay_time_scale,
                      "timeout_s": ns.timeout_s, "retries": ns.retries, "address": ns.address},
    }


def _say(ns: argparse.Namespace, msg: str) -> None:
    """A status line on stderr, unless ``--quiet``."""
    if not getattr(ns, "quiet", False):
        print(msg, file=sys.stderr, flush=True)


def _progress(ns: argparse.Namespace) -> bool:
    return not (getattr(ns, "no_progress", False) or getattr(ns, "quiet", False))


def cmd_search(ns: argparse.Namespace) -> int:
    from .storage.base import mask_url

    config = SearchConfig.load(ns.config, _overrides(ns))
    study, evaluator, run = start_search(config, progress=_progress(ns))
    # several `archscout search` processes started on one storage join one study and share its budget
    _say(ns, f"recording trials in {mask_url(config.storage)}")
    if study.trials:
        _say(ns, f"joining study {study.name!r}: {study.n_evaluated} of {run.budget} trials recorded")
    return _run(study, evaluator, run, ns)


def _run(study, evaluator, run: RunSettings, ns: argparse.Namespace) -> int:
    try:
        run_search(study, evaluator, run, progress=_progress(ns))
    except KeyboardInterrupt:
        url = study.storage.url
        hint = " (with the password in place of ***, or in PGPASSWORD)" if "***" in url else ""
        print(f"\ninterrupted; every finished trial is recorded. Continue with: archscout resume {url}{hint}",
              file=sys.stderr)
        return 130
    _print_summary(study)
    return 0


def cmd_resume(ns: argparse.Namespace) -> int:
    overrides = {k: getattr(ns, k, None) for k in ("budget", "executor", "workers", "timeout_s", "retries", "address")}
    study, evaluator, run = resume_search(ns.storage, ns.study, on_stale=ns.on_stale, overrides=overrides)
    _say(ns, f"resuming study {study.name!r}: {study.n_evaluated} of {run.budget} trials recorded"
         + (f", {len(study.interrupted)} interrupted trial(s) to run again" if study.interrupted else ""))
    return _run(study, evaluator, run, ns)


# --- export ---------------------------------------------------------------------------------------------
def cmd_export(ns: argparse.Namespace) -> int:
    from .export import export_study

    training = {k: getattr(ns, k) for k in ("data", "epochs", "train_subset", "val_size")
                if getattr(ns, k) is not None}

    def line(m: Any) -> None:
        _say(ns, f"  {m.name}: held-out accuracy {m.accuracy:.4f} (study {m.accuracy_study:.4g}), latency "
                 f"re-measured {m.latency_ms_measured:.4f} ms" + ("" if m.exported else " > budget: not exported"))

    if "://" not in ns.storage and not os.path.exists(ns.storage):
        from .errors import StorageError

        raise StorageError(f"storage file {ns.storage!r} does not exist; check the path")
    _say(ns, f"exporting the front of {ns.storage}: each model rebuilt, exported to ONNX, checked with ONNX Runtime "
             "on the held-out set and re-measured")
    summary = export_study(ns.storage, ns.out, study=ns.study, device=ns.device,
                           latency_budget_ms=ns.latency_budget_ms, training=training or None, on_model=line)
    n, k = len(summary["front"]), len(summary["exported"])
    budget = summary["latency_budget_ms"]
    print(f"exported {k} of {n} front models to {ns.out}/models"
          + (f" (latency budget {budget:g} ms on {summary['device']['name']})" if budget is not None else "")
          + f"; held-out set {ns.out}/heldout.npz, summary {ns.out}/export.json")
    return 0


# --- show -----------------------------------------------------------------------------------------------
def _print_summary(study) -> None:
    s = study.summary()
    best = s["best"]
    counts = ", ".join(f"{v} {k}" for k, v in sorted(s["counts"].items()))
    print(f"study {s['study']!r} in {s['storage']}: {counts}")
    if s["failures"]:
        print("failed: " + ", ".join(f"{v} {k}" for k, v in sorted(s["failures"].items())))
    if best:
        o = study.objectives[0].name
        print(f"best: trial {best['number']} {o}={best['metrics'][o]:.6g} arch {best['arch']}")


def cmd_show(ns: argparse.Namespace) -> int:
    from .study import load_study

    study = load_study(ns.storage, ns.study)
    if ns.json:
        json.dump({"study": study.summary(), "trials": [t.to_json() for t in study.trials]}, sys.stdout, indent=1)
        print()
        return 0
    _print_summary(study)
    names = [o.name for o in study.objectives]
    print(f"{'number':>6}  {'state':<20}" + "".join(f"{n:>18}" for n in names) + "  arch")
    for t in study.trials:
        vals = "".join(f"{t.metrics[n]:>18.6g}" if n in t.metrics else f"{'-':>18}" for n in names)
        state = f"{t.state} ({t.failure})" if t.failure else t.state
        print(f"{t.number:>6}  {state:<20}{vals}  {t.arch}")
    return 0


# --- parser ---------------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """Flag errors on one line (with where to read more) instead of the whole usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _add_benchmark_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--table", help="benchmark CSV file")
    p.add_argument("--objective", help="objective column (e.g. valid_acc_200ep)")
    p.add_argument("--report", help="column reported for the best architecture (e.g. test_acc_200ep)")
    p.add_argument("--direction", choices=["max", "min"], help="optimise the objective up (max) or down (min)")
    p.add_argument("--arch-column", dest="arch_column", help="column of architecture strings (default arch_str)")
    p.add_argument("--cost-table", dest="cost_table", help="second CSV with cost columns, joined by architecture")
    p.add_argument("--cost-column", dest="cost_column", action="append", help="cost column to load (repeatable)")
    p.add_argument("--space", help="space of a generic 'tabular' benchmark (a registered space name)")
    p.add_argument("--hash-rule", dest="hash_rule", choices=["nb201", "strict", "none"],
                   help="which cells count as the same function for dedup (nb201 and transnas-micro; 'none' keeps "
                        "every cell distinct, for costs such as latency that differ within a functional class; "
                        "default: nb201, or none for nb201 with a --cost-column)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="archscout", description="Hardware-aware neural architecture search.")
    parser.add_argument("--version", action="version", version=f"archscout {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("list", help="list every registry (strategies, spaces, benchmarks, executors, storages, "
                                    "cost models, devices, datasets, ops, builders)",
                       description="List registered components with their one-line docs: every kind, or one. "
                                   "ops and builders need torch (pip install 'archscout[nn]').")
    p.add_argument("what", nargs="?", choices=list(LIST_KINDS), metavar="KIND",
                   help="one kind: " + ", ".join(LIST_KINDS))
    p.set_defaults(fn=cmd_list)

    p = sub.add_parser("bench", help="compare strategies on a tabular benchmark (strategies x seeds x budget)")
    p.add_argument("benchmark", help="benchmark name (see `archscout list benchmarks`)")
    _add_benchmark_flags(p)
    p.add_argument("--strategies", type=_csv_list, default=["random", "rea", "ls"], help="comma-separated names")
    p.add_argument("--budget", type=positive_int, default=100, help="queries per run")
    p.add_argument("--seeds", type=positive_int, default=10, help="number of seeds (0..N-1)")
    p.add_argument("--out", default="results/bench", help="output folder for summary.json and anytime.png")
    p.add_argument("--workers", type=positive_int, default=2, help="processes sharing the runs")
    p.add_argument("--sim-workers", dest="sim_workers", type=positive_int, default=1,
                   help="parallel evaluations on the simulated clock (asynchronous search)")
    p.add_argument("--checkpoints", help="comma-separated budgets to report (default 10,25,50,100,150,200,300,...)")
    p.add_argument("--cost-mode", dest="cost_mode", choices=["cheap", "evaluated"], default="cheap",
                   help="with --cost-column (two objectives: the objective and the cost, minimised): 'cheap' "
                        "(default) knows the cost before evaluation, as a cost model strategies may query; "
                        "'evaluated' reveals it only with the evaluation")
    p.add_argument("--baseline", help="strategy the others are tested against (two-sided Mann-Whitney U over seeds "
                                      "of the regret, or of the hv ratio with a cost column); default: the second "
                                      "strategy listed")
    p.add_argument("--multi-fidelity", dest="multi_fidelity", action="store_true",
                   help="give the studies the benchmark's fidelities (NB201: 12 and 200 epochs); strategies that "
                        "support them ask at lower fidelities. The budget counts trials of any fidelity; only "
                        "full-fidelity results count for the incumbent")
    p.add_argument("--regret-levels", dest="regret_levels", type=_float_list,
                   help="comma-separated regret levels in the objective's units for the simulated time to reach "
                        "them (default 1,0.5,0.3,0.1,0.05,0)")
    p.add_argument("--time-target-strategy", dest="time_target_strategy",
                   help="strategy whose mean regret at --time-target-queries is the target every strategy's "
                        "mean regret-vs-simulated-time curve is timed to (reported with the time ratio)")
    p.add_argument("--time-target-queries", dest="time_target_queries", type=positive_int,
                   help="queries of the time-target strategy (default: the budget)")
    p.set_defaults(fn=cmd_bench)

    p = sub.add_parser("search", help="run one study, recorded in a storage: a tabular benchmark, real training "
                                      "on your data, or a trained supernet",
                       description="Run one study. A TOML file (sections [study], [benchmark] | [space] [data] "
                                   "[training] | [supernet], [hardware], [execution]; see the guide) and/or flags; "
                                   "flags override the file.")
    p.add_argument("config", nargs="?", help="TOML file (see the guide's 'Searching from the shell')")
    p.add_argument("--benchmark", help="tabular benchmark to search (e.g. nb201)")
    _add_benchmark_flags(p)
    t = p.add_argument_group("real training (--space with --data) or a supernet (--supernet)")
    t.add_argument("--builder", help="builder of a custom --space: a registered name or package.module:function")
    t.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="builder option, e.g. C=8 or N=1 for nb201 (repeatable)")
    t.add_argument("--data", help="dataset name (fashion-mnist, cifar10, digits, mnist5k) or path (.npz, IDX or "
                                  "CIFAR-10 folder)")
    t.add_argument("--train-subset", dest="train_subset", type=positive_int,
                   help="training images kept (stratified, seeded; default all)")
    t.add_argument("--val-size", dest="val_size", type=positive_int,
                   help="validation images drawn from an official training set")
    t.add_argument("--epochs", type=positive_int, help="training epochs per trial (default 10)")
    t.add_argument("--batch-size", dest="batch_size", type=int_at_least(2), help="training minibatch (default 64)")
    t.add_argument("--optimizer", choices=["sgd", "adam"], help="optimizer (default sgd)")
    t.add_argument("--lr", type=positive_float, help="peak learning rate (cosine decay; default 0.05 sgd, 0.003 adam)")
    t.add_argument("--augment", choices=["crop-flip", "none"], help="training augmentation (default none)")
    t.add_argument("--supernet", help="a trained supernet folder: search its sub-networks with inherited weights")
    t.add_argument("--val-images", dest="val_images", type=positive_int,
                   help="supernet: score on the first N validation images")
    t.add_argument("--objectives", type=_csv_list,
                   help="METRIC:max|min, comma-separated (default accuracy:max), e.g. accuracy:max,latency_ms:min")
    t.add_argument("--constraint", action="append", help="e.g. 'latency_ms<=2' (repeatable)")
    t.add_argument("--device", help="device giving latency_ms (e.g. cpu-ort; see `archscout list devices`)")
    t.add_argument("--latency", choices=["measured", "predicted"],
                   help="latency_ms predicted (default) by a model calibrated on --calibration architectures "
                        "measured first, so that candidates over a latency constraint are never trained; or "
                        "measured with each trial in its worker")
    t.add_argument("--calibration", type=int_at_least(10), help="architectures measured for --latency predicted "
                   "(default 40)")
    p.add_argument("--strategy", help="strategy name (default auto)")
    p.add_argument("--budget", type=positive_int, help="trials the study should hold")
    p.add_argument("--seed", type=non_negative_int, help="seed; the same seed gives the same trajectory")
    p.add_argument("--storage",
                   help="SQLite file (or sqlite:///path.db) recording every trial (default runs/search.db)")
    p.add_argument("--study", help="study name inside the storage (default 'default')")
    _add_execution_flags(p)
    p.add_argument("--replay-time-scale", dest="replay_time_scale", type=non_negative_float,
                   help="really wait the table's training time times this factor")
    p.add_argument("--no-progress", dest="no_progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="no progress bars or status lines (for scripts)")
    p.set_defaults(fn=cmd_search)

    p = sub.add_parser("resume", help="continue a study after a crash or interruption")
    p.add_argument("storage", help="the study's storage file")
    p.add_argument("--study", help="study name (when the storage holds several)")
    p.add_argument("--budget", type=positive_int, help="raise or keep the study's budget")
    _add_execution_flags(p)
    p.add_argument("--on-stale", dest="on_stale", choices=["requeue", "fail"], default="requeue",
                   help="trials whose driver stopped while they ran: run them again (default) or record them failed")
    p.add_argument("--no-progress", dest="no_progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="no progress bars or status lines (for scripts)")
    p.set_defaults(fn=cmd_resume)

    from .dashboard.cli import add_dashboard_parser
    from .demo.cli import add_demo_parser
    from .hardware import add_latency_bench_parser
    from .hardware.accel_cli import add_accel_parser
    from .supernet.cli import add_supernet_parser

    add_dashboard_parser(sub)
    add_demo_parser(sub)
    add_latency_bench_parser(sub)
    add_accel_parser(sub)
    add_supernet_parser(sub)

    p = sub.add_parser("export", help="export a study's Pareto front: ONNX + state dict + JSON, each model checked "
                                      "(ONNX Runtime parity, held-out accuracy, latency re-measured)")
    p.add_argument("storage", help="the study's storage (SQLite file or postgresql:// URL)")
    p.add_argument("--out", required=True, help="folder: heldout.npz, models/<name>.{onnx,pt,json}, export.json")
    p.add_argument("--study", help="study name (when the storage holds several)")
    p.add_argument("--device", help="measured device the latency is re-measured on (default: the study's, else "
                                    "cpu-ort)")
    p.add_argument("--latency-budget-ms", dest="latency_budget_ms", type=positive_float,
                   help="models re-measured above it are reported, not exported (default: the study's latency_ms "
                        "constraint)")
    g = p.add_argument_group("a tabular study's front is trained here (the table has no weights)")
    g.add_argument("--data", help="dataset name or path to train on")
    g.add_argument("--epochs", type=positive_int, help="training epochs (default 10)")
    g.add_argument("--train-subset", dest="train_subset", type=positive_int, help="training images kept")
    g.add_argument("--val-size", dest="val_size", type=positive_int, help="validation images")
    p.add_argument("--quiet", action="store_true", help="only the final line")
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("show", help="print a study's trials")
    p.add_argument("storage", help="the study's storage file")
    p.add_argument("--study", help="study name (when the storage holds several)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(fn=cmd_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        return int(ns.fn(ns) or 0)
    except ArchscoutError as e:
        print(f"archscout: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\narchscout: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `archscout show ... | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
