"""Producer throughput against its two same-run baselines.

- the simulator alone, generating and serialising events with no Kafka: the CPU ceiling;
- the reference tutorial's loop, one ``produce()`` then ``flush()`` per message with the client's
  default configuration and ``json.dumps``. It lives here, as a baseline, and nowhere else.

All three take their events from :func:`fleet_events`, so they serialise the same payloads.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from confluent_kafka import Producer

from emr_jobs.core.kafka import KafkaSettings
from producer.kafka_producer import send_events
from producer.simulator import Event, SimulationOptions, simulate
from producer.wire import to_json_bytes
from scripts.bench.stats import Sample


def fleet_events(vehicles: int, count: int, seed: int = 42) -> Iterator[Event]:
    """``count`` events of a fleet of ``vehicles``. A small fleet's whole journey holds fewer
    events than a benchmark needs, so journeys run back to back with the next seed."""
    left = count
    while left > 0:
        produced = 0
        for event in simulate(SimulationOptions(vehicles=vehicles, seed=seed, max_events=left)):
            produced += 1
            yield event
        if produced == 0:
            return
        left -= produced
        seed += 1


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def simulator_only(vehicles: int, count: int) -> Sample:
    """Generate and serialise ``count`` events, no Kafka: what one core can feed a producer."""
    size = 0
    n = 0
    cpu, started = _cpu(), time.perf_counter()
    for event in fleet_events(vehicles, count):
        size += len(to_json_bytes(event.payload))
        n += 1
    return Sample(n, size, time.perf_counter() - started, _cpu() - cpu)


def producer(settings: KafkaSettings, vehicles: int, count: int) -> Sample:
    """The product: ``send_events`` at ``pace=max`` with its default configuration, timed from
    the first event to the end of the final flush (every event acknowledged)."""
    cpu, started = _cpu(), time.perf_counter()
    report = send_events(fleet_events(vehicles, count), settings, pace="max", show_progress=False)
    seconds = time.perf_counter() - started
    if not report.ok or report.produced != count:
        raise RuntimeError(
            f"producer run failed: {report.produced} produced, {report.failed} "
            f"failed ({report.first_error})"
        )
    size = sum(c.bytes for c in report.topics.values())
    return Sample(report.produced, size, seconds, _cpu() - cpu)


def tutorial_pattern(settings: KafkaSettings, events: Iterable[Event]) -> Sample:
    """The reference tutorial's loop: ``json.dumps``, ``produce()``, ``flush()``, per message."""
    client = Producer({"bootstrap.servers": settings.bootstrap_servers})
    failures: list[Any] = []

    def delivery_report(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(err)

    client.produce(settings.topic("vehicle"), value=b"{}")  # connect outside the timing
    client.flush(30)
    n = size = 0
    cpu, started = _cpu(), time.perf_counter()
    for event in events:
        value = json.dumps(event.payload).encode("utf-8")
        client.produce(
            settings.topic(event.stream), key=event.key, value=value, on_delivery=delivery_report
        )
        client.flush()
        n += 1
        size += len(value)
    sample = Sample(n, size, time.perf_counter() - started, _cpu() - cpu)
    if failures:
        raise RuntimeError(f"tutorial pattern: {len(failures)} deliveries failed: {failures[0]}")
    return sample


def warm_up(settings: KafkaSettings, count: int) -> None:
    """First-contact costs (the broker's JIT, the idempotent producer id, the simulator's route
    and lookup tables) are paid here, outside every timing."""
    simulator_only(10, count // 2)
    send_events(fleet_events(1000, count), settings, show_progress=False)
