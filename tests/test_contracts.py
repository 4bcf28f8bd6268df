"""The contracts are the one source of truth; the producer, the job and the docs must not drift."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys

import pytest

from emr_jobs.core.contracts import CONTRACTS, LAKE, STREAMS
from emr_jobs.core.paths import REPO_ROOT

CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")


def kafka_frame(spark, topic: str, values: list[bytes | None]):
    rows = [(b"v-1", v, topic, 0, i, dt.datetime(2026, 1, 5, 8, 0)) for i, v in enumerate(values)]
    return spark.createDataFrame(
        rows,
        "key binary, value binary, topic string, partition int, offset long, timestamp timestamp",
    )


@pytest.mark.parametrize("stream", STREAMS)
def test_every_contract_is_versioned_camel_case_and_shares_the_location_struct(stream):
    contract = CONTRACTS[stream]
    assert contract.version >= 1
    assert all(CAMEL.match(name) for name in contract.field_names), contract.field_names
    for common in ("id", "schemaVersion", "deviceId", "timestamp", "location"):
        assert contract.field(common).required
    assert contract.field("location").type == "location"
    assert contract.field("timestamp").type == "timestamp"


def test_enums_and_ranges_the_issue_names_are_in_the_contracts():
    assert CONTRACTS["weather"].field("humidity").min == 0
    assert CONTRACTS["weather"].field("humidity").max == 100
    assert CONTRACTS["vehicle"].field("speed").min == 0
    assert CONTRACTS["gps"].field("speed").min == 0
    assert CONTRACTS["weather"].field("weatherCondition").enum
    assert CONTRACTS["emergency"].field("type").enum
    assert CONTRACTS["emergency"].field("status").enum == ("Active", "Resolved")


@pytest.fixture(scope="module")
def simulated_events():
    from producer.simulator import SimulationOptions, simulate

    events = list(simulate(SimulationOptions(vehicles=3, seed=7)))
    assert {e.stream for e in events} == set(STREAMS), "the simulation must emit every stream"
    return events


def test_every_generated_event_validates_against_its_contract(simulated_events):
    for event in simulated_events:
        assert CONTRACTS[event.stream].violations(event.payload) == [], event.payload
        contract = CONTRACTS[event.stream]
        required = {f.name for f in contract.fields if f.required}
        assert required <= set(event.payload) <= set(contract.field_names), event.payload


@pytest.mark.parametrize("stream", STREAMS)
def test_producer_output_and_job_schema_do_not_drift(spark, simulated_events, stream):
    """Serialized producer events, parsed by the job with the contract schema, lose nothing:
    no quarantine reason, no field dropped or renamed, values equal to what was sent."""
    from emr_jobs.transforms import lake_columns, parse_events, to_lake_rows, validate
    from producer.wire import to_json_bytes

    contract = CONTRACTS[stream]
    sent = [e.payload for e in simulated_events if e.stream == stream][:200]
    assert sent
    df = kafka_frame(spark, contract.default_topic, [to_json_bytes(p) for p in sent])
    checked = validate(parse_events(df, contract), contract)
    reasons = [r.reason for r in checked.select("reason").collect() if r.reason]
    assert reasons == []
    rows = to_lake_rows(checked, contract)
    assert [*rows.columns, "ingestTime"] == lake_columns(contract)
    got = {r["id"]: r.asDict(recursive=True) for r in rows.collect()}
    for payload in sent:
        row = got[payload["id"]]
        for name, value in payload.items():
            if contract.field(name).type == "timestamp":
                assert row[name].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" == value
            else:
                assert row[name] == value, (name, row[name], value)


BAD_CASES = [
    ("humidity too high", "weather", {"humidity": 101}),
    ("humidity as a string", "weather", {"humidity": "55"}),
    ("negative speed", "vehicle", {"speed": -1.0}),
    ("unknown condition", "weather", {"weatherCondition": "Hail"}),
    ("unknown incident type", "emergency", {"type": "Flood"}),
    ("unknown status", "emergency", {"status": "Open"}),
    ("deviceId is a number", "gps", {"deviceId": 5}),
    ("timestamp without offset", "gps", {"timestamp": "2026-01-05T08:00:00"}),
    ("timestamp not a date", "gps", {"timestamp": "yesterday"}),
    ("latitude out of range", "gps", {"location": {"latitude": 91.0, "longitude": 0.0}}),
    ("longitude out of range", "vehicle", {"location": {"latitude": 51.0, "longitude": -181.0}}),
    ("location as a string", "vehicle", {"location": "51.5,-0.1"}),
    ("year as a float", "vehicle", {"year": 2020.5}),
    ("newer schema version", "weather", {"schemaVersion": 2}),
    ("NaN temperature", "weather", {"temperature": float("nan")}),
    ("two rules at once", "weather", {"humidity": -3, "windSpeed": -1}),
    ("missing deviceId", "traffic_camera", {"deviceId": None}),
    ("optional accuracy as text", "gps", {"accuracyM": "5"}),
    ("optional snapshot as a number", "traffic_camera", {"snapshot": 5}),
    ("optional description as an object", "emergency", {"description": {"text": "x"}}),
    ("enum value as a number", "weather", {"weatherCondition": 3}),
]

GOOD_EDGE_CASES = [
    ("timestamp with a +01:00 offset", "gps", {"timestamp": "2026-01-05T09:00:00.000+01:00"}),
    ("optional field null", "traffic_camera", {"snapshot": None}),
    ("optional field absent", "gps", {"accuracyM": "<absent>"}),
    ("integer where a double is expected", "weather", {"humidity": 55}),
    ("unknown extra field", "vehicle", {"colour": 7}),
    ("string value containing a quoted key", "emergency", {"description": 'said "id": 5 twice'}),
]


@pytest.mark.parametrize(
    ("case", "stream", "change"), GOOD_EDGE_CASES, ids=[c[0] for c in GOOD_EDGE_CASES]
)
def test_valid_edge_cases_pass_both_validators(spark, simulated_events, case, stream, change):
    contract = CONTRACTS[stream]
    base = next(e.payload for e in simulated_events if e.stream == stream)
    event = {k: v for k, v in {**base, **change}.items() if v != "<absent>"}
    assert contract.violations(json.loads(json.dumps(event))) == [], case

    from emr_jobs.transforms import parse_events, validate

    df = kafka_frame(spark, contract.default_topic, [json.dumps(event).encode()])
    (row,) = validate(parse_events(df, contract), contract).select("reason").collect()
    assert row.reason is None, f"{case}: {row.reason}"


@pytest.mark.parametrize(("case", "stream", "change"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_spark_validation_gives_the_python_validators_reasons(
    spark, simulated_events, case, stream, change
):
    contract = CONTRACTS[stream]
    base = next(e.payload for e in simulated_events if e.stream == stream)
    event = {**base, **change}
    event = {k: v for k, v in event.items() if v is not None}
    expected = contract.violations(json.loads(json.dumps(event)))
    assert expected, f"{case}: the Python validator must reject it"

    from emr_jobs.transforms import parse_events, validate

    df = kafka_frame(spark, contract.default_topic, [json.dumps(event).encode()])
    (row,) = validate(parse_events(df, contract), contract).select("reason").collect()
    assert row.reason == "; ".join(expected)


def test_glue_type_map_covers_every_contract_type():
    from emr_jobs.core.contracts import FIELD_TYPES, GLUE_TYPES

    assert set(GLUE_TYPES) == {*FIELD_TYPES, "binary"}  # binary: quarantine's exact bytes
    used = {f.type for c in CONTRACTS.values() for f in c.fields} | {
        c["type"] for c in LAKE.metadata_columns + LAKE.quarantine_columns + LAKE.duplicate_columns
    }
    assert used <= set(GLUE_TYPES)


def test_readme_field_tables_are_generated_from_the_contracts():
    """The field tables of emr_jobs/core/contracts/README.md are the output of
    `python -m scripts.docs`, between the markers that `--write` replaces."""
    from scripts.docs import README, embed

    rendered = subprocess.run(
        [sys.executable, "-m", "scripts.docs"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    ).stdout
    assert README == REPO_ROOT / "emr_jobs" / "core" / "contracts" / "README.md"
    readme = README.read_text(encoding="utf-8")
    drifted = "README field tables drifted: run `python -m scripts.docs --write`"
    assert rendered.strip() in readme, drifted
    assert embed(readme, rendered) == readme, drifted


def test_producer_never_imports_pyspark():
    code = (
        "import sys, producer.cli, producer.kafka_producer, producer.simulator, producer.wire;"
        "sys.exit(1 if any(m.split('.')[0] == 'pyspark' for m in sys.modules) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT).returncode == 0


def test_job_never_imports_the_producer():
    code = (
        "import sys, emr_jobs.job;"
        "sys.exit(1 if any(m.split('.')[0] == 'producer' for m in sys.modules) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT).returncode == 0
