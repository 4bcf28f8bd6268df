locals {
  # Topics are created explicitly by `python -m scripts.topics create`; nothing is auto-created.
  server_properties = {
    "auto.create.topics.enable"      = "false"
    "default.replication.factor"     = "3"
    "min.insync.replicas"            = "2"
    "num.partitions"                 = tostring(var.default_partitions)
    "unclean.leader.election.enable" = "false"
  }
}

module "log_group" {
  source = "../log_group"

  name                = "/aws/msk/${var.name}"
  retention_in_days   = var.log_retention_days
  kms_key_description = "${var.name}: MSK data at rest and broker logs"

  tags = var.tags
}

resource "aws_msk_configuration" "this" {
  name              = var.name
  kafka_versions    = [var.kafka_version]
  description       = "${var.name}: no auto-created topics, RF 3, min ISR 2"
  server_properties = join("\n", [for k, v in local.server_properties : "${k}=${v}"])
}

resource "aws_security_group" "this" {
  name        = "${var.name}-msk"
  description = "MSK brokers: Kafka over TLS with IAM authentication (9098) from the job and producer only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-msk" })
}

resource "aws_vpc_security_group_ingress_rule" "this" {
  for_each = var.client_security_group_ids

  security_group_id            = aws_security_group.this.id
  description                  = "Kafka TLS + IAM from ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = 9098
  to_port                      = 9098
  referenced_security_group_id = each.value

  tags = var.tags
}

resource "aws_msk_cluster" "this" {
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = var.broker_count
  enhanced_monitoring    = var.enhanced_monitoring

  broker_node_group_info {
    instance_type   = var.broker_instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.this.id]

    storage_info {
      ebs_storage_info {
        volume_size = var.broker_volume_size
      }
    }

    connectivity_info {
      public_access {
        type = "DISABLED"
      }
    }
  }

  # IAM is the only way in: no unauthenticated, SCRAM or mutual-TLS clients.
  client_authentication {
    unauthenticated = false

    sasl {
      iam   = true
      scram = false
    }
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = module.log_group.kms_key_arn

    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = module.log_group.log_group_name
      }
    }
  }

  tags = merge(var.tags, { Name = var.name })
}
