"""Peak resident memory of the producer and of the job's driver.

The producer runs as a subprocess exactly as operators start it (``producer.cli``); the child
reports its own high-water mark (``VmHWM``), which no sampling interval can miss. (Not
``getrusage``: Linux carries ``ru_maxrss`` across ``exec``, so a child forked from a big parent
would report the parent's peak.) The job's
driver is a process tree (``spark-submit`` -> the JVM -> the Python driver); a sampler thread
polls it with psutil.

    python -m scripts.bench.memory [producer flags...]    # runs the CLI, prints the peak RSS
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import psutil

from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.paths import REPO_ROOT

MARKER = "BENCH_PEAK_RSS "
# JVM thread names (Linux keeps the first 15 characters) -> what the thread does.
THREAD_GROUPS = (
    ("C1 CompilerThre", "JIT compiler"),
    ("C2 CompilerThre", "JIT compiler"),
    ("Executor task l", "Spark tasks"),
    ("stream executio", "query threads (planning, code generation, commits)"),
    ("GC Thread", "GC"),
    ("G1 ", "GC"),
)


def producer_peak_rss(
    settings: KafkaSettings, cli_args: Sequence[str], timeout: float = 600
) -> int:
    """Peak RSS in bytes of ``smartcity-producer <cli_args>`` sending to ``settings``."""
    env = {**os.environ, **settings.to_env()}
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO_ROOT), env.get("PYTHONPATH")] if p)
    result = subprocess.run(
        [sys.executable, "-m", "scripts.bench.memory", *cli_args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    for line in result.stdout.splitlines():
        if line.startswith(MARKER):
            doc = json.loads(line.removeprefix(MARKER))
            if doc["exit_code"] != 0:
                break
            return int(doc["peak_rss_bytes"])
    raise RuntimeError(f"producer run failed (exit {result.returncode}):\n{result.stderr[-2000:]}")


class TreeSampler(threading.Thread):
    """Samples the RSS of a process and its descendants until stopped; keeps the peak per role
    (``jvm``: java processes; ``python``: the Python driver and any Python workers) and of the
    two together."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peaks: dict[str, int] = {"jvm": 0, "python": 0, "total": 0}
        self.cpu_seconds: dict[int, tuple[str, float]] = {}  # pid -> (role, last CPU seen)
        self.thread_cpu: dict[tuple[int, str], tuple[str, float]] = {}  # JVM threads
        self._tick = os.sysconf("SC_CLK_TCK")
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop_event.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            by_role = {"jvm": 0, "python": 0}
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                    cpu = proc.cpu_times()
                    # Not proc.name(): psutil caches it, and spark-submit execs into java.
                    comm = Path(f"/proc/{proc.pid}/comm").read_text().strip()
                except (psutil.Error, OSError):
                    continue
                role = "jvm" if comm.startswith("java") else "python"
                if role == "python" and not comm.startswith("python"):
                    continue  # the spark-submit launcher script
                by_role[role] += rss
                self.cpu_seconds[proc.pid] = (role, cpu.user + cpu.system)
                if role == "jvm":
                    self._sample_threads(proc.pid)
            for role, rss in by_role.items():
                self.peaks[role] = max(self.peaks[role], rss)
            self.peaks["total"] = max(self.peaks["total"], sum(by_role.values()))
            self._stop_event.wait(self.interval)

    def stop(self) -> dict[str, int]:
        self._stop_event.set()
        self.join(5)
        return dict(self.peaks)

    def _sample_threads(self, pid: int) -> None:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            return
        for task in tasks:
            try:
                name = (task / "comm").read_text().strip()
                stat = (task / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()  # utime, stime: fields 14, 15
            seconds = (int(fields[11]) + int(fields[12])) / self._tick
            self.thread_cpu[(pid, task.name)] = (name, seconds)

    def jvm_threads(self) -> dict[str, float]:
        """CPU seconds of the JVM's threads by what they do (threads that ended between two
        samples lose their last interval)."""
        out: dict[str, float] = {}
        for name, seconds in self.thread_cpu.values():
            group = next(
                (label for prefix, label in THREAD_GROUPS if name.startswith(prefix)), "other"
            )
            out[group] = out.get(group, 0.0) + seconds
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds (user + system) each role had used at the last sample."""
        out = {"jvm": 0.0, "python": 0.0}
        for role, seconds in self.cpu_seconds.values():
            out[role] += seconds
        return out


def peak_rss_self() -> int:
    """This process's peak resident set size in bytes since it started (``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(argv: Sequence[str] | None = None) -> int:
    from producer.cli import main as producer_main

    code = producer_main(list(sys.argv[1:] if argv is None else argv))
    print(MARKER + json.dumps({"peak_rss_bytes": peak_rss_self(), "exit_code": code}), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
