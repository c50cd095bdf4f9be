"""``archscout dashboard``: the server without a browser (routes, read-only, JSON), the CLI's errors, and the page in a
real Chromium driven by Playwright (live count, clicking a front point, escaping of study text).

The browser tests skip when Playwright or Chromium is missing (``pip install playwright``; ``apt-get install
chromium`` or ``ARCHSCOUT_CHROMIUM=/path/to/chrome``), unless ``ARCHSCOUT_REQUIRE_BROWSER=1`` (CI), where they fail.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import archscout as asc
from archscout.cli import main
from archscout.dashboard import serve
from archscout.errors import ConfigError, OptionalDependencyError, StorageError
from archscout.pareto import hypervolume, to_minimization

REPO = Path(__file__).resolve().parents[1]
XSS = "<img src=x onerror=window.__pwned=1>"
N_TRIALS = 12  # trials of the module's study: 8 complete, 2 failed, 2 infeasible


# --- studies ----------------------------------------------------------------------------------------
def _space(act: tuple[str, ...] = ("relu", "gelu")) -> asc.Space:
    return asc.Space({
        "width": asc.Choice([16, 32, 64]),
        "act": asc.Choice(list(act)),
        "cell": asc.Cell(nodes=4, ops=["none", "skip", "conv1x1", "conv3x3"], hash_rule="none"),
    })


def _fill(study: asc.Study, n: int, seed: int = 0, error: str = "RuntimeError: out of memory") -> None:
    """``n`` trials: every 5th failed (with ``error``), every 6th infeasible, the others complete."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        t = study.ask()
        assert t is not None
        if i % 5 == 2:
            study.tell(t, error=f"Traceback (most recent call last):\n{error}")
        elif i % 6 == 4:
            study.tell(t, {"latency_ms": 20.0 + i}, state="infeasible")
        else:
            study.tell(t, {"accuracy": float(rng.uniform(0.5, 0.95)), "latency_ms": float(rng.uniform(0.5, 9.5)),
                           "params_m": float(rng.uniform(1, 5))})


def _make(path: Path, name: str = "toy", n: int = N_TRIALS, **kw: Any) -> asc.Study:
    study = asc.create_study(kw.pop("space", _space()), objectives=[("accuracy", "max"), ("latency_ms", "min")],
                             constraints=["latency_ms<=9"], strategy="random", storage=str(path), seed=0, name=name,
                             metadata=kw.pop("metadata", {}))
    _fill(study, n, **kw)
    return study


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Iterator[tuple[Path, asc.Study]]:
    path = tmp_path_factory.mktemp("dash") / "toy.db"
    study = _make(path)
    yield path, study
    study.close()


@pytest.fixture(scope="module")
def toy_server(toy):
    server = serve(str(toy[0]), port=0).start()
    yield server
    server.close()


def _get(server: Any, path: str, method: str = "GET", headers: dict | None = None) -> tuple[int, dict, bytes]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def _api(server: Any, path: str) -> Any:
    status, _, body = _get(server, path)
    assert status == 200, (path, status, body[:200])
    return json.loads(body)


def _q(name: str) -> str:
    return urllib.parse.quote(name, safe="")


