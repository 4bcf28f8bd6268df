"""Debian's chromium, driven by Playwright for Python (its own browser download cannot work here).

``scripts/setup_browser.sh`` installs it; ``CHROMIUM_PATH`` points elsewhere if needed.
"""

from __future__ import annotations

import os
import shutil

MISSING = (
    "chromium is not installed (no executable at CHROMIUM_PATH, or `chromium` on PATH); "
    "run `bash scripts/setup_browser.sh`"
)


def chromium_path() -> str | None:
    explicit = os.environ.get("CHROMIUM_PATH", "").strip()
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def launch(playwright, *, headless: bool = True):
    """A headless chromium through Playwright, with ``executable_path`` set to the system one."""
    path = chromium_path()
    if path is None:
        raise FileNotFoundError(MISSING)
    return playwright.chromium.launch(
        executable_path=path,
        headless=headless,
        # /dev/shm is small in containers; GPU is absent.
        args=["--disable-dev-shm-usage", "--disable-gpu", "--no-first-run"],
    )


def wait_for(page, expression: str, timeout: float = 30.0, every: float = 0.2) -> object:
    """Poll ``expression`` in the page until it is truthy; return its value.

    Playwright's ``wait_for_function`` polls by evaluating a string inside the page, which the
    dashboard's Content-Security-Policy forbids (no ``unsafe-eval``), and the tests keep that
    policy on rather than bypass it.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{expression!r} still false after {timeout:.0f}s")
        time.sleep(every)
