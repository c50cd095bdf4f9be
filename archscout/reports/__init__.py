"""Reports: tables, plots and summaries (plotting libraries load lazily)."""

from __future__ import annotations

from ..errors import OptionalDependencyError

__all__ = ["OptionalDependencyError", "require_matplotlib"]


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
