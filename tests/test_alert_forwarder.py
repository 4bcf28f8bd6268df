"""The alert forwarder notifies once per alert id: across duplicates in the topic, restarts,
fresh consumer groups and crashes; it retries a failing webhook without committing past it;
bad records are skipped with a warning; wrong settings and an unreachable broker are one
``error:`` line. Kafka is the real embedded broker; SNS and DynamoDB are moto."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from moto import mock_aws

from emr_jobs.core.contracts import ALL_STREAMS, CONTRACTS, format_timestamp
from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.paths import REPO_ROOT
from emr_jobs.core.settings import SettingsError
from producer.kafka_config import producer_config
from scripts.alerts import LEDGER_KEY, LEDGER_TTL_ATTRIBUTE, ForwarderSettings
from scripts.alerts.forwarder import Stop, forward
from scripts.alerts.ledger import ClaimState, DynamoLedger, LedgerError, SqliteLedger
from scripts.alerts.notifiers import Alert, readable_line, sns_subject
from scripts.local_broker import free_port

integration = pytest.mark.integration
CONTRACT = CONTRACTS["alerts"]

# ---------------------------------------------------------------- realistic alerts, to the contract

_RULES = {
    "incident": ("critical", "Collision reported on the {section}: lanes 1 and 2 closed"),
    "approaching_incident": (
        "warning",
        "{device} is 3.2 km from an active incident on the {section}",
    ),
    "severe_weather": ("warning", "Heavy rain, 6.4 mm/h, on the {section}"),
    "speeding": ("info", "{device} at 94 km/h on the {section} (limit 70)"),
    "stopped_vehicle": ("warning", "{device} stopped on the {section} for 3 minutes"),
}
_SECTIONS = ("M40 J1-J2", "M40 J4-J5", "M42 J3A-J4", "M6 J4-J5", "A41 Solihull")


def make_alert(n: int, *, rule: str = "", detected: datetime | None = None, **fields) -> dict:
    """A valid alert; its id is a sha-256 prefix of the rule and its keys, as the job makes it."""
    rule = rule or list(_RULES)[n % len(_RULES)]
    severity, message = _RULES[rule]
    device = f"vehicle-{n % 7:04d}"
    section = _SECTIONS[n % len(_SECTIONS)]
    event_time = datetime(2026, 1, 5, 8, 0, tzinfo=UTC) + timedelta(seconds=37 * n)
    alert = {
        "id": hashlib.sha256(f"{rule}|{device}|{section}|{n}".encode()).hexdigest()[:32],
        "schemaVersion": CONTRACT.version,
        "rule": rule,
        "severity": severity,
        "status": "Active",
        "timestamp": format_timestamp(event_time),
        "detectedAt": format_timestamp(detected or datetime.now(UTC)),
        "location": {"latitude": 51.6 + n * 0.001, "longitude": -0.9 - n * 0.002},
        "section": section,
        "deviceId": device,
        "value": 3.2 + n,
        "message": message.format(device=device, section=section),
    }
    alert.update(fields)
    assert CONTRACT.violations(alert) == [], CONTRACT.violations(alert)
    return alert


def wire(alert: dict) -> bytes:
    return json.dumps(alert, separators=(",", ":")).encode()


def produce(settings: KafkaSettings, records: list[dict | bytes], partition: int | None = None):
    """Each record to the alerts topic, keyed by its id (raw bytes: keyed ``bad``)."""
    producer = Producer(producer_config(settings))
    for record in records:
        value, key = (record, b"bad") if isinstance(record, bytes) else (wire(record), None)
        extra = {} if partition is None else {"partition": partition}
        producer.produce(
            settings.topic("alerts"), value=value, key=key or record["id"].encode(), **extra
        )
    assert producer.flush(30) == 0


def committed(settings: KafkaSettings, group: str) -> dict[int, int]:
    """The group's committed offset per partition (negative: nothing committed)."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": group})
    try:
        parts = consumer.committed(
            [TopicPartition(settings.topic("alerts"), p) for p in range(3)], timeout=10
        )
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in parts}


