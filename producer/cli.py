"""``smartcity-producer``: simulate the fleet and send its five streams to Kafka.

Settings come from the environment (producer/README.md, "Settings"); flags override them.
Exit codes: 0 every event acknowledged; 1 some delivery failed; 2 wrong settings or unreachable
broker.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping
from typing import NoReturn

from emr_jobs.core.contracts import CONTRACTS, STREAMS
from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.settings import SettingsError, name_flags
from producer.kafka_config import msk_iam_token_callback
from producer.kafka_producer import DeliveryReport, ProducerError, send_events
from producer.settings import ProducerSettings
from producer.simulator import simulate

log = logging.getLogger("producer")


def _epilog() -> str:
    """The settings without a flag, generated from the settings classes."""
    rows = [
        (env, info.default)
        for cls in (ProducerSettings, KafkaSettings)
        for env, info in cls.variables()
        if not (info.json_schema_extra or {}).get("flag")  # type: ignore[union-attr]
    ]
    lines = [f"  {env}={'' if default is None else default}" for env, default in rows]
    topics = ", ".join(CONTRACTS[s].topic_env for s in STREAMS)
    return (
        "settings without a flag (environment only):\n"
        + "\n".join(lines)
        + f"\n  {topics}   topic names\n\n"
        "exit codes: 0 every event acknowledged; 1 some delivery failed; 2 wrong settings or\n"
        "unreachable broker (one `error:` line names the setting)."
    )


class _Parser(argparse.ArgumentParser):
    """argparse, but a wrong flag is one ``error:`` line like every other wrong setting."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="smartcity-producer",
        description="Simulate vehicles driving London -> Birmingham; send their events to Kafka.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ProducerSettings.add_flags(p)
    KafkaSettings.add_flags(p)
    p.add_argument("--report-json", help="also write the delivery report to this file")
    p.add_argument("--no-progress", action="store_true", help="log lines instead of a progress bar")
    return p


def settings_from(
    args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> tuple[KafkaSettings, ProducerSettings]:
    """Flags laid over the environment; an error names the flag or variable the user set."""
    return KafkaSettings.from_args(args, env), ProducerSettings.from_args(args, env)


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
                kafka.aws_region, aws_profile=sim.aws_profile, role_arn=sim.role_arn
            )
        report = send_events(
            simulate(sim.simulation_options()),
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
        given = {**KafkaSettings.flags_given(args), **ProducerSettings.flags_given(args)}
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
