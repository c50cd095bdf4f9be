"""One registry idiom for every kind of component (spaces, strategies, benchmarks, executors)."""

from __future__ import annotations

import difflib
from typing import Any, Callable, Generic, TypeVar

from .errors import ConfigError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories. ``create(name, **params)`` builds an entry; duplicates are errors."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._docs: dict[str, str] = {}

    def register(self, name: str, factory: Callable[..., T] | None = None, *, doc: str = ""):
        """Register ``factory`` under ``name``; usable as a decorator.

        Raises:
            ConfigError: if ``name`` is already registered.
        """

        def _add(f: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ConfigError(f"a {self.kind} named {name!r} is already registered; pick another name")
            self._factories[name] = f
            lines = (f.__doc__ or "").strip().splitlines()
            self._docs[name] = doc or (lines[0] if lines else "")
            return f

        return _add(factory) if factory is not None else _add

    def names(self) -> list[str]:
        return sorted(self._factories)

    def doc(self, name: str) -> str:
        return self._docs.get(name, "")

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._factories[name]
        except KeyError:
            close = difflib.get_close_matches(str(name), self.names(), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{hint} (available: {', '.join(self.names())})"
            ) from None

    def create(self, name: str, *args: Any, **params: Any) -> T:
        """Build entry ``name`` with the given arguments.

        Raises:
            UnknownNameError: no entry has that name.
            ConfigError: the arguments do not fit the entry's signature (e.g. an unknown parameter).
        """
        factory = self.get(name)
        try:
            return factory(*args, **params)
        except TypeError as e:
            raise ConfigError(f"bad parameters for {self.kind} {name!r}: {e}") from None
