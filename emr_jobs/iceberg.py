"""The Iceberg lake: catalog settings, tables made from the contracts, exactly-once appends.

One setting, ``LAKE_CATALOG``, chooses the catalog; :func:`spark_catalog_conf` turns it into the
Spark configuration of the catalog named ``lake`` (``LAKE.catalog``):

- ``jdbc`` (default): Iceberg's JDBC catalog on a SQLite file (``LAKE_CATALOG_URI``, by default
  ``<lake>/catalog.db``). pyiceberg's ``SqlCatalog`` reads the same file, so ``scripts/lake.py``
  and DuckDB see exactly the committed snapshots. The warehouse may be ``file://`` or, on MinIO
  or moto's server, ``s3a://``.
- ``glue``: the AWS Glue Data Catalog with S3FileIO, on EMR's own Iceberg.

Exactly once across the tables of one micro-batch: every append carries the query id and the
batch id as snapshot summary properties. :class:`CommitLog` reads, once at start-up, the last
batch each table holds for this query; a replayed batch then skips the tables it already wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession

from emr_jobs.core.contracts import CONTRACTS, GLUE_TYPES, LAKE, Contract
from emr_jobs.core.settings import SettingsError
from emr_jobs.settings import JobSettings
from emr_jobs.transforms import spark_type

log = logging.getLogger("emr_jobs.iceberg")

EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"


def spark_catalog_conf(job: JobSettings) -> dict[str, str]:
    """Spark configuration of the ``lake`` catalog for ``LAKE_CATALOG`` (the only owner of it)."""
    prefix = f"spark.sql.catalog.{LAKE.catalog}"
    conf = {
        "spark.sql.extensions": EXTENSIONS,
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.warehouse": f"{job.lake_uri.rstrip('/')}/{LAKE.tables_prefix}",
        # Every table load reads the catalog: the dedupe lookup must see the latest commit, and
        # a cached table would hide commits made through another catalog instance (maintenance
        # in another process, another session). One small catalog read per load.
        f"{prefix}.cache-enabled": "false",
    }
    if job.catalog == "glue":
        conf[f"{prefix}.type"] = "glue"
        conf[f"{prefix}.io-impl"] = "org.apache.iceberg.aws.s3.S3FileIO"
    else:
        conf[f"{prefix}.type"] = "jdbc"
        conf[f"{prefix}.uri"] = job.catalog_uri
        # The schema pyiceberg's SqlCatalog shares (V1 adds a column pyiceberg 0.12 reads too).
        conf[f"{prefix}.jdbc.schema-version"] = "V1"
        # SQLite's default journal locks the whole file: a connection of another catalog
        # instance that still holds a read lock (measured: the job session's, after a restart)
        # fails the writer's commit with SQLITE_BUSY. In WAL mode readers never block the
        # writer; the timeout waits out another writer (scripts/lake.py maintain).
        conf[f"{prefix}.jdbc.journal_mode"] = "wal"
        conf[f"{prefix}.jdbc.busy_timeout"] = "30000"
    return conf


# --- tables ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSpec:
    """One lake table: its name, columns (name, contract type) and Iceberg partition field."""

    name: str
    columns: tuple[tuple[str, str], ...]
    partition: str
    description: str

    def ddl_columns(self) -> str:
        return ", ".join(f"`{name}` {GLUE_TYPES[type_]}" for name, type_ in self.columns)


def data_spec(contract: Contract) -> TableSpec:
    columns = [(f.name, f.type) for f in contract.fields]
    columns += [(c["name"], c["type"]) for c in LAKE.metadata_columns]
    return TableSpec(
        name=LAKE.data_table(contract.stream),
        columns=tuple(columns),
        partition=f"{LAKE.data_partition}({contract.event_time_field})",
        description=contract.description,
    )


def quarantine_spec(stream: str) -> TableSpec:
    return TableSpec(
        name=LAKE.quarantine_table(stream),
        columns=tuple((c["name"], c["type"]) for c in LAKE.quarantine_columns),
        partition=LAKE.quarantine_partition,
        description=f"Records of the {stream} stream that failed their checks, with the reason",
    )


def duplicates_spec() -> TableSpec:
    return TableSpec(
        name=LAKE.duplicates_table,
        columns=tuple((c["name"], c["type"]) for c in LAKE.duplicate_columns),
        partition=LAKE.duplicates_partition,
        description="Records removed as repeats of an event id already written",
    )


def table_specs(
    streams: Sequence[str], contracts: dict[str, Contract] | None = None
) -> list[TableSpec]:
    """Every table the job writes for ``streams``, in ``LAKE.tables`` order."""
    contracts = contracts or CONTRACTS
    return [
        *[data_spec(contracts[s]) for s in streams],
        *[quarantine_spec(s) for s in streams],
        duplicates_spec(),
    ]


class LakeSchemaError(RuntimeError):
    """A table in the catalog cannot hold what the contracts say (a type changed, say)."""


def ensure_tables(
    spark: SparkSession, job: JobSettings, specs: Iterable[TableSpec]
) -> dict[str, list[str]]:
    """Create missing tables; add new contract columns and a missing partition field.

    Returns what changed per table. A table's columns may only grow: a column whose type no
    longer matches the contract is an error that names the table and column, never a rewrite.
    On AWS Terraform creates the tables with their schema and partition spec (infra/modules/
    glue), so a start-up there only checks them and adds the optional columns a newer contract
    brings; adding a missing partition field is a fallback for tables made some other way.
    """
    if job.catalog == "jdbc":
        spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {LAKE.catalog}.{job.database}")
    changes: dict[str, list[str]] = {}
    for spec in specs:
        ident = job.table(spec.name)
        if not spark.catalog.tableExists(ident):
            spark.sql(
                f"CREATE TABLE {ident} ({spec.ddl_columns()}) USING iceberg "
                f"PARTITIONED BY ({spec.partition}) "
                f"LOCATION '{job.table_location(spec.name)}' "
                f"COMMENT '{spec.description.replace(chr(39), '')}' "
                f"TBLPROPERTIES ('format-version'='{LAKE.format_version}', "
                "'write.metadata.delete-after-commit.enabled'='true', "
                "'write.metadata.previous-versions-max'='50', "
                "'write.parquet.compression-codec'='zstd')"
            )
            changes[spec.name] = ["created"]
            continue
        changes[spec.name] = _evolve(spark, ident, spec)
    made = {name: what for name, what in changes.items() if what}
    if made:
        log.info("lake tables: %s", "; ".join(f"{n} {', '.join(w)}" for n, w in made.items()))
    return changes


def _evolve(spark: SparkSession, ident: str, spec: TableSpec) -> list[str]:
    current = {f.name: f.dataType.simpleString() for f in spark.table(ident).schema.fields}
    done = []
    for name, type_ in spec.columns:
        if name not in current:
            spark.sql(f"ALTER TABLE {ident} ADD COLUMN `{name}` {GLUE_TYPES[type_]}")
            done.append(f"added column {name}")
        elif current[name] != spark_type(type_).simpleString():
            raise LakeSchemaError(
                f"{ident}.{name} is {current[name]} in the catalog but the contract says "
                f"{GLUE_TYPES[type_]}; a contract may only add optional fields"
            )
    partitions = spark.sql(f"SELECT * FROM {ident}.partitions LIMIT 0").columns
    if "partition" not in partitions:
        spark.sql(f"ALTER TABLE {ident} ADD PARTITION FIELD {spec.partition}")
        done.append(f"partitioned by {spec.partition}")
    return done


# --- exactly-once appends ------------------------------------------------------------------------


def last_batch(spark: SparkSession, ident: str, query_id: str) -> int | None:
    """The highest batch id of ``query_id`` among the snapshots the table's state descends from."""
    rows = spark.sql(
        f"SELECT s.summary FROM {ident}.snapshots s JOIN {ident}.history h "
        "ON s.snapshot_id = h.snapshot_id WHERE h.is_current_ancestor "
        f"AND s.summary['{LAKE.query_id_property}'] = '{query_id}' "
        f"ORDER BY CAST(s.summary['{LAKE.batch_id_property}'] AS BIGINT) DESC LIMIT 1"
    ).collect()
    return int(rows[0]["summary"][LAKE.batch_id_property]) if rows else None


