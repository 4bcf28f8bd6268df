"""The dashboard under a 10,000-vehicle fleet: bytes per second to one browser, server CPU,
event -> screen time.

A feeder thread writes contract-shaped ``vehicle`` events for ``vehicles`` vehicles, each one
every ``tick_seconds`` (the simulator's tick), spread evenly over the tick, moving along the
route; each event's time is the moment it is produced. The dashboard runs as its own process
(``python -m scripts.dashboard``) against fresh topics. One server-sent-events client counts the
bytes it receives and, for every position row, receive time - event time (event -> SSE). With
``browser=True`` a headless chromium shows the page meanwhile, and the page's own record gives
event -> painted (after the frame that draws the markers) and the time it spends applying a
frame. Server CPU is the process's user + system time over the window (psutil), in percent of
one core. Timings are reported, never judged: this never fails on a number.

    python -m scripts.bench.dashboard [--vehicles 10000] [--seconds 30] [--no-browser]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson

from emr_jobs.core.contracts import ALL_STREAMS, CONTRACTS, format_timestamp
from emr_jobs.core.contracts.roads import sections
from emr_jobs.core.kafka import KafkaSettings
from producer.kafka_config import producer_config
from scripts.bench.stats import percentile
from scripts.dashboard.launch import DashboardProcess
from scripts.local_broker import EmbeddedKafka, free_port
from scripts.topics import TopicSpec, ensure_topics

log = logging.getLogger("bench.dashboard")


# --- the fleet ---------------------------------------------------------------------------------


class Fleet(threading.Thread):
    """``vehicles`` vehicles on the route, each reporting every ``tick_seconds``."""

    def __init__(self, kafka: KafkaSettings, vehicles: int, tick_seconds: float) -> None:
        super().__init__(name="bench-fleet", daemon=True)
        from confluent_kafka import Producer

        self.kafka = kafka
        self.vehicles = vehicles
        self.tick = tick_seconds
        self.producer = Producer(producer_config(kafka, overrides={"linger.ms": 5}))
        self.stop_event = threading.Event()
        self.sent = 0
        route = sections()
        self.route = route
        self.length_km = route[-1].end_km
        # Each vehicle starts somewhere along the route and drives at its own speed.
        self.km = [self.length_km * (i * 0.618034 % 1.0) for i in range(vehicles)]
        self.speed = [50.0 + (i * 37 % 70) for i in range(vehicles)]

    def position(self, km: float) -> tuple[float, float]:
        lo, hi = 0, len(self.route) - 1
        while lo < hi:  # the section holding route kilometre ``km``
            mid = (lo + hi + 1) // 2
            if self.route[mid].start_km <= km:
                lo = mid
            else:
                hi = mid - 1
        s = self.route[lo]
        t = min(1.0, max(0.0, (km - s.start_km) / s.length_km if s.length_km else 0.0))
        return (
            s.start_lat + t * (s.end_lat - s.start_lat),
            s.start_lon + t * (s.end_lon - s.start_lon),
        )

    def event(self, i: int) -> bytes:
        self.km[i] = (self.km[i] + self.speed[i] * self.tick / 3600) % self.length_km
        lat, lon = self.position(self.km[i])
        now = time.time()
        return orjson.dumps(
            {
                "id": str(uuid.uuid4()),
                "schemaVersion": 1,
                "deviceId": f"vehicle-{i + 1:05d}",
                "timestamp": format_timestamp(datetime.fromtimestamp(now, UTC)),
                "location": {"latitude": round(lat, 6), "longitude": round(lon, 6)},
                "speed": self.speed[i],
                "direction": 315.0,
                "make": "Ford",
                "model": "Focus",
                "year": 2020,
                "fuelType": "Petrol",
                "fuelLevel": 60.0,
                "odometerKm": round(self.km[i], 3),
                "vehicleType": "car",
            }
        )

    def run(self) -> None:
        topic = self.kafka.topic("vehicle")
        slots = 100  # sends per tick: vehicles / slots events every tick / slots seconds
        per_slot = math.ceil(self.vehicles / slots)
        started = time.monotonic()
        n = 0
        while not self.stop_event.is_set():
            for _ in range(per_slot):
                i = n % self.vehicles
                n += 1
                while True:
                    try:
                        self.producer.produce(
                            topic, key=f"vehicle-{i + 1:05d}", value=self.event(i)
                        )
                        break
                    except BufferError:
                        self.producer.poll(0.05)
                self.sent += 1
            self.producer.poll(0)
            due = started + (n / per_slot) * self.tick / slots
            delay = due - time.monotonic()
            if delay > 0:
                self.stop_event.wait(delay)
        self.producer.flush(10)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(30)


# --- one SSE client ----------------------------------------------------------------------------


class Listener(threading.Thread):
    """Reads ``/api/stream``; while ``recording``, counts bytes and event -> receive times."""

    def __init__(self, url: str) -> None:
        super().__init__(name="bench-sse", daemon=True)
        self.url = url
        self.recording = False
        self.bytes = 0
        self.frames = 0
        self.rows = 0
        self.latencies_ms: list[float] = []
        self.repeats = 0  # a vehicle twice in one frame (must stay 0)
        self.frame_times: list[float] = []  # when the server sent each positions frame, ms
        self.snapshot = threading.Event()
        self.error: str | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        buffer = bytearray()
        try:
            with httpx.stream("GET", f"{self.url}/api/stream", timeout=None) as response:
                for chunk in response.iter_raw():
                    received = time.time() * 1000
                    if self._halt.is_set():
                        return
                    if self.recording:
                        self.bytes += len(chunk)
                    buffer += chunk
                    while (end := buffer.find(b"\n\n")) >= 0:  # one event per blank line
                        block = bytes(buffer[:end])
                        del buffer[: end + 2]
                        self._event(block, received)
        except Exception as err:  # noqa: BLE001 - reported in the results
            if not self._halt.is_set():
                self.error = f"{type(err).__name__}: {err}"

    def _event(self, block: bytes, received: float) -> None:
        name, data = "", []
        for line in block.split(b"\n"):
            if line.startswith(b"event: "):
                name = line[7:].decode()
            elif line.startswith(b"data: "):
                data.append(line[6:])
        if name == "snapshot":
            self.snapshot.set()
        if name != "positions" or not self.recording:
            return
        msg = orjson.loads(b"\n".join(data))
        t0 = msg["t0"]
        ids = [r[0] for r in msg["v"]]
        self.repeats += len(ids) - len(set(ids))
        for row in msg["v"]:
            self.latencies_ms.append(received - (t0 + row[4]))
        self.frame_times.append(msg["sent"])  # the server's clock: its spacing, not ours
        self.frames += 1
        self.rows += len(ids)

    def stop(self) -> None:
        self._halt.set()


# --- the measurement ---------------------------------------------------------------------------


def _summary(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "n": 0}
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values),
        "n": len(values),
    }


def measure(
    bootstrap: str,
    *,
    vehicles: int = 10_000,
    seconds: float = 30.0,
    tick_seconds: float = 5.0,
    browser: bool = True,
    work: Path | None = None,
) -> dict:
    """Run the dashboard against ``vehicles`` vehicles on the broker at ``bootstrap`` and
    measure for ``seconds``. Returns plain numbers (see the module docstring)."""
    import psutil

    work = Path(work or tempfile.mkdtemp(prefix="bench-dashboard-"))
    work.mkdir(parents=True, exist_ok=True)
    prefix = f"bench-dashboard-{uuid.uuid4().hex[:8]}"
    kafka = KafkaSettings(
        bootstrap_servers=bootstrap,
        topics={s: f"{prefix}-{CONTRACTS[s].default_topic}" for s in ALL_STREAMS},
    )
    ensure_topics(kafka, TopicSpec(partitions=3))
    env = {
        **kafka.to_env(),
        "LAKE_URI": (work / "lake").as_uri(),
        "DASHBOARD_LAKE_SECONDS": "3600",
    }
    with DashboardProcess(
        free_port(), env={**os.environ, **env}, log=work / "dashboard.log"
    ).start() as dash:
        listener = Listener(dash.url)
        listener.start()
        listener.snapshot.wait(30)
        fleet = Fleet(kafka, vehicles, tick_seconds)
        fleet.start()
        log.info(
            "dashboard bench: %d vehicles, one event each every %.0f s (%.0f events/s); "
            "warming up for %.0f s",
            vehicles,
            tick_seconds,
            vehicles / tick_seconds,
            tick_seconds * 2,
        )
        time.sleep(tick_seconds * 2)  # every vehicle on the map, the JIT-free path warm
        page_result: dict = {}
        pw = page_ctx = None
        if browser:
            pw, page_ctx = _open_page(dash.url)
        proc = psutil.Process(dash.pid)
        cpu0, wall0, sent0 = proc.cpu_times(), time.monotonic(), fleet.sent
        listener.recording = True
        if page_ctx is not None:
            page_ctx.evaluate("window.dashboard.latency.length = 0")
        log.info("measuring for %.0f s", seconds)
        probes = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if page_ctx is not None:  # is the page's main thread free to answer?
                started = time.perf_counter()
                page_ctx.evaluate("1")
                probes.append((time.perf_counter() - started) * 1000)
                time.sleep(0.25)
            else:
                time.sleep(0.5)
        listener.recording = False
        wall = time.monotonic() - wall0
        cpu1 = proc.cpu_times()
        rss = proc.memory_info().rss
        produced = fleet.sent - sent0
        if page_ctx is not None:
            page_result = _page_numbers(page_ctx, probes)
            _close_page(pw, page_ctx)
        fleet.stop()
        listener.stop()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    gaps = [b - a for a, b in zip(listener.frame_times, listener.frame_times[1:], strict=False)]
    result = {
        "vehicles": vehicles,
        "tick_seconds": tick_seconds,
        "seconds": round(wall, 1),
        "events_per_second": produced / wall,
        "sse_bytes_per_second": listener.bytes / wall,
        "sse_frames_per_second": listener.frames / wall,
        "rows_per_frame": listener.rows / listener.frames if listener.frames else 0.0,
        "rows_per_event": listener.rows / produced if produced else 0.0,
        "bytes_per_row": listener.bytes / listener.rows if listener.rows else 0.0,
        "repeated_vehicle_in_a_frame": listener.repeats,
        "frame_interval_ms": _summary(gaps) | {"min": min(gaps, default=None)},
        "event_to_sse_ms": _summary(listener.latencies_ms),
        "server_cpu_percent": 100.0 * cpu / wall,
        "server_rss_mb": rss / 1e6,
        "sse_error": listener.error,
    }
    if page_result:
        result["browser"] = page_result
    return result


def _open_page(url: str):
    from playwright.sync_api import sync_playwright

    from scripts.dashboard.browser import chromium_path, launch, wait_for

    if chromium_path() is None:
        log.warning("no chromium: the browser part is skipped (scripts/setup_browser.sh)")
        return None, None
    pw = sync_playwright().start()
    browser = launch(pw)
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(url)
    wait_for(page, "window.dashboard && window.dashboard.markers.size > 0", 60)
    return pw, page


def _page_numbers(page, probes: list[float]) -> dict:
    samples = page.evaluate("window.dashboard.latency")
    return {
        "markers": page.evaluate("window.dashboard.markers.size"),
        "frames": len(samples),
        "event_to_receive_ms": _summary([s[0] for s in samples if s[0] is not None]),
        "event_to_painted_ms": _summary([s[1] for s in samples if s[1] is not None]),
        "apply_frame_ms": _summary([s[2] for s in samples]),
        "main_thread_probe_ms": _summary(probes),
    }


def _close_page(pw, page) -> None:
    with contextlib.suppress(Exception):
        page.context.browser.close()
    with contextlib.suppress(Exception):
        pw.stop()


def format_result(r: dict) -> str:
    def ms(s: dict) -> str:
        if not s.get("n"):
            return "n/a"
        return f"p50 {s['p50']:.0f} / p95 {s['p95']:.0f} / p99 {s['p99']:.0f} ms (n={s['n']})"

    lines = [
        f"dashboard, {r['vehicles']:,} vehicles (one event each per {r['tick_seconds']:g} s), "
        f"{r['seconds']:.0f} s measured",
        f"  vehicle events in           {r['events_per_second']:,.0f} /s",
        f"  SSE to one client           {r['sse_bytes_per_second'] / 1000:,.1f} kB/s, "
        f"{r['sse_frames_per_second']:.2f} frames/s, {r['rows_per_frame']:,.0f} rows/frame, "
        f"{r['bytes_per_row']:.1f} bytes/row",
        f"  coalescing                  {r['rows_per_event']:.2f} rows per event; a vehicle "
        f"twice in one frame: {r['repeated_vehicle_in_a_frame']} times; frames "
        f"{_gap(r['frame_interval_ms'])} apart",
        f"  event -> SSE receive        {ms(r['event_to_sse_ms'])}",
        f"  server CPU                  {r['server_cpu_percent']:.0f}% of one core, "
        f"RSS {r['server_rss_mb']:.0f} MB",
    ]
    b = r.get("browser")
    if b:
        lines += [
            f"  browser: markers            {b['markers']:,}",
            f"  event -> painted            {ms(b['event_to_painted_ms'])}",
            f"  applying one frame          {ms(b['apply_frame_ms'])}",
            f"  page answers (main thread)  {ms(b['main_thread_probe_ms'])}",
        ]
    if r.get("sse_error"):
        lines.append(f"  SSE client error: {r['sse_error']}")
    return "\n".join(lines)


def _gap(s: dict) -> str:
    if not s.get("n"):
        return "n/a"
    return f"{s['min']:.0f}-{s['max']:.0f} ms (p50 {s['p50']:.0f})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--tick",
        type=float,
        default=5.0,
        help="seconds between a vehicle's events (5, the simulator's tick)",
    )
    parser.add_argument("--no-browser", action="store_true", help="SSE client only")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # librdkafka retries the idempotent producer's id while a fresh broker loads; not news.
    logging.getLogger("producer.librdkafka").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        log.info("starting an embedded Kafka broker")
        with EmbeddedKafka(Path(tmp) / "broker", port=free_port()) as broker:
            result = measure(
                broker.bootstrap_servers,
                vehicles=args.vehicles,
                seconds=args.seconds,
                tick_seconds=args.tick,
                browser=not args.no_browser,
                work=Path(tmp),
            )
    print(format_result(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
