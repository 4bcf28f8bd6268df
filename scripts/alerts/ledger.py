"""The forwarder's memory of which alert ids it has notified: claim, then mark sent.

One item per alert id. A forwarder *claims* an id with a conditional write (status ``pending``,
a random claim token and a lease expiry) that succeeds only if the id is absent, its entry has
outlived its TTL, or it is ``pending`` with a lease that has run out. It then publishes and marks
the id ``sent``. If publishing fails it *releases* the claim (the lease is ended at once, and the
channels that did succeed are remembered so they are not notified again). Every entry carries a
TTL (``expiresAt``, epoch seconds) so the ledger does not grow without bound.

On AWS the ledger is a DynamoDB table (partition key ``alertId`` (S), TTL attribute
``expiresAt`` (N)); Terraform's table is held to :data:`LEDGER_KEY` and
:data:`LEDGER_TTL_ATTRIBUTE` by a test. Locally it is a SQLite file with the same semantics.
"""

from __future__ import annotations

import contextlib
import enum
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

#: Partition key of the DynamoDB ledger table: the alert id, a string (``S``).
LEDGER_KEY = "alertId"
#: TTL attribute of the DynamoDB ledger table: epoch seconds (``N``) after which DynamoDB may
#: delete the entry (it does so within a day or two, so reads treat older entries as absent).
LEDGER_TTL_ATTRIBUTE = "expiresAt"

PENDING = "pending"
SENT = "sent"


class LedgerError(RuntimeError):
    """The ledger could not be read or written (network, permissions, a locked file)."""


class ClaimState(enum.Enum):
    CLAIMED = "claimed"  #: this forwarder holds the id and must publish it
    SENT = "sent"  #: notified before: nothing to do
    BUSY = "busy"  #: another claim's lease is still running (another forwarder, or a crash)


@dataclass(frozen=True)
class Claim:
    state: ClaimState
    token: str = ""
    #: Channels a previous, released claim already delivered (they are not notified again).
    delivered: frozenset[str] = field(default_factory=frozenset)
    #: BUSY: epoch seconds when the other claim's lease runs out.
    lease_until: float = 0.0


class Ledger(Protocol):
    def claim(self, alert_id: str) -> Claim: ...

    def mark_sent(self, alert_id: str, channels: frozenset[str]) -> None: ...

    def release(self, alert_id: str, token: str, delivered: frozenset[str]) -> None: ...

    def close(self) -> None: ...


def _new_token() -> str:
    return uuid.uuid4().hex


