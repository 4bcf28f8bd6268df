"""Every wrong producer setting is one ``error:`` line that names it: no stack trace, exit 2,
within seconds. The CLI runs as operators start it, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from emr_jobs.core.contracts import CONTRACTS, STREAMS
from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.paths import REPO_ROOT
from producer.cli import build_parser, settings_from
from producer.settings import ProducerSettings
from scripts.local_broker import free_port

#: Variables that would leak the caller's setup into the child; each test sets what it needs.
_OWN_PREFIXES = ("SIM_", "PRODUCER_", "KAFKA_", "AWS_", "MSK_")


def cli_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    for s in STREAMS:
        env.pop(CONTRACTS[s].topic_env, None)
    # A broker that is surely absent: a case that wrongly passes validation fails fast too.
    env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{free_port()}"
    env["PRODUCER_CONNECT_TIMEOUT_SECONDS"] = "2"
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(variables)
    return env


def run_cli(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "producer.cli", "--max-events", "10", "--no-progress", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, time.monotonic() - started


def assert_one_error_line(result: subprocess.CompletedProcess, *names: str) -> str:
    """Exit 2, no traceback, and stderr is exactly one ``error:`` line naming ``names``."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    for name in names:
        assert name in line, f"{name!r} not named in {line!r}"
    assert result.stdout == ""
    return line


def test_an_unresolvable_host_names_the_variable_and_the_host():
    result, seconds = run_cli(env=cli_env(KAFKA_BOOTSTRAP_SERVERS="nohost.invalid:1"))
    line = assert_one_error_line(result, "KAFKA_BOOTSTRAP_SERVERS", "nohost.invalid")
    assert "does not resolve" in line
    assert seconds < 20


