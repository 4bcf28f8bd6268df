"""Terraform and the code agree: topics, IAM resources, lake prefixes, Spark version, the Iceberg
tables in Glue and their optimizers, the EMR catalog settings, the lag metric and the settings
passed as environment variables.

The Terraform side is what tfparse evaluates from the .tf files (see conftest.py), with a realistic
MSK cluster ARN, account and region standing in for what AWS assigns at apply time.
"""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from emr_jobs.core.contracts import ALL_STREAMS, CONTRACTS, DERIVED_STREAMS, LAKE, STREAMS
from emr_jobs.core.kafka import KafkaSettings, default_topics, spark_kafka_options
from emr_jobs.settings import JobSettings

#: Spark version of each EMR release this project has been pinned to (EMR release notes).
EMR_SPARK_VERSIONS = {
    "emr-7.13.0": "3.5.6",
}

TABLES = LAKE.tables(ALL_STREAMS)
OPTIMIZER_TYPES = {"compaction", "retention", "orphan_file_deletion"}


def _env(entries: list[dict[str, object]]) -> dict[str, str]:
    return {e["name"]: str(e["value"]) for e in entries}


def _kafka_grants(tf, statements: list[dict]) -> dict[str, set[str]]:
    """kafka-cluster action -> the resources it is granted on."""
    return tf.grants(statements, "kafka-cluster:")


def _documents(module) -> list[str]:
    """Names of the module's aws_iam_policy_document data sources."""
    prefix = "data.aws_iam_policy_document."
    return [a.removeprefix(prefix) for a in module if a.startswith(prefix)]


def _source(tf, module: str, kind: str, file: str = "main.tf") -> dict:
    """A module's blocks of one kind (``resource``, ``variable``, ...) in its source text."""
    doc = tf.load(tf.MODULES_DIR / module / file)
    return {k: v for entry in doc.get(kind, []) for k, v in entry.items()}


def _topic_arns(fake, streams) -> set[str]:
    prefix = fake.msk_cluster_arn.replace(":cluster/", ":topic/")
    return {f"{prefix}/{CONTRACTS[s].default_topic}" for s in streams}


@pytest.fixture(scope="module")
def arns(fake):
    cluster = fake.msk_cluster_arn
    return {
        "cluster": cluster,
        "topics": _topic_arns(fake, ALL_STREAMS),
        # Each topic's one writer, by its contract's produced_by.
        "producer_topics": _topic_arns(
            fake, [s for s in ALL_STREAMS if CONTRACTS[s].produced_by == "producer"]
        ),
        "job_topics": _topic_arns(
            fake, [s for s in ALL_STREAMS if CONTRACTS[s].produced_by == "job"]
        ),
        "group": cluster.replace(":cluster/", ":group/") + f"/{LAKE.consumer_group_prefix}*",
    }


# ------------------------------------------------------------------------------------------ topics


def test_terraform_streams_and_topics_are_the_code_s(root):
    """Every contract, the job's derived streams included, has a topic and tables."""
    assert sorted(root.local("streams")) == sorted(ALL_STREAMS)
    assert (
        root.local("topics")
        == default_topics({})
        == {s: CONTRACTS[s].default_topic for s in ALL_STREAMS}
    )
    assert root.output("kafka_topic_names") == default_topics({})


def test_the_producer_writes_the_sensor_streams_and_the_job_the_derived_ones(root, tf):
    assert {s for s in ALL_STREAMS if CONTRACTS[s].produced_by == "producer"} == set(STREAMS)
    assert {s for s in ALL_STREAMS if CONTRACTS[s].produced_by == "job"} == set(DERIVED_STREAMS)
    assert root.local("topic_writers") == {s: CONTRACTS[s].produced_by for s in ALL_STREAMS}
    # A contract with any other produced_by would leave its topic without a writer: the
    # condition (source text) holds for the contracts' values (tfparse evaluates it).
    (validation,) = _source(tf, "iam", "variable", "variables.tf")["topic_writers"]["validation"]
    assert '["producer", "job"]' in validation["condition"]
    assert root.child("iam")["variable.topic_writers"]["validation"]["condition"] is True


