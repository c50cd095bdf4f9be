"""Errors raised by archscout.

Every error a user can cause derives from :class:`ArchscoutError`; its message says what is wrong
and how to fix it, on one line, so the CLI can print it as it is.
"""

from __future__ import annotations

from types import ModuleType

__all__ = [
    "ArchscoutError",
    "BuildError",
    "ConfigError",
    "ConstraintError",
    "DataError",
    "InvalidArchitectureError",
    "OptionalDependencyError",
    "SpaceExhaustedError",
    "StorageError",
    "StorageVersionError",
    "StudyExistsError",
    "UnknownNameError",
]


class ArchscoutError(Exception):
    """Base class of every error a user can cause or fix."""


class ConfigError(ArchscoutError, ValueError):
    """A setting is invalid (raised by constructors, before any work starts)."""


class UnknownNameError(ArchscoutError, KeyError):
    """A registry has no entry with the given name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidArchitectureError(ArchscoutError, ValueError):
    """An architecture (or its string form) does not belong to the space."""


class SpaceExhaustedError(ArchscoutError):
    """Every functionally distinct architecture of the space has already been proposed."""


class DataError(ArchscoutError, ValueError):
    """A data file (benchmark table) is missing, unreadable, or lacks a named column."""


class StorageError(ArchscoutError):
    """The storage cannot be opened, read or written."""


class StorageVersionError(StorageError):
    """The storage was written with another schema version."""


class StudyExistsError(StorageError):
    """The storage already holds a study of that name (another process may have just created it)."""


class BuildError(ArchscoutError, ValueError):
    """An architecture cannot be compiled into a model (e.g. too many downsamplings for the input size)."""


class ConstraintError(ArchscoutError):
    """No candidate meets the constraints (e.g. a latency budget no architecture can meet)."""


class OptionalDependencyError(ArchscoutError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`OptionalDependencyError` naming the archscout extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise OptionalDependencyError(
            f"this feature needs {module.split('.')[0]}; install it with: pip install 'archscout[{extra}]'"
        ) from None
