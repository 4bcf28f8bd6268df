"""``python -m scripts.bench``: start an embedded broker, measure, write the results.

    python -m scripts.bench            # the full run (about 12-15 minutes on 2 cores)
    python -m scripts.bench --quick    # small sizes, about 5 minutes; the test runs this

Results go to ``bench/results/`` (``results.json``, ``results.md``, ``results.png``); the table is
also printed. A section that fails is recorded under ``errors`` and the others still run; the
exit code is then 1. Timings never fail the benchmark.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from emr_jobs.core.contracts import ALL_STREAMS, CONTRACTS
from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.paths import REPO_ROOT
from scripts.bench import (
    alerts,
    dashboard,
    fleet_rate,
    job_rate,
    latency,
    memory,
    producer_rate,
    report,
)
from scripts.bench.stats import figure, paired_ratios
from scripts.local_broker import EmbeddedKafka, free_port
from scripts.topics import TopicSpec, ensure_topics

log = logging.getLogger("bench")

DEFAULT_OUT = REPO_ROOT / "bench" / "results"
HEADLINE_VEHICLES = 1_000
MB = 1024 * 1024


@dataclass(frozen=True)
class Plan:
    """How big and how often. Sizes are bounded by event counts so each run takes seconds."""

    name: str
    vehicles: tuple[int, ...]  # producer throughput sizes
    producer_events: int
    repeats: int
    tutorial_events: int
    memory_events: int
    memory_repeats: int
    job_events: int  # the backlog the job drains and the batch ceiling processes
    job_repeats: int
    ceiling_warmup_fraction: float  # of the backlog, run untimed first in the ceiling's JVM
    job_scaling_vehicles: tuple[int, ...]  # job backlogs besides the headline fleet
    job_scaling_events: int
    job_caps: tuple[int, ...]  # JOB_MAX_OFFSETS_PER_TRIGGER values (on the headline backlog)
    fleet_window_seconds: float  # simulated seconds counted for the fleet's real-time rate
    latency_rates: tuple[int, ...]
    latency_seconds: float
    drain_timeout: float
    alert_rates: tuple[int, ...]  # events/s of the alerts section (each: lake alone, then all)
    alert_seconds: float  # measured span of each phase
    dashboard_seconds: float  # measured span of the dashboard's 10,000-vehicle run


FULL = Plan(
    "full",
    vehicles=(10, 1_000, 10_000),
    producer_events=300_000,
    repeats=3,
    tutorial_events=2_000,
    memory_events=300_000,
    memory_repeats=3,
    job_events=500_000,
    job_repeats=1,
    ceiling_warmup_fraction=0.2,
    job_scaling_vehicles=(),
    job_scaling_events=60_000,
    job_caps=(100_000,),
    fleet_window_seconds=60,
    latency_rates=(1_000, 5_000),
    latency_seconds=30,
    drain_timeout=240,
    alert_rates=(500, 5_000),
    alert_seconds=90,
    dashboard_seconds=60,
)
QUICK = Plan(
    "quick",
    vehicles=(10, 1_000, 10_000),
    producer_events=50_000,
    repeats=2,
    tutorial_events=300,
    memory_events=50_000,
    memory_repeats=1,
    job_events=10_000,
    job_repeats=1,
    ceiling_warmup_fraction=0.5,
    job_scaling_vehicles=(),
    job_scaling_events=0,
    job_caps=(),
    fleet_window_seconds=10,
    latency_rates=(1_000, 5_000),
    latency_seconds=3,
    drain_timeout=90,
    alert_rates=(500, 5_000),
    alert_seconds=30,
    dashboard_seconds=15,
)
SECTIONS = ("producer", "memory", "job", "latency", "alerts", "dashboard")
FLEET_VEHICLES = 10_000  # the fleet whose real-time rate the job must sustain 5 times over


def topic_set(bootstrap: str, prefix: str, partitions: int = 3) -> KafkaSettings:
    """Fresh topics for one measurement, created like ``scripts.topics`` creates them."""
    settings = KafkaSettings(
        bootstrap_servers=bootstrap,
        topics={s: f"{prefix}-{CONTRACTS[s].default_topic}" for s in ALL_STREAMS},
    )
    ensure_topics(settings, TopicSpec(partitions=partitions))
    return settings


# --- sections ---------------------------------------------------------------------------------


def producer_section(plan: Plan, bootstrap: str) -> dict:
    settings = topic_set(bootstrap, "bench-producer")
    producer_rate.warm_up(settings, plan.producer_events)
    sims: dict[int, list] = {v: [] for v in plan.vehicles}
    prods: dict[int, list] = {v: [] for v in plan.vehicles}
    tutorial = []
    for rep in range(plan.repeats):
        for v in plan.vehicles:
            # Each producer run is paired with a ceiling run next to it; the order alternates.
            def simulator_run(v: int = v) -> None:
                sims[v].append(producer_rate.simulator_only(v, plan.producer_events))

            def producer_run(v: int = v) -> None:
                prods[v].append(producer_rate.producer(settings, v, plan.producer_events))

            pair: list[Callable[[], None]] = [simulator_run, producer_run]
            for run in pair[:: -1 if rep % 2 else 1]:
                run()
            log.info(
                "producer %d vehicles: %.0f ev/s (simulator only %.0f ev/s)",
                v,
                prods[v][-1].events_per_second,
                sims[v][-1].events_per_second,
            )
        tutorial.append(
            producer_rate.tutorial_pattern(
                settings, producer_rate.fleet_events(HEADLINE_VEHICLES, plan.tutorial_events)
            )
        )
        log.info("tutorial pattern: %.0f ev/s", tutorial[-1].events_per_second)

    def rates(samples: list) -> list[float]:
        return [s.events_per_second for s in samples]

    head = HEADLINE_VEHICLES
    low, high = min(plan.vehicles), max(plan.vehicles)
    return {
        "events_per_run": plan.producer_events,
        "tutorial_events_per_run": plan.tutorial_events,
        "headline_vehicles": head,
        "simulator_only": {str(v): figure(rates(sims[v]), "events/s") for v in plan.vehicles},
        "simulator_only_mb_s": {
            str(v): figure([s.mb_per_second for s in sims[v]], "MB/s") for v in plan.vehicles
        },
        "simulator_only_cpu_us": {
            str(v): figure([s.cpu_us_per_event for s in sims[v]], "CPU µs/event")
            for v in plan.vehicles
        },
        "producer": {str(v): figure(rates(prods[v]), "events/s") for v in plan.vehicles},
        "producer_mb_s": {
            str(v): figure([s.mb_per_second for s in prods[v]], "MB/s") for v in plan.vehicles
        },
        "producer_cpu_us": {
            str(v): figure([s.cpu_us_per_event for s in prods[v]], "CPU µs/event")
            for v in plan.vehicles
        },
        "tutorial": figure(rates(tutorial), "events/s"),
        "tutorial_mb_s": figure([s.mb_per_second for s in tutorial], "MB/s"),
        "producer_vs_ceiling": {
            str(v): figure(paired_ratios(rates(prods[v]), rates(sims[v])), "ratio")
            for v in plan.vehicles
        },
        "producer_vs_tutorial": figure(paired_ratios(rates(prods[head]), rates(tutorial)), "ratio"),
        "ceiling_vs_tutorial": figure(paired_ratios(rates(sims[head]), rates(tutorial)), "ratio"),
        "producer_scaling": figure(paired_ratios(rates(prods[high]), rates(prods[low])), "ratio"),
        "simulator_scaling": figure(paired_ratios(rates(sims[high]), rates(sims[low])), "ratio"),
        "scaling_vehicles": [low, high],
    }


def memory_section(plan: Plan, bootstrap: str) -> dict:
    settings = topic_set(bootstrap, "bench-memory")
    vehicles = max(plan.vehicles)
    peaks = []
    for _ in range(plan.memory_repeats):
        peaks.append(
            memory.producer_peak_rss(
                settings,
                [
                    "--vehicles",
                    str(vehicles),
                    "--max-events",
                    str(plan.memory_events),
                    "--pace",
                    "max",
                    "--no-progress",
                ],
            )
            / MB
        )
        log.info("producer peak RSS at %d vehicles: %.0f MB", vehicles, peaks[-1])
    return {
        "vehicles": vehicles,
        "events": plan.memory_events,
        "producer_peak_rss_mb": figure(peaks, "MB"),
    }


def _batch_points(batches: Sequence[job_rate.Batch], source: str) -> list[dict]:
    """Per batch with rows: rows read and seconds taken (for the scaling chart)."""
    return [
        {"source": source, "rows": b.rows, "seconds": b.seconds}
        for b in batches
        if b.rows > 0 and b.seconds is not None
    ]


def _warm_json(json_dir: Path, fraction: float) -> Path:
    """The first ``fraction`` of each stream's JSON lines: the ceiling's untimed warm-up."""
    out = json_dir.parent / f"{json_dir.name}-warmup"
    out.mkdir(parents=True, exist_ok=True)
    for path in json_dir.glob("*.jsonl"):
        lines = path.read_bytes().splitlines(keepends=True)
        (out / path.name).write_bytes(b"".join(lines[: max(1, int(len(lines) * fraction))]))
    return out


def job_section(plan: Plan, bootstrap: str, work: Path, conf: dict[str, str]) -> dict:
    head = HEADLINE_VEHICLES
    fleet = fleet_rate.realtime_rate(FLEET_VEHICLES, plan.fleet_window_seconds)
    log.info(
        "real-time rate of a %d-vehicle fleet: %.0f events/s",
        FLEET_VEHICLES,
        fleet["events_per_second"],
    )
    settings = topic_set(bootstrap, f"bench-job-{head}")
    json_dir = work / "json"
    job_rate.fill_backlog(settings, head, plan.job_events, json_dir=json_dir)
    warm_dir = _warm_json(json_dir, plan.ceiling_warmup_fraction)
    runs, ceilings = [], []
    for rep in range(plan.job_repeats):
        runs.append(
            job_rate.run_available_now(
                settings,
                work / f"lake-job-{rep}",
                work / "logs" / f"job-{rep}",
                expected_rows=plan.job_events,
                conf=conf,
            )
        )
        log.info(
            "job drained %d rows in %.1fs (%.0f rows/s) in %d batches",
            runs[-1].drain.rows,
            runs[-1].drain.seconds,
            runs[-1].drain.rows_per_second,
            len(runs[-1].batches),
        )
        ceilings.append(
            job_rate.run_batch_ceiling(json_dir, work / f"ceiling-{rep}", warmup_dir=warm_dir)
        )
        c = ceilings[-1]
        log.info(
            "batch ceiling (warm): %d rows in %.1fs (%.0f rows/s; cold %.0f rows/s)",
            c["rows"],
            c["seconds"],
            c["rows"] / c["seconds"],
            c["warmup_rows"] / c["cold_seconds"],
        )
    job_rates = [r.drain.rows_per_second for r in runs]
    ceiling_rates = [c["rows"] / c["seconds"] for c in ceilings]
    fleet_rates = [fleet["events_per_second"]] * len(job_rates)
    # Task CPU time per event: the work itself, whatever else the machine is doing.
    job_cpu = [r.profile.get("task_cpu_s", 0) / r.drain.rows * 1e6 for r in runs]
    ceiling_cpu = [
        c["profile"].get("task_cpu_s", 0) / (c["rows"] + c["warmup_rows"]) * 1e6 for c in ceilings
    ]
    points = [p for i, r in enumerate(runs) for p in _batch_points(r.batches, f"backlog run {i}")]
    by_vehicles: dict[str, dict] = {}
    for v in plan.job_scaling_vehicles:
        s = topic_set(bootstrap, f"bench-job-{v}")
        job_rate.fill_backlog(s, v, plan.job_scaling_events)
        r = job_rate.run_available_now(
            s,
            work / f"lake-job-v{v}",
            work / "logs" / f"job-v{v}",
            expected_rows=plan.job_scaling_events,
            conf=conf,
        )
        by_vehicles[str(v)] = figure([r.drain.rows_per_second], "rows/s")
        log.info("job at %d vehicles: %.0f rows/s", v, r.drain.rows_per_second)
    caps = {}
    for cap in plan.job_caps:
        # The same backlog again, read at most ``cap`` records per batch: the batches after the
        # first show what the job sustains once its JVM is warm.
        r = job_rate.run_available_now(
            settings,
            work / f"lake-job-cap{cap}",
            work / "logs" / f"job-cap{cap}",
            expected_rows=plan.job_events,
            env={"JOB_MAX_OFFSETS_PER_TRIGGER": str(cap)},
            conf=conf,
        )
        pts = _batch_points(r.batches, f"{cap:,} per trigger")
        points += pts
        steady = job_rate.steady_drain_of(r.batches)
        caps[str(cap)] = {
            "drain_rows_per_s": figure([r.drain.rows_per_second], "rows/s"),
            "steady_rows_per_s": figure([steady.rows_per_second], "rows/s"),
            "steady_vs_ceiling": figure(
                paired_ratios([steady.rows_per_second], ceiling_rates[:1]), "ratio"
            ),
            "steady_vs_fleet": figure(
                paired_ratios([steady.rows_per_second], fleet_rates[:1]), "ratio"
            ),
            "batches": len(pts),
            "rows_per_batch": figure([p["rows"] for p in pts], "rows"),
            "batch_seconds": figure([p["seconds"] for p in pts], "s"),
            "sql_in_batches": r.profile.get("sql_in_batches"),
            "commit_steps": r.steps,
        }
        log.info(
            "job with %d offsets per trigger: %.0f rows/s (%.0f rows/s after the first batch)",
            cap,
            r.drain.rows_per_second,
            steady.rows_per_second,
        )
    scaling = None
    if len(by_vehicles) > 1:
        sizes = sorted(int(v) for v in by_vehicles)
        low, high = by_vehicles[str(sizes[0])]["median"], by_vehicles[str(sizes[-1])]["median"]
        scaling = figure([high / low] if low else [], "ratio")
    first = runs[0]
    return {
        "events": plan.job_events,
        "headline_vehicles": head,
        "streaming_rows_per_s": figure(job_rates, "rows/s"),
        "batch_ceiling_rows_per_s": figure(ceiling_rates, "rows/s"),
        "batch_ceiling_cold_rows_per_s": figure(
            [c["warmup_rows"] / c["cold_seconds"] for c in ceilings], "rows/s"
        ),
        "job_vs_ceiling": figure(paired_ratios(job_rates, ceiling_rates), "ratio"),
        "fleet": fleet,
        "fleet_events_per_s": figure([fleet["events_per_second"]], "events/s"),
        "job_vs_fleet": figure(paired_ratios(job_rates, fleet_rates), "ratio"),
        "ceiling_vs_fleet": figure(paired_ratios(ceiling_rates, fleet_rates), "ratio"),
        "drain_seconds": figure([r.drain.seconds for r in runs], "s"),
        "drain_seconds_with_no_data_batches": figure([r.drain.all_seconds for r in runs], "s"),
        "batches_per_drain": figure([len(r.batches) for r in runs], "batches"),
        "startup_seconds": figure([r.startup_seconds for r in runs], "s"),
        "wall_seconds": figure([r.wall_seconds for r in runs], "s"),
        "batch_ceiling_seconds": figure([c["seconds"] for c in ceilings], "s"),
        "batch_ceiling_warmup_rows": ceilings[0]["warmup_rows"],
        "task_cpu_us_per_event": figure(job_cpu, "µs"),
        "ceiling_task_cpu_us_per_event": figure(ceiling_cpu, "µs"),
        "cpu_per_row_vs_ceiling": figure(paired_ratios(job_cpu, ceiling_cpu), "ratio"),
        "profile": {
            **first.profile,
            "process_cpu_s": first.process_cpu_s,
            "jvm_threads_cpu_s": first.jvm_threads_cpu_s,
            "wall_s": first.wall_seconds,
        },
        "commit_steps": first.steps,
        "ceiling_profile": ceilings[0]["profile"],
        "ceiling_steps": ceilings[0].get("steps", {}),
        "by_vehicles": by_vehicles,
        "scaling_events": plan.job_scaling_events,
        "scaling": scaling,
        "scaling_vehicles": (
            [min(map(int, by_vehicles)), max(map(int, by_vehicles))]
            if len(by_vehicles) > 1
            else None
        ),
        "by_cap": caps,
        "batch_points": points,
        "driver_peak_rss_mb": {
            role: figure([r.peak_rss.get(role, 0) / MB for r in runs], "MB")
            for role in ("jvm", "python", "total")
        },
        "first_run_batches": [{**asdict(b), "seconds": b.seconds} for b in first.batches],
        "first_run_commits": first.commits,
        "summary": first.summary,
        "spark_conf": conf,
    }


def latency_section(plan: Plan, bootstrap: str, work: Path, conf: dict[str, str]) -> dict:
    settings = topic_set(bootstrap, "bench-latency")
    out = latency.run_latency(
        settings,
        work / "lake-latency",
        work / "logs" / "latency",
        plan.latency_rates,
        plan.latency_seconds,
        drain_timeout=plan.drain_timeout,
        conf=conf,
    )
    for rate, p in out["phases"].items():
        log.info(
            "latency at %s ev/s: p50 %s p95 %s p99 %s (%d rows, %d not committed)",
            rate,
            p["p50"],
            p["p95"],
            p["p99"],
            p["rows"],
            p["not_committed"],
        )
    out["batch_points"] = [
        {"source": "latency run", "rows": b["rows"], "seconds": b["seconds"]}
        for b in out["batches"]
        if b["rows"] > 0 and b["seconds"] is not None
    ]
    out["driver_peak_rss_mb"] = {k: v / MB for k, v in out.pop("driver_peak_rss").items()}
    return out


def alerts_section(plan: Plan, bootstrap: str, work: Path) -> dict:
    """The alert path with the lake writer running, per rate: latency, freshness, and the CPU
    it costs (the whole job minus the lake writer alone, at the same rate)."""
    out: dict[str, dict] = {}
    for rate in plan.alert_rates:
        phases = {}
        for name, enabled in (("off", False), ("on", True)):
            settings = topic_set(bootstrap, f"bench-alerts-{rate}-{name}")
            phases[name] = alerts.run_phase(
                settings,
                work / f"lake-alerts-{rate}-{name}",
                work / "logs" / f"alerts-{rate}-{name}",
                alerts=enabled,
                rate=rate,
                seconds=plan.alert_seconds,
                probe_every=0.25,
            )
            log.info(
                "alerts %s at %d ev/s: %.0f ev/s sent, job CPU %.2f cores",
                name,
                rate,
                phases[name]["rate_sent"],
                phases[name]["cpu_cores"],
            )
        on = phases["on"]
        log.info(
            "%d ev/s: event -> alert p50 %s p99 %s (%d/%d probes); road conditions "
            "freshness p99 %s",
            rate,
            on["probe_latency_s"]["p50"],
            on["probe_latency_s"]["p99"],
            on["probes_alerted"],
            on["probes_sent"],
            on["road_conditions_freshness_s"]["p99"],
        )
        out[str(rate)] = {
            "phases": phases,
            "alert_path_cpu_cores": on["cpu_cores"] - phases["off"]["cpu_cores"],
        }
    return {"rates": out}


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    parser.add_argument("--work-dir", type=Path, help="broker, lakes, logs (default: a temp dir)")
    parser.add_argument("--keep-work", action="store_true", help="keep the work dir afterwards")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)}",
    )
    parser.add_argument(
        "--job-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Spark conf for every run of the job (to measure a proposed change)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("producer").setLevel(logging.WARNING)
    plan = QUICK if args.quick else FULL
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        print(f"error: unknown sections {unknown}; choose from {SECTIONS}", file=sys.stderr)
        return 2
    conf = dict(item.split("=", 1) for item in args.job_conf)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="smartcity-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: dict = {
        "meta": {
            "mode": plan.name,
            "plan": asdict(plan),
            "sections": sections,
            "job_conf": conf,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "python -m scripts.bench "
            + " ".join(sys.argv[1:] if argv is None else argv),
            "cpus": os.cpu_count(),
            "machine": platform.platform(),
            "python": platform.python_version(),
            "load_average_start": list(os.getloadavg()),
        },
        "errors": {},
    }
    broker = EmbeddedKafka(work / "broker", port=free_port())
    try:
        log.info("starting the embedded broker (work dir %s)", work)
        broker.start()
        steps: dict[str, Callable[[], dict]] = {
            "producer": lambda: producer_section(plan, broker.bootstrap_servers),
            "memory": lambda: memory_section(plan, broker.bootstrap_servers),
            "job": lambda: job_section(plan, broker.bootstrap_servers, work, conf),
            "latency": lambda: latency_section(plan, broker.bootstrap_servers, work, conf),
            "alerts": lambda: alerts_section(plan, broker.bootstrap_servers, work),
            "dashboard": lambda: dashboard.measure(
                broker.bootstrap_servers,
                vehicles=10_000,
                seconds=plan.dashboard_seconds,
                work=work / "dashboard",
            ),
        }
        for name in SECTIONS:
            if name not in sections:
                continue
            log.info("--- %s", name)
            try:
                results[name] = steps[name]()
            except Exception as err:  # noqa: BLE001 - record it, run the other sections
                log.error("%s failed: %s", name, err)
                results["errors"][name] = "".join(traceback.format_exception(err))[-4000:]
    except Exception as err:  # noqa: BLE001 - the broker did not start
        results["errors"]["broker"] = "".join(traceback.format_exception(err))[-4000:]
    finally:
        broker.stop()
        if not args.keep_work and args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    results["meta"]["seconds"] = round(time.monotonic() - started, 1)
    results["meta"]["load_average_end"] = list(os.getloadavg())
    paths = report.write(results, args.out)
    print(paths["markdown"].read_text(encoding="utf-8"))
    print(f"results: {', '.join(str(p) for p in paths.values())}")
    if results["errors"]:
        print(f"error: sections failed: {', '.join(results['errors'])}", file=sys.stderr)
        return 1
    return 0
