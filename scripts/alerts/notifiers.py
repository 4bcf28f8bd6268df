"""Where an alert goes: the terminal, a webhook, an SNS topic. One attempt per ``send``.

A notifier raises :class:`NotifyError` (a one-line reason, no stack trace) when the attempt
failed; the forwarder retries with backoff and never loses the alert. Nothing here logs
secrets: a webhook is named by its scheme, host and port only, since its path or query often
holds a token.
"""

from __future__ import annotations

import http.client
import json
import sys
import unicodedata
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol, TextIO
from urllib.parse import urlparse

#: SNS refuses a Subject of 100 characters or more, or with anything but printable ASCII.
SNS_SUBJECT_MAX = 99


class NotifyError(RuntimeError):
    """One attempt to notify failed; the message is one line that says why."""


@dataclass(frozen=True)
class Alert:
    """An alert record that passed its contract, with where it came from."""

    id: str
    record: dict[str, Any]
    raw: bytes  # the record value as the job wrote it (what the webhook and SNS receive)
    topic: str
    partition: int
    offset: int

    @property
    def json_text(self) -> str:
        return self.raw.decode("utf-8")


class Notifier(Protocol):
    #: The channel's name in the ledger (``stdout``, ``webhook``, ``sns``).
    name: str
    #: How log lines name the destination (never a secret).
    target: str

    def send(self, alert: Alert) -> None: ...


def readable_line(alert: Alert) -> str:
    """One line for people: severity, rule, event time, road section, message, short id."""
    r = alert.record
    section = r.get("section") or "-"
    return (
        f"{r['severity'].upper():<8} {r['rule']:<20} {r['timestamp']}  section {section:<10} "
        f"{r['message']}  [{alert.id[:12]}]"
    )


class Terminal:
    name = "stdout"
    target = "stdout"

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out

    def send(self, alert: Alert) -> None:
        out = self.out if self.out is not None else sys.stdout
        try:
            out.write(readable_line(alert) + "\n")
            out.flush()
        except (OSError, ValueError) as err:  # a closed pipe or stream
            raise NotifyError(f"cannot write to stdout: {err}") from None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirected POST would arrive as a GET without its body: treat it as a failure."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def public_url(url: str) -> str:
    """``scheme://host[:port]``: enough to tell which webhook, without its secret path."""
    parts = urlparse(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


class Webhook:
    """POSTs the alert's JSON. 2xx is success; anything else, a timeout or a redirect fails.

    The ``Idempotency-Key`` header carries the alert id, so a receiver can drop the rare repeat
    (README: a crash after publishing and before the ledger says ``sent``).
    """

    name = "webhook"

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self.target = f"webhook {public_url(url)}"
        self.opener = urllib.request.build_opener(_NoRedirects())

    def send(self, alert: Alert) -> None:
        request = urllib.request.Request(
            self.url,
            data=alert.raw,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": alert.id,
                "User-Agent": "smartcity-alert-forwarder",
            },
        )
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as err:
            err.close()
            raise NotifyError(f"HTTP {err.code} {err.reason}") from None
        except urllib.error.URLError as err:
            raise NotifyError(str(err.reason)) from None
        except (OSError, http.client.HTTPException) as err:  # timeouts, resets, bad responses
            reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            raise NotifyError(reason) from None


def sns_subject(alert: Alert) -> str:
    """``[CRITICAL] incident: <message>``, printable ASCII, shorter than 100 characters."""
    r = alert.record
    text = f"[{r['severity'].upper()}] {r['rule']}: {r['message']}"
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    ascii_text = "".join(c if c.isprintable() else " " for c in ascii_text).strip()
    if len(ascii_text) > SNS_SUBJECT_MAX:
        ascii_text = ascii_text[: SNS_SUBJECT_MAX - 3].rstrip() + "..."
    return ascii_text


class Sns:
    """Publishes to an SNS topic: people (e-mail, SMS) get the readable line and the JSON;
    machines (SQS, Lambda, HTTP/S) get the JSON alone. Message attributes ``rule`` and
    ``severity`` let subscriptions filter. A FIFO topic also deduplicates on the alert id."""

    name = "sns"

    def __init__(self, topic_arn: str, *, client: Any = None) -> None:
        self.topic_arn = topic_arn
        self.target = f"SNS {topic_arn}"
        self.fifo = topic_arn.endswith(".fifo")
        if client is None:
            import boto3
            from botocore.config import Config

            # One try per send: the forwarder retries (and logs) itself.
            client = boto3.client(
                "sns",
                region_name=topic_arn.split(":")[3],
                config=Config(
                    connect_timeout=5, read_timeout=10, retries={"total_max_attempts": 1}
                ),
            )
        self.client = client

    def send(self, alert: Alert) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        r = alert.record
        people = f"{readable_line(alert)}\n\n{alert.json_text}"
        machines = alert.json_text
        request: dict[str, Any] = {
            "TopicArn": self.topic_arn,
            "Subject": sns_subject(alert),
            "MessageStructure": "json",
            "Message": json.dumps(
                {
                    "default": people,
                    "email": people,
                    "sms": readable_line(alert),
                    "sqs": machines,
                    "lambda": machines,
                    "http": machines,
                    "https": machines,
                    "firehose": machines,
                }
            ),
            "MessageAttributes": {
                "rule": {"DataType": "String", "StringValue": r["rule"]},
                "severity": {"DataType": "String", "StringValue": r["severity"]},
            },
        }
        if self.fifo:
            request["MessageGroupId"] = r["rule"]
            request["MessageDeduplicationId"] = alert.id[:128]
        try:
            self.client.publish(**request)
        except ClientError as err:
            error = err.response.get("Error", {})
            raise NotifyError(f"{error.get('Code', 'error')}: {error.get('Message', '')}") from None
        except BotoCoreError as err:
            raise NotifyError(str(err)) from None


def build_notifiers(
    settings: Any, *, out: TextIO | None = None, sns_client: Any = None
) -> list[Notifier]:
    """The terminal always; the webhook and SNS when their settings are set."""
    notifiers: list[Notifier] = [Terminal(out)]
    if settings.webhook_url:
        notifiers.append(Webhook(settings.webhook_url, timeout=settings.webhook_timeout_seconds))
    if settings.sns_topic_arn:
        notifiers.append(Sns(settings.sns_topic_arn, client=sns_client))
    return notifiers