def test_a_closed_port_names_the_variable_and_says_nothing_listens():
    port = free_port()
    result, seconds = run_cli(env=cli_env(KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}"))
    line = assert_one_error_line(result, "KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{port}")
    assert "connection refused" in line
    assert seconds < 20


def test_a_closed_port_given_by_flag_names_the_flag():
    port = free_port()
    result, _ = run_cli("--bootstrap-servers", f"127.0.0.1:{port}", env=cli_env())
    line = assert_one_error_line(result, "--bootstrap-servers", f"127.0.0.1:{port}")
    assert "KAFKA_BOOTSTRAP_SERVERS" not in line


@pytest.mark.parametrize(
    ("args", "variables", "named", "not_named"),
    [
        # A flag's wrong value names the flag the user typed, not the variable behind it.
        (["--vehicles", "0"], {}, "--vehicles", "SIM_VEHICLES"),
        (["--vehicles", "20000"], {}, "--vehicles", "SIM_VEHICLES"),
        (["--vehicles", "abc"], {}, "--vehicles", "SIM_VEHICLES"),
        (["--speedup", "0"], {}, "--speedup", "SIM_SPEEDUP"),
        (["--late-fraction", "1.5"], {}, "--late-fraction", "SIM_LATE_FRACTION"),
        (["--duplicate-fraction", "-1"], {}, "--duplicate-fraction", "SIM_DUPLICATE_FRACTION"),
        (["--start-time", "tomorrow"], {}, "--start-time", "SIM_START_TIME"),
        (["--delivery-timeout", "0.5"], {}, "--delivery-timeout", "PRODUCER_DELIVERY_TIMEOUT"),
        (["--bootstrap-servers", "localhost"], {}, "--bootstrap-servers", "KAFKA_BOOTSTRAP"),
        (["--pace", "fast"], {}, "--pace", "SIM_PACE"),
        (["--auth-mode", "kerberos"], {}, "--auth-mode", "KAFKA_AUTH_MODE"),
        (["--auth-mode", "msk-iam"], {}, "AWS_REGION", "KAFKA_AUTH_MODE"),
        (["--max-events", "0"], {}, "--max-events", "SIM_MAX_EVENTS"),
        (["--bogus"], {}, "--bogus", None),
        # The same mistakes made in the environment name the variable.
        ([], {"SIM_VEHICLES": "0"}, "SIM_VEHICLES", None),
        ([], {"SIM_VEHICLES": "abc"}, "SIM_VEHICLES", None),
        ([], {"SIM_SPEEDUP": "0"}, "SIM_SPEEDUP", None),
        ([], {"SIM_PACE": "fast"}, "SIM_PACE", None),
        ([], {"SIM_START_TIME": "2026-01-05T08:00:00"}, "SIM_START_TIME", None),
        ([], {"PRODUCER_DELIVERY_TIMEOUT_SECONDS": "soon"}, "PRODUCER_DELIVERY_TIMEOUT", None),
        ([], {"PRODUCER_CONNECT_TIMEOUT_SECONDS": "0"}, "PRODUCER_CONNECT_TIMEOUT", None),
        ([], {"PRODUCER_FLUSH_TIMEOUT_SECONDS": "-1"}, "PRODUCER_FLUSH_TIMEOUT", None),
        ([], {"KAFKA_BOOTSTRAP_SERVERS": "localhost"}, "KAFKA_BOOTSTRAP_SERVERS", None),
        ([], {"KAFKA_AUTH_MODE": "kerberos"}, "KAFKA_AUTH_MODE", None),
        ([], {"KAFKA_AUTH_MODE": "msk-iam"}, "AWS_REGION", None),
    ],
)
def test_a_wrong_value_is_one_line_naming_what_the_user_set(args, variables, named, not_named):
    # "--max-events 10" comes first in run_cli; a later "--max-events" overrides it.
    result, seconds = run_cli(*args, env=cli_env(**variables))
    line = assert_one_error_line(result, named)
    if not_named:
        assert not_named not in line
    assert seconds < 15


@pytest.mark.integration
def test_missing_topics_name_each_topic_and_its_variable(kafka_settings):
    """Only the two topics that do not exist are named, each with the variable that names it."""
    missing = {"vehicle": "never-created-vehicles", "weather": "never-created-weather"}
    variables = {CONTRACTS[s].topic_env: kafka_settings.topic(s) for s in STREAMS}
    variables.update({CONTRACTS[s].topic_env: name for s, name in missing.items()})
    variables["KAFKA_BOOTSTRAP_SERVERS"] = kafka_settings.bootstrap_servers
    result, seconds = run_cli(env=cli_env(**variables))
    line = assert_one_error_line(
        result,
        "never-created-vehicles (VEHICLE_TOPIC)",
        "never-created-weather (WEATHER_TOPIC)",
    )
    for s in ("gps", "traffic_camera", "emergency"):
        assert kafka_settings.topic(s) not in line
    assert seconds < 20


def test_every_flag_that_overrides_a_variable_names_it_in_the_help():
    """The parser's flags are exactly the settings fields that declare one, and each flag's
    help names the variable it overrides."""
    parser = build_parser()
    options = {
        a.option_strings[0]: a.help or ""
        for a in parser._actions  # noqa: SLF001 - argparse has no public list of its options
        if a.option_strings and a.option_strings[0].startswith("--")
    }
    declared = {
        info.json_schema_extra["flag"]: variable
        for cls in (ProducerSettings, KafkaSettings)
        for variable, info in cls.variables()
        if info.json_schema_extra.get("flag")
    }
    without_variable = {"--help", "--report-json", "--no-progress"}
    assert set(declared) == set(options) - without_variable
    for flag, variable in declared.items():
        assert f"[{variable}" in options[flag], flag


def test_a_start_time_flag_without_an_offset_is_utc():
    from datetime import UTC, datetime

    args = build_parser().parse_args(["--start-time", "2026-02-01T10:00:00"])
    _, sim = settings_from(args, {})
    assert sim.start_time == datetime(2026, 2, 1, 10, 0, tzinfo=UTC)


def test_a_client_log_line_repeated_during_an_outage_is_shown_once_per_window():
    import logging

    from producer.kafka_producer import RepeatFilter

    now = [0.0]
    repeat = RepeatFilter(window=30, clock=lambda: now[0])

    def line(text: str) -> logging.LogRecord:
        return logging.LogRecord("producer.librdkafka", logging.ERROR, "", 0, text, None, None)

    def refused(ms: int) -> logging.LogRecord:
        return line(f"FAIL 127.0.0.1:9092/1: Connection refused (after {ms}ms in state CONNECT)")

    assert repeat.filter(refused(0))
    shown = []
    for second in range(1, 30):
        now[0] = second
        shown.append(repeat.filter(refused(second % 3)))
    assert not any(shown)
    assert repeat.filter(line("another problem"))  # a different line is not held back
    now[0] = 31
    record = refused(1)
    assert repeat.filter(record)
    assert "29 like it suppressed" in record.getMessage()
