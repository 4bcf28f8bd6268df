locals {
  # Columns and table names come from the contracts the code uses, never typed here again.
  contracts_dir = "${path.module}/../../../emr_jobs/core/contracts"
  contracts     = { for s in var.streams : s => jsondecode(file("${local.contracts_dir}/${s}.json")) }
  lake          = jsondecode(file("${local.contracts_dir}/_lake.json"))

  # Contract type -> Iceberg type, as Spark's CREATE TABLE in emr_jobs/iceberg.py makes it: a Spark
  # timestamp is `timestamptz` (Hive's `timestamp` would become timestamp without zone, which the
  # job rejects), and the location is a struct of two doubles (tests/infra holds them to the code).
  iceberg_types = {
    string    = "string"
    int       = "int"
    long      = "long"
    double    = "double"
    timestamp = "timestamptz"
    boolean   = "boolean"
    binary    = "binary"
  }
  location_fields = ["latitude", "longitude"]
  # Spark's partition transforms in _lake.json -> Iceberg's transform names.
  iceberg_transforms = { years = "year", months = "month", days = "day", hours = "hour" }

  # The job's table properties (emr_jobs/iceberg.py ensure_tables creates a table with the same).
  table_properties = {
    "format-version"                             = tostring(local.lake.iceberg.format_version)
    "write.parquet.compression-codec"            = "zstd"
    "write.metadata.delete-after-commit.enabled" = "true"
    "write.metadata.previous-versions-max"       = "50"
  }

  # Every table the job writes, as LAKE.tables(ALL_STREAMS) lists them: <stream> (contract fields, then
  # the job's metadata columns), <stream>_quarantine, and duplicates.
  quarantine_tables = { for s in var.streams : s => "${s}${local.lake.iceberg.quarantine_suffix}" }
  duplicates_table  = local.lake.iceberg.duplicates_table
  tables = merge(
    { for s, c in local.contracts : s => { description = c.description, fields = concat(c.fields, local.lake.metadata_columns), partition = "${local.lake.iceberg.data_partition}(${c.event_time_field})" } },
    { for s, t in local.quarantine_tables : t => { description = "Records of the ${s} stream that failed their checks, with the reason", fields = local.lake.quarantine_columns, partition = local.lake.iceberg.quarantine_partition } },
    { for t in [local.duplicates_table] : t => { description = "Records removed as repeats of an event id already written", fields = local.lake.duplicate_columns, partition = local.lake.iceberg.duplicates_partition } },
  )
  table_locations = { for t in keys(local.tables) : t => "s3://${var.lake_bucket_name}/${local.lake.layout.tables}/${t}" }

  # Each table's Iceberg schema with the field ids Iceberg itself gives a new table: top-level
  # columns 1..n, then the fields of each struct column in order. Every field is optional, as in
  # the job's DDL: requiredness is a contract rule that quarantines, not a table constraint.
  struct_first_ids = {
    for t, table in local.tables : t => {
      for k, i in [for i, f in table.fields : i if f.type == "location"] :
      tostring(i) => length(table.fields) + 1 + k * length(local.location_fields)
    }
  }
  iceberg_fields = {
    for t, table in local.tables : t => [
      for i, f in table.fields : {
        id   = i + 1
        name = f.name
        doc  = f.description
        # Glue takes each field type as a JSON document: "\"long\"" or {"type": "struct", ...}.
        type = f.type == "location" ? jsonencode({
          type   = "struct"
          fields = [for j, n in local.location_fields : { id = lookup(local.struct_first_ids[t], tostring(i), 0) + j, name = n, required = false, type = "double" }]
        }) : jsonencode(lookup(local.iceberg_types, f.type, f.type))
      }
    ]
  }
  # "hours(timestamp)" -> the hour transform of that column, named as Spark names it (timestamp_hour).
  partition_fields = {
    for t, table in local.tables : t => {
      source    = split("(", trimsuffix(table.partition, ")"))[1]
      transform = local.iceberg_transforms[split("(", table.partition)[0]]
    }
  }
  partition_specs = {
    for t, p in local.partition_fields : t => {
      name      = "${p.source}_${p.transform}"
      source_id = one([for i, f in local.tables[t].fields : i + 1 if f.name == p.source])
      transform = p.transform
    }
  }

  # The three Glue table optimizers on every table: the maintenance `python -m scripts.lake maintain` does locally.
  optimizer_types = ["compaction", "retention", "orphan_file_deletion"]
  optimizers = {
    for o in flatten([for t in keys(local.tables) : [for type in local.optimizer_types : { table = t, type = type }]]) :
    "${o.table}.${o.type}" => o
  }

  # Saved Athena queries (Athena engine 3 SQL); columns are the contracts' field names.
  quarantine_last_24h = join("\nUNION ALL\n", [
    for s, t in local.quarantine_tables :
    "SELECT '${s}' AS stream, reason, count(*) AS records, max(kafkaTimestamp) AS last_seen FROM ${t} WHERE kafkaTimestamp > current_timestamp - INTERVAL '24' HOUR GROUP BY reason"
  ])
  named_queries = {
    latest_vehicle_positions = {
      description = "Latest position, speed and fuel level of every vehicle (max_by over the vehicle table)"
      query       = <<-SQL
        SELECT deviceId,
               max("timestamp") AS last_seen,
               max_by(location.latitude, "timestamp") AS latitude,
               max_by(location.longitude, "timestamp") AS longitude,
               max_by(speed, "timestamp") AS speed_kmh,
               max_by(fuelLevel, "timestamp") AS fuel_level
        FROM vehicle
        GROUP BY deviceId
        ORDER BY deviceId
      SQL
    }
    average_speed_per_hour = {
      description = "Events, distinct vehicles and average speed per event hour (add a \"timestamp\" range to prune hours)"
      query       = <<-SQL
        SELECT date_trunc('hour', "timestamp") AS hour,
               count(*) AS events,
               count(DISTINCT deviceId) AS vehicles,
               round(avg(speed), 1) AS avg_speed_kmh
        FROM vehicle
        GROUP BY 1
        ORDER BY 1
      SQL
    }
    incidents_per_type_and_day = {
      description = "Emergency incidents per type and event day, with how many were reported active and resolved"
      query       = <<-SQL
        SELECT date("timestamp") AS day,
               "type",
               count(DISTINCT incidentId) AS incidents,
               count_if(status = 'Active') AS active_reports,
               count_if(status = 'Resolved') AS resolved_reports
        FROM emergency
        GROUP BY 1, 2
        ORDER BY 1, 2
      SQL
    }
    quarantine_reasons_last_24h = {
      description = "Why records were quarantined in the last 24 hours (by Kafka time), per stream"
      query       = "SELECT stream, reason, records, last_seen FROM (\n${local.quarantine_last_24h}\n) ORDER BY records DESC"
    }
    alerts_per_rule_last_24h = {
      description = "Alerts the job raised in the last 24 hours (by Kafka time) per rule and severity, with the longest detection delay"
      query       = <<-SQL
        SELECT rule,
               severity,
               count(DISTINCT id) AS alerts,
               count_if(status = 'Resolved') AS resolved,
               max(kafkaTimestamp) AS last_seen,
               max(date_diff('second', "timestamp", detectedAt)) AS max_detection_delay_s
        FROM alerts
        WHERE kafkaTimestamp > current_timestamp - INTERVAL '24' HOUR
        GROUP BY rule, severity
        ORDER BY alerts DESC
      SQL
    }
    latest_road_conditions = {
      description = "The latest closed window of every road section: vehicles, average and 95th-percentile speed against the limit, precipitation and active incidents"
      query       = <<-SQL
        SELECT section,
               max_by(road, "timestamp") AS road,
               max("timestamp") AS window_start,
               max_by(vehicleCount, "timestamp") AS vehicles,
               max_by(avgSpeed, "timestamp") AS avg_speed_kmh,
               max_by(p95Speed, "timestamp") AS p95_speed_kmh,
               max_by(speedLimit, "timestamp") AS speed_limit_kmh,
               max_by(precipitation, "timestamp") AS precipitation_mm_h,
               max_by(activeIncidents, "timestamp") AS active_incidents
        FROM road_conditions
        GROUP BY section
        ORDER BY section
      SQL
    }
    vehicle_rows_an_hour_ago = {
      description = "Iceberg time travel: the vehicle table now and as it was an hour ago (snapshots are kept ${var.maintenance.snapshot_retention_days} days)"
      query       = <<-SQL
        SELECT (SELECT count(*) FROM vehicle) AS rows_now,
               (SELECT count(*) FROM vehicle FOR TIMESTAMP AS OF (current_timestamp - INTERVAL '1' HOUR)) AS rows_an_hour_ago
      SQL
    }
  }
}

