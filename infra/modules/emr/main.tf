locals {
  # Pinned: emr-7.13.0 runs Spark 3.5.6, the pyspark the job is tested with (tests/infra).
  release_label = "emr-7.13.0"

  # The Iceberg catalog `lake` on the Glue Data Catalog, with EMR's own Iceberg (iceberg-defaults):
  # the same settings the job sets at start-up for LAKE_CATALOG=glue (emr_jobs/iceberg.py
  # spark_catalog_conf; a test holds them equal), so spark-sql and pyspark on the cluster see the
  # same tables. Nothing Iceberg is shipped with the job.
  lake          = jsondecode(file("${path.module}/../../../emr_jobs/core/contracts/_lake.json"))
  spark_catalog = "spark.sql.catalog.${local.lake.iceberg.catalog}"
  configurations = [
    {
      Classification = "iceberg-defaults"
      Properties     = { "iceberg.enabled" = "true" }
    },
    {
      Classification = "spark-defaults"
      Properties = {
        "spark.sql.extensions"                 = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
        (local.spark_catalog)                  = "org.apache.iceberg.spark.SparkCatalog"
        "${local.spark_catalog}.type"          = "glue"
        "${local.spark_catalog}.warehouse"     = "s3://${var.lake_bucket_name}/${local.lake.layout.tables}"
        "${local.spark_catalog}.io-impl"       = "org.apache.iceberg.aws.s3.S3FileIO"
        "${local.spark_catalog}.cache-enabled" = "false"
      }
    },
  ]

  # The job's Python packages (pandas, numpy, pyarrow; infra/scripts/emr_python_requirements.txt)
  # for the cluster's Python 3.11, which the job runs (spark.pyspark.python). The private subnets
  # have no internet, so `python -m scripts.artifacts upload` stages the wheels in the artifacts
  # bucket, under a prefix named after the requirements file's hash (the same name, a test holds
  # them equal), and a bootstrap action installs them on every node, nodes added later included.
  # A changed requirements file is a new prefix, so a new cluster: never new wheels on old nodes.
  python                   = "/usr/bin/python3.11" # scripts/emr_steps.py EMR_PYTHON
  python_requirements_hash = filesha256("${path.module}/../../scripts/emr_python_requirements.txt")
  python_packages_prefix   = "python/cp311-x86_64-${substr(local.python_requirements_hash, 0, 12)}/"
  python_packages_s3_uri   = "s3://${var.artifacts_bucket_name}/${local.python_packages_prefix}"
  # The script's key carries its hash too, so every node of a cluster runs the same script.
  bootstrap_script      = "${path.module}/../../scripts/emr_python_packages.sh"
  bootstrap_script_hash = filesha256(local.bootstrap_script)

  # EMR-managed security groups: EMR adds and removes their rules itself.
  security_groups = {
    master         = "EMR primary node (rules managed by EMR)"
    core           = "EMR core nodes (rules managed by EMR)"
    service_access = "EMR service access in a private subnet (rules managed by EMR)"
  }
}

data "aws_region" "current" {}

resource "aws_s3_object" "this" {
  bucket     = var.artifacts_bucket_name
  key        = "emr/bootstrap/${substr(local.bootstrap_script_hash, 0, 12)}/emr_python_packages.sh"
  source     = local.bootstrap_script
  kms_key_id = var.kms_key_arn

  tags = var.tags
}

# `terraform plan` warns, without failing, while the wheel set is not uploaded yet: the bootstrap
# action would fail and the cluster with it.
check "python_packages_uploaded" {
  data "aws_s3_object" "python_packages_manifest" {
    bucket = var.artifacts_bucket_name
    key    = "${local.python_packages_prefix}manifest.json"
  }

  assert {
    condition     = data.aws_s3_object.python_packages_manifest.content_length > 0
    error_message = "No wheel set at ${local.python_packages_s3_uri}: run `python -m scripts.artifacts upload` before the EMR cluster is created."
  }
}

