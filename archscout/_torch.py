"""PyTorch helpers shared by cost models, training and proxies. torch is imported when a helper runs, never
when this module is imported (``archscout.hardware`` must stay importable without torch)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, overload

from .errors import ConfigError, require

__all__ = ["default_factory", "resolve_factory", "torch_threads"]

_FACTORY_KEYS = ("input_shape", "num_classes", "seed", "builder", "options")


@contextlib.contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run PyTorch with ``n`` intra-op threads inside the block (restored afterwards).

    Building, tracing, exporting and training small networks is several times faster on one thread when the
    machine is shared, and timing runs must not compete with idle worker threads.
    """
    torch = require("torch", "nn")
    prev = torch.get_num_threads()
    if prev != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != prev:
            torch.set_num_threads(prev)


@overload
def resolve_factory(factory: Any, input_shape: Sequence[int], num_classes: int = 10,
                    seed: int | None = 0) -> Callable[[Any], Any]: ...


@overload
def resolve_factory(factory: Any, input_shape: None = None, num_classes: int = 10,
                    seed: int | None = 0) -> Callable[[Any], Any] | None: ...


def resolve_factory(factory: Any, input_shape: Sequence[int] | None = None, num_classes: int = 10,
                    seed: int | None = 0) -> Callable[[Any], Any] | None:
    """The model factory (``arch -> torch.nn.Module``) that ``factory`` stands for.

    * a callable (an :class:`archscout.nn.ModelFactory` or any function): itself;
    * a mapping: a ``ModelFactory`` built from it, either a ``ModelFactory.to_config()`` dict or options of the
      builder (``{"builder": "nb201", "C": 8}``), completed with ``input_shape``, ``num_classes`` and ``seed``;
    * ``None``: ``ModelFactory(input_shape, num_classes, seed)`` when ``input_shape`` is given, else ``None``
      (the caller picks a default once it knows the input shape).

    Raises:
        ConfigError: ``factory`` is none of these.
    """
    if factory is None:
        return None if input_shape is None else default_factory(input_shape, num_classes, seed)
    if callable(factory):
        return factory
    if not isinstance(factory, Mapping):
        raise ConfigError(f"factory must be a ModelFactory (or any callable arch -> torch module), a mapping of its "
                          f"settings or None, got {factory!r}")
    cfg: dict[str, Any] = {"num_classes": num_classes, "seed": seed}
    if input_shape is not None:
        cfg["input_shape"] = list(input_shape)
    options = {k: v for k, v in factory.items() if k not in _FACTORY_KEYS}
    cfg.update({k: v for k, v in factory.items() if k in _FACTORY_KEYS})
    if options:
        cfg["options"] = {**dict(cfg.get("options") or {}), **options}
    nn = require("archscout.nn", "nn")
    return nn.ModelFactory.from_config(cfg)


def default_factory(input_shape: Sequence[int] | None = None, num_classes: int = 10,
                    seed: int | None = 0) -> Callable[[Any], Any]:
    """``archscout.nn.ModelFactory(input_shape, num_classes, seed)``; ``input_shape`` defaults to ``(3, 32, 32)``
    (CIFAR-sized images)."""
    nn = require("archscout.nn", "nn")
    shape = tuple(input_shape) if input_shape is not None else (3, 32, 32)
    return nn.ModelFactory(input_shape=shape, num_classes=num_classes, seed=seed)
