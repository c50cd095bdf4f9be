"""Conformance checks of a search strategy: the ask/tell contract of :class:`~archscout.strategies.Strategy`.

``check_strategy(MyStrategy, space=space)`` drives fresh strategies with a synthetic objective and checks that
they propose valid candidates, reproduce their trajectory from a seed, never propose a function twice, keep
their whole state (pending candidates included) in a JSON-safe ``state_dict``, accept failed and foreign
results, run out of a small space cleanly, validate and round-trip their settings, and honour their declared
:class:`~archscout.strategies.Capabilities` (several objectives, constraints, fidelities).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import numpy as np

from ..errors import ConfigError, SpaceExhaustedError
from ..objectives import Constraint, Objective
from ..results import Candidate, Result
from ..space import Architecture, Choice, Ordinal, Space, create_space
from ..strategies import STRATEGIES, Capabilities, Strategy, create_strategy
from ._checks import Rule, Suite, bind_or_config_error, expect, iter_checks, register_suite, run_all

__all__ = ["FIDELITIES", "SyntheticObjective", "check_strategy", "iter_strategy_checks"]

FIDELITIES = (12.0, 200.0)
"""The rungs a strategy gets (through ``attach``) when it needs fidelities and its settings give none."""

TWO_OBJECTIVES = (Objective("score", "max"), Objective("cost", "min"))


class SyntheticObjective:
    """A deterministic objective on any space, with structure a model can learn: a fixed random linear function
    of the one-hot encoding plus a jitter from the functional hash (so that ties are rare).

    Args:
        space: the space of the architectures it scores.
        seed: seeds the weights (another seed gives another objective).
    """

    def __init__(self, space: Space, seed: int = 0) -> None:
        self.weights = np.random.default_rng(seed).normal(size=space.encoding_size("onehot"))

    def __call__(self, arch: Architecture) -> float:
        jitter = int(arch.functional_hash()[:6], 16) / 16**6
        return float(self.weights @ arch.encode("onehot")) + 0.5 * jitter


class StrategySubject:
    """A strategy class or registered name, the space and the settings it is checked with."""

    def __init__(self, strategy: type[Strategy] | str, space: Space | str | None = None, **params: Any) -> None:
        if isinstance(strategy, str):
            cls = STRATEGIES.get(strategy)
            self.name: str | None = strategy
        else:
            cls = strategy
            self.name = None
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise ConfigError(f"check_strategy needs a Strategy subclass or a registered name, got {strategy!r}")
        self.cls = cls
        self.label = strategy if isinstance(strategy, str) else getattr(cls, "name", cls.__name__)
        if space is None:
            space = create_space("nb201")
        elif isinstance(space, str):
            space = create_space(space)
        if not isinstance(space, Space):
            raise ConfigError(f"space must be a Space or a registered space name, got {space!r}")
        self.space = space
        self.params = dict(params)
        self.capabilities: Capabilities = cls.capabilities
        self.objective = SyntheticObjective(space, 0)
        self.cost = SyntheticObjective(space, 1)
        self.rungs = tuple(float(f) for f in params["fidelities"]) if "fidelities" in params else FIDELITIES

    def traits(self) -> dict[str, bool | None]:
        return asdict(self.capabilities)

    def close(self) -> None:
        pass

    # --- building --------------------------------------------------------------------------------------
    def build(self, space: Space | None = None, **params: Any) -> Strategy:
        """A strategy with exactly these parameters (nothing attached), as ``create_strategy`` builds it."""
        space = space or self.space
        if self.name is not None:
            return create_strategy(self.name, space, **params)
        bind_or_config_error(f"strategy {self.label!r}", self.cls, space, **params)
        return self.cls(space, **params)

    def make(self, seed: int, space: Space | None = None, attach: bool | None = None, **extra: Any) -> Strategy:
        """A strategy with the subject's settings (updated by ``extra``) and ``seed``; one that needs fidelities
        gets :data:`FIDELITIES` through ``attach`` unless its settings give rungs (or ``attach`` says)."""
        s = self.build(space, **{**self.params, **extra, "seed": seed})
        if attach is None:
            attach = self.capabilities.needs_fidelities and "fidelities" not in self.params
        if attach:
            s.attach(fidelities=list(self.rungs))
        return s

    def copy(self, s: Strategy, **extra: Any) -> Strategy:
        """A fresh strategy (another seed) restored from ``s``'s state through strict JSON."""
        t = self.make(12345, **extra)
        t.load_state_dict(json.loads(json.dumps(s.state_dict(), allow_nan=False)))
        return t

    # --- driving ----------------------------------------------------------------------------------------
    def result(self, arch: Architecture) -> Result:
        return Result("complete", {"score": self.objective(arch), "cost": self.cost(arch)})

    def tell(self, s: Strategy, c: Candidate) -> None:
        s.tell(c, self.result(c.arch))

    def drive(self, s: Strategy, n: int, batch: int = 1) -> list[Candidate]:
        """Ask up to ``batch`` candidates at a time and tell their results, until ``n`` were told; returns the
        told candidates in order."""
        told: list[Candidate] = []
        while len(told) < n:
            cands = [s.ask() for _ in range(min(batch, n - len(told)))]
            for c in cands:
                self.tell(s, c)
                told.append(c)
        return told


