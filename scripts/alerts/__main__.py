"""``python -m scripts.alerts forward``: the alert forwarder's command line.

Exit codes: 0 stopped as asked with every alert it read done; 1 stopped while some alerts still
waited to be published (they are sent at the next start: their offsets were not committed);
2 wrong settings, unreachable broker, missing topic or ledger (one ``error:`` line names it).
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from typing import NoReturn

from emr_jobs.core.contracts import CONTRACTS
from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.settings import Settings, SettingsError
from scripts.alerts.settings import ForwarderSettings

log = logging.getLogger("alerts")


#: Where the help of a variable starts in the epilog.
_HELP_COLUMN = 44


def _row(name: str, text: str) -> str:
    """``name`` then ``text`` from the help column (on the next line if ``name`` is longer),
    wrapped at 96 columns."""
    indent = " " * _HELP_COLUMN
    lead = f"  {name}".ljust(_HELP_COLUMN)
    if len(lead) > _HELP_COLUMN:
        lead = f"  {name}\n{indent}"
    body = textwrap.fill(text, 96 - _HELP_COLUMN).replace("\n", "\n" + indent)
    return lead + body


def _variables(cls: type[Settings]) -> list[str]:
    """One row per variable of ``cls``: VARIABLE=default and its help."""
    rows = []
    for env, info in cls.variables():
        default = info.get_default(call_default_factory=True)
        if isinstance(default, float):
            default = f"{default:g}"
        rows.append(
            _row(env if default in (None, "") else f"{env}={default}", info.description or "")
        )
    return rows


def _epilog() -> str:
    """The settings, generated from the settings classes, and the exit codes."""
    alerts = CONTRACTS["alerts"]
    return "\n".join(
        [
            "settings (environment):",
            *_variables(ForwarderSettings),
            "",
            "Kafka (as for the producer):",
            *_variables(KafkaSettings),
            _row(
                f"{alerts.topic_env}={alerts.default_topic}", "the topic the job writes alerts to"
            ),
            "",
            "exit codes: 0 done; 1 stopped with alerts still waiting to be published (sent at the",
            "next start); 2 wrong settings, unreachable broker, missing topic or ledger (one",
            "`error:` line).",
        ]
    )


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
        epilog=_epilog(),
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