def _code_without_module_names(path) -> str:
    """A .tf file without its module labels and sources (`module "alerts"` is no topic)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(x for x in lines if not re.match(r'\s*(module\s+"|source\s*=)', x))


def test_no_topic_name_is_typed_in_terraform(tf):
    """No string literal or ARN segment spells a topic: names come from the contracts. (A topic
    may also be an ordinary word, "alerts", so prose and `scripts.alerts` do not count.)"""
    names = {CONTRACTS[s].default_topic for s in ALL_STREAMS}
    hits = [
        f"{p.relative_to(tf.INFRA)}: {n}"
        for p in tf.files
        for n in names
        if re.search(rf'(?<=["/:]){re.escape(n)}(?=["/])', _code_without_module_names(p))
    ]
    assert not hits, "topic names must come from the contracts, not be retyped:\n" + "\n".join(hits)


def test_producer_and_topics_task_read_the_same_topics_as_the_job(modules):
    ecs = modules["ecs"]
    for container in ("producer_container", "topics_admin_container"):
        env = _env(ecs.local(container)["environment"])
        env["KAFKA_BOOTSTRAP_SERVERS"] = "b-1.example.kafka.eu-west-2.amazonaws.com:9098"
        settings = KafkaSettings.from_env(env)
        assert settings.auth_mode == "msk-iam"
        assert dict(settings.topics) == default_topics({}), container


# ----------------------------------------------------------------------------------- IAM and Kafka


def test_the_job_reads_every_topic_and_writes_exactly_the_derived_ones(modules, arns, fake, tf):
    grants = _kafka_grants(tf, modules["iam"].policy_statements("emr_ec2"))
    assert grants == {
        "Connect": {arns["cluster"]},
        # Spark's Kafka sink is an idempotent producer (InitProducerId needs the cluster action).
        "WriteDataIdempotently": {arns["cluster"]},
        "DescribeTopic": arns["topics"],
        "ReadData": arns["topics"],
        "WriteData": arns["job_topics"],
        "DescribeGroup": {arns["group"]},
        "AlterGroup": {arns["group"]},
    }
    assert arns["job_topics"] == _topic_arns(fake, DERIVED_STREAMS)
    # Spark's Kafka source names its groups <groupIdPrefix>-<uuid>-<n>; the ARN covers them.
    assert spark_kafka_options(KafkaSettings())["groupIdPrefix"] == LAKE.consumer_group_prefix


def test_the_producer_writes_exactly_the_sensor_streams_topics(modules, arns, tf):
    grants = _kafka_grants(tf, modules["iam"].policy_statements("ecs_producer"))
    assert grants == {
        "Connect": {arns["cluster"]},
        "WriteDataIdempotently": {arns["cluster"]},
        "DescribeTopic": arns["producer_topics"],
        "WriteData": arns["producer_topics"],
    }


def test_each_topic_is_written_by_its_contract_s_producer_alone(modules, arns, fake, tf):
    """Over every policy document of every module: WriteData on a sensor stream's topic only
    for the producer's task role, on a derived stream's topic only for the job's role."""
    writers: dict[str, set[str]] = {}
    for module_name, module in modules.items():
        for name in _documents(module):
            for resource in _kafka_grants(tf, module.policy_statements(name)).get("WriteData", ()):
                writers.setdefault(resource, set()).add(f"{module_name}.{name}")
    assert writers == {
        **{t: {"iam.ecs_producer"} for t in _topic_arns(fake, STREAMS)},
        **{t: {"iam.emr_ec2"} for t in _topic_arns(fake, DERIVED_STREAMS)},
    }
    assert set(writers) == arns["topics"]


def test_the_topics_task_manages_exactly_the_topics(modules, arns, tf):
    grants = _kafka_grants(tf, modules["iam"].policy_statements("ecs_topics_admin"))
    assert grants == {
        "Connect": {arns["cluster"]},
        "CreateTopic": arns["topics"],
        "DescribeTopic": arns["topics"],
        "AlterTopic": arns["topics"],
    }


def test_the_topics_task_creates_every_topic_its_role_may_create(modules, arns, fake):
    """`python -m scripts.topics create`, with the task's environment, against an empty cluster:
    it creates the seven topics (the derived ones included), each of which its role may create."""
    pytest.importorskip("confluent_kafka")
    from types import SimpleNamespace

    from scripts.topics import TopicSpec, ensure_topics

    class _Created:
        def result(self) -> None:
            return None

    class _EmptyCluster:
        def __init__(self) -> None:
            self.created: list[str] = []

        def list_topics(self, timeout: float | None = None) -> SimpleNamespace:
            return SimpleNamespace(topics={})

        def create_topics(self, new: list, operation_timeout: float | None = None) -> dict:
            self.created += [t.topic for t in new]
            return {t.topic: _Created() for t in new}

    env = _env(modules["ecs"].local("topics_admin_container")["environment"])
    env["KAFKA_BOOTSTRAP_SERVERS"] = "b-1.example.kafka.eu-west-2.amazonaws.com:9098"
    cluster = _EmptyCluster()
    result = ensure_topics(
        KafkaSettings.from_env(env),
        TopicSpec.from_env(env),
        admin=cluster,  # type: ignore[arg-type]
    )
    assert set(result.values()) == {"created"}
    assert _topic_arns(fake, ALL_STREAMS) == arns["topics"]
    prefix = fake.msk_cluster_arn.replace(":cluster/", ":topic/")
    assert {f"{prefix}/{t}" for t in cluster.created} == arns["topics"]
    assert len(cluster.created) == len(ALL_STREAMS)


def test_topic_and_group_arns_carry_the_cluster_name_and_uuid(arns, fake):
    name_and_uuid = fake.msk_cluster_arn.split(":cluster/", 1)[1]
    assert name_and_uuid.count("/") == 1
    for arn in arns["topics"] | {arns["group"]}:
        assert f"/{name_and_uuid}/" in arn


def test_no_other_role_touches_kafka(modules, tf):
    others = [
        (module, name)
        for module in modules.values()
        for name in _documents(module)
        if name not in ("emr_ec2", "ecs_producer", "ecs_topics_admin", "ecs_alert_forwarder")
    ]
    assert {"glue_optimizer", "ecs_task_execution", "flow_logs"} <= {n for _, n in others}
    for module, name in others:
        assert not _kafka_grants(tf, module.policy_statements(name)), name


# --------------------------------------------------------------------------------------- S3 layout


def _statement(statements: list[dict], sid: str) -> dict:
    (found,) = [s for s in statements if s["sid"] == sid]
    return found


def _arn(uri: str) -> str:
    return uri.replace("s3://", "arn:aws:s3:::")


def test_terraform_tables_are_the_job_s_tables(modules):
    assert sorted(modules["glue"].output("table_names")) == sorted(TABLES)
    assert len(TABLES) == 2 * len(ALL_STREAMS) + 1
    for stream in DERIVED_STREAMS:
        assert {LAKE.data_table(stream), LAKE.quarantine_table(stream)} <= set(TABLES)


