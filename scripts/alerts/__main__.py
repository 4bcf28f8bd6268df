"""``python -m scripts.alerts forward``: the alert forwarder's command line.

Exit codes: 0 stopped as asked with every alert it read done; 1 stopped while some alerts still
waited to be published (they are sent at the next start: their offsets were not committed);
2 wrong settings, unreachable broker, missing topic or ledger (one ``error:`` line names it).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import NoReturn

from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.settings import SettingsError

log = logging.getLogger("alerts")

EPILOG = """\
settings (environment):
  ALERTS_TOPIC=alerts                       the topic the job writes alerts to
  ALERT_FORWARDER_GROUP=smartcity-alert-forwarder   Kafka consumer group
  ALERT_MAX_AGE_MINUTES=60                  older alerts (detectedAt) are skipped; 0 = never
  ALERT_WEBHOOK_URL                         POST each alert's JSON here
  ALERT_WEBHOOK_TIMEOUT_SECONDS=10
  ALERT_SNS_TOPIC_ARN                       publish each alert to this SNS topic
  ALERT_DEDUPE_TABLE                        DynamoDB ledger (key alertId, TTL expiresAt);
                                            unset: SQLite at ALERT_LEDGER_PATH
  ALERT_LEDGER_PATH=.cache/alerts/ledger.db
  ALERT_DEDUPE_TTL_DAYS=7                   how long an id is remembered
  ALERT_PUBLISH_ATTEMPTS=3                  tries per channel before the alert is deferred
  ALERT_RETRY_BACKOFF_SECONDS=1             first wait between tries; doubles, at most 30
  ALERT_CLAIM_LEASE_SECONDS=120             a crashed run's claim blocks the id this long
  ALERT_CONNECT_TIMEOUT_SECONDS=5           give up on an unreachable broker after this long
  KAFKA_BOOTSTRAP_SERVERS, KAFKA_AUTH_MODE, AWS_REGION   as for the producer

exit codes: 0 done; 1 stopped with alerts still waiting to be published (sent at the next
start); 2 wrong settings, unreachable broker, missing topic or ledger (one `error:` line)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a wrong flag is one ``error:`` line like every other wrong setting."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m scripts.alerts",
        description="Notify people once per alert the job raised.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["forward"])
    parser.add_argument("--max-messages", type=_count, help="stop after N records are done")
    parser.add_argument(
        "--idle-exit", type=_positive, metavar="SECONDS", help="stop after no record for this long"
    )
    parser.add_argument(
        "--progress-seconds",
        type=_positive,
        default=30.0,
        metavar="SECONDS",
        help="a progress line this often (default 30)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from scripts.alerts.forwarder import ForwarderError, forward
    from scripts.alerts.notifiers import public_url
    from scripts.alerts.settings import ForwarderSettings

    try:
        kafka = KafkaSettings.from_env()
        settings = ForwarderSettings.from_env()

        def started() -> None:
            channels = ["stdout"]
            if settings.webhook_url:
                channels.append(f"webhook {public_url(settings.webhook_url)}")
            if settings.sns_topic_arn:
                channels.append(f"SNS {settings.sns_topic_arn}")
            log.info(
                "forwarding %s on %s (group %s) to %s; ledger %s; max age %s",
                kafka.topic("alerts"),
                kafka.bootstrap_servers,
                settings.group,
                ", ".join(channels),
                settings.ledger_description,
                f"{settings.max_age_minutes} min" if settings.max_age_minutes else "none",
            )

        result = forward(
            settings,
            kafka,
            max_messages=args.max_messages,
            idle_exit=args.idle_exit,
            progress_seconds=args.progress_seconds,
            on_connected=started,
        )
    except (SettingsError, ForwarderError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    log.info("stopped by %s: %s", result.stopped_by, result.counts.line())
    if result.outstanding:
        log.warning(
            "%d alerts were not published yet; their offsets were not committed, so the next "
            "start sends them",
            len(result.outstanding),
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