def _key(c: Candidate) -> tuple[str, float | None]:
    return c.arch.functional_hash(), c.fidelity


def _trajectory(cands: list[Candidate]) -> list[tuple[str, float | None]]:
    return [(str(c.arch), c.fidelity) for c in cands]


def _first_difference(a: list[Any], b: list[Any]) -> str:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"ask {i}: {x!r} then {y!r}"
    return f"lengths {len(a)} and {len(b)}"


def _expect_distinct(cands: list[Candidate], what: str) -> None:
    seen: dict[tuple[str, float | None], int] = {}
    for i, c in enumerate(cands):
        k = _key(c)
        expect(k not in seen, f"{what}: ask {i} proposed {str(c.arch)!r} at fidelity {c.fidelity} again "
                              f"(a function already proposed at ask {seen.get(k)})")
        seen[k] = i


# --- the rules ---------------------------------------------------------------------------------------------
def declares_name_and_capabilities(sub: StrategySubject) -> None:
    """The class has its own ``name`` (the registered one) and a :class:`Capabilities` value."""
    name = getattr(sub.cls, "name", None)
    expect(isinstance(name, str) and name not in ("", "base"), f"the class needs its own name, has {name!r}")
    if sub.name is not None:
        expect(name == sub.name, f"registered as {sub.name!r} but its name is {name!r}")
    caps = sub.capabilities
    expect(isinstance(caps, Capabilities), f"capabilities must be a Capabilities value, got {caps!r}")
    expect(not caps.needs_fidelities or caps.fidelities, "needs_fidelities=True requires fidelities=True")


def asks_valid_candidates_with_increasing_ids(sub: StrategySubject) -> None:
    """40 asks give candidates of the space with ids 0, 1, 2, ..., each pending until told."""
    s = sub.make(0)
    for i in range(40):
        c = s.ask()
        expect(isinstance(c, Candidate), f"ask {i} returned {c!r}, not a Candidate")
        expect(c.id == i, f"ask {i} has id {c.id}")
        expect(sub.space.validate(str(c.arch)) == c.arch, f"ask {i}: {str(c.arch)!r} does not round-trip in the space")
        expect(c.id in {p.id for p in s.pending}, f"ask {i}: the candidate is not pending")
        sub.tell(s, c)
        expect(c.id not in {p.id for p in s.pending}, f"ask {i}: the candidate is still pending once told")
    expect(s.n_told == 40, f"n_told is {s.n_told} after 40 results")


