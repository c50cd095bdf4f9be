"""Reports: tables, plots and summaries (plotting libraries load lazily)."""

from __future__ import annotations

from ..errors import ArchscoutError

__all__ = ["require_matplotlib", "OptionalDependencyError"]


class OptionalDependencyError(ArchscoutError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


def require_matplotlib():
    """Import ``matplotlib.pyplot`` with a headless backend, or explain which extra to install."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise OptionalDependencyError(
            "plots need matplotlib; install it with: pip install 'archscout[plot]'"
        ) from None
    return plt