resource "aws_security_group" "this" {
  for_each = local.security_groups

  name                   = "${var.name}-emr-${replace(each.key, "_", "-")}"
  description            = each.value
  vpc_id                 = var.vpc_id
  revoke_rules_on_delete = true # the EMR-added rules reference each other; drop them before deleting

  tags = merge(var.tags, {
    Name                                     = "${var.name}-emr-${replace(each.key, "_", "-")}"
    for-use-with-amazon-emr-managed-policies = "true"
  })

  lifecycle {
    ignore_changes = [ingress, egress]
  }
}

resource "aws_emr_security_configuration" "this" {
  name = var.name
  configuration = jsonencode({
    EncryptionConfiguration = {
      EnableAtRestEncryption    = true
      EnableInTransitEncryption = true
      AtRestEncryptionConfiguration = {
        S3EncryptionConfiguration = {
          EncryptionMode = "SSE-KMS"
          AwsKmsKey      = var.kms_key_arn
        }
        LocalDiskEncryptionConfiguration = {
          EncryptionKeyProviderType = "AwsKms"
          AwsKmsKey                 = var.kms_key_arn
          EnableEbsEncryption       = true
        }
      }
      InTransitEncryptionConfiguration = {
        TLSCertificateConfiguration = {
          CertificateProviderType = "PEM"
          S3Object                = var.tls_certificates_s3_uri
        }
      }
    }
  })
}

resource "aws_emr_cluster" "this" {
  name                              = var.name
  release_label                     = local.release_label
  applications                      = ["Hadoop", "Spark"]
  configurations_json               = jsonencode(local.configurations) # a change replaces the cluster
  service_role                      = var.service_role_arn
  security_configuration            = aws_emr_security_configuration.this.name
  log_uri                           = var.log_uri
  log_encryption_kms_key_id         = var.kms_key_arn
  keep_job_flow_alive_when_no_steps = true
  termination_protection            = false
  step_concurrency_level            = var.step_concurrency_level
  ebs_root_volume_size              = 32

  bootstrap_action {
    name = "python-packages"
    path = "s3://${aws_s3_object.this.bucket}/${aws_s3_object.this.key}"
    args = [data.aws_region.current.region, local.python_packages_s3_uri, local.python]
  }

  ec2_attributes {
    subnet_id                         = var.subnet_id
    instance_profile                  = var.instance_profile_arn
    emr_managed_master_security_group = aws_security_group.this["master"].id
    emr_managed_slave_security_group  = aws_security_group.this["core"].id
    service_access_security_group     = aws_security_group.this["service_access"].id
  }

  master_instance_group {
    instance_type = var.master_instance_type

    ebs_config {
      size                 = var.ebs_volume_size
      type                 = "gp3"
      volumes_per_instance = 1
    }
  }

  core_instance_group {
    instance_type  = var.core_instance_type
    instance_count = var.core_instance_count

    ebs_config {
      size                 = var.ebs_volume_size
      type                 = "gp3"
      volumes_per_instance = 1
    }
  }

  auto_termination_policy {
    idle_timeout = var.idle_timeout_seconds
  }

  tags = merge(var.tags, { Name = var.name, for-use-with-amazon-emr-managed-policies = "true" })

  # The streaming job is submitted as a step by a script, never here: a `step` block, or a
  # diff against steps added outside Terraform, would replace the cluster.
  lifecycle {
    ignore_changes = [step, core_instance_group[0].instance_count]
  }
}

resource "aws_emr_managed_scaling_policy" "this" {
  count = var.managed_scaling.enabled ? 1 : 0

  cluster_id = aws_emr_cluster.this.id

  compute_limits {
    unit_type              = "Instances"
    minimum_capacity_units = var.managed_scaling.min_instances
    maximum_capacity_units = var.managed_scaling.max_instances
  }
}
