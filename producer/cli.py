"""``smartcity-producer``: simulate the fleet and send its five streams to Kafka.

Settings come from the environment (README, "Settings"); flags override them. Exit codes:
0 every event acknowledged; 1 some delivery failed; 2 wrong settings or unreachable broker.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import NoReturn

from emr_jobs.core.contracts import CONTRACTS, STREAMS
from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.settings import SettingsError
from producer.kafka_config import msk_iam_token_callback
from producer.kafka_producer import DeliveryReport, ProducerError, send_events
from producer.settings import ProducerSettings

log = logging.getLogger("producer")


#: Each flag overrides one environment variable. Flags are laid over the environment and the
#: settings read from the result, so a flag and its variable are checked by the same code; an
#: error about a variable the user set with a flag names the flag instead.
FLAG_ENV = {
    "--vehicles": "SIM_VEHICLES",
    "--seed": "SIM_SEED",
    "--start-time": "SIM_START_TIME",
    "--pace": "SIM_PACE",
    "--speedup": "SIM_SPEEDUP",
    "--max-events": "SIM_MAX_EVENTS",
    "--late-fraction": "SIM_LATE_FRACTION",
    "--duplicate-fraction": "SIM_DUPLICATE_FRACTION",
    "--delivery-timeout": "PRODUCER_DELIVERY_TIMEOUT_SECONDS",
    "--bootstrap-servers": "KAFKA_BOOTSTRAP_SERVERS",
    "--auth-mode": "KAFKA_AUTH_MODE",
    "--aws-region": "AWS_REGION",
    "--aws-profile": "AWS_PROFILE",
    "--role-arn": "MSK_IAM_ROLE_ARN",
}

EPILOG = f"""\
settings without a flag (environment only):
  {", ".join(CONTRACTS[s].topic_env for s in STREAMS)}   topic names
  SIM_TICK_SECONDS=5                   simulated seconds between a vehicle's readings
  PRODUCER_CONNECT_TIMEOUT_SECONDS=5   give up on an unreachable broker after this long
  PRODUCER_FLUSH_TIMEOUT_SECONDS=30    how long the final flush may take; the rest fails
  KAFKA_CLIENT_ID=smartcity

exit codes: 0 every event acknowledged; 1 some delivery failed; 2 wrong settings or
unreachable broker (one `error:` line names the setting)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a wrong flag is one ``error:`` line like every other wrong setting."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="smartcity-producer",
        description="Simulate vehicles driving London -> Birmingham; send their events to Kafka.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--vehicles", type=int, help="1..10000 [SIM_VEHICLES=5]")
    p.add_argument("--seed", type=int, help="same seed, same events [SIM_SEED=42]")
    p.add_argument(
        "--start-time", help="simulated start, ISO-8601, UTC if no offset [SIM_START_TIME]"
    )
    p.add_argument("--pace", choices=["max", "realtime"], help="[SIM_PACE=max]")
    p.add_argument("--speedup", type=float, help="realtime: simulated s per wall s [SIM_SPEEDUP=1]")
    p.add_argument("--max-events", type=int, help="stop after N events [SIM_MAX_EVENTS]")
    p.add_argument("--late-fraction", type=float, help="0..1 [SIM_LATE_FRACTION=0]")
    p.add_argument("--duplicate-fraction", type=float, help="0..1 [SIM_DUPLICATE_FRACTION=0]")
    p.add_argument(
        "--delivery-timeout",
        type=float,
        help="seconds an event may wait for the broker's acknowledgement, retries included, "
        "before it counts as failed; >= 1 [PRODUCER_DELIVERY_TIMEOUT_SECONDS=30]",
    )
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


def environment_with_flags(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """The environment with every given flag laid over its variable, and variable -> flag."""
    env = dict(os.environ if environ is None else environ)
    given: dict[str, str] = {}
    for flag, variable in FLAG_ENV.items():
        value = getattr(args, flag.removeprefix("--").replace("-", "_"))
        if value is None:
            continue
        if flag == "--start-time":
            value = _utc_if_naive(value)
        env[variable] = str(value)
        given[variable] = flag
    return env, given


def _utc_if_naive(text: str) -> str:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text  # the settings reject it, naming the flag
    return text if parsed.tzinfo else parsed.replace(tzinfo=UTC).isoformat()


def name_flags(message: str, given: Mapping[str, str]) -> str:
    """Replace each variable the user set with a flag by that flag in an error message."""
    for variable, flag in given.items():
        message = re.sub(rf"\b{variable}\b", flag, message)
    return message


def settings_from(env: Mapping[str, str]) -> tuple[KafkaSettings, ProducerSettings]:
    return KafkaSettings.from_env(env), ProducerSettings.from_env(env)


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
    env, given = environment_with_flags(args)
    try:
        kafka, sim = settings_from(env)
        token_callback = None
        if kafka.auth_mode == "msk-iam":
            token_callback = msk_iam_token_callback(
                kafka.aws_region,
                aws_profile=env.get("AWS_PROFILE", ""),
                role_arn=env.get("MSK_IAM_ROLE_ARN", ""),
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
        report = send_events(
            simulate(options),
            kafka,
            pace=sim.pace,
            speedup=sim.speedup,
            flush_timeout=sim.flush_timeout_seconds,
            connect_timeout=sim.connect_timeout_seconds,
            delivery_timeout=sim.delivery_timeout_seconds,
            token_callback=token_callback,
            progress_total=sim.max_events,
            show_progress=False if args.no_progress else None,
            # Logged once connected, so a wrong setting stays a single `error:` line.
            on_connected=lambda: log.info(
                "simulating %d vehicles (seed %d, pace %s) -> %s",
                sim.vehicles,
                sim.seed,
                sim.pace,
                kafka.bootstrap_servers,
            ),
        )
    except (SettingsError, ProducerError, ValueError) as err:
        print(f"error: {name_flags(str(err), given)}", file=sys.stderr)
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
