"""Conformance checks of a cost model: the contract of :class:`~archscout.hardware.CostModel`.

``check_cost_model("table-latency", table=..., column=...)`` builds fresh models and checks that they declare a
name, a unit and whether they are cheap, predict finite floats (``predict_many`` agreeing), round-trip through
``to_config`` / :func:`~archscout.hardware.cost_model_from_config` (to the same values, for cheap models),
pickle when they are expensive (they run inside worker processes), and answer an architecture they cannot cost
with an archscout error rather than a bare ``KeyError`` or ``TypeError``.

Measured models take a timer (``timer=``): check them with :class:`StepTimer`, never with real timing.
"""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ArchscoutError, ConfigError
from ..hardware import COST_MODELS, CostModel, cost_model_from_config, create_cost_model
from ..space import Architecture, Choice, Space, create_space
from ._checks import Rule, Suite, bind_or_config_error, expect, iter_checks, register_suite, run_all, setting_error

__all__ = ["StepTimer", "check_cost_model", "foreign_architecture", "iter_cost_model_checks"]

N_ARCHS = 4
"""Architectures a rule costs when it samples them from a space."""


class StepTimer:
    """A fake clock for measured cost models: every read moves it ``step_ms`` milliseconds on, so a timed run
    (read before and after) takes exactly ``step_ms``. Deterministic and picklable.

    Args:
        step_ms: milliseconds per read (> 0).

    Raises:
        ConfigError: ``step_ms`` is not a positive number.
    """

    def __init__(self, step_ms: float = 1.0) -> None:
        if isinstance(step_ms, bool) or not isinstance(step_ms, (int, float)) or not step_ms > 0:
            raise ConfigError(f"step_ms must be a positive number, got {step_ms!r}")
        self.step_s = float(step_ms) / 1000.0
        self.reads = 0

    def __call__(self) -> float:
        """The time in seconds."""
        self.reads += 1
        return self.reads * self.step_s


def foreign_architecture() -> Architecture:
    """An architecture of a one-parameter space no cost model knows (for the rule about what it cannot cost)."""
    return Space({"foreign_knob": Choice(["a", "b"])}, name="archscout-foreign").make({"foreign_knob": "b"})


class CostModelSubject:
    """A cost-model class or registered name, its settings, and the architectures it is checked on."""

    def __init__(self, cost_model: type[CostModel] | str, *, archs: Sequence[Architecture] | Space | str | None = None,
                 config_overrides: Mapping[str, Any] | None = None, **settings: Any) -> None:
        if isinstance(cost_model, str):
            cls = COST_MODELS.get(cost_model)
            self.name: str | None = cost_model
        else:
            cls = cost_model
            self.name = None
        if not (isinstance(cls, type) and issubclass(cls, CostModel)):
            raise ConfigError(f"check_cost_model needs a CostModel subclass or a registered name, got {cost_model!r}")
        self.cls = cls
        self.label = cost_model if isinstance(cost_model, str) else (getattr(cls, "name", "") or cls.__name__)
        self.settings = dict(settings)
        self.overrides = dict(config_overrides or {})
        self.arch_source = archs
        self._archs: list[Architecture] | None = None

    def traits(self) -> dict[str, bool | None]:
        return {"cheap": bool(getattr(self.cls, "cheap", True))}

    def close(self) -> None:
        pass

    def build(self, **settings: Any) -> CostModel:
        """A model with exactly these settings, as ``create_cost_model`` builds it."""
        if self.name is not None:
            return create_cost_model(self.name, **settings)
        bind_or_config_error(f"cost model {self.label!r}", self.cls, **settings)
        return self.cls(**settings)

    def make(self) -> CostModel:
        """A fresh model with the subject's settings."""
        return self.build(**self.settings)

    def archs(self, model: CostModel) -> list[Architecture]:
        """The architectures to cost: those given, or :data:`N_ARCHS` distinct samples of the given space (or of
        the model's own ``space`` attribute).

        Raises:
            ConfigError: none given and the model has no ``space``.
        """
        if self._archs is None:
            src = self.arch_source if self.arch_source is not None else getattr(model, "space", None)
            if isinstance(src, str):
                src = create_space(src)
            if isinstance(src, Space):
                rng = np.random.default_rng(0)
                found: dict[str, Architecture] = {}
                for _ in range(50 * N_ARCHS):
                    a = src.sample(rng)
                    found.setdefault(a.functional_hash(), a)
                    if len(found) == N_ARCHS:
                        break
                self._archs = list(found.values())
            elif src is not None:
                self._archs = list(src)
            if not self._archs or not all(isinstance(a, Architecture) for a in self._archs):
                raise setting_error(f"check_cost_model({self.label}) needs archs= the architectures to cost (a list, "
                                    "a Space or a registered space name)")
        return list(self._archs)

    def rebuild(self, cfg: Mapping[str, Any]) -> CostModel:
        """The model ``cfg`` describes, as :func:`cost_model_from_config` builds it (with the overrides)."""
        name = str(cfg.get("name"))
        if name in COST_MODELS and COST_MODELS.get(name) is self.cls:
            return cost_model_from_config(cfg, **self.overrides)
        return self.build(**{**{k: v for k, v in cfg.items() if k != "name"}, **self.overrides})


