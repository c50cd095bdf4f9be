"""What every kind of conformance check shares: rules chosen by declared traits, checks that run one rule and
name it when it breaks, and the pytest helper.

A *rule* is one property a component must have (``same_seed_same_trajectory``). A *subject* wraps the
component under test (a class or a registered name) with its construction settings, builds fresh instances
for each rule and reports the component's *traits* (its declared capabilities). A :class:`Check` is one rule
bound to one component: calling it runs the rule and raises :class:`AssertionError` whose message starts with
``check_<kind>(<component>): rule <rule>:``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ConfigError

__all__ = [
    "Check", "NotApplicable", "Rule", "Subject", "Suite", "bind_or_config_error", "expect", "iter_checks", "label_of",
    "parametrize_with_checks", "register_suite", "run_all", "setting_error",
]


def expect(condition: Any, message: str) -> None:
    """Raise :class:`AssertionError` with ``message`` unless ``condition`` holds (``assert`` without the
    dependence on pytest's assertion rewriting, which does not reach library code)."""
    if not condition:
        raise AssertionError(message)


class NotApplicable(Exception):
    """The rule does not apply to this component (its traits, known only once it is built, exclude it)."""


class Subject(Protocol):
    """The component under test with its settings; builds fresh instances for the rules."""

    label: str

    def traits(self) -> Mapping[str, bool | None]:
        """The declared capabilities the rules are chosen by."""

    def close(self) -> None:
        """Release what the rule built (executors, storages, temporary files)."""


@dataclass(frozen=True)
class Rule:
    """One property a component must have.

    Attributes:
        name: a snake_case sentence (``same_seed_same_trajectory``).
        run: ``run(subject)``; raises AssertionError (or anything else) when the property does not hold.
        requires: traits the rule needs, e.g. ``{"multi_objective": True}``; a trait that is unknown (``None``)
            before the component is built does not exclude the rule until it is known.
    """

    name: str
    run: Callable[[Any], None]
    requires: Mapping[str, bool] = field(default_factory=dict)

    def applies(self, traits: Mapping[str, bool | None]) -> bool:
        """Whether the rule applies to a component with ``traits``."""
        return all(traits.get(k) is None or bool(traits.get(k)) == v for k, v in self.requires.items())

    @property
    def doc(self) -> str:
        """First line of the rule's docstring."""
        lines = (self.run.__doc__ or "").strip().splitlines()
        return lines[0] if lines else ""


@dataclass(frozen=True)
class Suite:
    """The rules of one kind of component and how to wrap a component into a subject.

    Attributes:
        kind: ``"strategy"``, ``"executor"``, ``"cost_model"`` or ``"storage"``.
        rules: every rule of the kind, in the order they run.
        subject: ``subject(component, **settings)`` -> the subject (validates the settings).
        static_traits: ``static_traits(component)`` -> traits known without building it (``None`` where unknown).
    """

    kind: str
    rules: tuple[Rule, ...]
    subject: Callable[..., Any]
    static_traits: Callable[[Any], Mapping[str, bool | None]]

    def rule(self, name: str) -> Rule:
        for r in self.rules:
            if r.name == name:
                return r
        raise ConfigError(f"no {self.kind} rule named {name!r}; the rules are {[r.name for r in self.rules]}")


SUITES: dict[str, Suite] = {}


def register_suite(suite: Suite) -> Suite:
    """Make ``suite`` known to :func:`parametrize_with_checks` under its kind."""
    SUITES[suite.kind] = suite
    return suite


def label_of(component: Any) -> str:
    """How a component is named in messages and test ids: its registered name, else its ``name`` attribute,
    else its class or function name."""
    if isinstance(component, str):
        return component
    name = getattr(component, "name", None)
    if isinstance(name, str) and name and name != "base":
        return name
    return getattr(component, "__name__", type(component).__name__)


class Check:
    """One rule of one component, ready to run.

    Calling it builds the subject from the component and the settings (those given here, updated by those
    passed to the call), runs the rule, and raises :class:`AssertionError` naming the kind, the component and
    the rule when the component breaks it (an unexpected exception counts as breaking it, and is chained).

    Attributes:
        kind: the kind of component.
        component: the class or registered name under test.
        rule: the rule's name.
        label: the component's name in messages and test ids.
    """

    def __init__(self, suite: Suite, component: Any, rule: Rule, settings: Mapping[str, Any] | None = None) -> None:
        self.suite = suite
        self.kind = suite.kind
        self.component = component
        self.rule = rule.name
        self.label = label_of(component)
        self.settings = dict(settings or {})
        self.rule_obj = rule

    def __call__(self, **settings: Any) -> None:
        """Run the rule.

        Raises:
            AssertionError: the component breaks the rule (``check_<kind>(<component>): rule <rule>: ...``).
            NotApplicable: the built component's traits exclude the rule.
            ConfigError: the settings are wrong for this check (e.g. a storage without the URL it needs).
        """
        subject = self.suite.subject(self.component, **{**self.settings, **settings})
        prefix = f"check_{self.kind}({subject.label}): rule {self.rule}"
        try:
            traits = subject.traits()
            if not self.rule_obj.applies(traits):
                why = ", ".join(f"{k}={traits.get(k)}" for k in self.rule_obj.requires)
                raise NotApplicable(f"{prefix}: does not apply ({why})")
            self.rule_obj.run(subject)
        except NotApplicable:
            raise
        except ConfigError as e:
            if getattr(e, "check_setting", False):
                raise
            raise AssertionError(f"{prefix}: raised ConfigError: {e}") from e
        except AssertionError as e:
            raise AssertionError(f"{prefix}: {e}" if str(e) else f"{prefix}: failed") from e
        except Exception as e:
            raise AssertionError(f"{prefix}: raised {type(e).__name__}: {e}") from e
        finally:
            subject.close()

    def __repr__(self) -> str:
        return f"check_{self.kind}({self.label}): rule {self.rule}"


def setting_error(message: str) -> ConfigError:
    """A ConfigError about the check's own settings (passed through a :class:`Check` as it is)."""
    err = ConfigError(message)
    err.check_setting = True  # type: ignore[attr-defined]
    return err


def iter_checks(kind: str, component: Any, settings: Mapping[str, Any]) -> Iterator[tuple[str, Check]]:
    """``(rule name, check)`` for every rule of ``kind`` that applies to ``component``."""
    suite = SUITES[kind]
    subject = suite.subject(component, **settings)
    traits = subject.traits()
    subject.close()
    for rule in suite.rules:
        if rule.applies(traits):
            yield rule.name, Check(suite, component, rule, settings)


def run_all(kind: str, component: Any, settings: Mapping[str, Any]) -> None:
    """Run every applicable rule, stopping at the first broken one (its AssertionError propagates)."""
    for _, check in iter_checks(kind, component, settings):
        check()


def bind_or_config_error(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Raise ConfigError (as the registries do) when ``fn`` does not take these arguments."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(*args, **kwargs)
    except TypeError as e:
        raise ConfigError(f"bad parameters for {what}: {e}") from None


def parametrize_with_checks(kind: str, components: Iterable[Any] | Mapping[Any, Mapping[str, Any]],
                            argname: str = "check") -> Any:
    """A ``pytest.mark.parametrize`` decorator over every component and every rule that applies to it (one
    test id ``<component>-<rule>`` each), as scikit-learn's ``parametrize_with_checks`` does::

        @parametrize_with_checks("strategy", ["rea", MyStrategy])
        def test_conformance(check):
            check()                      # or check(**settings), e.g. check(url=postgres_url)

    Rules are chosen by the traits known from the class (a strategy's capabilities, an executor's
    capabilities, a cost model's ``cheap``); a trait known only once the component is built (a storage's
    ``shared``) is checked when the test runs, which then skips a rule that does not apply.

    Args:
        kind: ``"strategy"``, ``"executor"``, ``"cost_model"`` or ``"storage"``.
        components: classes or registered names, or ``{component: settings}``; settings given to ``check(...)``
            when the test runs update these.
        argname: the test function's argument that receives the :class:`Check`.

    Raises:
        ConfigError: an unknown kind.
    """
    import pytest

    if kind not in SUITES:
        raise ConfigError(f"unknown kind {kind!r}; use one of {sorted(SUITES)}")
    suite = SUITES[kind]
    entries: Iterable[tuple[Any, Mapping[str, Any]]] = (
        components.items() if isinstance(components, Mapping) else ((c, {}) for c in components))
    params = []
    for component, settings in entries:
        traits = suite.static_traits(component)
        for rule in suite.rules:
            if rule.applies(traits):
                check = _SkippingCheck(suite, component, rule, settings)
                params.append(pytest.param(check, id=f"{check.label}-{rule.name}"))
    return pytest.mark.parametrize(argname, params)


class _SkippingCheck(Check):
    """A check for pytest: a rule that turns out not to apply is reported as skipped."""

    def __call__(self, **settings: Any) -> None:
        import pytest

        try:
            super().__call__(**settings)
        except NotApplicable as e:
            pytest.skip(str(e))