def ids_in(lines: list[str], alerts: list[dict]) -> Counter:
    """Which alert each stdout line notified (the line ends with the id's first 12 chars)."""
    by_short = {a["id"][:12]: a["id"] for a in alerts}
    return Counter(by_short[line.rsplit("[", 1)[1].rstrip("]")] for line in lines)


@pytest.fixture
def fwd(tmp_path, topic_prefix) -> ForwarderSettings:
    """Forwarder settings for one test: its own group and ledger file, quick retries."""
    return ForwarderSettings(
        group=f"{topic_prefix}forwarder",
        ledger_path=str(tmp_path / "ledger.db"),
        retry_backoff_seconds=0.05,
        claim_lease_seconds=30,
    )


def run(kafka: KafkaSettings, settings: ForwarderSettings, **kwargs):
    """The forwarder in this thread; returns (result, its stdout lines)."""
    out = io.StringIO()
    kwargs.setdefault("idle_exit", 20.0)  # a safety net: every test stops by count or idleness
    result = forward(settings, kafka, out=out, progress_seconds=0, **kwargs)
    return result, out.getvalue().splitlines()


# ---------------------------------------------------------------- a webhook in a thread


@dataclass
class Webhook:
    """Records every POST; answers 500 to ids in ``failing``; ``hold`` one id until released."""

    received: list[tuple[str, bytes, int]] = field(default_factory=list)  # (id, body, status)
    failing: set[str] = field(default_factory=set)
    hold: str = ""
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def ok(self) -> Counter:
        return Counter(i for i, _, status in self.received if status == 200)

    def attempts(self, alert_id: str) -> int:
        return sum(1 for i, _, _ in self.received if i == alert_id)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    state = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            alert_id = self.headers["Idempotency-Key"]
            status = 500 if alert_id in state.failing else 200
            with state.lock:
                state.received.append((alert_id, body, status))
            if alert_id == state.hold and not state.held.is_set():
                state.held.set()
                state.release.wait(30)
            try:
                self.send_response(status)
                self.end_headers()
            except OSError:
                pass  # the forwarder was killed while we held its request

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/alerts?token=s3cret"
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# ---------------------------------------------------------------- the CLI in a subprocess

_OWN_PREFIXES = ("KAFKA_", "AWS_", "MSK_", "ALERT_")


def cli_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    for s in ALL_STREAMS:
        env.pop(CONTRACTS[s].topic_env, None)
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(variables)
    return env


def kafka_env(kafka: KafkaSettings) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "ALERTS_TOPIC": kafka.topic("alerts"),
    }


def start_cli(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "scripts.alerts", "forward", *args],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# ================================================================ settings and pieces (no broker


def test_the_ledger_names_terraform_holds_infra_to():
    assert (LEDGER_KEY, LEDGER_TTL_ATTRIBUTE) == ("alertId", "expiresAt")


