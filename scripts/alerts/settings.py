"""Settings of the alert forwarder, read from the environment (README, "The alert forwarder")."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from emr_jobs.core.paths import REPO_ROOT
from emr_jobs.core.settings import SettingsError, check_range, env_float, env_int, env_str

DEFAULT_GROUP = "smartcity-alert-forwarder"
DEFAULT_LEDGER_PATH = REPO_ROOT / ".cache" / "alerts" / "ledger.db"
_SNS_ARN = re.compile(r"^arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
#: The longest a webhook or SNS failure makes the forwarder wait before it tries the alert again.
MAX_RETRY_DELAY_SECONDS = 30.0


@dataclass(frozen=True)
class ForwarderSettings:
    """What the forwarder reads, where it notifies and how it remembers (variable in brackets)."""

    group: str = DEFAULT_GROUP  # [ALERT_FORWARDER_GROUP] Kafka consumer group
    max_age_minutes: int = 60  # [ALERT_MAX_AGE_MINUTES] older (by detectedAt): skipped; 0 = none
    webhook_url: str = ""  # [ALERT_WEBHOOK_URL] http(s) URL that receives each alert's JSON
    webhook_timeout_seconds: float = 10.0  # [ALERT_WEBHOOK_TIMEOUT_SECONDS] per request
    sns_topic_arn: str = ""  # [ALERT_SNS_TOPIC_ARN] SNS topic each alert is published to
    dedupe_table: str = ""  # [ALERT_DEDUPE_TABLE] DynamoDB ledger; unset = local SQLite ledger
    dedupe_ttl_days: int = 7  # [ALERT_DEDUPE_TTL_DAYS] how long the ledger remembers an id
    ledger_path: str = ""  # [ALERT_LEDGER_PATH] SQLite ledger; default .cache/alerts/ledger.db
    aws_region: str = ""  # [AWS_REGION] region of the DynamoDB table
    publish_attempts: int = 3  # [ALERT_PUBLISH_ATTEMPTS] tries per channel before deferring
    retry_backoff_seconds: float = 1.0  # [ALERT_RETRY_BACKOFF_SECONDS] first wait; doubles
    #: [ALERT_CLAIM_LEASE_SECONDS] how long a claim (status pending) keeps other forwarders
    #: away; after a crash, the alert is sent again once it has run out.
    claim_lease_seconds: float = 120.0
    connect_timeout_seconds: float = 5.0  # [ALERT_CONNECT_TIMEOUT_SECONDS] broker check at start

    def __post_init__(self) -> None:
        if not re.match(r"^[A-Za-z0-9._-]{1,249}$", self.group):
            raise SettingsError(
                "ALERT_FORWARDER_GROUP must be letters, digits, '.', '_' or '-'; "
                f"got {self.group!r}"
            )
        check_range("ALERT_MAX_AGE_MINUTES", self.max_age_minutes, 0, None)
        if self.webhook_url:
            url = urlparse(self.webhook_url)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise SettingsError(
                    "ALERT_WEBHOOK_URL must be an http:// or https:// URL; "
                    f"got one starting {self.webhook_url[:12]!r}"  # the rest may hold a secret
                )
        check_range("ALERT_WEBHOOK_TIMEOUT_SECONDS", self.webhook_timeout_seconds, 0.1, 300)
        if self.sns_topic_arn and not _SNS_ARN.match(self.sns_topic_arn):
            raise SettingsError(
                "ALERT_SNS_TOPIC_ARN must look like arn:aws:sns:<region>:<account>:<name>; "
                f"got {self.sns_topic_arn!r}"
            )
        if self.dedupe_table:
            if not _TABLE_NAME.match(self.dedupe_table):
                raise SettingsError(
                    "ALERT_DEDUPE_TABLE must be a DynamoDB table name "
                    "(3-255 of A-Z a-z 0-9 _ . -); "
                    f"got {self.dedupe_table!r}"
                )
            if not self.aws_region:
                raise SettingsError("AWS_REGION must be set when ALERT_DEDUPE_TABLE is set")
        check_range("ALERT_DEDUPE_TTL_DAYS", self.dedupe_ttl_days, 1, 3650)
        check_range("ALERT_PUBLISH_ATTEMPTS", self.publish_attempts, 1, 20)
        check_range("ALERT_RETRY_BACKOFF_SECONDS", self.retry_backoff_seconds, 0.0, 60)
        check_range("ALERT_CONNECT_TIMEOUT_SECONDS", self.connect_timeout_seconds, 0.5, 300)
        if self.claim_lease_seconds <= self.publish_budget_seconds:
            raise SettingsError(
                f"ALERT_CLAIM_LEASE_SECONDS ({self.claim_lease_seconds:g}) must be longer than "
                f"the longest publish ({self.publish_budget_seconds:g}s with "
                "ALERT_PUBLISH_ATTEMPTS, ALERT_WEBHOOK_TIMEOUT_SECONDS and "
                "ALERT_RETRY_BACKOFF_SECONDS), or a slow publish could be claimed and sent twice"
            )

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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ForwarderSettings:
        env = os.environ if env is None else env
        return cls(
            group=env_str(env, "ALERT_FORWARDER_GROUP", DEFAULT_GROUP),
            max_age_minutes=env_int(env, "ALERT_MAX_AGE_MINUTES", 60, minimum=0),
            webhook_url=env_str(env, "ALERT_WEBHOOK_URL", ""),
            webhook_timeout_seconds=env_float(env, "ALERT_WEBHOOK_TIMEOUT_SECONDS", 10.0),
            sns_topic_arn=env_str(env, "ALERT_SNS_TOPIC_ARN", ""),
            dedupe_table=env_str(env, "ALERT_DEDUPE_TABLE", ""),
            dedupe_ttl_days=env_int(env, "ALERT_DEDUPE_TTL_DAYS", 7, minimum=1),
            ledger_path=env_str(env, "ALERT_LEDGER_PATH", ""),
            aws_region=env_str(env, "AWS_REGION", env_str(env, "AWS_DEFAULT_REGION", "")),
            publish_attempts=env_int(env, "ALERT_PUBLISH_ATTEMPTS", 3, minimum=1),
            retry_backoff_seconds=env_float(env, "ALERT_RETRY_BACKOFF_SECONDS", 1.0, minimum=0),
            claim_lease_seconds=env_float(env, "ALERT_CLAIM_LEASE_SECONDS", 120.0, minimum=1),
            connect_timeout_seconds=env_float(env, "ALERT_CONNECT_TIMEOUT_SECONDS", 5.0),
        )
