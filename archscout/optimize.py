"""``Study.optimize``: a loop over the study's public ask/tell (as Optuna's ``_optimize``).

Anyone can write the same loop: ask (with the budget), screen the cheap costs, hand the trial to an executor,
tell what came back (with the failure kind, so retries apply), and, when nothing of its own runs, look at the
other drivers' trials before deciding to wait or stop. Nothing here touches the study's internals.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .drivers import RetryPolicy
from .errors import ConfigError, ConstraintError, SpaceExhaustedError
from .execution import Executor, Job, as_evaluator, create_executor
from .execution.base import FAILURE_ERROR, WithCosts
from .results import Trial, TrialState

if TYPE_CHECKING:
    from .study import Study

__all__ = ["Progress", "run_optimize"]


def run_optimize(
    study: Study,
    evaluator: Any,
    budget: int,
    executor: str | Executor = "inline",
    workers: int = 1,
    progress: bool = False,
    callbacks: Iterable[Callable[[Study, Trial], None]] = (),
    timeout_s: float | None = None,
    retries: int | RetryPolicy | Mapping[str, Any] | None = None,
) -> list[Trial]:
    """The loop behind :meth:`Study.optimize` (see there for the arguments); returns the trials this call
    finished, in the order they finished."""
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget <= 0:
        raise ConfigError(f"budget must be a positive integer, got {budget!r}")
    policy = RetryPolicy.coerce(retries) if retries is not None else study.retries
    evaluator = as_evaluator(evaluator)
    expensive = {n: m for n, m in study.cost_models.items() if not getattr(m, "cheap", True)}
    if expensive:
        evaluator = WithCosts(evaluator, expensive)
    if isinstance(executor, Executor):
        ex = executor
    else:
        ex = create_executor(executor, workers=workers, **({} if timeout_s is None else {"timeout_s": timeout_s}))
    ex.start(evaluator)
    bar = Progress(study, budget) if progress else None
    finished: list[Trial] = []
    running: dict[int, dict[str, float]] = {}  # own trial number -> costs known before dispatch
    exhausted = False
    infeasible_run = 0
    max_infeasible = max(200, 10 * int(budget))

    def record(t: Trial | None) -> None:
        if t is None:
            return
        finished.append(t)
        if bar:
            bar.update(t)
        for cb in callbacks:
            cb(study, t)

    saved_policy, study.retries = study.retries, policy
    try:
        with study.driving():
            try:
                while True:
                    while not exhausted and ex.free_slots() > 0:
                        try:
                            trial = study.ask(budget=budget)
                        except SpaceExhaustedError as e:
                            warnings.warn(f"stopping early: {e}", stacklevel=3)
                            exhausted = True
                            break
                        if trial is None:
                            break
                        costs, error = study.cheap_costs(trial.arch)
                        if error is not None or not study.meets_constraints(costs):
                            record(study.tell(trial, costs, error=error, failure=FAILURE_ERROR if error else None,
                                              state=TrialState.FAILED if error else TrialState.INFEASIBLE))
                            if error is not None:
                                continue
                            infeasible_run += 1
                            if infeasible_run >= max_infeasible:
                                raise ConstraintError(study.infeasible_message(infeasible_run))
                            continue
                        infeasible_run = 0
                        running[trial.number] = costs
                        ex.submit(Job(trial.number, trial.arch, trial.fidelity))
                    if running:
                        for c in ex.poll():
                            costs = running.pop(c.number, {})
                            metrics = None if c.metrics is None else {**costs, **c.metrics}
                            failure = c.failure or (FAILURE_ERROR if c.error else None)
                            record(study.tell(c.number, metrics, error=c.error, failure=failure,
                                              started_at=c.started_at, finished_at=c.finished_at))
                        continue
                    # nothing of ours runs: done, or waiting for other drivers' trials (or to take them over)
                    study.refresh()
                    if exhausted or study.n_evaluated >= budget:
                        break
                    if study.has_queued or study.n_evaluated + study.n_running < budget:
                        continue
                    if not study.n_running_elsewhere:
                        break  # only trials this process asked outside this loop are left; their teller finishes them
                    time.sleep(min(1.0, study.heartbeat_s))
            except BaseException:
                # what ran here is orphaned: this driver or another may run it again
                study.abandon(list(running))
                raise
    finally:
        study.retries = saved_policy
        ex.shutdown()
        if bar:
            bar.close()
    return finished


class Progress:
    """A tqdm bar on stderr with the number of evaluated trials and the best value (or front) so far."""

    def __init__(self, study: Study, budget: int) -> None:
        from tqdm import tqdm

        self.study = study
        self.bar = tqdm(total=budget, initial=min(study.n_evaluated, budget), unit="trial", file=sys.stderr,
                        dynamic_ncols=True, desc=study.name)
        self._refresh()

    def _refresh(self) -> None:
        study = self.study
        counts: dict[str, int] = {}
        for t in study.trials:
            counts[t.state] = counts.get(t.state, 0) + 1
        post: dict[str, Any] = {}
        if len(study.objectives) == 1:
            best = study.best_trial
            o = study.objectives[0]
            if best is not None:
                post[f"best {o.name}"] = f"{best.metrics[o.name]:.4g}"
        else:
            front = study.pareto_front()
            a, b = study.objectives[0], study.objectives[1]
            pts = sorted(((t.metrics[a.name], t.metrics[b.name]) for t in front), key=lambda p: p[1])
            shown = ", ".join(f"{x:.3g}/{y:.3g}" for x, y in pts[:4]) + (" ..." if len(pts) > 4 else "")
            post[f"front {a.name}/{b.name}"] = f"[{shown}]" if pts else "[]"
        for state in (TrialState.FAILED, TrialState.INFEASIBLE):
            if counts.get(state):
                post[state] = counts[state]
        self.bar.set_postfix(post, refresh=False)

    def update(self, trial: Trial) -> None:
        if trial.state in (TrialState.COMPLETE, TrialState.FAILED):
            self.bar.update(1)
        self._refresh()

    def close(self) -> None:
        self.bar.close()