def test_defaults_read_from_an_empty_environment():
    s = ForwarderSettings.from_env({})
    assert s.group == "smartcity-alert-forwarder"
    assert s.max_age_minutes == 60
    assert s.dedupe_ttl_days == 7
    assert (s.webhook_url, s.sns_topic_arn, s.dedupe_table) == ("", "", "")
    assert s.ledger_file == REPO_ROOT / ".cache" / "alerts" / "ledger.db"
    assert s.claim_lease_seconds > s.publish_budget_seconds


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ALERT_MAX_AGE_MINUTES": "an hour"}, "ALERT_MAX_AGE_MINUTES"),
        ({"ALERT_MAX_AGE_MINUTES": "-5"}, "ALERT_MAX_AGE_MINUTES"),
        ({"ALERT_WEBHOOK_URL": "ftp://hooks.example.com/x"}, "ALERT_WEBHOOK_URL"),
        ({"ALERT_SNS_TOPIC_ARN": "alerts-topic"}, "ALERT_SNS_TOPIC_ARN"),
        ({"ALERT_DEDUPE_TABLE": "smartcity-alert-ledger"}, "AWS_REGION"),
        ({"ALERT_DEDUPE_TABLE": "a b", "AWS_REGION": "eu-west-2"}, "ALERT_DEDUPE_TABLE"),
        ({"ALERT_DEDUPE_TTL_DAYS": "0"}, "ALERT_DEDUPE_TTL_DAYS"),
        ({"ALERT_FORWARDER_GROUP": "my group"}, "ALERT_FORWARDER_GROUP"),
        ({"ALERT_PUBLISH_ATTEMPTS": "0"}, "ALERT_PUBLISH_ATTEMPTS"),
        (
            {"ALERT_WEBHOOK_URL": "https://h.example.com", "ALERT_CLAIM_LEASE_SECONDS": "20"},
            "ALERT_CLAIM_LEASE_SECONDS",
        ),
    ],
)
def test_a_wrong_setting_fails_naming_its_variable(env, named):
    with pytest.raises(SettingsError, match=named):
        ForwarderSettings.from_env(env)


def test_a_webhook_url_with_a_secret_is_not_echoed_when_wrong():
    with pytest.raises(SettingsError) as err:
        ForwarderSettings(webhook_url="hxxps://hooks.example.com/T000/B000/XXXXsecretXXXX")
    assert "secret" not in str(err.value)


@pytest.mark.parametrize(
    "url",
    [
        "hxxps://hooks.example.com/T000/B000/XXXXsecretXXXX?token=tok3n",
        "ftp://user:pa55word@hooks.example.com/T000/B000/XXXXsecretXXXX?token=tok3n",
        "https:///T000/B000/XXXXsecretXXXX?token=tok3n",  # no host
        "https://[hooks.example.com/T000/B000/XXXXsecretXXXX?token=tok3n",  # unparsable
        "hooks.example.com/T000/B000/XXXXsecretXXXX?token=tok3n",  # no scheme
    ],
)
def test_a_wrong_webhook_url_names_its_variable_but_never_its_path_or_query(url):
    """Field errors repeat the value they reject; the webhook URL's must not (nor its repr)."""
    builds = [
        (lambda: ForwarderSettings.from_env({"ALERT_WEBHOOK_URL": url}), "ALERT_WEBHOOK_URL"),
        (lambda: ForwarderSettings(webhook_url=url), "ALERT_WEBHOOK_URL"),
        # Another wrong value beside it: that one is reported, and the URL still is not shown.
        (
            lambda: ForwarderSettings.from_env(
                {"ALERT_WEBHOOK_URL": url, "ALERT_MAX_AGE_MINUTES": "x"}
            ),
            "ALERT_MAX_AGE_MINUTES",
        ),
    ]
    for build, named in builds:
        with pytest.raises(SettingsError, match=named) as err:
            build()
        message = str(err.value)
        for part in ("/T000", "B000", "secret", "token", "tok3n", "pa55word", "hooks.example"):
            assert part not in message, message
    good = ForwarderSettings(webhook_url="https://hooks.example.com/T000/B000/XXXXsecretXXXX")
    assert "secret" not in repr(good)


def test_the_region_falls_back_to_aws_default_region():
    table = {"ALERT_DEDUPE_TABLE": "smartcity-alert-ledger"}
    assert ForwarderSettings.from_env({**table, "AWS_DEFAULT_REGION": "eu-west-1"}).aws_region == (
        "eu-west-1"
    )
    both = {**table, "AWS_REGION": "eu-west-2", "AWS_DEFAULT_REGION": "eu-west-1"}
    assert ForwarderSettings.from_env(both).aws_region == "eu-west-2"
    assert "eu-west-2" in ForwarderSettings.from_env(both).ledger_description


def test_the_settings_read_no_environment_unless_asked(monkeypatch):
    monkeypatch.setenv("ALERT_FORWARDER_GROUP", "from-the-environment")
    assert ForwarderSettings().group == "smartcity-alert-forwarder"
    assert ForwarderSettings.from_env().group == "from-the-environment"