@dataclass
class CommitLog:
    """Which batch each table last committed for one query, and the appends that honour it.

    ``after_commit`` runs after every table commit (the fault-injection tests use it).
    """

    spark: SparkSession
    job: JobSettings
    query_id: str
    tables: Sequence[str]
    after_commit: Callable[[str, int], None] | None = None
    committed: dict[str, int | None] = field(default_factory=dict)

    def load(self) -> CommitLog:
        for table in self.tables:
            self.committed[table] = last_batch(self.spark, self.job.table(table), self.query_id)
        return self

    def holds(self, table: str, batch_id: int) -> bool:
        last = self.committed.get(table)
        return last is not None and last >= batch_id

    def append(self, table: str, batch_id: int, rows: DataFrame) -> bool:
        """Append ``rows`` tagged with the batch, unless the table holds it; True if written."""
        if self.holds(table, batch_id):
            log.info("batch %d already in %s (replay): skipped", batch_id, table)
            return False
        (
            rows.writeTo(self.job.table(table))
            .option(f"snapshot-property.{LAKE.query_id_property}", self.query_id)
            .option(f"snapshot-property.{LAKE.batch_id_property}", str(batch_id))
            .append()
        )
        self.committed[table] = batch_id
        if self.after_commit is not None:
            self.after_commit(table, batch_id)
        return True


def check_catalog(spark: SparkSession, job: JobSettings) -> None:
    """Fail at start-up, naming the setting, when the catalog cannot be reached."""
    # Glue: the database Terraform made (glue:GetDatabase on it alone); SQLite: open the file.
    statement = (
        f"DESCRIBE NAMESPACE {LAKE.catalog}.{job.database}"
        if job.catalog == "glue"
        else f"SHOW NAMESPACES IN {LAKE.catalog}"
    )
    try:
        spark.sql(statement).collect()
    except Exception as err:  # noqa: BLE001 - py4j wraps the Java exception
        text = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        setting = (
            "LAKE_CATALOG_URI" if job.catalog == "jdbc" else "LAKE_DATABASE in the Glue catalog"
        )
        raise SettingsError(
            f"cannot open the {job.catalog} catalog ({setting}: "
            f"{job.catalog_uri or job.lake_uri}): {text}"
        ) from None
