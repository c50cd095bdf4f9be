"""The benchmark protocol's public names in one place, for scripts written against this module.

The protocol lives in three modules, one per concern:

- :mod:`archscout.benchmarks.runner`: running strategies x seeds x budget on a tabular benchmark:
  :func:`run_protocol`, :func:`run_one`, :func:`make_study`, :class:`RunResult`, :data:`COST_MODES`;
- :mod:`archscout.benchmarks.stats`: the summary over seeds (anytime curves, regret, hit rate, relative
  improvement, hypervolume ratio and front recall, Mann-Whitney U tests, times to regret levels):
  :func:`summarize`, :data:`DEFAULT_CHECKPOINTS`, :data:`DEFAULT_REGRET_LEVELS`;
- :mod:`archscout.reports.bench`: the summary's plain-text table and anytime plot: :func:`format_table`,
  :func:`plot_anytime`.
"""

from __future__ import annotations

from ..reports.bench import format_table, plot_anytime
from .runner import COST_MODES, RunResult, make_study, run_one, run_protocol
from .stats import DEFAULT_CHECKPOINTS, DEFAULT_REGRET_LEVELS, summarize

__all__ = [
    "COST_MODES",
    "DEFAULT_CHECKPOINTS",
    "DEFAULT_REGRET_LEVELS",
    "RunResult",
    "format_table",
    "make_study",
    "plot_anytime",
    "run_one",
    "run_protocol",
    "summarize",
]