def _alert(record: dict) -> Alert:
    return Alert(record["id"], record, wire(record), "alerts", 0, 7)


def test_the_readable_line_has_severity_rule_time_section_and_message():
    record = make_alert(0, rule="incident")
    line = readable_line(_alert(record))
    assert line.startswith("CRITICAL incident ")
    for part in (record["timestamp"], "M40 J1-J2", record["message"], record["id"][:12]):
        assert part in line


def test_the_sns_subject_is_printable_ascii_under_100_characters():
    record = make_alert(2, rule="severe_weather", message="Schnee und Glätte → " + "sehr " * 40)
    subject = sns_subject(_alert(record))
    assert subject.startswith("[WARNING] severe_weather: Schnee und Glatte")
    assert len(subject) < 100 and subject.endswith("...")
    assert subject.isascii() and subject.isprintable()


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "dynamodb"])
def ledger_and_clock(request, tmp_path):
    """The same ledger semantics on both backends, with a clock the test moves."""
    clock = _Clock()
    if request.param == "sqlite":
        ledger = SqliteLedger(tmp_path / "l.db", ttl_days=7, lease_seconds=60, clock=clock)
        yield ledger, clock
        ledger.close()
        return
    request.getfixturevalue("fake_aws_credentials")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-2")
        create_ledger_table(client, "ledger")
        ledger = DynamoLedger("ledger", ttl_days=7, lease_seconds=60, client=client, clock=clock)
        ledger.check()
        yield ledger, clock


def create_ledger_table(client, name: str) -> None:
    """The table as infra/ makes it: key ``alertId`` (S), TTL on ``expiresAt``."""
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": LEDGER_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": LEDGER_KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": LEDGER_TTL_ATTRIBUTE},
    )


def test_a_claim_is_exclusive_until_its_lease_runs_out_and_sent_is_final(ledger_and_clock):
    ledger, clock = ledger_and_clock
    first = ledger.claim("a1")
    assert first.state is ClaimState.CLAIMED and first.delivered == frozenset()
    busy = ledger.claim("a1")
    assert busy.state is ClaimState.BUSY and busy.lease_until == pytest.approx(clock.now + 60)
    clock.now += 61  # the claimant crashed: its lease runs out
    second = ledger.claim("a1")
    assert second.state is ClaimState.CLAIMED and second.token != first.token
    ledger.release("a1", first.token, frozenset({"stdout"}))  # a stale token changes nothing
    assert ledger.claim("a1").state is ClaimState.BUSY
    ledger.release("a1", second.token, frozenset({"stdout", "webhook"}))
    third = ledger.claim("a1")  # released: free at once, with what was delivered
    assert third.state is ClaimState.CLAIMED
    assert third.delivered == frozenset({"stdout", "webhook"})
    ledger.mark_sent("a1", frozenset({"stdout", "webhook", "sns"}))
    clock.now += 6 * 86_400
    assert ledger.claim("a1").state is ClaimState.SENT
    clock.now += 2 * 86_400  # past the TTL (DynamoDB may not have deleted it yet)
    fresh = ledger.claim("a1")
    assert fresh.state is ClaimState.CLAIMED and fresh.delivered == frozenset()


@dataclass
class _Record:
    """Just enough of a Kafka message for the handler."""

    payload: bytes
    at: int = 0

    def topic(self) -> str:
        return "alerts"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self.at

    def value(self) -> bytes:
        return self.payload


class _MarkSentFailsOnce(SqliteLedger):
    failed = False

    def mark_sent(self, alert_id, channels):
        if not self.failed:
            self.failed = True
            raise LedgerError("ProvisionedThroughputExceededException")
        super().mark_sent(alert_id, channels)


