data "aws_region" "current" {}

locals {
  region = data.aws_region.current.region
  image  = "${aws_ecr_repository.this.repository_url}:${var.image_tag}"

  # Every container: read-only root filesystem with a scratch /tmp, non-root user, logs to CloudWatch.
  container_base = {
    image                  = local.image
    essential              = true
    readonlyRootFilesystem = true
    user                   = "10001:10001"
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
  }
  log_options = {
    "awslogs-group"  = var.log_group_name
    "awslogs-region" = local.region
  }

  producer_container = merge(local.container_base, {
    name             = "producer"
    environment      = [for k, v in merge(var.kafka_environment, var.producer_environment) : { name = k, value = v }]
    logConfiguration = { logDriver = "awslogs", options = merge(local.log_options, { "awslogs-stream-prefix" = "producer" }) }
  })

  # The producer image with its entrypoint overridden: the Kafka admin API creates the topics.
  topics_admin_container = merge(local.container_base, {
    name             = "topics-admin"
    entryPoint       = ["python", "-m", "scripts.topics"]
    command          = ["create"]
    environment      = [for k, v in merge(var.kafka_environment, var.topics_admin_environment) : { name = k, value = v }]
    logConfiguration = { logDriver = "awslogs", options = merge(local.log_options, { "awslogs-stream-prefix" = "topics-admin" }) }
  })

  # The producer image once more: consumes the alerts topic and publishes each alert once to SNS.
  # Its environment is exactly what the forwarder reads (no other stream's topic).
  alert_forwarder_container = merge(local.container_base, {
    name             = "alert-forwarder"
    entryPoint       = ["python", "-m", "scripts.alerts"]
    command          = ["forward"]
    environment      = [for k, v in var.alert_forwarder_environment : { name = k, value = v }]
    logConfiguration = { logDriver = "awslogs", options = merge(local.log_options, { "awslogs-stream-prefix" = "alert-forwarder" }) }
  })

  # What sets the task definitions apart (keys are the family suffixes); the one-off
  # topics-admin run needs only the smallest Fargate size.
  task_definitions = {
    producer          = { cpu = var.task_size.cpu, memory = var.task_size.memory, task_role_arn = var.producer_task_role_arn, container = local.producer_container }
    "topics-admin"    = { cpu = 256, memory = 512, task_role_arn = var.topics_admin_task_role_arn, container = local.topics_admin_container }
    "alert-forwarder" = { cpu = var.alert_forwarder_task_size.cpu, memory = var.alert_forwarder_task_size.memory, task_role_arn = var.alert_forwarder_task_role_arn, container = local.alert_forwarder_container }
  }

  # The long-running services (keys are the name suffixes), each with its own security group.
  services = {
    producer          = { desired_count = var.producer_desired_count, security_group = "tasks" }
    "alert-forwarder" = { desired_count = var.alert_forwarder_desired_count, security_group = "alert-forwarder" }
  }

  # Tasks reach the brokers and the interface endpoints inside the VPC, and ECR layers in S3;
  # the forwarder also reaches its DynamoDB ledger through the gateway endpoint.
  common_egress_rules = {
    kafka_iam      = { description = "Kafka TLS + IAM to the brokers", port = 9098, cidr = var.vpc_cidr_block, prefix_list = null }
    endpoints      = { description = "HTTPS to the interface endpoints", port = 443, cidr = var.vpc_cidr_block, prefix_list = null }
    s3_image_layer = { description = "HTTPS to S3 for ECR image layers", port = 443, cidr = null, prefix_list = var.s3_prefix_list_id }
  }
  security_groups = {
    tasks = {
      name        = "${var.name}-ecs-tasks"
      description = "ECS tasks (producer, topics-admin): no inbound; outbound to MSK, endpoints and S3 only"
      egress      = local.common_egress_rules
    }
    "alert-forwarder" = {
      name        = "${var.name}-alert-forwarder"
      description = "Alert forwarder: no inbound; outbound to MSK, endpoints, S3 and DynamoDB only"
      egress = merge(local.common_egress_rules, {
        dynamodb = { description = "HTTPS to DynamoDB (the alert ledger)", port = 443, cidr = null, prefix_list = var.dynamodb_prefix_list_id }
      })
    }
  }
  egress_rules = {
    for r in flatten([
      for group, sg in local.security_groups : [for key, rule in sg.egress : merge(rule, { group = group, key = "${group}.${key}" })]
    ]) : r.key => r
  }
}

module "log_group" {
  source = "../log_group"

  name                = var.log_group_name
  retention_in_days   = var.log_retention_days
  kms_key_description = "${var.name}: ECS task logs and the ECR repository"

  tags = var.tags
}

resource "aws_ecr_repository" "this" {
  name                 = var.ecr_repository_name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_destroy

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = module.log_group.kms_key_arn
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the 20 most recent images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 20 }
      action       = { type = "expire" }
    }]
  })
}

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags
}

resource "aws_security_group" "this" {
  for_each = local.security_groups

  name        = each.value.name
  description = each.value.description
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = each.value.name })
}

resource "aws_vpc_security_group_egress_rule" "this" {
  for_each = local.egress_rules

  security_group_id = aws_security_group.this[each.value.group].id
  description       = each.value.description
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
  prefix_list_id    = each.value.prefix_list

  tags = var.tags
}

resource "aws_ecs_task_definition" "this" {
  for_each = local.task_definitions

  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = each.value.task_role_arn
  container_definitions    = jsonencode([each.value.container])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.task_size.cpu_architecture
  }

  volume {
    name = "tmp"
  }

  tags = var.tags
}

resource "aws_ecs_service" "this" {
  for_each = local.services

  name                    = "${var.name}-${each.key}"
  cluster                 = aws_ecs_cluster.this.id
  task_definition         = aws_ecs_task_definition.this[each.key].arn
  desired_count           = each.value.desired_count
  launch_type             = "FARGATE"
  platform_version        = "LATEST"
  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.this[each.value.security_group].id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = var.tags
}

# The producer's service and security group became the "producer" and "tasks" instances of
# for_each resources when the alert forwarder joined them: moved, not replaced.
moved {
  from = aws_ecs_service.this
  to   = aws_ecs_service.this["producer"]
}

moved {
  from = aws_security_group.this
  to   = aws_security_group.this["tasks"]
}

moved {
  from = aws_vpc_security_group_egress_rule.this["kafka_iam"]
  to   = aws_vpc_security_group_egress_rule.this["tasks.kafka_iam"]
}

moved {
  from = aws_vpc_security_group_egress_rule.this["endpoints"]
  to   = aws_vpc_security_group_egress_rule.this["tasks.endpoints"]
}

moved {
  from = aws_vpc_security_group_egress_rule.this["s3_image_layer"]
  to   = aws_vpc_security_group_egress_rule.this["tasks.s3_image_layer"]
}
