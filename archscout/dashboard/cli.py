"""``archscout dashboard STORAGE``: the shell face of :func:`archscout.dashboard.serve`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._argtypes import int_at_least

__all__ = ["add_dashboard_parser", "cmd_dashboard"]


def _port(text: str) -> int:
    v = int_at_least(0)(text)
    if v > 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535, got {v}")
    return v


def cmd_dashboard(ns: argparse.Namespace) -> int:
    """Serve until interrupted (Ctrl+C); prints the page's URL first.

    Raises:
        StorageError, ConfigError, OptionalDependencyError: see :func:`archscout.dashboard.serve`.
    """
    from .server import serve

    server = serve(ns.storage, host=ns.host, port=ns.port, study=ns.study, quiet=ns.quiet)
    try:
        n = len(server.data.counts()["studies"])
        print(f"archscout dashboard: {server.url} ({n} stud{'y' if n == 1 else 'ies'}, read-only; Ctrl+C stops it)",
              flush=True)
        if not server.loopback:
            print(f"archscout: warning: listening on {ns.host}: anyone who can reach this address sees every study "
                  "(there is no login); use --host 127.0.0.1 and an SSH tunnel instead", file=sys.stderr, flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        print("archscout dashboard: stopped", file=sys.stderr)
    finally:
        server.close()
    return 0


def add_dashboard_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``dashboard`` to an argparse ``subparsers`` object; returns its parser."""
    p = subparsers.add_parser(
        "dashboard", help="a live, read-only web page over a storage's studies (needs archscout[dashboard])",
        description="Serve a read-only web page over a study storage: the Pareto front, the anytime curve, parallel "
                    "coordinates, a trial table and a page per trial, updated live while searches add trials. "
                    "Binds 127.0.0.1 by default; every script is served from the installed packages (no internet).")
    p.add_argument("storage", help="SQLite file (or sqlite:///path.db) or postgresql:// URL of the studies")
    p.add_argument("--port", type=_port, default=8050, help="TCP port (default 8050; 0: any free port, printed)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; the page has no login)")
    p.add_argument("--study", help="show only this study (default: every study of the storage)")
    p.add_argument("--quiet", action="store_true", help="no log line per request")
    p.set_defaults(fn=cmd_dashboard)
    return p