def test_the_job_reads_writes_and_deletes_only_its_tables_and_checkpoints(modules, fake):
    statements = modules["iam"].policy_statements("emr_ec2")
    lake_uri = f"s3://{fake.bucket_names['lake']}"
    settings = JobSettings(lake_uri=lake_uri, catalog="glue", database="smartcity_dev")
    # The job's own location builders as ARNs: <lake>/tables/<table>/..., <lake>/checkpoints/...
    expected = {_arn(settings.table_location(t)) + "/*" for t in TABLES}
    expected.add(_arn(f"{lake_uri}/{LAKE.checkpoints_prefix}") + "/*")
    lake = _statement(statements, "LakeTablesAndCheckpoints")
    assert set(lake["resources"]) == expected
    # Iceberg deletes its leftovers (failed commits, old metadata.json); Spark renames checkpoints.
    assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"} <= lake["actions"]
    checkpoint = _arn(settings.checkpoint_location) + "/"
    assert any(checkpoint.startswith(r[:-1]) for r in lake["resources"])
    deletes = {
        r for st in statements if "s3:DeleteObject" in st["actions"] for r in st["resources"]
    }
    assert deletes == expected
    lake_arn = fake.bucket_arns["lake"]
    lake_grants = [r for st in statements for r in st["resources"] if str(r).startswith(lake_arn)]
    assert f"{lake_arn}/*" not in lake_grants, "no statement may cover the whole lake bucket"
    assert f"{lake_arn}/{LAKE.tables_prefix}/*" not in lake_grants, "only the job's own tables"


def test_the_old_parquet_prefixes_are_gone(tf):
    for path in tf.files:
        text = path.read_text(encoding="utf-8")
        for old in (
            "_spark_metadata",
            "layout.data",
            "layout.quarantine",
            "partition_columns",
            "projection.",
            "ParquetHiveSerDe",
        ):
            assert old not in text, f"{path.relative_to(tf.INFRA)} still mentions {old}"


def test_the_job_lists_only_its_tables_and_checkpoints(modules):
    listing = _statement(modules["iam"].policy_statements("emr_ec2"), "LakeList")
    (condition,) = listing["conditions"]
    assert condition["variable"] == "s3:prefix"
    roots = {v.split("/*")[0].rstrip("/") for v in condition["values"]}
    assert roots == {f"{LAKE.tables_prefix}/{t}" for t in TABLES} | {LAKE.checkpoints_prefix}


def test_emr_logs_go_where_the_instances_may_write(root, modules, fake):
    log_uri = modules["emr"].var("log_uri")
    writable = _statement(modules["iam"].policy_statements("emr_ec2"), "ClusterLogs")["resources"]
    assert log_uri.startswith(f"s3://{fake.bucket_names['logs']}/")
    assert writable == [log_uri.replace("s3://", "arn:aws:s3:::") + "*"]


def test_no_lifecycle_rule_expires_lake_objects(modules):
    """Expiring objects of an Iceberg table by age would break it: its retention is snapshot
    expiry and orphan-file removal by the Glue table optimizers, not an S3 lifecycle rule."""
    s3 = modules["s3"]
    assert s3.local("expiration_rules")["lake"] == []
    assert "variable.quarantine_expiration_days" not in s3
    rules = {
        bucket: [r for r in lifecycle.blocks("rule") if r.blocks("expiration")]
        for bucket, lifecycle in s3.instances(
            "aws_s3_bucket_lifecycle_configuration", "this"
        ).items()
    }
    assert set(rules) == {"lake", "artifacts", "logs"}
    assert rules["lake"] == [] and len(rules["logs"]) == 1


# -------------------------------------------------------------------------------------- Glue / IAM


def _glue_arns(fake, database: str) -> dict[str, object]:
    base = f"arn:aws:glue:{fake.region}:{fake.account}"
    return {
        "catalog": f"{base}:catalog",
        "database": f"{base}:database/{database}",
        "tables": {f"{base}:table/{database}/{t}" for t in TABLES},
    }


def _glue_grants(tf, statements: list[dict]) -> dict[str, set[str]]:
    return {f"glue:{a}": r for a, r in tf.grants(statements, "glue:").items()}


def test_the_job_commits_to_exactly_the_lake_tables_and_creates_none(root, modules, fake, tf):
    database = root.local("glue_database_name")
    arns = _glue_arns(fake, database)
    catalog_and_db = {arns["catalog"], arns["database"]}
    assert _glue_grants(tf, modules["iam"].policy_statements("emr_ec2")) == {
        # DESCRIBE NAMESPACE lake.<database> at start-up (check_catalog), then each table by name.
        "glue:GetDatabase": catalog_and_db,
        "glue:GetTable": catalog_and_db | arns["tables"],
        "glue:UpdateTable": catalog_and_db | arns["tables"],
    }


def test_the_optimizer_role_maintains_exactly_the_lake_tables(root, modules, fake, tf):
    iam = modules["iam"]
    (assume,) = iam.policy_statements("glue_assume")
    assert assume["principals"] == [{"type": "Service", "identifiers": ["glue.amazonaws.com"]}]
    statements = iam.policy_statements("glue_optimizer")
    database = root.local("glue_database_name")
    arns = _glue_arns(fake, database)
    assert _glue_grants(tf, statements) == {
        "glue:GetTable": {arns["catalog"], arns["database"]} | arns["tables"],
        "glue:UpdateTable": {arns["catalog"], arns["database"]} | arns["tables"],
    }
    lake_uri = f"s3://{fake.bucket_names['lake']}"
    files = _statement(statements, "LakeTablesReadWriteDelete")
    assert set(files["resources"]) == {
        _arn(LAKE.table_location(lake_uri, t)) + "/*" for t in TABLES
    }
    listing = _statement(statements, "LakeTablesList")
    (condition,) = listing["conditions"]
    assert {v.split("/*")[0].rstrip("/") for v in condition["values"]} == {
        f"{LAKE.tables_prefix}/{t}" for t in TABLES
    }
    key = _statement(statements, "UseLakeKey")
    assert key["resources"] == [modules["s3"].output("kms_key_arn")]
    logs = _statement(statements, "OptimizerLogs")
    assert {r.split("log-group:")[1] for r in logs["resources"]} == {
        f"/aws-glue/iceberg-{kind}/logs:*"
        for kind in ("compaction", "retention", "orphan-file-deletion")
    }
    # Nothing but the lake's tables, the catalog, the lake key and the optimizers' log groups.
    assert {st["sid"] for st in statements} == {
        "LakeTablesList",
        "LakeTablesReadWriteDelete",
        "CatalogTables",
        "UseLakeKey",
        "OptimizerLogs",
    }