class SqliteLedger:
    """The ledger in a local SQLite file; several processes may share it (file locks)."""

    def __init__(
        self,
        path: Path,
        *,
        ttl_days: int,
        lease_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.ttl_seconds = ttl_days * 86_400
        self.lease_seconds = lease_seconds
        self.clock = clock
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS ledger ("
                " alert_id TEXT PRIMARY KEY, status TEXT NOT NULL, claim_token TEXT,"
                " lease_until REAL, channels TEXT NOT NULL DEFAULT '',"
                " expires_at INTEGER NOT NULL, updated_at REAL NOT NULL)"
            )
            # What DynamoDB's TTL does on AWS.
            self.db.execute("DELETE FROM ledger WHERE expires_at < ?", (int(self.clock()),))
        except (OSError, sqlite3.Error) as err:
            raise LedgerError(
                f"cannot open the ledger {self.path} (ALERT_LEDGER_PATH): {err}"
            ) from None

    def claim(self, alert_id: str) -> Claim:
        now = self.clock()
        token = _new_token()
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                row = self.db.execute(
                    "SELECT status, lease_until, channels, expires_at FROM ledger"
                    " WHERE alert_id = ?",
                    (alert_id,),
                ).fetchone()
                delivered: frozenset[str] = frozenset()
                if row is not None and row[3] >= now:
                    status, lease_until, channels, _ = row
                    if status == SENT:
                        return Claim(ClaimState.SENT)
                    if lease_until >= now:
                        return Claim(ClaimState.BUSY, lease_until=lease_until)
                    delivered = _split(channels)
                self.db.execute(
                    "INSERT OR REPLACE INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        alert_id,
                        PENDING,
                        token,
                        now + self.lease_seconds,
                        ",".join(sorted(delivered)),
                        int(now + self.ttl_seconds),
                        now,
                    ),
                )
            finally:
                self.db.execute("COMMIT")
        except sqlite3.Error as err:
            raise LedgerError(f"ledger {self.path}: {err}") from None
        return Claim(ClaimState.CLAIMED, token=token, delivered=delivered)

    def mark_sent(self, alert_id: str, channels: frozenset[str]) -> None:
        now = self.clock()
        try:
            self.db.execute(
                "INSERT INTO ledger VALUES (?, ?, NULL, NULL, ?, ?, ?) ON CONFLICT (alert_id)"
                " DO UPDATE SET status = excluded.status, claim_token = NULL, lease_until = NULL,"
                " channels = excluded.channels, expires_at = excluded.expires_at,"
                " updated_at = excluded.updated_at",
                (alert_id, SENT, ",".join(sorted(channels)), int(now + self.ttl_seconds), now),
            )
        except sqlite3.Error as err:
            raise LedgerError(f"ledger {self.path}: {err}") from None

    def release(self, alert_id: str, token: str, delivered: frozenset[str]) -> None:
        try:
            self.db.execute(
                "UPDATE ledger SET lease_until = 0, channels = ?, updated_at = ?"
                " WHERE alert_id = ? AND status = ? AND claim_token = ?",
                (",".join(sorted(delivered)), self.clock(), alert_id, PENDING, token),
            )
        except sqlite3.Error as err:
            raise LedgerError(f"ledger {self.path}: {err}") from None

    def entries(self) -> dict[str, dict[str, Any]]:
        """Every entry, by alert id (for tests and operators)."""
        rows = self.db.execute(
            "SELECT alert_id, status, lease_until, channels, expires_at FROM ledger"
        ).fetchall()
        return {
            r[0]: {"status": r[1], "leaseUntil": r[2], "channels": _split(r[3]), "expiresAt": r[4]}
            for r in rows
        }

    def close(self) -> None:
        self.db.close()


def _split(channels: str | None) -> frozenset[str]:
    return frozenset(c for c in (channels or "").split(",") if c)


