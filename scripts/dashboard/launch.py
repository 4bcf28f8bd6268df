"""Start the dashboard as its own process (``python -m scripts.dashboard``) and wait for it.

Used by the screenshot command, the browser test and the benchmark, so each of them runs the
dashboard exactly as a person starts it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from emr_jobs.core.paths import REPO_ROOT


class DashboardProcess:
    """``python -m scripts.dashboard [args]`` on ``port``, output to ``log``."""

    def __init__(
        self,
        port: int,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.args = list(args)
        self.env = dict(os.environ if env is None else env)
        self.env["DASHBOARD_PORT"] = str(port)
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> DashboardProcess:
        out = open(self.log, "ab") if self.log else None  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "scripts.dashboard", *self.args],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL if out is None else out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            if out is not None:
                out.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the dashboard exited with code {self.process.returncode}"
                    + (f"; log:\n{self.tail()}" if self.log else "")
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"the dashboard did not answer on {self.url} within {timeout:.0f}s"
            + (f"; log:\n{self.tail()}" if self.log else "")
        )

    def tail(self, lines: int = 40) -> str:
        if not self.log or not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def stop(self, timeout: float = 60.0) -> int | None:
        """Ctrl-C, as a person would stop it (a demo then stops its job, producer, broker)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        code = self.process.returncode
        self.process = None
        return code

    def __enter__(self) -> DashboardProcess:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