resource "aws_glue_catalog_database" "this" {
  name        = var.name
  description = "Smart City lake: Iceberg tables, one per stream, <stream>_quarantine and duplicates"

  tags = var.tags
}

# Iceberg tables, created here so the optimizers, the Athena queries and the IAM policies can name
# them at apply time. Glue writes the first metadata.json with the contracts' schema, the
# partition spec and the job's table properties; the job at start-up only checks them and adds a
# new optional contract field (emr_jobs/iceberg.py ensure_tables). From then on Iceberg owns the
# schema and the metadata pointer: Terraform ignores both, or an apply would undo (or, for a
# changed open_table_format_input, replace the table and lose) the job's commits.
resource "aws_glue_catalog_table" "this" {
  for_each = local.tables

  name          = each.key
  database_name = aws_glue_catalog_database.this.name
  description   = each.value.description
  table_type    = "EXTERNAL_TABLE"

  open_table_format_input {
    iceberg_input {
      metadata_operation = "CREATE"
      version            = tostring(local.lake.iceberg.format_version)

      iceberg_table_input {
        location   = local.table_locations[each.key]
        properties = local.table_properties

        schema {
          schema_id = 0
          type      = "struct"

          dynamic "fields" {
            for_each = local.iceberg_fields[each.key]

            content {
              id       = fields.value.id
              name     = fields.value.name
              type     = fields.value.type
              required = false
              doc      = fields.value.doc
            }
          }
        }

        partition_spec {
          spec_id = 0

          fields {
            field_id  = 1000
            name      = local.partition_specs[each.key].name
            source_id = local.partition_specs[each.key].source_id
            transform = local.partition_specs[each.key].transform
          }
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [open_table_format_input, parameters, storage_descriptor]
  }
}

# Maintenance without our code: compaction, snapshot expiry and orphan-file removal on every table.
resource "aws_glue_catalog_table_optimizer" "this" {
  for_each = local.optimizers

  catalog_id    = aws_glue_catalog_database.this.catalog_id
  database_name = aws_glue_catalog_database.this.name
  table_name    = aws_glue_catalog_table.this[each.value.table].name
  type          = each.value.type

  configuration {
    role_arn = var.optimizer_role_arn
    enabled  = var.maintenance.enabled

    dynamic "retention_configuration" {
      for_each = each.value.type == "retention" ? [1] : []

      content {
        iceberg_configuration {
          snapshot_retention_period_in_days = var.maintenance.snapshot_retention_days
          number_of_snapshots_to_retain     = var.maintenance.snapshots_to_retain
          clean_expired_files               = true
        }
      }
    }

    dynamic "orphan_file_deletion_configuration" {
      for_each = each.value.type == "orphan_file_deletion" ? [1] : []

      content {
        iceberg_configuration {
          orphan_file_retention_period_in_days = var.maintenance.orphan_file_retention_days
          location                             = local.table_locations[each.value.table]
        }
      }
    }
  }
}

resource "aws_athena_workgroup" "this" {
  name          = var.name
  description   = "Queries over the Smart City lake; results encrypted with the lake's KMS key"
  force_destroy = var.force_destroy

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.bytes_scanned_cutoff_per_query

    engine_version {
      selected_engine_version = "Athena engine version 3" # reads Iceberg, FOR TIMESTAMP AS OF
    }

    result_configuration {
      output_location = "s3://${var.athena_results_bucket_name}/${var.athena_results_prefix}/"

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = var.kms_key_arn
      }
    }
  }

  tags = var.tags
}

resource "aws_athena_named_query" "this" {
  for_each = local.named_queries

  name        = each.key
  description = each.value.description
  workgroup   = aws_athena_workgroup.this.name
  database    = aws_glue_catalog_database.this.name
  query       = each.value.query
}
