"""``make run``: the whole pipeline on this machine, start to finish, then a summary.

1. start the embedded Kafka broker (a free loopback port, fresh storage under .cache/run/);
2. create the seven topics (five sensor streams, alerts, road conditions);
3. run a bounded simulation through the producer (default: 5 vehicles, the whole journey);
4. run the streaming job until it has caught up (``availableNow``): first the alert and
   road-condition queries, then the lake writer, which also stores what they raised;
5. stop everything, print per stream: produced, written, quarantined, duplicates removed,
   read back from the Iceberg tables through the catalog;
6. show an example DuckDB query of the lake, the alerts per rule, the three most recent ones
   and the slowest road sections.

Every process it starts is stopped before it returns, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

from emr_jobs.core.contracts import DERIVED_STREAMS, STREAMS
from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.paths import REPO_ROOT
from emr_jobs.settings import JobSettings
from scripts.lake import alert_report, example_query, lake_counts
from scripts.local_broker import BrokerError, EmbeddedKafka, free_port
from scripts.run_job import job_environment, spark_submit_command
from scripts.topics import TopicSpec, ensure_topics

log = logging.getLogger("run_local")
RUN_DIR = REPO_ROOT / ".cache" / "run"


def summary_table(produced: dict[str, int], lake: dict[str, dict[str, int]], job: dict) -> str:
    """Produced vs. what the lake holds; the three lake columns add up to produced."""
    header = (
        f"{'stream':<16}{'produced':>10}{'written':>10}{'quarantined':>13}"
        f"{'duplicates removed':>20}{'late':>7}"
    )
    rows = [header, "-" * len(header)]
    totals = [0, 0, 0, 0, 0]
    for stream in STREAMS:
        values = (
            produced.get(stream, 0),
            lake[stream]["written"],
            lake[stream]["quarantined"],
            lake[stream]["duplicates"],
            job.get(stream, {}).get("late", 0),
        )
        rows.append(
            f"{stream:<16}{values[0]:>10}{values[1]:>10}{values[2]:>13}{values[3]:>20}"
            f"{values[4]:>7}"
        )
        totals = [t + v for t, v in zip(totals, values, strict=True)]
    rows.append("-" * len(header))
    rows.append(
        f"{'total':<16}{totals[0]:>10}{totals[1]:>10}{totals[2]:>13}{totals[3]:>20}{totals[4]:>7}"
    )
    return "\n".join(rows)


def derived_table(job: dict, lake: dict[str, dict[str, int]]) -> str:
    """What the job derived: records on its topics, and rows in the lake (one per id)."""
    lines = ["derived by the job (Kafka topic -> lake table; a replayed id is removed once more):"]
    for stream in DERIVED_STREAMS:
        read = job.get(stream, {}).get("read", 0)
        lines.append(
            f"  {stream:<16} {read:>6} on the topic -> {lake[stream]['written']:>6} rows, "
            f"{lake[stream]['duplicates']} repeated ids removed, "
            f"{lake[stream]['quarantined']} quarantined"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vehicles", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--duplicate-fraction", type=float, default=0.01)
    parser.add_argument("--late-fraction", type=float, default=0.01)
    parser.add_argument(
        "--lake",
        type=Path,
        default=REPO_ROOT / "lake",
        help="lake folder (replaced on every run; default ./lake)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    shutil.rmtree(RUN_DIR, ignore_errors=True)
    shutil.rmtree(args.lake, ignore_errors=True)
    lake_uri = args.lake.resolve().as_uri()
    started = time.monotonic()
    try:
        return _run(args, lake_uri, started)
    except BrokerError as err:
        print(f"error: the embedded Kafka broker: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, lake_uri: str, started: float) -> int:
    broker = EmbeddedKafka(RUN_DIR / "broker", port=free_port())
    log.info("starting the embedded Kafka broker")
    with broker:
        # The topic variables (VEHICLE_TOPIC, ...) reach the producer and the job through the
        # environment, so the topics are created, and counted, under the same names.
        # The embedded broker is PLAINTEXT.
        kafka = KafkaSettings.from_env(bootstrap_servers=broker.bootstrap_servers, auth_mode="none")
        ensure_topics(kafka, TopicSpec(partitions=3))
        log.info("broker %s ready, topics created", broker.bootstrap_servers)
        env = job_environment(kafka)
        report_file = RUN_DIR / "producer-report.json"
        producer = subprocess.run(
            [
                sys.executable,
                "-m",
                "producer.cli",
                "--vehicles",
                str(args.vehicles),
                "--seed",
                str(args.seed),
                "--pace",
                "max",
                "--duplicate-fraction",
                str(args.duplicate_fraction),
                "--late-fraction",
                str(args.late_fraction),
                "--report-json",
                str(report_file),
            ],
            env=env,
            cwd=REPO_ROOT,
            check=False,
        )
        if producer.returncode != 0:
            log.error("the producer failed (exit %d)", producer.returncode)
            return producer.returncode
        report = json.loads(report_file.read_text())
        log.info("running the streaming job until it has caught up (availableNow)")
        job = subprocess.Popen(
            spark_submit_command(["--available-now", "--lake-uri", lake_uri]),
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        job_summary: dict = {}
        assert job.stdout is not None
        for line in job.stdout:  # the job's progress lines, shown as they come
            if line.startswith("JOB_SUMMARY "):
                job_summary = json.loads(line.removeprefix("JOB_SUMMARY "))
            else:
                sys.stdout.write(line)
        job.wait()
        if job.returncode != 0:
            log.error("the streaming job failed (exit %d)", job.returncode)
            return job.returncode
    produced = {s: report["topics"].get(kafka.topic(s), {}).get("acknowledged", 0) for s in STREAMS}
    lake_settings = JobSettings(lake_uri=lake_uri)
    lake = lake_counts(lake_settings)
    print()
    print(summary_table(produced, lake, job_summary))
    print(
        f"\nlake: {args.lake.resolve()}  (Iceberg tables under tables/, catalog "
        f"{lake_settings.catalog_uri.removeprefix('jdbc:sqlite:')})"
    )
    print(f"finished in {time.monotonic() - started:.0f}s; the broker is stopped.\n")
    print("Average speed per vehicle (DuckDB over the vehicle table, read through the catalog):")
    print(example_query(lake_settings))
    print()
    print(derived_table(job_summary, lake))
    print()
    print(alert_report(lake_settings))
    print('\nMore: python -m scripts.lake counts | query "SQL" [--as-of TIME] | snapshots TABLE')
    return 0


if __name__ == "__main__":
    sys.exit(main())
