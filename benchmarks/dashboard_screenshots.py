"""Screenshots of ``archscout dashboard`` for docs/dashboard.md, taken with Playwright and Chromium.

    python benchmarks/dashboard_screenshots.py runs/nb201-pixel3.db [--study NAME] [--out docs/img]
    python benchmarks/dashboard_screenshots.py runs/nb201-pixel3.db --make-nb201 \\
        --table ../shared/data/nas-bench-201/nb201_cifar10.csv \\
        --latency-table ../shared/data/nb201-latency-help/nb201_latency_help.csv

With ``--make-nb201`` (and a storage that does not exist yet) it first records the study the docs show: NB201 on
CIFAR-10, validation accuracy (max) against Pixel 3 latency (min) from the latency table as a cheap cost model,
constraint ``pixel3_ms <= 25`` (candidates over it are recorded infeasible, never trained), NSGA-II, 150 trials,
seed 0. Then it serves the storage on a free port, opens the study's page (``dashboard-front.png``), clicks the
first point of the Pareto front and shoots that trial's page (``dashboard-trial.png``).

Needs ``pip install 'archscout[dashboard]' playwright`` and a Chromium (``apt-get install chromium``, or
``ARCHSCOUT_CHROMIUM=/path/to/chrome``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_nb201(storage: str, table: str, latency_table: str, budget: int = 150) -> str:
    """Record the two-objective NB201 study in ``storage`` (a new SQLite file); returns its name."""
    import archscout as asc

    bench = asc.create_benchmark("nb201", table=table, report="test_acc_200ep", cost_table=latency_table,
                                 cost_columns=["pixel3_ms"])
    study = asc.create_study(
        bench.space, objectives=[("valid_acc_200ep", "max", "%"), ("pixel3_ms", "min", "ms")],
        constraints=["pixel3_ms<=25"], cost_models={"pixel3_ms": bench.cost_model("pixel3_ms")},
        strategy="nsga2", storage=storage, seed=0, name="nb201-pixel3",
        metadata={"benchmark": "nb201 cifar10", "device": "pixel3"},
    )
    study.optimize(bench.evaluator(metrics=["valid_acc_200ep", "test_acc_200ep"]), budget=budget)
    study.close()
    return study.name


def shoot(storage: str, out: Path, study: str | None = None) -> list[Path]:
    """Serve ``storage`` and save ``dashboard-front.png`` and ``dashboard-trial.png`` in ``out``."""
    from playwright.sync_api import expect, sync_playwright

    from archscout.dashboard import serve

    exe = os.environ.get("ARCHSCOUT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        sys.exit("no Chromium found: apt-get install chromium, or set ARCHSCOUT_CHROMIUM")
    out.mkdir(parents=True, exist_ok=True)
    server = serve(storage, port=0, study=study).start()
    name = study or server.data.studies()[0]["name"]
    front_png, trial_png = out / "dashboard-front.png", out / "dashboard-trial.png"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-dev-shm-usage"])
            page = browser.new_page(viewport={"width": 1400, "height": 1350}, device_scale_factor=1)
            expect.set_options(timeout=60_000)
            page.goto(server.url + "#/study/" + urllib.parse.quote(name, safe=""))
            points = page.locator("#front-plot .tracefront .point")
            expect(points.first).to_be_visible()
            expect(page.locator("#parcoords-plot .parcoords")).to_have_count(1)
            page.wait_for_timeout(1500)  # plotly's transitions
            page.screenshot(path=str(front_png), full_page=False)
            box = points.nth(points.count() // 2).bounding_box()
            assert box is not None
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            expect(page.locator("#trial-drawing svg.graph")).to_be_visible()
            page.set_viewport_size({"width": 1400, "height": 880})  # the trial page is short: no blank below it
            page.wait_for_timeout(1000)
            page.screenshot(path=str(trial_png), full_page=True)
            browser.close()
    finally:
        server.close()
    return [front_png, trial_png]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("storage", help="the study storage (SQLite file or postgresql:// URL)")
    ap.add_argument("--study", help="study to show (default: the storage's first)")
    ap.add_argument("--out", default=str(REPO / "docs" / "img"), help="folder of the PNG files (default docs/img)")
    ap.add_argument("--make-nb201", dest="make", action="store_true",
                    help="first record the NB201 accuracy-vs-Pixel-3-latency study in STORAGE (a new file)")
    ap.add_argument("--table", help="nb201_cifar10.csv (with --make-nb201)")
    ap.add_argument("--latency-table", dest="latency_table", help="nb201_latency_help.csv (with --make-nb201)")
    ap.add_argument("--budget", type=int, default=150, help="trials of the recorded study (with --make-nb201)")
    ns = ap.parse_args()
    study = ns.study
    if ns.make:
        if not ns.table or not ns.latency_table:
            ap.error("--make-nb201 needs --table and --latency-table")
        if os.path.exists(ns.storage):
            ap.error(f"{ns.storage} exists; --make-nb201 records a new study in a new file")
        study = make_nb201(ns.storage, ns.table, ns.latency_table, ns.budget)
    for path in shoot(ns.storage, Path(ns.out), study):
        print(path)


if __name__ == "__main__":
    main()
