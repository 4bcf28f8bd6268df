"""``smartcity-producer``: simulate the fleet and send its five streams to Kafka.

Settings come from the environment (README, "Settings"); flags override them. Exit codes:
0 every event acknowledged; 1 some delivery failed; 2 wrong settings or unreachable broker.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime

from emr_jobs.kafka_options import KafkaSettings, msk_iam_token_callback
from emr_jobs.settings import SettingsError
from producer.kafka_producer import DeliveryReport, ProducerError, send_events
from producer.settings import ProducerSettings

log = logging.getLogger("producer")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="smartcity-producer",
        description="Simulate vehicles driving London -> Birmingham; send their events to Kafka.",
    )
    p.add_argument("--vehicles", type=int, help="1..10000 [SIM_VEHICLES=5]")
    p.add_argument("--seed", type=int, help="same seed, same events [SIM_SEED=42]")
    p.add_argument("--start-time", help="simulated start, ISO-8601 UTC [SIM_START_TIME]")
    p.add_argument("--pace", choices=["max", "realtime"], help="[SIM_PACE=max]")
    p.add_argument("--speedup", type=float, help="realtime: simulated s per wall s [SIM_SPEEDUP=1]")
    p.add_argument("--max-events", type=int, help="stop after N events [SIM_MAX_EVENTS]")
    p.add_argument("--late-fraction", type=float, help="0..1 [SIM_LATE_FRACTION=0]")
    p.add_argument("--duplicate-fraction", type=float, help="0..1 [SIM_DUPLICATE_FRACTION=0]")
    p.add_argument("--bootstrap-servers", help="[KAFKA_BOOTSTRAP_SERVERS=localhost:9092]")
    p.add_argument(
        "--auth-mode",
        choices=["none", "msk-iam", "oauthbearer-unsecured"],
        help="[KAFKA_AUTH_MODE=none]",
    )
    p.add_argument("--aws-region", help="msk-iam: region of the MSK cluster [AWS_REGION]")
    p.add_argument("--aws-profile", help="msk-iam: sign with this profile [AWS_PROFILE]")
    p.add_argument("--role-arn", help="msk-iam: sign as this assumed role [MSK_IAM_ROLE_ARN]")
    p.add_argument("--report-json", help="also write the delivery report to this file")
    p.add_argument("--no-progress", action="store_true", help="log lines instead of a progress bar")
    return p


def settings_from(args: argparse.Namespace) -> tuple[KafkaSettings, ProducerSettings]:
    kafka = KafkaSettings.from_env()
    kafka = replace(
        kafka,
        bootstrap_servers=args.bootstrap_servers or kafka.bootstrap_servers,
        auth_mode=args.auth_mode or kafka.auth_mode,
        aws_region=args.aws_region or kafka.aws_region,
    )
    sim = ProducerSettings.from_env()
    overrides = {
        "vehicles": args.vehicles,
        "seed": args.seed,
        "pace": args.pace,
        "speedup": args.speedup,
        "max_events": args.max_events,
        "late_fraction": args.late_fraction,
        "duplicate_fraction": args.duplicate_fraction,
    }
    if args.start_time:
        text = args.start_time.replace("Z", "+00:00")
        try:
            start = datetime.fromisoformat(text)
        except ValueError:
            raise SettingsError(f"--start-time must be ISO-8601, got {args.start_time!r}") from None
        overrides["start_time"] = start if start.tzinfo else start.replace(tzinfo=UTC)
    sim = replace(sim, **{k: v for k, v in overrides.items() if v is not None})
    return kafka, sim


def report_dict(report: DeliveryReport) -> dict[str, object]:
    return {
        "topics": {t: vars(c) for t, c in report.topics.items()},
        "produced": report.produced,
        "acknowledged": report.acknowledged,
        "failed": report.failed,
        "seconds": round(report.seconds, 3),
        "interrupted_by": report.interrupted_by,
        "first_error": report.first_error,
    }


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    try:
        kafka, sim = settings_from(args)
        token_callback = None
        if kafka.auth_mode == "msk-iam":
            token_callback = msk_iam_token_callback(
                kafka.aws_region,
                aws_profile=args.aws_profile or os.environ.get("AWS_PROFILE", ""),
                role_arn=args.role_arn or os.environ.get("MSK_IAM_ROLE_ARN", ""),
            )
        from producer.simulator import SimulationOptions, simulate

        options = SimulationOptions(
            vehicles=sim.vehicles,
            seed=sim.seed,
            start_time=sim.start_time,
            tick_seconds=sim.tick_seconds,
            max_events=sim.max_events,
            late_fraction=sim.late_fraction,
            duplicate_fraction=sim.duplicate_fraction,
        )
        log.info(
            "simulating %d vehicles (seed %d, pace %s) -> %s",
            sim.vehicles,
            sim.seed,
            sim.pace,
            kafka.bootstrap_servers,
        )
        report = send_events(
            simulate(options),
            kafka,
            pace=sim.pace,
            speedup=sim.speedup,
            flush_timeout=sim.flush_timeout_seconds,
            connect_timeout=sim.connect_timeout_seconds,
            token_callback=token_callback,
            progress_total=sim.max_events,
            show_progress=False if args.no_progress else None,
        )
    except (SettingsError, ProducerError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report.table())
    if args.report_json:
        with open(args.report_json, "w", encoding="utf-8") as fh:
            json.dump(report_dict(report), fh, indent=2)
    if not report.ok:
        print(
            f"error: {report.failed} of {report.produced} events were not delivered",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