class DynamoLedger:
    """The ledger in a DynamoDB table keyed by :data:`LEDGER_KEY`, TTL on
    :data:`LEDGER_TTL_ATTRIBUTE`. Needs ``dynamodb:GetItem`` and ``dynamodb:UpdateItem`` on
    the table, nothing else."""

    def __init__(
        self,
        table: str,
        *,
        ttl_days: int,
        lease_seconds: float,
        client: Any = None,
        region: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = table
        self.ttl_seconds = ttl_days * 86_400
        self.lease_seconds = lease_seconds
        self.clock = clock
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "dynamodb",
                region_name=region or None,
                config=Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard"}),
            )
        self.client = client

    def check(self) -> None:
        """Fail if the table is missing or keyed differently. One ``GetItem`` of an id that is
        never an alert's: the only permissions the forwarder has are item reads and writes."""
        from botocore.exceptions import BotoCoreError, ClientError

        where = f"ALERT_DEDUPE_TABLE {self.table!r}"
        try:
            self.client.get_item(TableName=self.table, Key={LEDGER_KEY: {"S": "start-check"}})
        except ClientError as err:
            error = err.response.get("Error", {})
            code = error.get("Code", "")
            if code == "ResourceNotFoundException":
                raise LedgerError(f"{where} does not exist in {self._region()}") from None
            if code == "ValidationException":
                raise LedgerError(
                    f"{where} must have the partition key {LEDGER_KEY!r} (S) and no sort key: "
                    f"{error.get('Message', code)}"
                ) from None
            raise LedgerError(f"{where}: {code}: {error.get('Message', '')}") from None
        except BotoCoreError as err:
            raise LedgerError(f"{where}: {err}") from None

    def _region(self) -> str:
        return getattr(getattr(self.client, "meta", None), "region_name", "") or "its region"

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(TableName=self.table, **kwargs)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise
            code = err.response.get("Error", {}).get("Code", "")
            raise LedgerError(f"DynamoDB {operation} on {self.table}: {code or err}") from None
        except BotoCoreError as err:
            raise LedgerError(f"DynamoDB {operation} on {self.table}: {err}") from None

    def claim(self, alert_id: str) -> Claim:
        from botocore.exceptions import ClientError

        now = self.clock()
        token = _new_token()
        key = {LEDGER_KEY: {"S": alert_id}}
        try:
            result = self._call(
                "update_item",
                Key=key,
                UpdateExpression=(
                    "SET #status = :pending, claimToken = :token, leaseUntil = :lease, "
                    "#ttl = :expires, updatedAt = :now"
                ),
                ConditionExpression=(
                    "attribute_not_exists(#key) OR #ttl < :now "
                    "OR (#status = :pending AND leaseUntil < :now)"
                ),
                ExpressionAttributeNames={
                    "#key": LEDGER_KEY,
                    "#ttl": LEDGER_TTL_ATTRIBUTE,
                    "#status": "status",
                },
                ExpressionAttributeValues={
                    ":pending": {"S": PENDING},
                    ":token": {"S": token},
                    ":lease": {"N": _num(now + self.lease_seconds)},
                    ":expires": {"N": str(int(now + self.ttl_seconds))},
                    ":now": {"N": _num(now)},
                },
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as err:  # the condition failed: sent, or a live claim
            old = err.response.get("Item") or self._get(key)
            if old is None:  # deleted between the two calls: try again
                return self.claim(alert_id)
            if old.get("status", {}).get("S") == SENT:
                return Claim(ClaimState.SENT)
            return Claim(ClaimState.BUSY, lease_until=float(old["leaseUntil"]["N"]))
        old = result.get("Attributes") or {}
        delivered: frozenset[str] = frozenset()
        if (
            old.get("status", {}).get("S") == PENDING
            and float(old.get(LEDGER_TTL_ATTRIBUTE, {}).get("N", "0")) >= now
        ):
            delivered = frozenset(v["S"] for v in old.get("channels", {}).get("L", []))
        return Claim(ClaimState.CLAIMED, token=token, delivered=delivered)

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        return self._call("get_item", Key=key, ConsistentRead=True).get("Item")

    def mark_sent(self, alert_id: str, channels: frozenset[str]) -> None:
        now = self.clock()
        self._call(
            "update_item",
            Key={LEDGER_KEY: {"S": alert_id}},
            UpdateExpression=(
                "SET #status = :sent, channels = :channels, #ttl = :expires, updatedAt = :now, "
                "sentAt = :now REMOVE claimToken, leaseUntil"
            ),
            ExpressionAttributeNames={"#ttl": LEDGER_TTL_ATTRIBUTE, "#status": "status"},
            ExpressionAttributeValues={
                ":sent": {"S": SENT},
                ":channels": {"L": [{"S": c} for c in sorted(channels)]},
                ":expires": {"N": str(int(now + self.ttl_seconds))},
                ":now": {"N": _num(now)},
            },
        )

    def release(self, alert_id: str, token: str, delivered: frozenset[str]) -> None:
        from botocore.exceptions import ClientError

        # ClientError: no longer our claim (the lease ran out and another forwarder took it).
        with contextlib.suppress(ClientError):
            self._call(
                "update_item",
                Key={LEDGER_KEY: {"S": alert_id}},
                UpdateExpression="SET leaseUntil = :zero, channels = :channels, updatedAt = :now",
                ConditionExpression="#status = :pending AND claimToken = :token",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":zero": {"N": "0"},
                    ":channels": {"L": [{"S": c} for c in sorted(delivered)]},
                    ":now": {"N": _num(self.clock())},
                    ":pending": {"S": PENDING},
                    ":token": {"S": token},
                },
            )

    def close(self) -> None:
        pass


def _num(x: float) -> str:
    return f"{x:.3f}"


def open_ledger(settings: Any, *, dynamodb_client: Any = None) -> Ledger:
    """The ledger ``settings`` (:class:`ForwarderSettings`) name; checked before it is used."""
    if settings.dedupe_table:
        ledger = DynamoLedger(
            settings.dedupe_table,
            ttl_days=settings.dedupe_ttl_days,
            lease_seconds=settings.claim_lease_seconds,
            client=dynamodb_client,
            region=settings.aws_region,
        )
        ledger.check()
        return ledger
    return SqliteLedger(
        settings.ledger_file,
        ttl_days=settings.dedupe_ttl_days,
        lease_seconds=settings.claim_lease_seconds,
    )
