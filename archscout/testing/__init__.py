"""Conformance checks for plug-in authors: check your own strategy, executor, cost model or storage backend
against the contract archscout's own components are held to, as scikit-learn's ``check_estimator`` does.

::

    from archscout.testing import check_strategy
    check_strategy(MyStrategy, space=my_space)      # raises AssertionError naming the broken rule

The checks are chosen by what the component declares: a strategy's :class:`~archscout.strategies.Capabilities`,
an executor's :class:`~archscout.execution.ExecutorCapabilities`, a cost model's ``cheap``, a storage's
``shared``. ``iter_*_checks`` yield ``(rule name, check)`` pairs to run one at a time, and
:func:`parametrize_with_checks` turns them into one pytest test per component and rule::

    @parametrize_with_checks("strategy", ["rea", MyStrategy])
    def test_conformance(check):
        check()

Importing this package does not import pytest (only :func:`parametrize_with_checks` does, when called), nor
torch, Ray or psycopg.
"""

from ._checks import Check, NotApplicable, parametrize_with_checks
from .cost_model import StepTimer, check_cost_model, foreign_architecture, iter_cost_model_checks
from .executor import ScriptedEvaluator, check_executor, expected_value, iter_executor_checks
from .storage import check_storage, iter_storage_checks
from .strategy import FIDELITIES, SyntheticObjective, check_strategy, iter_strategy_checks

__all__ = [
    "FIDELITIES",
    "Check",
    "NotApplicable",
    "ScriptedEvaluator",
    "StepTimer",
    "SyntheticObjective",
    "check_cost_model",
    "check_executor",
    "check_storage",
    "check_strategy",
    "expected_value",
    "foreign_architecture",
    "iter_cost_model_checks",
    "iter_executor_checks",
    "iter_storage_checks",
    "iter_strategy_checks",
    "parametrize_with_checks",
]