def test_the_optimizers_assume_the_optimizer_role(root, modules):
    role_arn = modules["glue"].var("optimizer_role_arn")
    assert role_arn == modules["iam"].output("glue_optimizer_role_arn")
    # An ARN AWS assigns: tfparse stands the role's own id in for it.
    assert role_arn == modules["iam"].one("aws_iam_role", "glue_optimizer")["id"]


# ----------------------------------------------------------------------------------- Spark version


def test_emr_release_runs_the_pinned_pyspark(tf, modules):
    release = modules["emr"].local("release_label")
    assert release in EMR_SPARK_VERSIONS, f"add {release}'s Spark version to EMR_SPARK_VERSIONS"
    project = tomllib.loads((tf.REPO / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [
        m.group(1)
        for group in project["project"]["optional-dependencies"].values()
        for dep in group
        if (m := re.fullmatch(r"pyspark\s*==\s*([\w.]+)", dep))
    ]
    assert pins == [EMR_SPARK_VERSIONS[release]], (
        f"pyproject pins pyspark {pins}, {release} runs {EMR_SPARK_VERSIONS[release]}"
    )
    assert modules["emr"].one("aws_emr_cluster", "this")["release_label"] == release


# -------------------------------------------------------------------------- Iceberg tables in Glue


#: Iceberg's own conversion of each Spark type (SparkTypeToType): a Spark timestamp is timestamptz.
ICEBERG_TYPE_OF_SPARK = {
    "StringType": "string",
    "IntegerType": "int",
    "LongType": "long",
    "DoubleType": "double",
    "TimestampType": "timestamptz",
    "BooleanType": "boolean",
    "BinaryType": "binary",
}
#: Spark's partition transforms (as _lake.json and TableSpec.partition spell them) -> Iceberg's.
ICEBERG_TRANSFORMS = {"years": "year", "months": "month", "days": "day", "hours": "hour"}


@pytest.fixture(scope="module")
def specs():
    """The job's own table specs (emr_jobs.iceberg.table_specs), by table name."""
    pytest.importorskip("pyspark")
    from emr_jobs.iceberg import table_specs

    return {spec.name: spec for spec in table_specs(ALL_STREAMS)}


def _docs(table: str) -> list[str]:
    """Column descriptions of a table, in column order, from the contracts and _lake.json."""
    if table in ALL_STREAMS:
        return [f.description for f in CONTRACTS[table].fields] + [
            c["description"] for c in LAKE.metadata_columns
        ]
    columns = LAKE.duplicate_columns if table == LAKE.duplicates_table else LAKE.quarantine_columns
    return [c["description"] for c in columns]


def _expected_schema(spec) -> list[dict[str, object]]:
    """The Iceberg schema Spark's CREATE TABLE gives the job's columns: every column optional,
    ids as Iceberg assigns them to a new table (top-level 1..n, then each struct's fields)."""
    from pyspark.sql import types as T

    from emr_jobs.transforms import spark_type

    next_id = len(spec.columns) + 1
    fields = []
    for field_id, ((name, type_), doc) in enumerate(
        zip(spec.columns, _docs(spec.name), strict=True), start=1
    ):
        data_type = spark_type(type_)
        if isinstance(data_type, T.StructType):
            nested = []
            for sub in data_type.fields:
                nested.append(
                    {
                        "id": next_id,
                        "name": sub.name,
                        "required": not sub.nullable,
                        "type": ICEBERG_TYPE_OF_SPARK[type(sub.dataType).__name__],
                    }
                )
                next_id += 1
            iceberg_type: object = {"type": "struct", "fields": nested}
        else:
            iceberg_type = ICEBERG_TYPE_OF_SPARK[type(data_type).__name__]
        fields.append(
            {"id": field_id, "name": name, "required": False, "type": iceberg_type, "doc": doc}
        )
    return fields


def _expected_partition(spec) -> dict[str, object]:
    """The partition field Spark's ``PARTITIONED BY (hours(timestamp))`` makes."""
    match = re.fullmatch(r"(\w+)\((\w+)\)", spec.partition)
    assert match, spec.partition
    transform, source = ICEBERG_TRANSFORMS[match.group(1)], match.group(2)
    (source_id,) = [i for i, (name, _) in enumerate(spec.columns, start=1) if name == source]
    return {
        "field_id": 1000,
        "name": f"{source}_{transform}",
        "source_id": source_id,
        "transform": transform,
    }


def _job_table_properties() -> dict[str, str]:
    """TBLPROPERTIES of the CREATE TABLE that emr_jobs.iceberg.ensure_tables runs (captured)."""
    from emr_jobs.iceberg import duplicates_spec, ensure_tables

    class _Catalog:
        def tableExists(self, ident: str) -> bool:  # noqa: N802 - Spark's name
            return False

    class _Spark:
        catalog = _Catalog()
        statements: list[str] = []

        def sql(self, statement: str) -> None:
            self.statements.append(statement)

    spark = _Spark()
    job = JobSettings(lake_uri="s3://lake", catalog="glue", database="smartcity")
    ensure_tables(spark, job, [duplicates_spec()])  # type: ignore[arg-type]
    (create,) = [q for q in spark.statements if q.startswith("CREATE TABLE")]
    properties = re.search(r"TBLPROPERTIES \((.*)\)", create)
    assert properties, create
    return dict(re.findall(r"'([^']+)'='([^']*)'", properties.group(1)))


@pytest.fixture(scope="module")
def tables(modules):
    return modules["glue"].instances("aws_glue_catalog_table", "this")


@pytest.fixture(scope="module")
def schema_fields(modules, tf):
    """Each table's schema fields: its ``dynamic "fields"`` block over ``local.iceberg_fields``.

    tfparse drops a dynamic block inside another block, so the block's content is read from the
    source (a field per element, attribute for attribute, all optional) and its collection from
    tfparse's evaluation of the local."""
    (table,) = _source(tf, "glue", "resource")["aws_glue_catalog_table"].values()
    (otf,) = table["open_table_format_input"]
    (iceberg,) = otf["iceberg_input"]
    (table_input,) = iceberg["iceberg_table_input"]
    (schema,) = table_input["schema"]
    (dynamic,) = [d["fields"] for d in schema["dynamic"]]
    assert dynamic["for_each"] == "${local.iceberg_fields[each.key]}"
    (content,) = dynamic["content"]
    assert content == {
        "id": "${fields.value.id}",
        "name": "${fields.value.name}",
        "type": "${fields.value.type}",
        "required": False,
        "doc": "${fields.value.doc}",
    }
    iceberg_fields = modules["glue"].local("iceberg_fields")
    assert set(iceberg_fields) == set(TABLES)
    return {
        t: [{k: f[k] for k in ("id", "name", "type", "doc")} | {"required": False} for f in fields]
        for t, fields in iceberg_fields.items()
    }


def _iceberg_table_input(table):
    (otf,) = table.blocks("open_table_format_input")
    (iceberg,) = otf.blocks("iceberg_input")
    (table_input,) = iceberg.blocks("iceberg_table_input")
    return iceberg, table_input


def _terraform_schema(tables, schema_fields, name) -> list[dict[str, object]]:
    _, table_input = _iceberg_table_input(tables[name])
    (schema,) = table_input.blocks("schema")
    assert (schema["schema_id"], schema["type"]) == (0, "struct")
    return [
        {
            "id": f["id"],
            "name": f["name"],
            "required": f["required"],
            # Glue takes a field's type as a JSON document.
            "type": json.loads(f["type"]),
            "doc": f["doc"],
        }
        for f in schema_fields[name]
    ]


def test_glue_has_exactly_the_job_s_tables(tables, specs):
    assert sorted(tables) == sorted(TABLES) == sorted(specs)
    for name, table in tables.items():
        assert table["name"] == name


def test_terraform_iceberg_schema_is_the_schema_the_job_would_create(tables, schema_fields, specs):
    """Columns, order, Iceberg types (timestamptz, the location struct, binary), field ids and
    docs: a table Terraform creates is the table ensure_tables would have created."""
    for name in tables:
        assert _terraform_schema(tables, schema_fields, name) == _expected_schema(specs[name]), name
    vehicle = {f["name"]: f["type"] for f in _terraform_schema(tables, schema_fields, "vehicle")}
    assert vehicle["timestamp"] == vehicle["kafkaTimestamp"] == "timestamptz"
    assert vehicle["location"]["type"] == "struct"
    assert [f["name"] for f in vehicle["location"]["fields"]] == ["latitude", "longitude"]
    quarantine = _terraform_schema(tables, schema_fields, LAKE.quarantine_table("gps"))
    raw = {f["name"]: f["type"] for f in quarantine}
    assert raw["rawBytes"] == "binary"


def test_data_tables_have_the_contract_columns_then_the_metadata(tables, schema_fields):
    for stream in ALL_STREAMS:
        schema = _terraform_schema(tables, schema_fields, LAKE.data_table(stream))
        names = [f["name"] for f in schema]
        assert names == [
            *CONTRACTS[stream].field_names,
            *(c["name"] for c in LAKE.metadata_columns),
        ]
        assert tables[stream]["description"] == CONTRACTS[stream].description


def test_quarantine_and_duplicates_tables_have_the_lake_columns(tables, schema_fields):
    for stream in ALL_STREAMS:
        schema = _terraform_schema(tables, schema_fields, LAKE.quarantine_table(stream))
        assert [f["name"] for f in schema] == [c["name"] for c in LAKE.quarantine_columns]
    schema = _terraform_schema(tables, schema_fields, LAKE.duplicates_table)
    names = [f["name"] for f in schema]
    assert names == [c["name"] for c in LAKE.duplicate_columns]


def test_terraform_partition_spec_is_the_job_s(tables, specs):
    """Data tables by the hour of their contract's event time, quarantine and duplicates by the
    day of kafkaTimestamp (_lake.json), named as Spark names them (timestamp_hour)."""
    for name, table in tables.items():
        _, table_input = _iceberg_table_input(table)
        (partition_spec,) = table_input.blocks("partition_spec")
        assert partition_spec["spec_id"] == 0
        fields = [
            {k: f[k] for k in ("field_id", "name", "source_id", "transform")}
            for f in partition_spec.blocks("fields")
        ]
        assert fields == [_expected_partition(specs[name])], name
    for stream in ALL_STREAMS:
        (field,) = (
            _iceberg_table_input(tables[stream])[1].blocks("partition_spec")[0].blocks("fields")
        )
        assert field["name"] == f"{CONTRACTS[stream].event_time_field}_hour"
    for name in [*(LAKE.quarantine_table(s) for s in ALL_STREAMS), LAKE.duplicates_table]:
        (field,) = (
            _iceberg_table_input(tables[name])[1].blocks("partition_spec")[0].blocks("fields")
        )
        assert (field["name"], field["transform"]) == ("kafkaTimestamp_day", "day")


def test_terraform_table_properties_are_the_job_s(tables):
    expected = _job_table_properties()
    assert expected["format-version"] == str(LAKE.format_version)
    assert expected["write.parquet.compression-codec"] == "zstd"
    for name, table in tables.items():
        _, table_input = _iceberg_table_input(table)
        assert table_input["properties"] == expected, name


def test_every_table_is_an_iceberg_table_at_the_job_s_location(tables, fake):
    lake_uri = f"s3://{fake.bucket_names['lake']}"
    for name, table in tables.items():
        iceberg, table_input = _iceberg_table_input(table)
        assert table_input["location"] == LAKE.table_location(lake_uri, name)
        assert table_input["location"] == JobSettings(
            lake_uri=lake_uri, catalog="glue"
        ).table_location(name)
        assert (iceberg["metadata_operation"], iceberg["version"]) == (
            "CREATE",
            str(LAKE.format_version),
        )
        assert table["table_type"] == "EXTERNAL_TABLE"
        # No Hive columns, partitions, projection or SerDe: Glue derives them from the Iceberg
        # schema; Iceberg partitions are hidden, in its metadata.
        assert not table.blocks("storage_descriptor")
        assert not table.blocks("partition_keys")
        assert "parameters" not in table


def test_terraform_never_undoes_the_job_s_iceberg_commits(tf):
    """Every commit moves metadata_location (a parameter) and the job adds new contract fields:
    an apply that reverted either would hide the job's data, and a changed
    open_table_format_input (a new contract field, say) would replace the table."""
    body = _source(tf, "glue", "resource")["aws_glue_catalog_table"]["this"]
    (lifecycle,) = body["lifecycle"]  # names attributes: the source says which
    ignored = str(lifecycle["ignore_changes"])
    for attribute in ("open_table_format_input", "parameters", "storage_descriptor"):
        assert attribute in ignored, attribute


# ----------------------------------------------------------------------------------- optimizers


def test_every_table_has_compaction_snapshot_expiry_and_orphan_file_removal(modules, tables, tf):
    optimizers = modules["glue"].instances("aws_glue_catalog_table_optimizer", "this")
    found: dict[str, set[str]] = {}
    for key, optimizer in optimizers.items():
        table = key.rsplit(".", 1)[0]
        found.setdefault(table, set()).add(optimizer["type"])
        assert optimizer["table_name"] == tables[table]["name"] == table
    assert found == {t: OPTIMIZER_TYPES for t in TABLES}
    assert len(optimizers) == 3 * len(TABLES)
    # The table's name through the table resource, so the optimizer waits for the table.
    body = _source(tf, "glue", "resource")["aws_glue_catalog_table_optimizer"]["this"]
    assert body["table_name"] == "${aws_glue_catalog_table.this[each.value.table].name}"


def test_optimizer_settings_keep_enough_snapshots_for_exactly_once(root, modules, fake, tf):
    glue = modules["glue"]
    maintenance = glue.var("maintenance")
    assert maintenance == {
        "enabled": True,
        "snapshot_retention_days": 7,
        "snapshots_to_retain": 10,
        "orphan_file_retention_days": 3,
    }
    assert root.var("lake_maintenance") == {} or root.var("lake_maintenance") == maintenance
    (validation,) = _source(tf, "glue", "variable", "variables.tf")["maintenance"]["validation"]
    assert "snapshots_to_retain >= 10" in validation["condition"]
    assert glue["variable.maintenance"]["validation"]["condition"] is True
    # tfparse drops the dynamic blocks inside `configuration`: their source says what each
    # optimizer gets (a retention block for a retention optimizer only, ...), the evaluated
    # variables and locals what values.
    (source,) = _source(tf, "glue", "resource")["aws_glue_catalog_table_optimizer"]["this"][
        "configuration"
    ]
    dynamic = {k: v for d in source["dynamic"] for k, v in d.items()}
    assert set(dynamic) == {"retention_configuration", "orphan_file_deletion_configuration"}
    retention, orphans = (
        dynamic["retention_configuration"],
        dynamic["orphan_file_deletion_configuration"],
    )
    assert retention["for_each"] == '${each.value.type == "retention" ? [1] : []}'
    assert retention["content"] == [
        {
            "iceberg_configuration": [
                {
                    "snapshot_retention_period_in_days": (
                        "${var.maintenance.snapshot_retention_days}"
                    ),
                    "number_of_snapshots_to_retain": "${var.maintenance.snapshots_to_retain}",
                    "clean_expired_files": True,
                }
            ]
        }
    ]
    assert (maintenance["snapshot_retention_days"], maintenance["snapshots_to_retain"]) == (7, 10)
    assert orphans["for_each"] == '${each.value.type == "orphan_file_deletion" ? [1] : []}'
    assert orphans["content"] == [
        {
            "iceberg_configuration": [
                {
                    "orphan_file_retention_period_in_days": (
                        "${var.maintenance.orphan_file_retention_days}"
                    ),
                    "location": "${local.table_locations[each.value.table]}",
                }
            ]
        }
    ]
    assert maintenance["orphan_file_retention_days"] == 3
    lake_uri = f"s3://{fake.bucket_names['lake']}"
    locations = glue.local("table_locations")
    assert locations == {t: LAKE.table_location(lake_uri, t) for t in TABLES}
    for key, optimizer in glue.instances("aws_glue_catalog_table_optimizer", "this").items():
        (config,) = optimizer.blocks("configuration")
        assert config["enabled"] is True
        assert config["role_arn"] == glue.var("optimizer_role_arn")
        assert optimizer["type"] in OPTIMIZER_TYPES and key.rsplit(".", 1)[0] in locations


# ------------------------------------------------------------------------------------------ Athena


def test_athena_results_are_encrypted_with_the_lake_key(modules):
    workgroup = modules["glue"].one("aws_athena_workgroup", "this")
    (configuration,) = workgroup.blocks("configuration")
    assert configuration["enforce_workgroup_configuration"] is True
    (engine,) = configuration.blocks("engine_version")
    assert engine["selected_engine_version"] == "Athena engine version 3"
    (results,) = configuration.blocks("result_configuration")
    (encryption,) = results.blocks("encryption_configuration")
    assert encryption["encryption_option"] == "SSE_KMS"
    assert str(encryption["kms_key_arn"]) == str(modules["s3"].output("kms_key_arn"))


def test_named_queries_use_only_columns_and_tables_of_the_lake(modules):
    queries = modules["glue"].instances("aws_athena_named_query", "this")
    assert set(queries) == {
        "latest_vehicle_positions",
        "average_speed_per_hour",
        "incidents_per_type_and_day",
        "quarantine_reasons_last_24h",
        "vehicle_rows_an_hour_ago",
        "alerts_per_rule_last_24h",
        "latest_road_conditions",
    }
    known = {t.lower() for t in TABLES}
    for stream in ALL_STREAMS:
        known |= {f.name.lower() for f in CONTRACTS[stream].fields}
    for group in (LAKE.metadata_columns, LAKE.quarantine_columns, LAKE.duplicate_columns):
        known |= {c["name"].lower() for c in group}
    for name, query in queries.items():
        sql = query["query"]
        assert query["workgroup"] == modules["glue"].one("aws_athena_workgroup", "this")["name"]
        # Every identifier after FROM is a lake table; every quoted identifier is a column.
        for table in re.findall(r"\bFROM\s+([A-Za-z_][A-Za-z0-9_]*)", sql):
            assert table.lower() in known, (name, table)
        for column in re.findall(r'"([A-Za-z_]+)"', sql):
            assert column.lower() in known, (name, column)
    positions = queries["latest_vehicle_positions"]["query"]
    assert "FROM vehicle" in positions and "max_by(location.latitude" in positions
    assert "FROM emergency" in queries["incidents_per_type_and_day"]["query"]
    quarantine = queries["quarantine_reasons_last_24h"]["query"]
    assert {f"FROM {LAKE.quarantine_table(s)} " for s in ALL_STREAMS} <= {
        f"FROM {t} " for t in re.findall(r"FROM (\w+) ", quarantine)
    }
    assert "INTERVAL '24' HOUR" in quarantine and "kafkaTimestamp" in quarantine
    assert "FOR TIMESTAMP AS OF" in queries["vehicle_rows_an_hour_ago"]["query"]
    for name, stream in (
        ("alerts_per_rule_last_24h", "alerts"),
        ("latest_road_conditions", "road_conditions"),
    ):
        assert stream in DERIVED_STREAMS
        assert f"FROM {LAKE.data_table(stream)}\n" in queries[name]["query"], name


# ---------------------------------------------------------------------------------- EMR's Iceberg


def _classification(modules, name: str) -> dict[str, str]:
    (found,) = [c for c in modules["emr"].local("configurations") if c["Classification"] == name]
    return found["Properties"]


def test_emr_runs_its_own_iceberg(modules):
    assert _classification(modules, "iceberg-defaults") == {"iceberg.enabled": "true"}
    cluster = modules["emr"].one("aws_emr_cluster", "this")
    assert json.loads(cluster["configurations_json"]) == modules["emr"].local("configurations")


def test_emr_spark_defaults_set_the_catalog_the_job_sets(root, modules, fake):
    """Key by key what emr_jobs.iceberg.spark_catalog_conf gives for LAKE_CATALOG=glue."""
    from emr_jobs.iceberg import spark_catalog_conf

    env = root.output("emr_job_environment")
    job = JobSettings(
        lake_uri=env["LAKE_URI"], catalog=env["LAKE_CATALOG"], database=env["LAKE_DATABASE"]
    )
    expected = spark_catalog_conf(job)
    emr = _classification(modules, "spark-defaults")
    assert set(emr) == set(expected)
    for key, value in expected.items():
        assert emr[key].rstrip("/") == value.rstrip("/"), key
    prefix = f"spark.sql.catalog.{LAKE.catalog}"
    assert emr[prefix] == "org.apache.iceberg.spark.SparkCatalog"
    assert emr[f"{prefix}.type"] == "glue"
    assert emr[f"{prefix}.warehouse"] == f"s3://{fake.bucket_names['lake']}/{LAKE.tables_prefix}"
    assert emr[f"{prefix}.io-impl"] == "org.apache.iceberg.aws.s3.S3FileIO"
    assert emr["spark.sql.extensions"] == (
        "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
    )


def test_the_cluster_reaches_glue_from_its_private_subnets(root, modules):
    # The root passes var.network's interface_endpoints, null unless set (tfparse leaves it
    # unevaluated): the module's variable, not nullable, then keeps its default.
    variable = modules["network"]["variable.interface_endpoints"]
    assert root.var("network") == {} and variable["nullable"] is False
    assert "glue" in variable["default"]


# -------------------------------------------------------------------------------------- lag metric


def test_the_lag_alarm_watches_the_metric_the_job_publishes(modules):
    """The job reads all topics in one query, so there is one lag metric and one alarm."""
    alarm = modules["observability"].one("aws_cloudwatch_metric_alarm", "job_lag")
    assert alarm["namespace"] == LAKE.metrics_namespace
    assert alarm["metric_name"] == LAKE.lag_metric
    assert list(alarm["dimensions"]) == [LAKE.metrics_dimension]
    assert alarm["statistic"] == "Maximum"
    assert alarm["treat_missing_data"] == "breaching"


def test_the_job_publishes_the_metric_the_alarms_watch(modules, monkeypatch):
    """Run the job's own publisher against moto and compare with the alarm definitions."""
    pytest.importorskip("pyspark")
    moto = pytest.importorskip("moto")
    import boto3

    from emr_jobs.progress import publish_lag_metric

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-2",
    }.items():
        monkeypatch.setenv(key, value)
    alarm = modules["observability"].one("aws_cloudwatch_metric_alarm", "job_lag")
    with moto.mock_aws():
        publish_lag_metric(42, "eu-west-2")
        (metric,) = boto3.client("cloudwatch", region_name="eu-west-2").list_metrics()["Metrics"]
    assert metric["Namespace"] == alarm["namespace"]
    assert metric["MetricName"] == alarm["metric_name"]
    assert {d["Name"]: d["Value"] for d in metric["Dimensions"]} == alarm["dimensions"]


def test_the_job_may_publish_its_metric_namespace(modules):
    (statement,) = [
        s
        for s in modules["iam"].policy_statements("emr_ec2")
        if "cloudwatch:PutMetricData" in s["actions"]
    ]
    (condition,) = statement["conditions"]
    assert (condition["variable"], condition["values"]) == (
        "cloudwatch:namespace",
        [LAKE.metrics_namespace],
    )


# ---------------------------------------------------------------------------------------- settings


def test_emr_job_environment_is_accepted_by_the_job_settings(root, modules, fake):
    env = dict(root.output("emr_job_environment"))
    assert set(env) >= {
        "LAKE_URI",
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_AUTH_MODE",
        "AWS_REGION",
        "JOB_PUBLISH_METRICS",
        "LAKE_CATALOG",
        "LAKE_DATABASE",
    }
    env["KAFKA_BOOTSTRAP_SERVERS"] = "b-1.example.kafka.eu-west-2.amazonaws.com:9098"
    job = JobSettings.from_env(env)
    assert job.lake_uri == f"s3://{fake.bucket_names['lake']}"
    assert root.output("lake_uri") == job.lake_uri
    assert (job.catalog, job.database) == ("glue", root.local("glue_database_name"))
    assert modules["glue"].var("name") == job.database
    assert modules["iam"].var("glue_database_name") == job.database
    assert job.publish_metrics is True
    kafka = KafkaSettings.from_env(env)
    assert (kafka.auth_mode, kafka.aws_region) == ("msk-iam", root.var("aws_region"))


def test_producer_environment_is_accepted_by_the_producer_settings(modules):
    from producer.settings import ProducerSettings

    env = _env(modules["ecs"].local("producer_container")["environment"])
    assert ProducerSettings.from_env(env).pace == "realtime"
    assert not any(re.search(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY", k) for k in env), (
        "no secrets in task environment"
    )


def test_topics_task_applies_the_terraform_topic_settings(root, modules, tf):
    """With the defaults and with var.topics set, the task creates the topics as it says."""
    pytest.importorskip("confluent_kafka")
    from scripts.topics import TopicSpec

    env = _env(modules["ecs"].local("topics_admin_container")["environment"])
    spec = TopicSpec.from_env(env)
    # var.topics's defaults, in its type (tfparse fills them in the values, not the variable)
    (variable,) = [
        e["topics"] for e in tf.load(tf.INFRA / "variables.tf")["variable"] if "topics" in e
    ]
    defaults = dict(re.findall(r"(\w+) = optional\(number, (\d+)\)", variable["type"]))
    assert (spec.partitions, spec.replication_factor, spec.retention_hours) == (
        int(defaults["partitions"]),
        int(defaults["replication_factor"]),
        int(defaults["retention_hours"]),
    )
    assert spec.partitions == modules["msk"].var("default_partitions")  # also var.topics's
    settings = {
        "topics": {"partitions": 12, "replication_factor": 2, "retention_hours": 240},
        "alert_forwarder": {"consumer_group": "smartcity-alert-forwarder-blue"},
    }  # as test_alert_notifications sets them: one more evaluation, not two
    ecs = tf.Module(inputs=settings).child("ecs")
    spec = TopicSpec.from_env(_env(ecs.local("topics_admin_container")["environment"]))
    assert (spec.partitions, spec.replication_factor, spec.retention_hours) == (12, 2, 240)
    container = modules["ecs"].local("topics_admin_container")
    assert container["entryPoint"] == ["python", "-m", "scripts.topics"] and container[
        "command"
    ] == ["create"]


# -------------------------------------------------------------------------------------- log groups


def _log_groups(modules) -> dict[str, object]:
    """The ``log_group`` module each concern calls, keyed by the concern."""
    return {
        name: module.child(address.removeprefix("module."))
        for name, module in modules.items()
        for address, call in module.items()
        if re.fullmatch(r"module\.\w+", address) and call["source"] == "../log_group"
    }


def test_each_log_group_key_lets_cloudwatch_logs_encrypt_that_log_group_only(root, modules, fake):
    log_groups = _log_groups(modules)
    assert set(log_groups) == {"ecs", "msk", "network"}
    for name, log_group in log_groups.items():
        group = log_group.one("aws_cloudwatch_log_group", "this")
        assert group["retention_in_days"] == root.var("log_retention_days"), name
        key = log_group.one("aws_kms_key", "this")
        assert key["enable_key_rotation"] is True, name
        statements = json.loads(key["policy"])["Statement"]
        assert [s["Principal"] for s in statements] == [
            {"AWS": f"arn:aws:iam::{fake.account}:root"},
            {"Service": f"logs.{fake.region}.amazonaws.com"},
        ], name
        assert statements[1]["Condition"] == {
            "ArnEquals": {
                "kms:EncryptionContext:aws:logs:arn": (
                    f"arn:aws:logs:{fake.region}:{fake.account}:log-group:{group['name']}"
                )
            }
        }, name


def test_ecs_tasks_log_to_their_log_group_and_the_execution_role_may_write_there(modules, fake):
    ecs_group = _log_groups(modules)["ecs"].one("aws_cloudwatch_log_group", "this")["name"]
    assert modules["ecs"].local("log_options")["awslogs-group"] == ecs_group
    write_logs = _statement(modules["iam"].policy_statements("ecs_task_execution"), "WriteLogs")
    assert write_logs["resources"] == [
        f"arn:aws:logs:{fake.region}:{fake.account}:log-group:{ecs_group}:log-stream:*"
    ]