def _same(a: float, b: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


# --- the rules ---------------------------------------------------------------------------------------------
def declares_name_unit_cheap(sub: CostModelSubject) -> None:
    """A built model has a non-empty ``name`` (the registered one), a non-empty ``unit`` and a bool ``cheap``."""
    m = sub.make()
    expect(isinstance(m.name, str) and m.name, f"name is {m.name!r}")
    if sub.name is not None:
        expect(m.name == sub.name, f"registered as {sub.name!r} but its name is {m.name!r}")
    expect(isinstance(m.unit, str) and m.unit, f"unit is {m.unit!r}; say what the number means ('ms', 'M', ...)")
    expect(isinstance(m.cheap, bool), f"cheap is {m.cheap!r}, not a bool")
    expect(m.cheap == sub.traits()["cheap"], f"the class says cheap={sub.cls.cheap}, a built model {m.cheap}")


def predicts_finite_floats(sub: CostModelSubject) -> None:
    """``predict`` gives a finite float for each architecture; a cheap model gives the same value again."""
    m = sub.make()
    for a in sub.archs(m):
        v = m.predict(a)
        expect(isinstance(v, float), f"predict({str(a)!r}) returned {type(v).__name__} {v!r}, not a float")
        expect(math.isfinite(v), f"predict({str(a)!r}) returned {v}")
        if m.cheap:
            again = m.predict(a)
            expect(again == v, f"predict({str(a)!r}) gave {v}, then {again}")


def predict_many_agrees_with_predict(sub: CostModelSubject) -> None:
    """``predict_many`` gives an array of shape ``(n,)`` equal to ``predict`` one by one (``(0,)`` for none)."""
    m = sub.make()
    archs = sub.archs(m)
    many = m.predict_many(archs)
    expect(isinstance(many, np.ndarray) and many.shape == (len(archs),),
           f"predict_many of {len(archs)} returned {type(many).__name__} of shape {getattr(many, 'shape', None)}")
    one = [m.predict(a) for a in archs]
    for a, x, y in zip(archs, many, one):
        expect(_same(float(x), y), f"{str(a)!r}: predict_many gives {x}, predict {y}")
    empty = m.predict_many([])
    expect(isinstance(empty, np.ndarray) and empty.shape == (0,), f"predict_many([]) returned {empty!r}")


def config_round_trip(sub: CostModelSubject) -> None:
    """``to_config()`` is strict JSON with the name; ``cost_model_from_config`` rebuilds a model with the same
    config, which (for a cheap model) predicts the same values."""
    m = sub.make()
    archs = sub.archs(m)
    before = [m.predict(a) for a in archs] if m.cheap else []
    cfg = m.to_config()
    try:
        cfg = json.loads(json.dumps(cfg, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise AssertionError(f"to_config() is not strict JSON: {e}") from None
    expect(cfg.get("name") == m.name, f"to_config() names {cfg.get('name')!r}, not {m.name!r}")
    again = sub.rebuild(cfg)
    expect(type(again) is type(m), f"the config rebuilt a {type(again).__name__}, not a {type(m).__name__}")
    again_cfg = json.loads(json.dumps(again.to_config(), allow_nan=False))
    expect(again_cfg == cfg, f"rebuilt from its config, to_config() is {again_cfg} instead of {cfg}")
    for a, v in zip(archs, before):
        w = again.predict(a)
        expect(_same(w, v), f"{str(a)!r}: the rebuilt model predicts {w}, the original {v}")


def pickles_for_worker_processes(sub: CostModelSubject) -> None:
    """Expensive (it runs inside worker processes): the model pickles, before and after use, and the copy
    predicts finite floats."""
    m = sub.make()
    archs = sub.archs(m)
    copy = pickle.loads(pickle.dumps(m))
    m.predict(archs[0])
    used = pickle.loads(pickle.dumps(m))
    for model in (copy, used):
        for a in archs[:2]:
            v = model.predict(a)
            expect(isinstance(v, float) and math.isfinite(v), f"the unpickled model predicts {v!r} for {str(a)!r}")


def uncostable_architecture_raises_archscout_error(sub: CostModelSubject) -> None:
    """An architecture of a space the model does not know gets a finite float or an archscout error (such as
    DataError or BuildError, naming the problem), never a bare KeyError, TypeError, AttributeError..."""
    m = sub.make()
    sub.archs(m)  # the model is in use (tables read, units measured) before the stranger comes
    arch = foreign_architecture()
    for what, call in (("predict", lambda: m.predict(arch)), ("predict_many", lambda: m.predict_many([arch]))):
        try:
            v = call()
        except ArchscoutError:
            continue
        except Exception as e:
            raise AssertionError(f"{what} of an architecture of another space raised {type(e).__name__}: {e}; "
                                 "raise an archscout error (DataError, BuildError, ...) that names the problem") from e
        vals = np.atleast_1d(np.asarray(v, dtype=float))
        expect(np.all(np.isfinite(vals)), f"{what} of an architecture of another space gave {v!r}")


def bad_settings_raise_config_error(sub: CostModelSubject) -> None:
    """An unknown setting raises ConfigError."""
    try:
        sub.build(**{**sub.settings, "not_a_setting": 1})
    except ConfigError:
        return
    raise AssertionError("building with not_a_setting=1 did not raise ConfigError")


RULES = (
    Rule("declares_name_unit_cheap", declares_name_unit_cheap),
    Rule("predicts_finite_floats", predicts_finite_floats),
    Rule("predict_many_agrees_with_predict", predict_many_agrees_with_predict),
    Rule("config_round_trip", config_round_trip),
    Rule("pickles_for_worker_processes", pickles_for_worker_processes, {"cheap": False}),
    Rule("uncostable_architecture_raises_archscout_error", uncostable_architecture_raises_archscout_error),
    Rule("bad_settings_raise_config_error", bad_settings_raise_config_error),
)


def _static_traits(cost_model: type[CostModel] | str) -> dict[str, bool | None]:
    cls = COST_MODELS.get(cost_model) if isinstance(cost_model, str) else cost_model
    return {"cheap": bool(getattr(cls, "cheap", True))}


SUITE = register_suite(Suite("cost_model", RULES, CostModelSubject, _static_traits))


def iter_cost_model_checks(cost_model: type[CostModel] | str, *,
                           archs: Sequence[Architecture] | Space | str | None = None,
                           config_overrides: Mapping[str, Any] | None = None,
                           **settings: Any) -> Iterator[tuple[str, Any]]:
    """``(rule name, check)`` for every rule that applies to ``cost_model`` (chosen by ``cheap``); calling a
    check runs its rule (see :func:`check_cost_model`).

    Raises:
        UnknownNameError: no cost model has that name. ConfigError: not a CostModel subclass.
    """
    return iter_checks("cost_model", cost_model, {"archs": archs, "config_overrides": config_overrides, **settings})


def check_cost_model(cost_model: type[CostModel] | str, *, archs: Sequence[Architecture] | Space | str | None = None,
                     config_overrides: Mapping[str, Any] | None = None, **settings: Any) -> None:
    """Check a cost-model class (or registered name) against the CostModel contract, rule by rule.

    Every rule builds a fresh model ``cost_model(**settings)``.

    Args:
        cost_model: a :class:`~archscout.hardware.CostModel` subclass or the name it is registered under.
        archs: the architectures it must cost: a list, or a Space (or registered space name) to sample
            4 from; default: the model's own ``space`` attribute.
        config_overrides: settings a config cannot hold, given to ``cost_model_from_config`` when the config
            round trip rebuilds the model (e.g. ``{"timer": StepTimer()}``, a factory that is a plain function).
        settings: constructor settings, e.g. ``table=..., column=...``; a measured model needs
            ``timer=StepTimer()`` (no real timing in checks).

    Raises:
        AssertionError: a rule is broken; the message names it, e.g.
            ``check_cost_model(table-latency): rule predicts_finite_floats: ...``.
        UnknownNameError: no cost model has that name. ConfigError: not a CostModel subclass, or no
            architectures to cost.
    """
    run_all("cost_model", cost_model, {"archs": archs, "config_overrides": config_overrides, **settings})
