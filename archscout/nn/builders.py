"""Compile architectures into plain ``torch.nn.Module``s: the builder registry, ``build_model`` and
the picklable :class:`ModelFactory`.

A builder is ``fn(arch, input_shape, num_classes, **options) -> nn.Module``. ``build_model`` finds it
by ``builder=`` (a registered name or a callable) or else by ``arch.space.name``, seeds the weights from
a local RNG (the global torch RNG is left as it was), and turns the result into a
``torch.fx.GraphModule``: its code is generated, its submodules are torch's own (Conv2d, BatchNorm2d,
...), so the model runs, pickles and loads without archscout.
"""

from __future__ import annotations

import importlib
import inspect
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .._registry import Registry
from ..errors import BuildError, ConfigError
from . import macro, nb201

__all__ = ["BUILDERS", "Builder", "ModelFactory", "build_model", "list_builders", "register_builder"]

Builder = Callable[..., nn.Module]
BUILDERS: Registry[nn.Module] = Registry("model builder")


def register_builder(name: str, fn: Builder | None = None):
    """Register ``fn(arch, input_shape, num_classes, **options) -> nn.Module`` under ``name``; an
    architecture whose ``arch.space.name`` is ``name`` is then built with it. Usable as a decorator
    (``@register_builder("myspace")``).

    Raises:
        ConfigError: ``name`` is already registered.
    """
    return BUILDERS.register(name, fn)


def list_builders() -> list[str]:
    """Names of the registered builders (a space with one of these names builds without ``builder=``)."""
    return BUILDERS.names()


register_builder("nb201", nb201.build_nb201)
register_builder("mbv3", macro.build_mbv3)


def _check_shape(input_shape: Any) -> tuple[int, int, int]:
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = ()
    if len(shape) != 3 or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape):
        raise BuildError(f"input_shape must be (channels, height, width) of integers >= 1, got {input_shape!r}")
    return shape


def _check_classes(num_classes: Any) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise BuildError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    return num_classes


def _resolve(arch: Any, builder: str | Builder | None) -> tuple[str, Builder]:
    """The builder's display name and function."""
    if builder is not None:
        if callable(builder):
            return getattr(builder, "__qualname__", repr(builder)), builder
        return str(builder), BUILDERS.get(str(builder))
    space = getattr(arch, "space", None)
    if space is None:
        raise BuildError(
            f"cannot build {arch!r}: expected an archscout Architecture (from space.sample / space.make / "
            "space.parse), or pass builder= a function that accepts it"
        )
    name = getattr(space, "name", None)
    if name is None or name not in BUILDERS:
        what = "has no name" if name is None else f"is named {name!r}, which has no builder"
        raise BuildError(
            f"the space of {str(arch)!r} {what}; pass builder=fn (fn(arch, input_shape, num_classes, **options) "
            f"-> nn.Module) or register one with archscout.nn.register_builder(name, fn) "
            f"(registered builders: {', '.join(list_builders())})"
        )
    return name, BUILDERS.get(name)


def _check_options(bname: str, fn: Builder, options: Mapping[str, Any]) -> None:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in list(params.items())[3:]
                if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise BuildError(f"builder {bname!r} has no option(s) {unknown}; it accepts {accepted}")


def to_plain(model: nn.Module) -> nn.Module:
    """Trace ``model`` into a ``torch.fx.GraphModule`` made of torch classes only (same parameters and
    state-dict keys); a model that cannot be traced is returned unchanged."""
    if isinstance(model, torch.fx.GraphModule):
        return model
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm = torch.fx.symbolic_trace(model)
    except Exception:  # noqa: BLE001 - data-dependent control flow in a user's module: keep it as it is
        return model
    for node in gm.graph.nodes:  # string annotations (postponed evaluation) would break pickling
        node.type = None
    gm.recompile()
    gm.train(model.training)
    return gm