def test_published_but_not_recorded_is_released_with_its_channels_and_not_sent_again(tmp_path):
    from scripts.alerts.forwarder import AlertHandler
    from scripts.alerts.notifiers import Terminal

    settings = ForwarderSettings(
        ledger_path=str(tmp_path / "l.db"), publish_attempts=1, retry_backoff_seconds=0.01
    )
    ledger = _MarkSentFailsOnce(settings.ledger_file, ttl_days=7, lease_seconds=60)
    out = io.StringIO()
    handler = AlertHandler(settings, ledger, [Terminal(out)], Stop())
    record = _Record(wire(make_alert(1)))
    assert handler.handle(record) == pytest.approx(0.01)  # deferred, not done
    assert handler.outstanding == {make_alert(1)["id"]}
    assert handler.handle(record) is None  # released with stdout delivered: only marked now
    assert len(out.getvalue().splitlines()) == 1
    assert ledger.entries()[make_alert(1)["id"]]["status"] == "sent"
    assert handler.outstanding == frozenset()
    ledger.close()


def test_a_missing_or_wrongly_keyed_dynamodb_table_is_named(fake_aws_credentials):
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-2")
        with pytest.raises(LedgerError, match="ALERT_DEDUPE_TABLE 'nope' does not exist"):
            DynamoLedger("nope", ttl_days=7, lease_seconds=60, client=client).check()
        client.create_table(
            TableName="wrong",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        with pytest.raises(LedgerError, match="partition key 'alertId'"):
            DynamoLedger("wrong", ttl_days=7, lease_seconds=60, client=client).check()


def test_an_unreachable_broker_is_one_error_line_naming_the_setting_within_seconds():
    port = free_port()
    started = time.monotonic()
    proc = start_cli(env=cli_env(KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}"))
    stdout, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - started < 10
    assert proc.returncode == 2, stderr
    assert stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    assert "KAFKA_BOOTSTRAP_SERVERS" in lines[0] and f"127.0.0.1:{port}" in lines[0]
    assert "connection refused" in lines[0]


def test_a_wrong_setting_on_the_command_line_is_one_error_line():
    proc = start_cli(env=cli_env(ALERT_DEDUPE_TTL_DAYS="a week"))
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert stderr.strip().splitlines() == [
        "error: ALERT_DEDUPE_TTL_DAYS must be a whole number; got 'a week'"
    ]


# ================================================================ against the embedded broker


@integration
def test_a_missing_alerts_topic_names_the_variable_and_how_to_create_it(kafka_broker):
    env = cli_env(KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap_servers, ALERTS_TOPIC="no-such")
    proc = start_cli(env=env)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "'no-such' (ALERTS_TOPIC) does not exist" in lines[0]
    assert "python -m scripts.topics create" in lines[0]


@integration
def test_duplicates_notify_once_and_neither_a_restart_nor_a_fresh_group_notifies_again(
    kafka_settings, fwd
):
    first = [make_alert(n) for n in range(6)]
    produce(kafka_settings, first + first[:4] + first[:1])  # 11 records, 6 ids
    result, lines = run(kafka_settings, fwd, max_messages=11)
    assert ids_in(lines, first) == Counter({a["id"]: 1 for a in first})
    c = result.counts
    assert (c.received, c.notified, c.already_notified, c.bad, c.skipped_old) == (11, 6, 5, 0, 0)
    assert sum(committed(kafka_settings, fwd.group).values()) == 11

    # A restart of the same group: only what came since, and a repeat of an old id is known.
    second = [make_alert(n) for n in range(6, 9)]
    produce(kafka_settings, second + first[2:3])
    result, lines = run(kafka_settings, fwd, max_messages=4)
    assert ids_in(lines, second) == Counter({a["id"]: 1 for a in second})
    assert (result.counts.notified, result.counts.already_notified) == (3, 1)

    # A fresh group reads the topic from the start; the ledger knows every id.
    fresh = ForwarderSettings(**{**vars(fwd), "group": fwd.group + "-fresh"})
    result, lines = run(kafka_settings, fresh, max_messages=15)
    assert lines == []
    assert (result.counts.received, result.counts.notified) == (15, 0)
    assert result.counts.already_notified == 15
    assert set(SqliteLedger(fwd.ledger_file, ttl_days=7, lease_seconds=1).entries()) == {
        a["id"] for a in first + second
    }


@integration
def test_sns_and_a_dynamodb_ledger_publish_each_id_once_across_groups(
    kafka_settings, fwd, fake_aws_credentials
):
    alerts = [make_alert(n) for n in range(5)]
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-2")
        create_ledger_table(dynamodb, "smartcity-alert-ledger")
        sns = boto3.client("sns", region_name="eu-west-2")
        sqs = boto3.client("sqs", region_name="eu-west-2")
        topic_arn = sns.create_topic(Name="smartcity-alerts")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="alert-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        settings = ForwarderSettings(
            **{
                **vars(fwd),
                "sns_topic_arn": topic_arn,
                "dedupe_table": "smartcity-alert-ledger",
                "aws_region": "eu-west-2",
                "claim_lease_seconds": 60,  # longer than SNS's worst case (settings check it)
            }
        )

        def inbox() -> list[dict]:
            got = []
            while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            ):
                for m in batch:
                    got.append(json.loads(m["Body"]))
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            return got

        produce(kafka_settings, alerts + alerts[1:3])
        result, lines = run(kafka_settings, settings, max_messages=7)
        assert (result.counts.notified, result.counts.already_notified) == (5, 2)
        published = inbox()
        assert sorted(json.loads(n["Message"])["id"] for n in published) == sorted(
            a["id"] for a in alerts
        )
        by_id = {a["id"]: a for a in alerts}
        for note in published:
            alert = json.loads(note["Message"])  # machines (SQS) get the alert JSON alone
            assert alert == by_id[alert["id"]]
            assert note["Subject"] == sns_subject(_alert(alert)) and len(note["Subject"]) < 100
            attributes = {k: v["Value"] for k, v in note["MessageAttributes"].items()}
            assert attributes == {"rule": alert["rule"], "severity": alert["severity"]}

        items = dynamodb.scan(TableName="smartcity-alert-ledger")["Items"]
        assert {i[LEDGER_KEY]["S"] for i in items} == set(by_id)
        now = time.time()
        for item in items:
            assert item["status"]["S"] == "sent"
            assert float(item[LEDGER_TTL_ATTRIBUTE]["N"]) == pytest.approx(
                now + 7 * 86_400, abs=120
            )
            assert {c["S"] for c in item["channels"]["L"]} == {"stdout", "sns"}

        fresh = settings.updated(group=fwd.group + "-fresh")
        result, lines = run(kafka_settings, fresh, max_messages=7)
        assert (result.counts.notified, result.counts.already_notified) == (0, 7)
        assert lines == [] and inbox() == []


