locals {
  # Columns come from the contracts the code uses, never typed here again.
  contracts_dir = "${path.module}/../../../emr_jobs/contracts"
  contracts     = { for s in var.streams : s => jsondecode(file("${local.contracts_dir}/${s}.json")) }
  lake          = jsondecode(file("${local.contracts_dir}/_lake.json"))

  # Contract type -> Hive type; mirrors GLUE_TYPES in emr_jobs/contracts/__init__.py (a test holds them equal).
  glue_types = {
    string    = "string"
    int       = "int"
    long      = "bigint"
    double    = "double"
    timestamp = "timestamp"
    boolean   = "boolean"
    location  = "struct<latitude:double,longitude:double>"
  }

  # Each data table: the contract's fields, then the job's metadata columns.
  data_columns = {
    for s, c in local.contracts : s => [
      for f in concat(c.fields, local.lake.metadata_columns) : { name = f.name, type = local.glue_types[f.type], comment = f.description }
    ]
  }
  quarantine_columns = [for f in local.lake.quarantine_columns : { name = f.name, type = local.glue_types[f.type], comment = f.description }]

  # Partition projection: Athena computes partitions from these rules, so no crawler or MSCK is needed.
  projection = {
    date = {
      "projection.date.type"          = "date"
      "projection.date.format"        = "yyyy-MM-dd"
      "projection.date.range"         = "${var.projection_start_date},NOW"
      "projection.date.interval"      = "1"
      "projection.date.interval.unit" = "DAYS"
    }
    hour = {
      "projection.hour.type"  = "integer"
      "projection.hour.range" = "0,23"
    }
  }

  parquet = {
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    serde         = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
  }
}

resource "aws_glue_catalog_database" "this" {
  name        = var.name
  description = "Smart City lake: one table per stream, plus quarantine"

  tags = var.tags
}

resource "aws_glue_catalog_table" "data" {
  for_each = toset(var.streams)

  name          = each.key
  database_name = aws_glue_catalog_database.this.name
  description   = local.contracts[each.key].description
  table_type    = "EXTERNAL_TABLE"

  parameters = merge(
    {
      EXTERNAL                    = "TRUE"
      classification              = "parquet"
      "parquet.compression"       = "SNAPPY"
      "projection.enabled"        = "true"
      "storage.location.template" = "s3://${var.lake_bucket_name}/${local.lake.layout.data}/${each.key}/date=$${date}/hour=$${hour}/"
    },
    local.projection.date,
    local.projection.hour,
  )

  dynamic "partition_keys" {
    for_each = local.lake.partition_columns

    content {
      name    = partition_keys.value.name
      type    = local.glue_types[partition_keys.value.type]
      comment = partition_keys.value.description
    }
  }

  storage_descriptor {
    location      = "s3://${var.lake_bucket_name}/${local.lake.layout.data}/${each.key}/"
    input_format  = local.parquet.input_format
    output_format = local.parquet.output_format

    ser_de_info {
      serialization_library = local.parquet.serde
    }

    dynamic "columns" {
      for_each = local.data_columns[each.key]

      content {
        name    = columns.value.name
        type    = columns.value.type
        comment = columns.value.comment
      }
    }
  }
}

resource "aws_glue_catalog_table" "quarantine" {
  for_each = toset(var.streams)

  name          = "${each.key}_quarantine"
  database_name = aws_glue_catalog_database.this.name
  description   = "Records of ${each.key} that failed parsing or validation, with the reason"
  table_type    = "EXTERNAL_TABLE"

  parameters = merge(
    {
      EXTERNAL                    = "TRUE"
      classification              = "parquet"
      "projection.enabled"        = "true"
      "storage.location.template" = "s3://${var.lake_bucket_name}/${local.lake.layout.quarantine}/${each.key}/date=$${date}/"
    },
    local.projection.date,
  )

  dynamic "partition_keys" {
    for_each = local.lake.quarantine_partition_columns

    content {
      name    = partition_keys.value.name
      type    = local.glue_types[partition_keys.value.type]
      comment = partition_keys.value.description
    }
  }

  storage_descriptor {
    location      = "s3://${var.lake_bucket_name}/${local.lake.layout.quarantine}/${each.key}/"
    input_format  = local.parquet.input_format
    output_format = local.parquet.output_format

    ser_de_info {
      serialization_library = local.parquet.serde
    }

    dynamic "columns" {
      for_each = local.quarantine_columns

      content {
        name    = columns.value.name
        type    = columns.value.type
        comment = columns.value.comment
      }
    }
  }
}

resource "aws_athena_workgroup" "this" {
  name          = var.name
  description   = "Queries over the Smart City lake; results encrypted with KMS"
  force_destroy = var.force_destroy

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.bytes_scanned_cutoff_per_query

    engine_version {
      selected_engine_version = "Athena engine version 3"
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