def same_seed_same_trajectory(sub: StrategySubject) -> None:
    """Two strategies with the same seed propose the same 80 candidates."""
    a = _trajectory(sub.drive(sub.make(7), 80))
    b = _trajectory(sub.drive(sub.make(7), 80))
    expect(a == b, f"seed 7 twice gave different trajectories ({_first_difference(a, b)})")


def other_seed_other_trajectory(sub: StrategySubject) -> None:
    """Another seed gives another trajectory (30 asks)."""
    a = _trajectory(sub.drive(sub.make(7), 30))
    b = _trajectory(sub.drive(sub.make(8), 30))
    expect(a != b, "seeds 7 and 8 gave the same 30 candidates: the seed is ignored")


def no_duplicate_functions(sub: StrategySubject) -> None:
    """200 asks, told one by one, never propose a function twice (at one fidelity)."""
    _expect_distinct(sub.drive(sub.make(1), 200), "one ask at a time")


def no_duplicate_functions_in_batches(sub: StrategySubject) -> None:
    """200 asks in batches of 4 (asked before any of them is told) never propose a function twice."""
    _expect_distinct(sub.drive(sub.make(1), 200, batch=4), "batches of 4")


def state_dict_round_trip_continues_identically(sub: StrategySubject) -> None:
    """``state_dict()`` is strict JSON (pending candidates included); a strategy of another seed that loads it
    continues exactly as the original does."""
    s = sub.make(3)
    sub.drive(s, 60)
    pending = [s.ask() for _ in range(3)]
    try:
        text = json.dumps(s.state_dict(), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise AssertionError(f"state_dict() is not strict JSON: {e}") from None
    t = sub.make(999)
    t.load_state_dict(json.loads(text))
    expect(sorted(c.id for c in t.pending) == sorted(c.id for c in pending),
           f"restored pending ids {sorted(c.id for c in t.pending)}, expected {sorted(c.id for c in pending)}")
    for strat in (s, t):
        for c in pending:
            sub.tell(strat, c)
    a, b = _trajectory(sub.drive(s, 50)), _trajectory(sub.drive(t, 50))
    expect(a == b, f"the restored strategy continues differently ({_first_difference(a, b)})")


def accepts_failed_and_foreign_results(sub: StrategySubject) -> None:
    """A failed result and the result of an architecture it never proposed are accepted; the foreign one is
    never proposed afterwards (30 asks)."""
    s = sub.make(0)
    c = s.ask()
    s.tell(c, Result("failed", {}, "boom"))
    foreign = Candidate(10_000, sub.space.sample(np.random.default_rng(5)))
    s.tell(foreign, Result("complete", {"score": 9.0, "cost": 0.0}))
    h = foreign.arch.functional_hash()
    for i in range(30):
        c = s.ask()
        expect(c.arch.functional_hash() != h, f"ask {i} proposed the foreign architecture {str(foreign.arch)!r}")
        sub.tell(s, c)


def exhausts_a_small_space_then_raises(sub: StrategySubject) -> None:
    """On a space of 6 functions it proposes each at most once per fidelity, then raises SpaceExhaustedError."""
    small = Space({"a": Choice([1, 2, 3]), "b": Ordinal([1, 2])})
    s = sub.make(0, space=small)
    objective = SyntheticObjective(small)
    seen, asked = set(), set()
    limit = 6 * (len(sub.rungs) + 1)
    try:
        for _ in range(limit):
            c = s.ask()
            expect((c.arch, c.fidelity) not in asked, f"{str(c.arch)!r} at fidelity {c.fidelity} proposed twice")
            asked.add((c.arch, c.fidelity))
            seen.add(c.arch)
            s.tell(c, Result("complete", {"score": objective(c.arch), "cost": 0.0}))
    except SpaceExhaustedError:
        expect(len(seen) == 6, f"SpaceExhaustedError after only {len(seen)} of the 6 functions")
        return
    raise AssertionError(f"{limit} asks on a space of 6 functions did not raise SpaceExhaustedError")


def bad_parameters_raise_config_error(sub: StrategySubject) -> None:
    """``seed=-1`` and an unknown parameter raise ConfigError when the strategy is built."""
    for bad in ({"seed": -1}, {"seed": 0, "not_a_parameter": 1}):
        try:
            sub.build(**{**sub.params, **bad})
        except ConfigError:
            continue
        raise AssertionError(f"building with {bad} did not raise ConfigError")


def config_round_trip(sub: StrategySubject) -> None:
    """``to_config()`` is JSON with the strategy's name, and builds a strategy with the same config."""
    s = sub.make(0)
    cfg = s.to_config()
    try:
        cfg = json.loads(json.dumps(cfg, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise AssertionError(f"to_config() is not strict JSON: {e}") from None
    expect(cfg.get("name") == sub.cls.name, f"to_config() names {cfg.get('name')!r}, not {sub.cls.name!r}")
    params = {k: v for k, v in cfg.items() if k != "name"}
    again = sub.build(seed=0, **params)
    expect(again.to_config() == s.to_config(), f"rebuilt from its config, to_config() is {again.to_config()} "
                                               f"instead of {s.to_config()}")


def handles_two_objectives(sub: StrategySubject) -> None:
    """Multi-objective: with two objectives (max score, min cost) it proposes 40 distinct valid candidates."""
    s = sub.make(0, objectives=list(TWO_OBJECTIVES))
    cands = sub.drive(s, 40)
    _expect_distinct(cands, "two objectives")
    for c in cands:
        expect(sub.space.validate(str(c.arch)) == c.arch, f"{str(c.arch)!r} is not an architecture of the space")


def refuses_two_objectives(sub: StrategySubject) -> None:
    """Single-objective: building it with two objectives raises ConfigError."""
    try:
        sub.make(0, objectives=list(TWO_OBJECTIVES))
    except ConfigError:
        return
    raise AssertionError("a single-objective strategy accepted two objectives")


def honours_constraints(sub: StrategySubject) -> None:
    """With a constraint, a breaking result scores -inf and a meeting one its objective; 40 asks stay distinct."""
    s = sub.make(0, constraints=[Constraint("cost", "<=", 0.0)])
    bad = s.score(Result("complete", {"score": 5.0, "cost": 2.0}))
    good = s.score(Result("complete", {"score": 5.0, "cost": -1.0}))
    expect(bad == -math.inf, f"a result breaking the constraint scores {bad}, not -inf")
    expect(good == 5.0, f"a result meeting the constraint scores {good}, not 5.0")
    _expect_distinct(sub.drive(s, 40), "with a constraint")


def refuses_constraints(sub: StrategySubject) -> None:
    """Without the constraints capability, building it with a constraint raises ConfigError."""
    try:
        sub.make(0, constraints=[Constraint("cost", "<=", 0.0)])
    except ConfigError:
        return
    raise AssertionError("a strategy without the constraints capability accepted a constraint")


def refuses_to_ask_without_fidelities(sub: StrategySubject) -> None:
    """A strategy that needs fidelities, given none, raises ConfigError at its first ask."""
    params = {k: v for k, v in sub.params.items() if k not in ("fidelities", "seed")}
    s = sub.build(seed=0, **params)
    try:
        c = s.ask()
    except ConfigError:
        return
    raise AssertionError(f"without fidelities it asked {str(c.arch)!r} at fidelity {c.fidelity}")


def asks_at_lower_fidelities(sub: StrategySubject) -> None:
    """Given rungs (``attach(fidelities=...)``), its 30 asks are at those rungs, some below the full one, and a
    (function, fidelity) pair is never asked twice."""
    s = sub.make(0, attach="fidelities" not in sub.params)
    cands = sub.drive(s, 30)
    allowed = {None, *sub.rungs}
    for c in cands:
        expect(c.fidelity in allowed, f"asked at fidelity {c.fidelity!r}, not one of the rungs {sub.rungs}")
    expect(any(c.fidelity is not None and c.fidelity < max(sub.rungs) for c in cands),
           f"30 asks, none below the full fidelity {max(sub.rungs)}")
    _expect_distinct(cands, "with fidelities")


def asks_at_full_fidelity(sub: StrategySubject) -> None:
    """Without the fidelities capability, a strategy given rungs asks at full fidelity (20 asks)."""
    s = sub.make(0, attach=True)
    for c in sub.drive(s, 20):
        expect(c.fidelity is None or c.fidelity == max(sub.rungs),
               f"asked at fidelity {c.fidelity} without the fidelities capability")


def batch_of_asks_gives_distinct_functions(sub: StrategySubject) -> None:
    """8 asks before any result, then 4 asks after 24 results, are distinct and are exactly what is pending."""
    s = sub.make(0)
    first = [s.ask() for _ in range(8)]
    _expect_distinct(first, "8 asks before any result")
    for c in first:
        sub.tell(s, c)
    sub.drive(s, 16)
    batch = [s.ask() for _ in range(4)]
    _expect_distinct(batch, "4 asks after 24 results")
    expect({c.id for c in s.pending} == {c.id for c in batch},
           f"pending ids {sorted(c.id for c in s.pending)}, asked {sorted(c.id for c in batch)}")


def excludes_foreign_pending_candidates(sub: StrategySubject) -> None:
    """Candidates noted as pending elsewhere (``note_pending``, negative ids) are never proposed, stay in the
    state, and leave the pending set when told, failed or given up; a restored copy continues identically."""
    s = sub.make(1)
    sub.drive(s, 14)
    twin = sub.copy(s)  # what this strategy would propose next is what another driver evaluates now
    foreign = [Candidate(-1 - i, c.arch, c.fidelity) for i, c in enumerate(twin.ask() for _ in range(3))]
    for c in foreign:
        s.note_pending(c)
    expect({c.id for c in s.pending} == {-1, -2, -3}, f"pending ids {sorted(c.id for c in s.pending)}, "
                                                       "expected the foreign -1, -2, -3")
    for c in foreign:
        expect(s.is_seen(c.arch, c.fidelity), f"a foreign pending {str(c.arch)!r} does not count as seen")
    taken = {_key(c) for c in foreign}
    own = [s.ask() for _ in range(5)]
    expect(not taken & {_key(c) for c in own}, "it proposed a function pending elsewhere")
    _expect_distinct(own, "5 asks beside foreign pending candidates")
    t = sub.copy(s)
    expect(sorted(c.id for c in t.pending) == sorted(c.id for c in s.pending),
           "the restored state lost foreign pending candidates")
    for strat in (s, t):
        sub.tell(strat, foreign[0])
        strat.on_fail(foreign[1])
        strat.tell(foreign[2], Result("failed", {}, "lost"))
        for c in own:
            sub.tell(strat, c)
        expect(strat.pending == [], f"still pending: {[c.id for c in strat.pending]}")
    a, b = _trajectory(sub.drive(s, 12)), _trajectory(sub.drive(t, 12))
    expect(a == b, f"the restored strategy continues differently ({_first_difference(a, b)})")


def accepts_results_of_unknown_candidates(sub: StrategySubject) -> None:
    """The result of a candidate never asked nor noted, and ``on_fail`` of an unknown one, are accepted; the
    told one is never proposed (20 asks in batches of 4)."""
    s = sub.make(2)
    mine = s.ask()
    stranger = Candidate(-7, sub.space.sample(np.random.default_rng(5)))
    sub.tell(s, stranger)
    s.on_fail(Candidate(-8, sub.space.sample(np.random.default_rng(6))))
    sub.tell(s, mine)
    cands = sub.drive(s, 20, batch=4)
    _expect_distinct(cands, "after a stranger's result")
    h = stranger.arch.functional_hash()
    expect(all(c.arch.functional_hash() != h for c in cands), "it proposed the stranger's architecture")


RULES = (
    Rule("declares_name_and_capabilities", declares_name_and_capabilities),
    Rule("asks_valid_candidates_with_increasing_ids", asks_valid_candidates_with_increasing_ids),
    Rule("same_seed_same_trajectory", same_seed_same_trajectory),
    Rule("other_seed_other_trajectory", other_seed_other_trajectory),
    Rule("no_duplicate_functions", no_duplicate_functions),
    Rule("no_duplicate_functions_in_batches", no_duplicate_functions_in_batches),
    Rule("state_dict_round_trip_continues_identically", state_dict_round_trip_continues_identically),
    Rule("accepts_failed_and_foreign_results", accepts_failed_and_foreign_results),
    Rule("exhausts_a_small_space_then_raises", exhausts_a_small_space_then_raises),
    Rule("bad_parameters_raise_config_error", bad_parameters_raise_config_error),
    Rule("config_round_trip", config_round_trip),
    Rule("handles_two_objectives", handles_two_objectives, {"multi_objective": True}),
    Rule("refuses_two_objectives", refuses_two_objectives, {"multi_objective": False}),
    Rule("honours_constraints", honours_constraints, {"constraints": True}),
    Rule("refuses_constraints", refuses_constraints, {"constraints": False}),
    Rule("refuses_to_ask_without_fidelities", refuses_to_ask_without_fidelities, {"needs_fidelities": True}),
    Rule("asks_at_lower_fidelities", asks_at_lower_fidelities, {"fidelities": True}),
    Rule("asks_at_full_fidelity", asks_at_full_fidelity, {"fidelities": False}),
    Rule("batch_of_asks_gives_distinct_functions", batch_of_asks_gives_distinct_functions),
    Rule("excludes_foreign_pending_candidates", excludes_foreign_pending_candidates),
    Rule("accepts_results_of_unknown_candidates", accepts_results_of_unknown_candidates),
)


def _static_traits(strategy: type[Strategy] | str) -> dict[str, bool | None]:
    cls = STRATEGIES.get(strategy) if isinstance(strategy, str) else strategy
    caps = getattr(cls, "capabilities", None)
    return asdict(caps) if isinstance(caps, Capabilities) else {}


SUITE = register_suite(Suite("strategy", RULES, StrategySubject, _static_traits))


def iter_strategy_checks(strategy: type[Strategy] | str, space: Space | str | None = None,
                         **params: Any) -> Iterator[tuple[str, Any]]:
    """``(rule name, check)`` for every rule that applies to ``strategy`` (chosen by its capabilities); calling a
    check runs its rule (see :func:`check_strategy`).

    Raises:
        UnknownNameError: no strategy has that name. ConfigError: not a Strategy subclass, or a bad space.
    """
    return iter_checks("strategy", strategy, {"space": space, **params})


def check_strategy(strategy: type[Strategy] | str, space: Space | str | None = None, **params: Any) -> None:
    """Check a strategy class (or registered name) against the ask/tell contract, rule by rule.

    Every rule builds fresh strategies ``strategy(space, seed=..., **params)`` and drives them with
    :class:`SyntheticObjective` (metric ``score``, maximised; a second metric ``cost`` for the rules about
    several objectives and constraints). A strategy that needs fidelities gets the rungs :data:`FIDELITIES`
    through ``attach`` unless ``params`` give ``fidelities``. The rules drive at most a few hundred asks each.

    Args:
        strategy: a :class:`~archscout.strategies.Strategy` subclass or the name it is registered under.
        space: the space to search (a Space or a registered name; default ``"nb201"``); it should hold a few
            hundred functionally distinct architectures or more.
        params: further constructor parameters, used by every rule.

    Raises:
        AssertionError: a rule is broken; the message names it, e.g.
            ``check_strategy(rea): rule same_seed_same_trajectory: ...``.
        UnknownNameError: no strategy has that name. ConfigError: not a Strategy subclass, or a bad space.
    """
    run_all("strategy", strategy, {"space": space, **params})
