data "aws_region" "current" {}

locals {
  region = data.aws_region.current.region
  image  = "${aws_ecr_repository.this.repository_url}:${var.image_tag}"

  # Both containers: read-only root filesystem with a scratch /tmp, non-root user, logs to CloudWatch.
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

  # What sets the two task definitions apart (keys are the family suffixes); the one-off
  # topics-admin run needs only the smallest Fargate size.
  task_definitions = {
    producer       = { cpu = var.task_size.cpu, memory = var.task_size.memory, task_role_arn = var.producer_task_role_arn, container = local.producer_container }
    "topics-admin" = { cpu = 256, memory = 512, task_role_arn = var.topics_admin_task_role_arn, container = local.topics_admin_container }
  }

  # Tasks reach the brokers and the interface endpoints inside the VPC, and ECR layers in S3.
  egress_rules = {
    kafka_iam      = { description = "Kafka TLS + IAM to the brokers", port = 9098, cidr = var.vpc_cidr_block, prefix_list = null }
    endpoints      = { description = "HTTPS to the interface endpoints", port = 443, cidr = var.vpc_cidr_block, prefix_list = null }
    s3_image_layer = { description = "HTTPS to S3 for ECR image layers", port = 443, cidr = null, prefix_list = var.s3_prefix_list_id }
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
  name        = "${var.name}-ecs-tasks"
  description = "ECS tasks (producer, topics-admin): no inbound; outbound to MSK, endpoints and S3 only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-ecs-tasks" })
}

resource "aws_vpc_security_group_egress_rule" "this" {
  for_each = local.egress_rules

  security_group_id = aws_security_group.this.id
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
  name                    = "${var.name}-producer"
  cluster                 = aws_ecs_cluster.this.id
  task_definition         = aws_ecs_task_definition.this["producer"].arn
  desired_count           = var.producer_desired_count
  launch_type             = "FARGATE"
  platform_version        = "LATEST"
  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.this.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = var.tags
}
