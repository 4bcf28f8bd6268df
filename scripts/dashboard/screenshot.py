"""``python -m scripts.dashboard screenshot``: regenerate the README's picture of the dashboard.

Runs ``python -m scripts.dashboard --demo`` (broker, real-time simulation, the job) on a free
port, lets live data flow for ``--wait`` seconds, opens the page in Debian's chromium through
Playwright and saves a PNG (default ``scripts/dashboard/screenshot.png``).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import httpx

from scripts.dashboard.browser import MISSING, chromium_path, launch, wait_for
from scripts.dashboard.demo import DEMO_DIR
from scripts.dashboard.launch import DashboardProcess
from scripts.local_broker import free_port

log = logging.getLogger("dashboard.screenshot")

DEFAULT_OUT = Path(__file__).resolve().parent / "screenshot.png"
VIEWPORT = {"width": 1600, "height": 1000}


def take_screenshot(args: argparse.Namespace) -> int:
    from playwright.sync_api import sync_playwright

    if chromium_path() is None:
        print(f"error: {MISSING}")
        return 2
    out = Path(args.out) if args.out else DEFAULT_OUT
    port = free_port()
    # Four times real time, from 10 simulated minutes ago: the fleet spreads out along the
    # route and the charts fill, while event time stays behind the wall clock (it catches up
    # after 200 s, later than the picture is taken). 60 vehicles keep the job on time here.
    speedup = args.speedup or 4.0
    rewind = args.rewind if args.rewind is not None else 10.0
    demo_args = [
        "--demo",
        "--vehicles",
        str(args.vehicles or 60),
        "--speedup",
        str(speedup),
        "--rewind",
        str(rewind),
    ]
    if args.no_job:
        demo_args.append("--no-job")
    DEMO_DIR.parent.mkdir(parents=True, exist_ok=True)
    log_file = DEMO_DIR.parent / "dashboard-screenshot.log"
    log_file.unlink(missing_ok=True)
    log.info("starting the dashboard demo on port %d (log %s)", port, log_file)
    with DashboardProcess(port, demo_args, log=log_file).start(timeout=180) as dash:
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:
            time.sleep(min(15.0, max(0.0, deadline - time.monotonic())))
            state = httpx.get(f"{dash.url}/api/state", timeout=10).json()
            job = state["health"].get("job", {})
            log.info(
                "live data: %d vehicles, %d incidents, %d alerts, %d sections with road "
                "conditions; job: %s; %.0f s to go",
                len(state["positions"]["v"]),
                len(state["incidents"]),
                len(state["alerts"]),
                len(state["conditions"]),
                job.get("state"),
                max(0.0, deadline - time.monotonic()),
            )
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(dash.url)
            wait_for(page, "window.dashboard && window.dashboard.markers.size > 0", 30)
            page.click('a[data-view="fleet"]')  # the fleet, not the whole route
            page.wait_for_timeout(3_000)  # two more position frames and a health update
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out))
            browser.close()
    log.info("saved %s", out)
    return 0
