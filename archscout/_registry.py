"""One registry idiom for every kind of component (spaces, strategies, benchmarks, executors)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from .errors import ConfigError, UnknownNameError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["Registry", "summary"]

# the end of a sentence: a full stop and a capital, not after "et al." or "e.g."
_SENTENCE_END = re.compile(r"(?<!\bal)(?<!e\.g)(?<!i\.e)\.\s+(?=[A-Z`])")


def summary(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph, on one line (for listings)."""
    lines = []
    for line in (doc or "").strip().splitlines():
        if not line.strip():
            break
        lines.append(line.strip())
    text = " ".join(lines)
    end = _SENTENCE_END.search(text)
    return text[: end.start() + 1] if end else text


class Registry(Generic[T]):
    """Maps names to factories. ``create(name, **params)`` builds an entry; duplicates are errors."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._docs: dict[str, str] = {}

    @overload
    def register(self, name: str, factory: None = None, *, doc: str = "") -> Callable[[F], F]: ...

    @overload
    def register(self, name: str, factory: Callable[..., T], *, doc: str = "") -> Callable[..., T]: ...

    def register(self, name: str, factory: Callable[..., T] | None = None, *, doc: str = "") -> Callable[..., Any]:
        """Register ``factory`` under ``name``; usable as a decorator.

        Raises:
            ConfigError: if ``name`` is already registered.
        """

        def _add(f: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ConfigError(f"a {self.kind} named {name!r} is already registered; pick another name")
            self._factories[name] = f
            self._docs[name] = doc or summary(f.__doc__)
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
