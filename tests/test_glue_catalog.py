"""The job's start-up against the Glue Data Catalog: moto's server in place of AWS.

On AWS the job's ``lake`` catalog is Iceberg's GlueCatalog with S3FileIO (AWS SDK v2). Here the
same catalog settings (``spark_catalog_conf`` for ``LAKE_CATALOG=glue``) point the SDK at
``moto.server.ThreadedMotoServer`` on loopback, for Glue and S3 both; the SparkSession runs in a
subprocess (``tests/glue_startup_driver.py``) with Iceberg's runtime and AWS bundle jars
(``local/maven/iceberg-aws``, test-only: EMR ships its own). What it covers:

- the database exists and no table does: ``check_catalog`` (glue:GetDatabase) passes and
  ``ensure_tables`` creates all eleven tables (CreateTable, S3 PutObject of metadata.json);
- the tables exist as Terraform creates them (``aws_glue_catalog_table`` with
  ``iceberg_table_input``): ``ensure_tables`` only checks them and changes nothing;
- either way one append through ``CommitLog`` commits (UpdateTable) a snapshot tagged with the
  batch id, and a replay of that batch is skipped.

moto accepts ``CreateTable`` with ``OpenTableFormatInput.IcebergInput`` (including
``CreateIcebergTableInput``) but only tags the table ``table_type=ICEBERG``: it writes no
``metadata.json`` and sets no ``metadata_location``, which AWS Glue does from that input. So the
second test writes the metadata Glue would write, from the same input, with pyiceberg.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from emr_jobs.core.contracts import ALL_STREAMS, LAKE
from emr_jobs.core.paths import REPO_ROOT

pytestmark = pytest.mark.integration

REGION = "eu-west-2"
DRIVER = REPO_ROOT / "tests" / "glue_startup_driver.py"
TABLES = LAKE.tables(ALL_STREAMS)


def _infra():
    """tests/infra/conftest.py (the Terraform evaluator), loaded by path."""
    spec = importlib.util.spec_from_file_location(
        "infra_evaluator", REPO_ROOT / "tests" / "infra" / "conftest.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def terraform():
    """The glue module as the root calls it, and the lake bucket name it uses."""
    infra = _infra()
    root = infra.Module(infra.INFRA, externals=infra.EXTERNALS)
    return {
        "glue": root.child("glue"),
        "bucket": infra.FAKE.bucket_names["lake"],
        "database": root.local("glue_database_name"),
    }


@pytest.fixture
def aws(fake_aws_credentials, terraform) -> Iterator[dict[str, object]]:
    """moto's Glue and S3 on a free loopback port: the lake bucket and the Glue database."""
    import boto3
    from moto.server import ThreadedMotoServer

    from scripts.local_broker import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        # moto's backends live in this process: start each test from an empty account.
        urllib.request.urlopen(
            urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10
        ).close()
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
        s3.create_bucket(
            Bucket=terraform["bucket"], CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        glue = boto3.client("glue", endpoint_url=endpoint, region_name=REGION)
        glue.create_database(DatabaseInput={"Name": terraform["database"]})
        yield {"endpoint": endpoint, "s3": s3, "glue": glue}
    finally:
        server.stop()


def run_startup(aws, terraform, tmp_path: Path) -> dict:
    jars = REPO_ROOT / ".cache" / "jars"
    assert any((jars / "iceberg-aws").glob("iceberg-aws-bundle-*.jar")), (
        "Iceberg AWS bundle missing in .cache/jars/iceberg-aws: run `make setup` "
        "(local/maven/iceberg-aws/pom.xml)"
    )
    output = tmp_path / "startup.json"
    args = {
        "endpoint": aws["endpoint"],
        "bucket": terraform["bucket"],
        "database": terraform["database"],
        "region": REGION,
        "output": str(output),
    }
    log = tmp_path / "driver.log"
    with open(log, "w", encoding="utf-8") as out:
        done = subprocess.run(
            [sys.executable, str(DRIVER), json.dumps(args)],
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=600,
            check=False,
        )
    assert done.returncode == 0, log.read_text(encoding="utf-8")[-6000:]
    return json.loads(output.read_text(encoding="utf-8"))


def glue_tables(aws, database: str) -> dict[str, dict]:
    pages = aws["glue"].get_paginator("get_tables").paginate(DatabaseName=database)
    return {t["Name"]: t for page in pages for t in page["TableList"]}


def s3_key(aws, bucket: str, uri: str) -> str:
    parsed = urlparse(uri)
    assert (parsed.scheme, parsed.netloc) == ("s3", bucket), uri
    return parsed.path.lstrip("/")


def assert_iceberg_tables_in_glue(aws, terraform) -> dict[str, dict]:
    """Every lake table is an Iceberg table in Glue whose metadata.json is in the moto bucket."""
    bucket = terraform["bucket"]
    tables = glue_tables(aws, terraform["database"])
    assert sorted(tables) == sorted(TABLES)
    for name, table in tables.items():
        parameters = table["Parameters"]
        assert parameters["table_type"].upper() == "ICEBERG", name
        location = parameters["metadata_location"]
        assert location.startswith(f"s3://{bucket}/{LAKE.tables_prefix}/{name}/metadata/"), location
        aws["s3"].head_object(Bucket=bucket, Key=s3_key(aws, bucket, location))
    return tables


def assert_one_tagged_append(result: dict) -> None:
    assert result["written"] is True
    assert result["summary"][LAKE.batch_id_property] == "7"
    assert result["summary"][LAKE.query_id_property] == "glue-startup-test"
    assert result["rows"] == 1
    assert result["replay_written"] is False, "a replayed batch must skip the table"


def terraform_iceberg_input(glue, instance) -> dict:
    """A table's Terraform ``iceberg_table_input`` as Glue's CreateIcebergTableInput.

    Its schema's fields are a ``dynamic "fields"`` block over ``local.iceberg_fields`` (all
    optional), which tfparse does not expand inside another block: they come from the local
    (tests/infra/test_consistency.py holds the block's content to it)."""
    (otf,) = instance.blocks("open_table_format_input")
    (iceberg,) = otf.blocks("iceberg_input")
    (table_input,) = iceberg.blocks("iceberg_table_input")
    (schema,) = table_input.blocks("schema")
    fields = [{**f, "required": False} for f in glue.local("iceberg_fields")[instance["name"]]]
    (spec,) = table_input.blocks("partition_spec")
    return {
        "MetadataOperation": iceberg["metadata_operation"],
        "Version": iceberg["version"],
        "CreateIcebergTableInput": {
            "Location": table_input["location"],
            "Schema": {
                "SchemaId": schema["schema_id"],
                "Type": schema["type"],
                "Fields": [
                    {
                        "Id": f["id"],
                        "Name": f["name"],
                        "Type": json.loads(f["type"]),
                        "Required": f["required"],
                        "Doc": f["doc"],
                    }
                    for f in fields
                ],
            },
            "PartitionSpec": {
                "SpecId": spec["spec_id"],
                "Fields": [
                    {
                        "SourceId": f["source_id"],
                        "FieldId": f["field_id"],
                        "Transform": f["transform"],
                        "Name": f["name"],
                    }
                    for f in spec.blocks("fields")
                ],
            },
            "Properties": table_input["properties"],
        },
    }


def metadata_as_glue_writes_it(create: dict) -> tuple[str, str]:
    """(location, metadata.json text) Glue writes for a CreateIcebergTableInput (pyiceberg)."""
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table.metadata import new_table_metadata
    from pyiceberg.table.sorting import UNSORTED_SORT_ORDER

    def field(f: dict) -> dict:
        type_ = f["Type"]
        if isinstance(type_, dict):
            type_ = {"type": "struct", "fields": type_["fields"]}
        return {
            "id": f["Id"],
            "name": f["Name"],
            "type": type_,
            "required": f["Required"],
            "doc": f["Doc"],
        }

    schema = Schema.model_validate(
        {
            "type": "struct",
            "schema-id": create["Schema"]["SchemaId"],
            "fields": [field(f) for f in create["Schema"]["Fields"]],
        }
    )
    spec = PartitionSpec.model_validate(
        {
            "spec-id": create["PartitionSpec"]["SpecId"],
            "fields": [
                {
                    "source-id": f["SourceId"],
                    "field-id": f["FieldId"],
                    "transform": f["Transform"],
                    "name": f["Name"],
                }
                for f in create["PartitionSpec"]["Fields"]
            ],
        }
    )
    metadata = new_table_metadata(
        schema, spec, UNSORTED_SORT_ORDER, create["Location"], dict(create["Properties"])
    )
    # Glue keeps the field ids it is given; pyiceberg's fresh ids must agree with Terraform's.
    assert (
        metadata.schema().model_dump(by_alias=True)["fields"]
        == schema.model_dump(by_alias=True)["fields"]
    )
    location = f"{create['Location']}/metadata/00000-{uuid.uuid4()}.metadata.json"
    return location, metadata.model_dump_json()


def assert_tables_are_the_ones_terraform_declares(aws, terraform) -> None:
    """The metadata.json of each table holds the schema, partition spec and properties that
    Terraform's iceberg_table_input declares, field id for field id."""
    bucket = terraform["bucket"]
    declared = terraform["glue"].instances("aws_glue_catalog_table", "this")
    for name, table in glue_tables(aws, terraform["database"]).items():
        key = s3_key(aws, bucket, table["Parameters"]["metadata_location"])
        body = aws["s3"].get_object(Bucket=bucket, Key=key)["Body"].read()
        metadata = json.loads(body)
        create = terraform_iceberg_input(terraform["glue"], declared[name])[
            "CreateIcebergTableInput"
        ]
        (schema,) = [
            s for s in metadata["schemas"] if s["schema-id"] == metadata["current-schema-id"]
        ]
        assert [(f["id"], f["name"], f["type"], f["required"]) for f in schema["fields"]] == [
            (f["Id"], f["Name"], f["Type"], f["Required"]) for f in create["Schema"]["Fields"]
        ], name
        (spec,) = [
            s for s in metadata["partition-specs"] if s["spec-id"] == metadata["default-spec-id"]
        ]
        assert spec["fields"] == [
            {
                "name": f["Name"],
                "transform": f["Transform"],
                "source-id": f["SourceId"],
                "field-id": f["FieldId"],
            }
            for f in create["PartitionSpec"]["Fields"]
        ], name
        assert metadata["format-version"] == int(create["Properties"]["format-version"])
        properties = {k: v for k, v in create["Properties"].items() if k != "format-version"}
        assert properties.items() <= metadata["properties"].items(), name


# ------------------------------------------------------------------------------------------ tests


def test_the_job_creates_the_lake_tables_in_an_empty_glue_database(aws, terraform, tmp_path):
    result = run_startup(aws, terraform, tmp_path)

    assert result["changes"] == {t: ["created"] for t in TABLES}
    assert result["changes_again"] == {t: [] for t in TABLES}
    assert_iceberg_tables_in_glue(aws, terraform)
    assert_one_tagged_append(result)
    for stream in ALL_STREAMS:
        assert result["schemas"][stream]["timestamp"] == "timestamp"  # Spark's, i.e. with zone
        assert result["partitions"][stream] == "struct<timestamp_hour:int>"
    assert result["partitions"][LAKE.duplicates_table] == "struct<kafkaTimestamp_day:date>"
    # A table the job creates is the table Terraform declares.
    assert_tables_are_the_ones_terraform_declares(aws, terraform)


def test_tables_created_as_terraform_creates_them_are_only_checked(aws, terraform, tmp_path):
    glue, s3, bucket = aws["glue"], aws["s3"], terraform["bucket"]
    declared = terraform["glue"].instances("aws_glue_catalog_table", "this")
    assert sorted(declared) == sorted(TABLES)
    for name, instance in declared.items():
        iceberg_input = terraform_iceberg_input(terraform["glue"], instance)
        glue.create_table(
            DatabaseName=terraform["database"],
            TableInput={
                "Name": name,
                "Description": instance["description"],
                "TableType": instance["table_type"],
            },
            OpenTableFormatInput={"IcebergInput": iceberg_input},
        )
        # What moto keeps: the Iceberg tag, but no metadata (AWS Glue writes it).
        parameters = glue.get_table(DatabaseName=terraform["database"], Name=name)["Table"][
            "Parameters"
        ]
        assert parameters.get("table_type") == "ICEBERG"
        assert "metadata_location" not in parameters
        # So write what Glue writes from the same input, and point the table at it.
        location, text = metadata_as_glue_writes_it(iceberg_input["CreateIcebergTableInput"])
        s3.put_object(Bucket=bucket, Key=s3_key(aws, bucket, location), Body=text.encode())
        glue.update_table(
            DatabaseName=terraform["database"],
            TableInput={
                "Name": name,
                "Description": instance["description"],
                "TableType": instance["table_type"],
                "Parameters": {"table_type": "ICEBERG", "metadata_location": location},
            },
        )

    result = run_startup(aws, terraform, tmp_path)

    # Nothing to create, no partition field or column to add, no type the job rejects.
    assert result["changes"] == {t: [] for t in TABLES}
    tables = assert_iceberg_tables_in_glue(aws, terraform)
    assert_one_tagged_append(result)
    duplicates = tables[LAKE.duplicates_table]["Parameters"]
    assert duplicates["previous_metadata_location"].endswith(".metadata.json")
    assert result["partitions"]["vehicle"] == "struct<timestamp_hour:int>"


def test_the_iceberg_aws_bundle_is_never_staged_for_emr():
    """EMR brings its own Iceberg and AWS SDK: the test-only set stays off the artifacts."""
    from scripts.artifacts import SPARK_JARS_DIR, find_jars

    bundle = REPO_ROOT / ".cache" / "jars" / "iceberg-aws"
    assert bundle != SPARK_JARS_DIR
    staged = find_jars()
    assert not [j for j in staged if j.name.startswith(("iceberg-aws-bundle", "iceberg-spark"))]
    assert not [j for j in staged if j.parent == bundle]