# --- the server, without a browser ---------------------------------------------------------------------
def test_binds_loopback_by_default_and_serves_only_its_assets(toy_server):
    assert toy_server.server_address[0] == "127.0.0.1"
    assert toy_server.url.startswith("http://127.0.0.1:")
    import inspect

    import plotly

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    status, headers, body = _get(toy_server, "/")
    assert status == 200 and b'data-testid="trial-count"' in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    status, headers, js = _get(toy_server, "/static/plotly.min.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert js == (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
    for asset in ("/static/app.js", "/static/draw.js", "/static/style.css"):
        assert _get(toy_server, asset)[0] == 200
    # offline: nothing the page loads comes from elsewhere, and the page builds its DOM without HTML parsing
    page = _get(toy_server, "/")[2].decode()
    assert "http://" not in page and "https://" not in page
    for js in ("app.js", "draw.js"):
        code = _get(toy_server, f"/static/{js}")[2].decode()
        assert "//cdn" not in code and "https://" not in code
        for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in code, (js, sink)


@pytest.mark.parametrize("path", [
    "/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd", "/static/..%2f..%2fetc%2fpasswd",
    "/static/%2E%2E/archscout/dashboard/server.py", "/../../etc/passwd", "//etc/passwd", "/etc/passwd",
    "/static/app.js/../../../etc/passwd", "/static/", "/static/index.html/..", "/static/plotly.min.js%00",
    "/static/APP.JS", "/static/./app.js", "/static//app.js", "/server.py", "/api/../static/app.js",
])
def test_path_traversal_and_unknown_paths_are_404(toy_server, path):
    status, _, body = _get(toy_server, path)
    assert status == 404, path
    assert b"root:" not in body and b"import" not in body


def test_only_get_and_never_writes(toy, toy_server):
    path, study = toy
    before = path.read_bytes()
    name = _q(study.name)
    for method in ("POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"):
        status, headers, _ = _get(toy_server, f"/api/trials?study={name}", method=method)
        assert status == 405, method
        assert headers.get("Allow") == "GET"
    assert _api(toy_server, "/api/count")["total"] == N_TRIALS
    assert path.read_bytes() == before
    # a page elsewhere that rebinds its DNS name to 127.0.0.1 gets nothing
    assert _get(toy_server, "/api/count", headers={"Host": "evil.example:80"})[0] == 403


def test_json_endpoints(toy, toy_server):
    study = toy[1]
    name = _q(study.name)
    studies = _api(toy_server, "/api/studies")
    assert [s["name"] for s in studies["studies"]] == ["toy"] and studies["total"] == N_TRIALS
    s = _api(toy_server, f"/api/study?name={name}")
    assert s["n_trials"] == N_TRIALS
    assert s["counts"] == {"complete": 8, "failed": 2, "infeasible": 2}
    assert s["front"] == [t.number for t in study.pareto_front()] and s["front"]
    assert [a["label"] for a in s["axes"]][:2] == ["width", "act"] and s["axes"][2]["ticktext"][0] == "none"
    assert s["metric_names"] == ["accuracy", "latency_ms", "params_m"]
    # the anytime hypervolume ends at the hypervolume of the front, with the reference point it reports
    front = np.array([[t.metrics["accuracy"], t.metrics["latency_ms"]] for t in study.pareto_front()])
    ref = to_minimization(np.array([s["anytime"]["ref"]]), ["max", "min"])[0]
    assert s["anytime"]["kind"] == "hypervolume" and len(s["anytime"]["x"]) == N_TRIALS
    assert s["anytime"]["y"][-1] == pytest.approx(hypervolume(to_minimization(front, ["max", "min"]), ref))
    assert all(a <= b for a, b in zip(s["anytime"]["y"], s["anytime"]["y"][1:]))
    trials = _api(toy_server, f"/api/trials?study={name}&after=0")
    assert [t["number"] for t in trials["trials"]] == list(range(N_TRIALS))
    assert _api(toy_server, f"/api/trials?study={name}&after={trials['seq']}")["trials"] == []
    failed = next(t for t in study.trials if t.state == "failed")
    d = _api(toy_server, f"/api/trial?study={name}&number={failed.number}")
    assert d["arch"] == str(failed.arch) and d["failure"] == "error" and d["error_full"] == failed.error
    assert d["error"] == "RuntimeError: out of memory"
    assert d["functional_hash"] == failed.arch.functional_hash()
    graph = next(p for p in d["drawing"] if p["kind"] == "graph")
    assert [e["label"] for e in graph["edges"]] == list(failed.arch["cell"]) and len(graph["nodes"]) == 4
    for bad, status in ((f"/api/study?name={_q('nope')}", 404), (f"/api/trial?study={name}&number=x", 400),
                        (f"/api/trial?study={name}&number=999", 404), ("/api/trials", 400), ("/api/nope", 404)):
        code, _, body = _get(toy_server, bad)
        assert code == status and "error" in json.loads(body), bad


def test_constraints_judge_zero_like_any_value(tmp_path):
    study = _make(tmp_path / "zero.db", n=0)
    for metrics in ({"accuracy": 0.7, "latency_ms": 0.0}, {"accuracy": 0.9, "latency_ms": 9.5}):
        t = study.ask()
        assert t is not None
        study.tell(t, metrics)
    with serve(str(tmp_path / "zero.db"), port=0) as server:
        server.start()
        trials = _api(server, "/api/trials?study=toy&after=0")["trials"]
        assert [t["feasible"] for t in trials] == [True, False]  # latency_ms <= 9
        assert _api(server, "/api/study?name=toy")["front"] == [t.number for t in study.pareto_front()] == [0]
    study.close()


def test_new_trials_since_an_event(tmp_path):
    path = tmp_path / "grow.db"
    study = _make(path, n=3)
    with serve(str(path), port=0) as server:
        server.start()
        seq = _api(server, "/api/trials?study=toy&after=0")["seq"]
        _fill(study, 2, seed=5)
        server.data.refresh(force=True)  # requests within REFRESH_S of the last read are answered from memory
        poll = _api(server, f"/api/poll?study=toy&after={seq}")
        assert poll["total"] == 5 and [t["number"] for t in poll["trials"]] == [3, 4]
        assert poll["summary"]["n_trials"] == 5
        assert "trials" not in _api(server, f"/api/poll?study=toy&after={poll['seq']}")
    study.close()


def test_postgresql_storage(postgres_url):
    study = _make(postgres_url, name="pg", n=5)
    try:
        with serve(postgres_url, port=0) as server:
            server.start()
            assert _api(server, "/api/count") == {"total": 5, "studies": {"pg": 5}}
            assert _api(server, "/api/study?name=pg")["front"] == [t.number for t in study.pareto_front()]
    finally:
        study.close()


def test_bad_input_is_one_clear_error(tmp_path, toy, monkeypatch):
    missing = tmp_path / "missing.db"
    with pytest.raises(StorageError, match="does not exist"):
        serve(str(missing), port=0)
    with pytest.raises(StorageError, match="does not exist"):
        serve(f"sqlite:///{missing}", port=0)
    assert not missing.exists()
    (tmp_path / "text.db").write_text("hello")
    with pytest.raises(StorageError, match="not an archscout storage"):
        serve(str(tmp_path / "text.db"), port=0)
    import sqlite3

    other = tmp_path / "other.db"  # a SQLite database of something else stays untouched
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    with pytest.raises(StorageError, match="not an archscout storage"):
        serve(str(other), port=0)
    assert other.read_bytes() == before
    with pytest.raises(StorageError, match="no study 'nope'"):
        serve(str(toy[0]), port=0, study="nope")
    with pytest.raises(ConfigError, match="port"):
        serve(str(toy[0]), port=70000)
    monkeypatch.setitem(sys.modules, "plotly", None)  # as if plotly were not installed
    with pytest.raises(OptionalDependencyError, match=r"pip install 'archscout\[dashboard\]'"):
        serve(str(toy[0]), port=0)


# --- the CLI -----------------------------------------------------------------------------------------
def _one_line_error(capsys, argv: list[str], match: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("archscout: error: ") and "\n" not in err and match in err, err


def test_cli_errors(tmp_path, toy, capsys):
    missing = tmp_path / "missing.db"
    _one_line_error(capsys, ["dashboard", str(missing)], "does not exist")
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    asc.create_storage(str(empty)).close()
    _one_line_error(capsys, ["dashboard", str(empty)], "holds no study")
    _one_line_error(capsys, ["dashboard", str(toy[0]), "--study", "nope"], "no study 'nope'")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        _one_line_error(capsys, ["dashboard", str(toy[0]), "--port", str(busy.getsockname()[1])], "in use")


def _default_sigint() -> None:
    """In the child, before exec: Ctrl+C as from a shell, whatever the test process has blocked or ignored (a
    blocked or ignored SIGINT is inherited across exec, and Python then never sees it)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_cli_serves_and_prints_its_url(toy):
    proc = subprocess.Popen([sys.executable, "-m", "archscout", "dashboard", str(toy[0]), "--port", "0", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            preexec_fn=_default_sigint)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert "http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() is not None else "")  # type: ignore[union-attr]
        url = urllib.parse.urlsplit(line.split()[2])
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        conn.request("GET", "/api/count")
        assert json.loads(conn.getresponse().read())["total"] == N_TRIALS
        conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)  # drains the pipes: a full pipe cannot block the child
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            raise AssertionError(f"the dashboard did not stop on SIGINT; its stderr: {err[-2000:]}; this process: "
                                 f"blocked {signal.pthread_sigmask(signal.SIG_BLOCK, [])}, "
                                 f"SIGINT handler {signal.getsignal(signal.SIGINT)!r}") from None
        assert proc.returncode == 0, err


def test_import_archscout_does_not_load_the_dashboard():
    code = ("import sys, archscout, archscout.cli; archscout.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m == 'plotly' or m.startswith(('plotly.', 'http.server', "
            "'archscout.dashboard.server', 'archscout.dashboard.data'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stderr


# --- the page in a browser ------------------------------------------------------------------------------
def _unavailable(reason: str) -> None:
    if os.environ.get("ARCHSCOUT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (ARCHSCOUT_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed; install it with: pip install playwright")
    exe = os.environ.get("ARCHSCOUT_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    if not exe:
        _unavailable("no Chromium found; install it with: apt-get install chromium (or set ARCHSCOUT_CHROMIUM)")
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-dev-shm-usage"])
    except Exception as e:
        pw.stop()
        _unavailable(f"Chromium at {exe} does not start ({str(e).splitlines()[0]}); install it with: apt-get install "
                     "chromium, or set ARCHSCOUT_CHROMIUM to a Chrome or Chromium executable")
    yield b
    b.close()
    pw.stop()


@pytest.fixture
def page(browser):
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, errors


def _count(page):
    return page.get_by_test_id("trial-count")


def _front_points(page):
    return page.locator("#front-plot .tracefront .point")  # plotly names a trace's group after its uid


def test_page_shows_the_trial_count(toy, toy_server, page):
    from playwright.sync_api import expect

    page.goto(toy_server.url)
    expect(_count(page)).to_have_text(str(N_TRIALS))
    expect(page.get_by_test_id("study-title")).to_have_text("toy")  # the only study opens by itself
    expect(page.locator("#trial-table tbody tr")).to_have_count(N_TRIALS)
    expect(_front_points(page)).to_have_count(len(toy[1].pareto_front()))
    expect(page.locator("#failed-list li")).to_have_count(2)
    expect(page.locator("#parcoords-plot .parcoords")).to_have_count(1)
    # sort by accuracy (descending on the second click) and filter by state
    page.locator("#trial-table th button[data-key='m:accuracy']").click()
    page.locator("#trial-table th button[data-key='m:accuracy']").click()
    best = max((t for t in toy[1].trials if t.state == "complete"), key=lambda t: t.metrics["accuracy"])
    expect(page.locator("#trial-table tbody tr").first).to_have_attribute("data-number", str(best.number))
    page.get_by_test_id("state-filter").select_option("failed")
    expect(page.locator("#trial-table tbody tr")).to_have_count(2)
    page.get_by_test_id("table-filter").fill("no such architecture")
    expect(page.locator("#trial-table tbody tr")).to_have_count(0)


_APPEND = """
import sys, time
import numpy as np
import archscout as asc
study = asc.load_study(sys.argv[1], "live")
for i in range(3):
    time.sleep(0.4)
    t = study.ask()
    study.tell(t, {"accuracy": 0.96 + 0.01 * i, "latency_ms": 0.1 + i})
study.close()
"""


def test_trials_added_by_a_running_search_appear_without_reload(tmp_path, page):
    from playwright.sync_api import expect

    path = tmp_path / "live.db"
    _make(path, name="live", n=3).close()
    with serve(str(path), port=0) as server:
        server.start()
        page.goto(server.url)
        expect(_count(page)).to_have_text("3")
        page.evaluate("window.__same_page = true")
        driver = subprocess.Popen([sys.executable, "-c", _APPEND, str(path)], cwd=REPO, stderr=subprocess.PIPE)
        try:
            expect(_count(page)).to_have_text("6")
            expect(page.locator("#trial-table tbody tr")).to_have_count(6)
            expect(_front_points(page)).to_have_count(3)  # the three new trials dominate every earlier one
        finally:
            assert driver.wait(timeout=60) == 0, driver.stderr.read()  # type: ignore[union-attr]
        assert page.evaluate("window.__same_page") is True  # never reloaded


def test_clicking_a_front_point_opens_its_trial(toy, toy_server, page):
    from playwright.sync_api import expect

    study = toy[1]
    page.goto(toy_server.url)
    points = _front_points(page)
    expect(points).to_have_count(len(study.pareto_front()))
    box = points.first.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # a real click on the plot
    expect(page.get_by_test_id("trial-title")).to_be_visible()
    # the front trace lists its points by latency (x), so the first point is the fastest front trial
    first = min(study.pareto_front(), key=lambda t: t.metrics["latency_ms"])
    expect(page.get_by_test_id("trial-number")).to_have_text(str(first.number))
    expect(page.get_by_test_id("trial-arch")).to_have_text(str(first.arch))
    assert page.url.endswith(f"/trial/{first.number}")
    expect(page.locator("#trial-front")).to_be_visible()
    expect(page.locator("#trial-metrics")).to_contain_text("accuracy")
    expect(page.locator("#trial-drawing svg.graph text.op")).to_have_count(6)  # the cell's six edges, with ops
    expect(page.locator("#trial-drawing svg.graph text.op").first).to_have_text(first.arch["cell"][0])


def test_study_text_is_shown_as_text_never_run(tmp_path, page):
    from playwright.sync_api import expect

    path = tmp_path / "xss.db"
    name = f"evil {XSS}"
    metric = "<svg onload=window.__pwned=2>"
    study = asc.create_study(_space(act=("<b>gelu", "<i>relu")), objectives=[("accuracy", "max"), ("lat", "min")],
                             strategy="random", storage=str(path), seed=0, name=name,
                             metadata={"note": "<script>window.__pwned=3</script>"})
    for i in range(6):
        t = study.ask()
        assert t is not None
        if i == 2:
            study.tell(t, error=f"ValueError: {XSS}<script>window.__pwned=4</script>")
        else:
            study.tell(t, {"accuracy": 0.5 + 0.05 * i, "lat": 10.0 - i, metric: 1.0})
    failed = study.trials[2]
    study.close()
    with serve(str(path), port=0) as server:
        server.start()
        page.goto(server.url)
        expect(page.get_by_test_id("study-title")).to_have_text(name)
        expect(page.locator("#study-settings")).to_contain_text("<script>window.__pwned=3</script>")
        expect(page.locator("#trial-table thead")).to_contain_text(metric)
        expect(page.locator("#trial-table tbody")).to_contain_text("act=<")
        expect(page.get_by_test_id("failed-list")).to_contain_text(XSS)
        # plotly draws hover text as HTML: the architecture's "<b>"/"<i>" stay literal text
        box = _front_points(page).first.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        expect(page.locator("#front-plot .hoverlayer")).to_contain_text("act=<")
        expect(page.locator("#parcoords-plot text", has_text="<b>gelu")).to_have_count(1)
        page.goto(server.url + f"#/study/{_q(name)}/trial/{failed.number}")
        expect(page.get_by_test_id("trial-error")).to_have_text(failed.error or "")
        expect(page.get_by_test_id("trial-arch")).to_have_text(str(failed.arch))
        page.wait_for_timeout(300)
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert page.locator("img").count() == 0
        assert page.locator("svg[onload], [onerror]").count() == 0
        assert page.locator("script").count() == 3  # plotly.min.js, draw.js and app.js
