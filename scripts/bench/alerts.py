"""The alert path's latency, road-condition freshness and CPU, with the lake writer running.

One continuous run of the real job per phase, each on fresh topics and a fresh lake:

``off``
    the lake writer alone (``ALERTS_ENABLED=false``) at ``rate`` events/s: the CPU baseline;
``on``
    the whole job (lake writer and the three alert queries) at the same rate.

The load is a 10,000-vehicle fleet's events, paced at ``rate``, each stamped with the moment it
is sent, so event time is wall-clock time (as with real sensors). In the ``on`` phase a probe
incident (an Active fire at a random motorway spot, a new incident id each) is sent every
``probe_every`` seconds; a consumer on the ``alerts`` topic notes when each probe's alert
arrives. Event -> alert latency is arrival minus send, on this machine's one clock. Every other
alert that an event raised at once (not the stopped-vehicle rule, which waits by design) gives
arrival minus its event time too. Road-condition freshness is a window's arrival minus the
window's start: its oldest data's age when it is published, against the target
``window + watermark + 2 s``.

CPU is the job's process tree (JVM and Python workers) per wall second over the measured span,
sampled by ``scripts.bench.memory.TreeSampler``; the alert path's cost is ``on`` minus ``off``.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Consumer

from emr_jobs.alerts import QUERIES
from emr_jobs.core.contracts import format_timestamp, parse_timestamp
from emr_jobs.core.contracts.roads import sections
from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.settings import duration_seconds
from emr_jobs.settings import AlertSettings
from producer.kafka_producer import send_events
from producer.simulator import Event
from scripts.bench.job_rate import JobProcess, checkpoint_batches
from scripts.bench.producer_rate import fleet_events
from scripts.bench.stats import percentile

FLEET = 10_000


@dataclass
class Arrivals:
    """What a consumer thread saw on the derived topics, with local arrival times."""

    probes: dict[str, float] = field(default_factory=dict)  # incidentId -> arrival (epoch s)
    alerts: list[tuple[dict, float]] = field(default_factory=list)
    conditions: list[tuple[dict, float]] = field(default_factory=list)


class Listener(threading.Thread):
    def __init__(self, settings: KafkaSettings) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.arrivals = Arrivals()
        self.stop_event = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.bootstrap_servers,
                "group.id": f"bench-alerts-{uuid.uuid4()}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
            }
        )
        alerts, conditions = self.settings.topic("alerts"), self.settings.topic("road_conditions")
        consumer.subscribe([alerts, conditions], on_assign=lambda *_: self.ready.set())
        try:
            while not self.stop_event.is_set():
                message = consumer.poll(0.05)
                if message is None or message.error():
                    continue
                now = time.time()
                raw = message.value()
                if raw is None:  # the job never writes tombstones to these topics
                    raise RuntimeError(f"a record without a value on {message.topic()}")
                value = json.loads(raw)
                if message.topic() == conditions:
                    self.arrivals.conditions.append((value, now))
                    continue
                self.arrivals.alerts.append((value, now))
                incident = value.get("incidentId") or ""
                if incident.startswith("PROBE-") and value.get("rule") == "incident":
                    self.arrivals.probes.setdefault(incident, now)
        finally:
            consumer.close()


def _stamped(events: Iterator[Event]) -> Iterator[Event]:
    """Each event with its event time set to the moment it is handed to the producer."""
    for event in events:
        payload = dict(event.payload)
        payload["timestamp"] = format_timestamp(datetime.now(UTC))
        yield replace(event, payload=payload)


def _probe(n: int, rng: random.Random, motorway: list) -> tuple[str, Event]:
    section = rng.choice(motorway)
    t = rng.random()
    lat = section.start_lat + t * (section.end_lat - section.start_lat)
    lon = section.start_lon + t * (section.end_lon - section.start_lon)
    incident = f"PROBE-{n:06d}"
    payload = {
        "id": str(uuid.uuid4()),
        "schemaVersion": 1,
        "deviceId": "bench-probe",
        "timestamp": format_timestamp(datetime.now(UTC)),
        "location": {"latitude": lat, "longitude": lon},
        "incidentId": incident,
        "type": "Fire",
        "status": "Active",
        "description": "benchmark probe",
    }
    return incident, Event("emergency", "bench-probe", datetime.now(UTC), payload)


@dataclass
class Load:
    rate: float
    seconds: float
    probe_every: float | None
    sent_probes: dict[str, float] = field(default_factory=dict)  # incidentId -> send (epoch s)
    start: float = 0.0
    end: float = 0.0
    sent: int = 0


def _paced(load: Load, ready) -> Iterator[Event]:
    """Warm-up at a tenth of the rate until ``ready()``, then ``rate`` for ``seconds``."""
    source = _stamped(fleet_events(FLEET, 10**9))
    rng = random.Random(11)
    motorway = [s for s in sections() if s.road_class == "motorway"]
    began, n = time.monotonic(), 0
    while not ready():
        due = int((time.monotonic() - began) * load.rate / 10)
        while n < due:
            n += 1
            yield next(source)
        time.sleep(0.01)
    load.start = time.time()
    began, n, probes, next_probe = time.monotonic(), 0, 0, 0.0
    while (elapsed := time.monotonic() - began) < load.seconds:
        if load.probe_every is not None and elapsed >= next_probe:
            incident, event = _probe(probes, rng, motorway)
            load.sent_probes[incident] = time.time()
            probes += 1
            next_probe += load.probe_every
            yield event
        due = int(elapsed * load.rate)
        while n < due:
            n += 1
            yield next(source)
        time.sleep(0.002)
    load.end = time.time()
    load.sent = n


def _cpu_seconds(job: JobProcess) -> float:
    sampler = job.sampler
    return sum(cpu for _role, cpu in sampler.cpu_seconds.values()) if sampler else 0.0


def run_phase(
    settings: KafkaSettings,
    lake_dir: Path,
    log_dir: Path,
    *,
    alerts: bool,
    rate: float,
    seconds: float,
    probe_every: float | None,
    warm_timeout: float = 240.0,
) -> dict:
    """One continuous run of the job under load; figures of the measured span."""
    env = {"ALERTS_ENABLED": "true" if alerts else "false"}
    job = JobProcess(settings, lake_dir, log_dir, env=env).start()
    listener = Listener(settings)
    listener.start()
    load = Load(rate, seconds, probe_every if alerts else None)
    cpu: dict[str, float] = {}
    deadline = time.monotonic() + warm_timeout

    def ready() -> bool:
        if not job.running():
            raise RuntimeError(f"the job stopped during the warm-up:\n{job.stderr_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the job was not warm after {warm_timeout:.0f}s")
        lake_ok = len([b for b in checkpoint_batches(lake_dir, settings) if b.rows]) >= 2
        alerts_ok = not alerts or all(
            len(list((lake_dir / "checkpoints" / q / "commits").glob("[0-9]*"))) >= 2
            for q in QUERIES
        )
        if lake_ok and alerts_ok and listener.ready.is_set() and "start" not in cpu:
            cpu["start"], cpu["t0"] = _cpu_seconds(job), time.monotonic()
            return True
        return False

    try:
        report = send_events(_paced(load, ready), settings, show_progress=False)
        cpu["end"], cpu["t1"] = _cpu_seconds(job), time.monotonic()
        if not report.ok:
            raise RuntimeError(f"{report.failed} events were not delivered")
        time.sleep(5)  # the last probes' alerts
        job.stop()
    finally:
        listener.stop_event.set()
        listener.join(10)
        job.close()
    wall = cpu["t1"] - cpu["t0"]
    out = {
        "alerts_enabled": alerts,
        "rate_target": rate,
        "rate_sent": load.sent / max(load.end - load.start, 1e-9),
        "seconds": load.end - load.start,
        "cpu_cores": (cpu["end"] - cpu["start"]) / wall,
        "cpu_ms_per_1000_events": 1e6 * (cpu["end"] - cpu["start"]) / max(load.sent, 1) / 1e3,
    }
    if alerts:
        out.update(_alert_figures(listener.arrivals, load))
    return out


def _alert_figures(seen: Arrivals, load: Load) -> dict:
    probe = [seen.probes.get(i, float("inf")) - sent for i, sent in load.sent_probes.items()]
    immediate = []
    for value, arrived in seen.alerts:
        if value.get("rule") == "stopped_vehicle":
            continue  # raised ALERT_STOPPED_AFTER after its events, by design
        when = parse_timestamp(value["timestamp"])
        if when is not None and load.start <= when.timestamp() <= load.end:
            immediate.append(arrived - when.timestamp())
    settings = AlertSettings()
    window = duration_seconds(settings.road_window)
    watermark = duration_seconds(settings.road_watermark)
    fresh = []
    for value, arrived in seen.conditions:
        start = parse_timestamp(value["timestamp"])
        if start is not None and load.start <= start.timestamp() <= load.end - window:
            fresh.append(arrived - start.timestamp())

    def pcts(values: list[float]) -> dict:
        return {
            "n": len(values),
            **{f"p{q}": percentile(values, q) for q in (50, 95, 99)},
            "max": max(values) if values else None,
        }

    return {
        "probes_sent": len(load.sent_probes),
        "probes_alerted": sum(1 for i in load.sent_probes if i in seen.probes),
        "probe_latency_s": pcts(probe),
        "all_immediate_alerts_latency_s": pcts(immediate),
        "alerts_by_rule": _count(v["rule"] for v, _ in seen.alerts),
        "road_conditions_freshness_s": pcts(fresh),
        "road_conditions_target_s": window + watermark + 2,
        "road_conditions_window_s": window,
        "road_conditions_watermark_s": watermark,
        "alert_latency_target_s": 2.0,
    }


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out
