"""Settings of the alert forwarder, read from the environment (scripts/alerts/README.md).

Each field declares its variable, default, checks and help in one place
(``emr_jobs.core.settings``); a wrong value raises ``SettingsError`` naming the variable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Self
from urllib.parse import urlparse

from pydantic import field_validator, model_validator

from emr_jobs.core.paths import REPO_ROOT
from emr_jobs.core.settings import Settings, setting

DEFAULT_GROUP = "smartcity-alert-forwarder"
DEFAULT_LEDGER_PATH = REPO_ROOT / ".cache" / "alerts" / "ledger.db"
_GROUP = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_SNS_ARN = re.compile(r"^arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
#: The longest a webhook or SNS failure makes the forwarder wait before it tries the alert again.
MAX_RETRY_DELAY_SECONDS = 30.0


class ForwarderSettings(Settings):
    """What the forwarder reads, where it notifies and how it remembers."""

    group: str = setting("ALERT_FORWARDER_GROUP", DEFAULT_GROUP, "Kafka consumer group")
    max_age_minutes: int = setting(
        "ALERT_MAX_AGE_MINUTES", 60, "older alerts (detectedAt) are skipped; 0 = never", ge=0
    )
    #: Checked by ``_consistent``, not by a field validator: a field's error repeats the value,
    #: and a webhook URL's path or query often holds a secret. Not in ``repr`` either.
    webhook_url: str = setting(
        "ALERT_WEBHOOK_URL", "", "POST each alert's JSON to this http(s) URL", repr=False
    )
    webhook_timeout_seconds: float = setting(
        "ALERT_WEBHOOK_TIMEOUT_SECONDS", 10.0, "per webhook request", ge=0.1, le=300
    )
    sns_topic_arn: str = setting("ALERT_SNS_TOPIC_ARN", "", "publish each alert to this SNS topic")
    dedupe_table: str = setting(
        "ALERT_DEDUPE_TABLE",
        "",
        "DynamoDB ledger (key alertId, TTL expiresAt); unset: SQLite at ALERT_LEDGER_PATH",
    )
    dedupe_ttl_days: int = setting(
        "ALERT_DEDUPE_TTL_DAYS", 7, "how long the ledger remembers an id", ge=1, le=3650
    )
    ledger_path: str = setting(
        "ALERT_LEDGER_PATH", "", "SQLite ledger; unset: .cache/alerts/ledger.db"
    )
    aws_region: str = setting(
        "AWS_REGION",
        "",
        "region of the DynamoDB table; unset: AWS_DEFAULT_REGION",
        also=("AWS_DEFAULT_REGION",),
    )
    publish_attempts: int = setting(
        "ALERT_PUBLISH_ATTEMPTS",
        3,
        "tries per channel before the alert is deferred",
        ge=1,
        le=20,
    )
    retry_backoff_seconds: float = setting(
        "ALERT_RETRY_BACKOFF_SECONDS",
        1.0,
        f"first wait between tries; doubles, at most {MAX_RETRY_DELAY_SECONDS:g}",
        ge=0,
        le=60,
    )
    #: After a crash, the alert is sent again once the claim (status pending) has run out.
    claim_lease_seconds: float = setting(
        "ALERT_CLAIM_LEASE_SECONDS",
        120.0,
        "a claim keeps other forwarders away this long",
        ge=1,
    )
    connect_timeout_seconds: float = setting(
        "ALERT_CONNECT_TIMEOUT_SECONDS",
        5.0,
        "give up on an unreachable broker after this",
        ge=0.5,
        le=300,
    )

    @field_validator("group")
    @classmethod
    def _group_name(cls, value: str) -> str:
        if not _GROUP.match(value):
            raise ValueError("must be letters, digits, '.', '_' or '-'")
        return value

    @field_validator("sns_topic_arn")
    @classmethod
    def _arn(cls, value: str) -> str:
        if value and not _SNS_ARN.match(value):
            raise ValueError("must look like arn:aws:sns:<region>:<account>:<name>")
        return value

    @field_validator("dedupe_table")
    @classmethod
    def _table_name(cls, value: str) -> str:
        if value and not _TABLE_NAME.match(value):
            raise ValueError("must be a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.webhook_url:
            _check_webhook_url(self.webhook_url)
        if self.dedupe_table and not self.aws_region:
            raise ValueError(
                "AWS_REGION (or AWS_DEFAULT_REGION) must be set when ALERT_DEDUPE_TABLE is set"
            )
        if self.claim_lease_seconds <= self.publish_budget_seconds:
            raise ValueError(
                f"ALERT_CLAIM_LEASE_SECONDS ({self.claim_lease_seconds:g}) must be longer than "
                f"the longest publish ({self.publish_budget_seconds:g}s with "
                "ALERT_PUBLISH_ATTEMPTS, ALERT_WEBHOOK_TIMEOUT_SECONDS and "
                "ALERT_RETRY_BACKOFF_SECONDS), or a slow publish could be claimed and sent twice"
            )
        return self

    @property
    def publish_budget_seconds(self) -> float:
        """The longest one alert's publishing can take: every attempt on every channel."""
        per_try = (self.webhook_timeout_seconds if self.webhook_url else 0.0) + (
            15.0 if self.sns_topic_arn else 0.0  # botocore: 5 s connect + 10 s read (notifiers)
        )
        waits = sum(
            min(self.retry_backoff_seconds * 2**n, MAX_RETRY_DELAY_SECONDS)
            for n in range(self.publish_attempts - 1)
        )
        return self.publish_attempts * per_try + 2 * waits  # waits: webhook and SNS each

    @property
    def ledger_file(self) -> Path:
        return Path(self.ledger_path) if self.ledger_path else DEFAULT_LEDGER_PATH

    @property
    def ledger_description(self) -> str:
        if self.dedupe_table:
            return f"DynamoDB table {self.dedupe_table} ({self.aws_region})"
        return f"SQLite {self.ledger_file}"


def _check_webhook_url(value: str) -> None:
    """An http(s) URL with a host. The error shows the scheme at most: the rest (user, path,
    query) may hold a secret."""
    try:
        url = urlparse(value)
        host = url.hostname
    except ValueError:  # e.g. a malformed [IPv6] host
        url, host = None, None
    if url is not None and url.scheme in ("http", "https") and host:
        return
    if url is None:
        problem = "it cannot be parsed"
    elif re.fullmatch(r"[A-Za-z]{1,10}", url.scheme) and url.scheme not in ("http", "https"):
        problem = f"its scheme is {url.scheme!r}"  # a short word: not a secret
    elif url.scheme not in ("http", "https"):
        problem = "it does not start with http:// or https://"
    else:
        problem = "it has no host"
    raise ValueError(
        f"ALERT_WEBHOOK_URL must be an http:// or https:// URL with a host; {problem} "
        "(the rest of the value is not shown: it may hold a credential)"
    )