def build_model(
    arch: Any,
    input_shape: Sequence[int],
    num_classes: int,
    seed: int | None = 0,
    builder: str | Builder | None = None,
    **options: Any,
) -> nn.Module:
    """Compile ``arch`` into a plain, trainable ``torch.nn.Module`` mapping ``(B, C, H, W)`` float images to
    ``(B, num_classes)`` logits.

    Args:
        arch: an :class:`~archscout.space.Architecture` (any object, when ``builder`` accepts it).
        input_shape: ``(C, H, W)`` of one input (e.g. ``(1, 8, 8)`` for digits, ``(3, 32, 32)`` for CIFAR).
        num_classes: number of output logits.
        seed: seeds every initial weight (a local RNG: the global torch RNG state is not changed);
            ``None`` draws from the global RNG.
        builder: a registered builder name or a function ``fn(arch, input_shape, num_classes, **options)``;
            default: the builder registered under ``arch.space.name``.
        **options: builder options, e.g. ``C=16, N=5`` for ``nb201`` (see each builder).

    Returns:
        The model in training mode, a ``torch.fx.GraphModule`` when it can be traced (built-in builders
        always can), with the attribute ``arch_str`` (``str(arch)``).

    Raises:
        BuildError: bad input shape or class count, an unknown op, an input too small for the
            architecture, a space with no builder, or an option the builder does not take.
        UnknownNameError: ``builder`` names no registered builder.
    """
    shape = _check_shape(input_shape)
    num_classes = _check_classes(num_classes)
    bname, fn = _resolve(arch, builder)
    _check_options(bname, fn, options)
    if seed is None:
        model = fn(arch, shape, num_classes, **options)
    else:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise BuildError(f"seed must be an integer or None, got {seed!r}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = fn(arch, shape, num_classes, **options)
    if not isinstance(model, nn.Module):
        raise BuildError(f"builder {bname!r} returned {type(model).__name__}, not a torch.nn.Module")
    model = to_plain(model)
    # torch's stub types Module.__setattr__ for tensors and modules only; any attribute is allowed at runtime
    model.arch_str = str(arch)  # type: ignore[assignment]
    return model


def _builder_ref(builder: str | Builder | None) -> str | None:
    """A JSON form of ``builder``: its registered name, or ``"module:qualname"`` of an importable function."""
    if builder is None or isinstance(builder, str):
        return builder
    for name in BUILDERS.names():
        if BUILDERS.get(name) is builder:
            return name
    mod, qual = getattr(builder, "__module__", None), getattr(builder, "__qualname__", "")
    if not mod or "<" in qual:
        raise ConfigError(
            f"builder {builder!r} cannot be written to a config (a lambda or local function); register it with "
            "register_builder(name, fn) or define it at module level"
        )
    return f"{mod}:{qual}"


def _load_builder(ref: str | None) -> str | Builder | None:
    if ref is None or ":" not in ref:
        return ref
    mod, qual = ref.split(":", 1)
    try:
        obj: Any = importlib.import_module(mod)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"cannot import builder {ref!r}: {e}") from None
    return obj


class ModelFactory:
    """Builds models for architectures with fixed settings; picklable (send it to worker processes).

    ``factory(arch)`` is ``build_model(arch, input_shape, num_classes, seed=seed, builder=builder,
    **options)``; see :func:`build_model` for the arguments (defaults here: ``input_shape=(1, 8, 8)``, the
    digits images, and ``num_classes=10``). The settings are checked at once.

    Example::

        factory = ModelFactory(input_shape=(1, 8, 8), num_classes=10, seed=0, C=8, N=1)
        model = factory(space.sample(rng))
        ModelFactory.from_config(factory.to_config()) == factory     # True

    Raises:
        BuildError: bad ``input_shape``, ``num_classes`` or ``seed``; an option the builder does not take.
        UnknownNameError: ``builder`` names no registered builder.
    """

    def __init__(self, input_shape: Sequence[int] = (1, 8, 8), num_classes: int = 10, seed: int | None = 0,
                 builder: str | Builder | None = None, **options: Any) -> None:
        self.input_shape = _check_shape(input_shape)
        self.num_classes = _check_classes(num_classes)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise BuildError(f"seed must be an integer or None, got {seed!r}")
        self.seed = seed
        if builder is not None and not callable(builder):
            BUILDERS.get(str(builder))
            builder = str(builder)
        if builder is not None:
            _check_options(str(builder), builder if callable(builder) else BUILDERS.get(builder), options)
        self.builder = builder
        self.options = dict(options)

    def __call__(self, arch: Any, seed: int | None = ...) -> nn.Module:  # type: ignore[assignment]
        """Build the model of ``arch`` (``seed`` overrides the factory's seed when given)."""
        return build_model(arch, self.input_shape, self.num_classes,
                           seed=self.seed if seed is ... else seed, builder=self.builder, **self.options)

    def to_config(self) -> dict[str, Any]:
        """A JSON-serializable dict that :meth:`from_config` turns back into an equal factory.

        Raises:
            ConfigError: the builder is a lambda or local function, or an option is not JSON-serializable.
        """
        cfg = {"input_shape": list(self.input_shape), "num_classes": self.num_classes, "seed": self.seed,
               "builder": _builder_ref(self.builder), "options": dict(self.options)}
        try:
            json.dumps(cfg)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"ModelFactory options must be JSON-serializable to go into a config: {e}") from None
        return cfg

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> ModelFactory:
        """Rebuild a factory from :meth:`to_config` output.

        Raises:
            ConfigError: unknown keys or a builder that cannot be imported.
        """
        unknown = set(cfg) - {"input_shape", "num_classes", "seed", "builder", "options"}
        if unknown:
            raise ConfigError(f"unknown ModelFactory config keys {sorted(unknown)}")
        return cls(tuple(cfg.get("input_shape", (1, 8, 8))), cfg.get("num_classes", 10), seed=cfg.get("seed", 0),
                   builder=_load_builder(cfg.get("builder")), **dict(cfg.get("options") or {}))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelFactory):
            return NotImplemented
        def fn(b: str | Builder | None) -> Any:
            return BUILDERS.get(b) if isinstance(b, str) else b

        return (self.input_shape, self.num_classes, self.seed, fn(self.builder), self.options) == (
            other.input_shape, other.num_classes, other.seed, fn(other.builder), other.options)

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        b = "" if self.builder is None else f", builder={self.builder!r}"
        return (f"ModelFactory(input_shape={self.input_shape}, num_classes={self.num_classes}, "
                f"seed={self.seed}{b}{opts})")
