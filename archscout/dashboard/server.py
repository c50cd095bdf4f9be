"""The dashboard's HTTP server: Python's standard library only (:class:`http.server.ThreadingHTTPServer`).

Routes (``GET`` only; anything else is ``405``):

* ``/`` (``/index.html``): the page; ``/static/<name>`` for the whitelisted assets ``app.js``, ``draw.js``,
  ``style.css`` and
  ``plotly.min.js`` (the one the installed ``plotly`` wheel ships). Every other path is ``404``: no path from a
  request is ever joined to a folder, so ``/static/../..`` and its encoded forms reach nothing.
* ``/api/studies``: every shown study at a glance, and the storage's trial count;
* ``/api/count``: ``{"total": trials in the storage, "studies": {name: trials}}``;
* ``/api/study?name=S``: the summary of study ``S`` (front, anytime curve, axes, counts, settings);
* ``/api/trials?study=S&after=Q``: the trials changed by events after sequence number ``Q`` (0: every trial);
* ``/api/trial?study=S&number=N``: one trial with its drawing and fidelity curve;
* ``/api/poll?study=S&after=Q``: the counts, and when study ``S`` changed since ``Q`` its changed trials and summary
  (the page polls it every second).

Answers are JSON; errors are ``{"error": message}`` with a 4xx/5xx status. The server never writes to the storage.
When bound to a loopback address it answers only requests whose ``Host`` is a loopback name (no DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import ArchscoutError, ConfigError, OptionalDependencyError
from ..storage import Storage
from ..storage.base import dumps, mask_url
from .data import DashboardData, open_storage

__all__ = ["ASSETS", "DashboardServer", "plotly_js", "serve"]

ASSETS: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "draw.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "plotly.min.js": "text/javascript; charset=utf-8",
}
"""The only files the server sends, by name, with their content types."""

_CSP = ("default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; worker-src blob:; object-src 'none'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'")
# plotly's WebGL traces (parcoords, scatter3d) compile functions at run time ('unsafe-eval') and style elements
# inline; no inline script runs, so markup injected into the page could not run code either.
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def plotly_js() -> bytes:
    """The ``plotly.min.js`` shipped inside the installed ``plotly`` package.

    Raises:
        OptionalDependencyError: plotly is not installed (or ships no ``plotly.min.js``).
    """
    hint = "the dashboard needs plotly; install it with: pip install 'archscout[dashboard]'"
    try:
        import plotly
    except ImportError:
        raise OptionalDependencyError(hint) from None
    try:
        return resources.files(plotly).joinpath("package_data", "plotly.min.js").read_bytes()
    except OSError:
        raise OptionalDependencyError(f"{hint} (the installed plotly has no package_data/plotly.min.js)") from None


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DashboardServer(ThreadingHTTPServer):
    """The dashboard's HTTP server over one storage; build it with :func:`serve`.

    Use :meth:`serve_forever` (blocking) or :meth:`start` (a background thread), then :meth:`close`.

    Attributes:
        data: the studies as the server reads them.
        url: where the page is, e.g. ``http://127.0.0.1:8050/``.
        quiet: no log line per request on stderr.
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], data: DashboardData, assets: dict[str, bytes],
                 quiet: bool = True) -> None:
        self.data = data
        self.assets = assets
        self.quiet = quiet
        self._thread: threading.Thread | None = None
        super().__init__(address, _Handler)
        self.loopback = _is_loopback(address[0])

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def start(self) -> DashboardServer:
        """Serve from a daemon thread; returns ``self``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.serve_forever, name="archscout-dashboard", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving (when started with :meth:`start`), release the port and close the storage if
        :func:`serve` opened it."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()
        self.data.close()

    def __enter__(self) -> DashboardServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def serve(storage: str | Storage, host: str = "127.0.0.1", port: int = 8050, study: str | None = None,
          quiet: bool = True) -> DashboardServer:
    """Build the dashboard's server over ``storage``, bound but not yet serving.

    Args:
        storage: a SQLite file path, ``sqlite:///path.db``, a ``postgresql://`` URL or an open :class:`Storage`
            (which stays open after :meth:`DashboardServer.close`). Only read: a missing file is an error, never
            created.
        host: the address to bind (default loopback only; another address exposes every study, unauthenticated,
            to the network).
        port: the TCP port (0: a free one; read it from ``server.url``).
        study: show only this study (default: every study of the storage).
        quiet: no log line per request.

    Returns:
        the server; ``server.start()`` serves from a thread, ``server.serve_forever()`` blocks, ``server.close()``
        stops it.

    Raises:
        OptionalDependencyError: plotly is not installed (``pip install 'archscout[dashboard]'``).
        StorageError: the storage does not exist, cannot be read, holds no study or not ``study``.
        ConfigError: a bad port, or the address cannot be bound (e.g. the port is in use).
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"port must be an integer from 0 to 65535 (0: any free port), got {port!r}")
    if not isinstance(host, str) or not host:
        raise ConfigError(f"host must be an address such as 127.0.0.1, got {host!r}")
    assets = {"plotly.min.js": plotly_js()}
    static = resources.files("archscout.dashboard").joinpath("static")
    for name in ASSETS:
        if name not in assets:
            assets[name] = static.joinpath(name).read_bytes()
    store, owned = open_storage(storage)
    try:
        data = DashboardData(store, study, owned=owned)
    except BaseException:
        if owned:
            store.close()
        raise
    try:
        return DashboardServer((host, port), data, assets, quiet=quiet)
    except OSError as e:
        data.close()
        if getattr(e, "errno", None) in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise ConfigError(f"port {port} on {host} is in use; pick another with --port (0: any free port)") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    server_version = "archscout-dashboard"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds an idle kept-alive connection may hold its thread

    # --- responses ----------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str, cache: str = "no-store",
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Content-Security-Policy", _CSP)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200) -> None:
        self._send(status, dumps(obj).encode(), "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    def _not_allowed(self) -> None:
        self._send(405, dumps({"error": "the dashboard is read-only: GET only"}).encode(),
                   "application/json; charset=utf-8", extra={"Allow": "GET"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if not self.path.startswith("/api/poll"):  # the page polls every second
            super().log_request(code, size)

    # --- routing ------------------------------------------------------------------------------------
    def _host_ok(self) -> bool:
        """Behind a loopback address, only loopback ``Host`` names (a page elsewhere cannot rebind DNS to us)."""
        if not self.server.loopback:
            return True
        host = self.headers.get("Host")
        if host is None:
            return True
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return _is_loopback(name.strip("[]").lower())

    def do_GET(self) -> None:
        if not self._host_ok():
            return self._error(403, "this dashboard answers only requests to a loopback address")
        parts = urlsplit(self.path)
        route = parts.path
        if route in ("/", "/index.html"):
            return self._asset("index.html")
        if route.startswith("/static/"):
            name = route[len("/static/"):]
            if name in ASSETS and name != "index.html":
                return self._asset(name)
            return self._error(404, "no such file")
        api: dict[str, Callable[[dict[str, str]], Any]] = {
            "/api/studies": self._studies, "/api/count": self._count, "/api/study": self._study,
            "/api/trials": self._trials, "/api/trial": self._trial, "/api/poll": self._poll,
        }
        fn = api.get(route)
        if fn is None:
            return self._error(404, "no such page")
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            return self._json(fn(query))
        except _HTTPError as e:
            return self._error(e.status, str(e))
        except ArchscoutError as e:  # e.g. the storage cannot be read right now
            return self._error(503, str(e))
        except Exception as e:  # noqa: BLE001 - a bug here must not cost the page its server
            self.log_error("%s failed: %r", route, e)
            return self._error(500, f"the dashboard failed on {route}: {type(e).__name__}")

    def _asset(self, name: str) -> None:
        cache = "max-age=3600" if name == "plotly.min.js" else "no-cache"
        self._send(200, self.server.assets[name], ASSETS[name], cache=cache)

    # --- the JSON API -------------------------------------------------------------------------------
    def _studies(self, q: dict[str, str]) -> Any:
        data = self.server.data
        url = data.storage.url
        return {"studies": data.studies(), "total": data.counts()["total"],
                "storage": url if url.startswith("sqlite:") else mask_url(url), "only": data.only}

    def _count(self, q: dict[str, str]) -> Any:
        return self.server.data.counts()

    def _study_name(self, name: str | None) -> str:
        """``name`` when the storage has such a study (else 400/404)."""
        if name is None:
            raise _HTTPError(400, "name the study: ?study=NAME")
        try:
            self.server.data.view(name)
        except KeyError:
            raise _HTTPError(404, f"no study {name!r} here") from None
        return name

    def _study(self, q: dict[str, str]) -> Any:
        return self.server.data.summary(self._study_name(q.get("name", q.get("study"))))

    def _trials(self, q: dict[str, str]) -> Any:
        return self.server.data.trials(self._study_name(q.get("study")), _int(q.get("after", "0"), "after"))

    def _trial(self, q: dict[str, str]) -> Any:
        name = self._study_name(q.get("study"))
        number = _int(q.get("number"), "number")
        try:
            return self.server.data.trial(name, number)
        except KeyError:
            raise _HTTPError(404, f"study {name!r} has no trial {number}") from None

    def _poll(self, q: dict[str, str]) -> Any:
        if q.get("study") is None:
            return self.server.data.counts()
        return self.server.data.poll(self._study_name(q["study"]), _int(q.get("after", "0"), "after"))


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _int(text: str | None, what: str) -> int:
    try:
        return int(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise _HTTPError(400, f"{what} must be an integer, got {text!r}") from None
