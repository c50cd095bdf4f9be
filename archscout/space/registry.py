"""The registry of named spaces: ``create_space(name, **params)``, ``list_spaces()``, ``register_space``.

The built-in spaces register themselves in :mod:`archscout.space.builtin` when the package is imported."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

from .._registry import F, Registry

if TYPE_CHECKING:
    from .space import Space

__all__ = ["SPACES", "create_space", "default_signature", "list_spaces", "register_space"]

SPACES: Registry[Space] = Registry("space")


@overload
def register_space(name: str, factory: None = None) -> Callable[[F], F]: ...


@overload
def register_space(name: str, factory: Callable[..., Space]) -> Callable[..., Space]: ...


def register_space(name: str, factory: Callable[..., Space] | None = None) -> Callable[..., Any]:
    """Register a function ``factory(**params) -> Space`` under ``name`` (usable as a decorator), so that
    ``create_space(name)``, studies (a space stored by name) and ``archscout list`` know it.

    Raises:
        ConfigError: the name is taken.
    """
    _SIGNATURES.pop(name, None)
    return SPACES.register(name, factory) if factory is not None else SPACES.register(name)


def list_spaces() -> list[str]:
    """Names of the registered spaces."""
    return SPACES.names()


def create_space(name: str, **params: Any) -> Space:
    """Build a registered space by name (see :func:`list_spaces`).

    Raises:
        UnknownNameError: no space has that name.
    """
    return SPACES.create(name, **params)


_SIGNATURES: dict[str, str] = {}


def default_signature(name: str) -> str | None:
    """The signature (settings) of the registered space ``name`` built with its default parameters, or
    ``None`` when no space has that name; computed once per registration."""
    if name not in SPACES:
        return None
    sig = _SIGNATURES.get(name)
    if sig is None:
        sig = _SIGNATURES[name] = create_space(name).signature
    return sig
