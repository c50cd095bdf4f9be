"""``archscout dashboard``: a local, read-only web view over a study storage that updates live while drivers add
trials: the Pareto front, the anytime curve, parallel coordinates over the space's decisions, a sortable trial
table and a page per trial with its architecture drawn.

The server is Python's standard library; the page's only script besides its own is the ``plotly.min.js`` of the
installed ``plotly`` package (extra ``dashboard``), served locally. Importing this package is cheap: the server
loads when :func:`serve` is called.

    server = archscout.dashboard.serve("runs/search.db", port=0).start()
    print(server.url)
    ...
    server.close()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..storage import Storage
    from .server import DashboardServer

__all__ = ["serve"]


def serve(storage: str | Storage, host: str = "127.0.0.1", port: int = 8050, study: str | None = None,
          quiet: bool = True) -> DashboardServer:
    """Build the dashboard's server over ``storage`` (bound, not yet serving); see
    :func:`archscout.dashboard.server.serve` for the arguments and errors."""
    from .server import serve as _serve

    return _serve(storage, host=host, port=port, study=study, quiet=quiet)


def __getattr__(name: str) -> Any:
    if name == "DashboardServer":
        from .server import DashboardServer

        return DashboardServer
    raise AttributeError(f"module 'archscout.dashboard' has no attribute {name!r}")