class _Crash(BaseException):
    """Stands for the process dying: nothing in the forwarder catches it."""


class _CrashAfterClaim(SqliteLedger):
    def __init__(self, *args, victim: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.victim = victim

    def claim(self, alert_id: str):
        claim = super().claim(alert_id)
        if alert_id == self.victim:
            raise _Crash(alert_id)
        return claim


@integration
def test_a_crash_between_claim_and_publish_loses_nothing_and_sends_once(kafka_settings, fwd):
    alerts = [make_alert(n) for n in range(6)]
    produce(kafka_settings, alerts, partition=0)
    victim = alerts[3]["id"]
    settings = ForwarderSettings(**{**vars(fwd), "claim_lease_seconds": 2})
    crashing = _CrashAfterClaim(settings.ledger_file, ttl_days=7, lease_seconds=2, victim=victim)
    with pytest.raises(_Crash):
        run(kafka_settings, settings, ledger=crashing)
    crashing.close()
    before = SqliteLedger(settings.ledger_file, ttl_days=7, lease_seconds=2).entries()
    assert before[victim]["status"] == "pending"  # claimed, never published
    assert committed(kafka_settings, settings.group)[0] == 3  # only what was done

    started = time.monotonic()
    result, lines = run(kafka_settings, settings, max_messages=3)
    assert ids_in(lines, alerts)[victim] == 1
    # Every id, the victim too, was notified exactly once over the two runs.
    sent_first = {i for i, e in before.items() if e["status"] == "sent"}
    assert sent_first == {a["id"] for a in alerts[:3]}
    assert set(ids_in(lines, alerts)) == {a["id"] for a in alerts[3:]}
    assert max(ids_in(lines, alerts).values()) == 1
    assert result.counts.deferred >= 1  # it waited for the crashed run's lease
    assert time.monotonic() - started < 15
    assert committed(kafka_settings, settings.group)[0] == 6


@integration
def test_a_sigkill_while_publishing_resends_only_that_alert(kafka_settings, fwd, webhook):
    """The one window that remains: killed after the webhook got the alert, before the
    ledger said sent. When its lease runs out it is sent again; nothing else is."""
    alerts = [make_alert(n) for n in range(8)]
    produce(kafka_settings, alerts, partition=0)  # one partition: a known order
    victim = alerts[4]["id"]
    webhook.hold = victim
    env = cli_env(
        **kafka_env(kafka_settings),
        ALERT_FORWARDER_GROUP=fwd.group,
        ALERT_LEDGER_PATH=str(fwd.ledger_file),
        ALERT_WEBHOOK_URL=webhook.url,
        ALERT_WEBHOOK_TIMEOUT_SECONDS="5",
        ALERT_PUBLISH_ATTEMPTS="1",
        ALERT_CLAIM_LEASE_SECONDS="6",
    )
    proc = start_cli(env=env)
    try:
        assert webhook.held.wait(60), proc.stderr.read() if proc.poll() is not None else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        webhook.release.set()
    # The receiver got the victim too; the forwarder died before it heard back.
    assert webhook.ok() == Counter({a["id"]: 1 for a in alerts[:5]})
    pending = SqliteLedger(fwd.ledger_file, ttl_days=7, lease_seconds=6).entries()
    assert {i for i, e in pending.items() if e["status"] == "pending"} == {victim}

    settings = ForwarderSettings(
        **{
            **vars(fwd),
            "webhook_url": webhook.url,
            "claim_lease_seconds": 6,
            "webhook_timeout_seconds": 5,
            "publish_attempts": 1,
        }
    )
    # The group first waits out the killed member's session (10 s), then the victim's lease.
    result, lines = run(kafka_settings, settings, max_messages=8, idle_exit=45)
    assert webhook.ok() == Counter({a["id"]: 2 if a["id"] == victim else 1 for a in alerts})
    assert result.counts.notified == 4  # the victim and the three never reached
    assert result.counts.received == 8
    assert set(ids_in(lines, alerts)) == {a["id"] for a in alerts[4:]}


@integration
def test_each_alert_reaches_the_webhook_once_and_a_failing_one_holds_its_offset(
    kafka_settings, fwd, webhook, caplog
):
    a, b, c = (make_alert(n) for n in range(3))
    produce(kafka_settings, [a, b, c], partition=0)
    webhook.failing.add(b["id"])
    settings = ForwarderSettings(**{**vars(fwd), "webhook_url": webhook.url, "publish_attempts": 2})
    stop = Stop()
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["result"] = run(kafka_settings, settings, max_messages=3, stop=stop)
        except BaseException as err:  # surfaced by the assertions below
            outcome["error"] = err

    thread = threading.Thread(target=target)
    thread.start()
    try:
        # Two attempts, deferred, the batch committed, then tried again: a third request.
        wait_for(lambda: webhook.attempts(b["id"]) >= 3, 30, "the webhook to be retried")
        assert committed(kafka_settings, settings.group)[0] == 1  # a is done, b is not
        assert webhook.ok() == Counter({a["id"]: 1})  # c waits behind b in its partition
        webhook.failing.clear()
        thread.join(30)
        assert not thread.is_alive()
    finally:
        stop.request("test over")
        thread.join(30)
    assert "error" not in outcome, outcome.get("error")
    result, lines = outcome["result"]
    assert webhook.ok() == Counter({x["id"]: 1 for x in (a, b, c)})
    bodies = {i: body for i, body, status in webhook.received if status == 200}
    assert {i: json.loads(body) for i, body in bodies.items()} == {x["id"]: x for x in (a, b, c)}
    assert len(lines) == 3  # the terminal line was not repeated for the retries
    assert result.counts.notified == 3 and result.counts.deferred >= 1
    assert result.outstanding == frozenset()
    assert committed(kafka_settings, settings.group)[0] == 3
    failures = [r for r in caplog.records if "HTTP 500" in r.getMessage()]
    assert failures and all(r.levelname == "WARNING" and r.exc_info is None for r in failures)
    assert all("s3cret" not in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= 40]


@integration
def test_bad_and_old_records_are_counted_and_skipped_and_the_forwarder_goes_on(
    kafka_settings, fwd, caplog
):
    good, also_good = make_alert(0), make_alert(1)
    stale = make_alert(2, detected=datetime.now(UTC) - timedelta(hours=3))
    breaks_contract = {**make_alert(3), "severity": "apocalyptic"}
    no_message = {k: v for k, v in make_alert(4).items() if k != "message"}
    records = [good, b"{not json", breaks_contract, stale, no_message, also_good]
    produce(kafka_settings, records, partition=0)
    result, lines = run(kafka_settings, fwd, max_messages=6)
    c = result.counts
    assert (c.received, c.notified, c.bad, c.skipped_old) == (6, 2, 3, 1)
    assert ids_in(lines, [good, also_good]) == Counter({good["id"]: 1, also_good["id"]: 1})
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    topic = kafka_settings.topic("alerts")
    assert f"skipped a bad record at {topic} partition 0 offset 1: not JSON" in " | ".join(warnings)
    assert any(
        f"{topic} partition 0 offset 2" in w and "severity: not one of info|warning|critical" in w
        for w in warnings
    )
    assert any("partition 0 offset 4" in w and "message: required" in w for w in warnings)
    assert all(r.exc_info is None for r in caplog.records)
    assert committed(kafka_settings, fwd.group)[0] == 6

    # With no age limit the stale alert is notified; the ledger still knows the other two.
    ageless = ForwarderSettings(**{**vars(fwd), "max_age_minutes": 0, "group": fwd.group + "-all"})
    result, lines = run(kafka_settings, ageless, max_messages=6)
    assert ids_in(lines, [stale]) == Counter({stale["id"]: 1})
    assert (result.counts.notified, result.counts.already_notified) == (1, 2)


@integration
def test_sigterm_stops_the_command_cleanly_and_quietly_after_committing(kafka_settings, fwd):
    alerts = [make_alert(n) for n in range(5)]
    produce(kafka_settings, alerts)
    env = cli_env(
        **kafka_env(kafka_settings),
        ALERT_FORWARDER_GROUP=fwd.group,
        ALERT_LEDGER_PATH=str(fwd.ledger_file),
    )
    proc = start_cli(env=env)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while len(lines) < 5 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
        assert len(lines) == 5
        proc.send_signal(signal.SIGTERM)
        rest, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert rest == ""
    assert ids_in(lines, alerts) == Counter({a["id"]: 1 for a in alerts})
    assert "Traceback" not in stderr
    assert " ERROR " not in stderr and " WARNING " not in stderr, stderr
    summary = stderr.strip().splitlines()[-1]
    assert "stopped by SIGTERM: received 5, notified 5, already notified 0" in summary
    assert sum(committed(kafka_settings, fwd.group).values()) == 5


def test_the_package_runs_as_a_module_with_help():
    out = subprocess.run(
        [sys.executable, "-m", "scripts.alerts", "--help"],
        cwd=REPO_ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0
    for name in ("ALERT_FORWARDER_GROUP", "ALERT_DEDUPE_TABLE", "--max-messages", "--idle-exit"):
        assert name in out.stdout
