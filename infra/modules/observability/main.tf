data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  # Namespace, metric and dimension of the lag metric the job publishes: emr_jobs/core/contracts/_lake.json.
  metrics = jsondecode(file("${path.module}/../../../emr_jobs/core/contracts/_lake.json")).metrics
  # The job reads every topic in one query, so it publishes one lag, with this dimension value
  # (emr_jobs/progress.py publish_lag_metric; a moto test holds the two equal).
  lag_dimension_value = "all"

  broker_ids = [for i in range(1, var.msk_broker_count + 1) : tostring(i)]
}

resource "aws_kms_key" "this" {
  description         = "${var.name}: alarm notifications (SNS)"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministration"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "AlarmAndEventPublishers"
        Effect    = "Allow"
        Principal = { Service = ["cloudwatch.amazonaws.com", "events.amazonaws.com"] }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = { StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id } }
      },
    ]
  })

  tags = var.tags
}

resource "aws_sns_topic" "this" {
  name              = "${var.name}-alarms"
  kms_master_key_id = aws_kms_key.this.arn

  tags = var.tags
}

resource "aws_sns_topic_policy" "this" {
  arn = aws_sns_topic.this.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AlarmAndEventPublishers"
        Effect    = "Allow"
        Principal = { Service = ["cloudwatch.amazonaws.com", "events.amazonaws.com"] }
        Action    = "sns:Publish"
        Resource  = aws_sns_topic.this.arn
        Condition = { StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id } }
      },
    ]
  })
}

resource "aws_sns_topic_subscription" "this" {
  count = var.alarm_email == "" ? 0 : 1

  topic_arn = aws_sns_topic.this.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# ---------------------------------------------------------------- MSK

resource "aws_cloudwatch_metric_alarm" "msk_disk" {
  for_each = toset(local.broker_ids)

  alarm_name          = "${var.name}-msk-disk-broker-${each.key}"
  alarm_description   = "MSK broker ${each.key}: data volume more than ${var.msk_disk_used_percent_threshold}% full"
  namespace           = "AWS/Kafka"
  metric_name         = "KafkaDataLogsDiskUsed"
  dimensions          = { "Cluster Name" = var.msk_cluster_name, "Broker ID" = each.key }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.msk_disk_used_percent_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = [aws_sns_topic.this.arn]
  ok_actions          = [aws_sns_topic.this.arn]

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "msk_cpu" {
  for_each = toset(local.broker_ids)

  alarm_name          = "${var.name}-msk-cpu-broker-${each.key}"
  alarm_description   = "MSK broker ${each.key}: CPU user + system above ${var.msk_cpu_percent_threshold}% for 15 minutes"
  evaluation_periods  = 3
  threshold           = var.msk_cpu_percent_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = [aws_sns_topic.this.arn]
  ok_actions          = [aws_sns_topic.this.arn]

  metric_query {
    id          = "cpu"
    expression  = "user + system"
    label       = "CPU used (%)"
    return_data = true
  }

  metric_query {
    id = "user"

    metric {
      namespace   = "AWS/Kafka"
      metric_name = "CpuUser"
      dimensions  = { "Cluster Name" = var.msk_cluster_name, "Broker ID" = each.key }
      period      = 300
      stat        = "Average"
    }
  }

  metric_query {
    id = "system"

    metric {
      namespace   = "AWS/Kafka"
      metric_name = "CpuSystem"
      dimensions  = { "Cluster Name" = var.msk_cluster_name, "Broker ID" = each.key }
      period      = 300
      stat        = "Average"
    }
  }

  tags = var.tags
}

# ---------------------------------------------------------------- the job

# Spark's Kafka source commits no consumer-group offsets, so MSK's consumer-lag metrics stay
# empty for it. The job publishes its own: maxOffsetsBehindLatest of its one Kafka source, the
# largest lag of any partition of its topics. A job that stopped publishing is as bad as one that falls behind:
# missing data breaches.
resource "aws_cloudwatch_metric_alarm" "job_lag" {
  alarm_name          = "${var.name}-job-lag"
  alarm_description   = "Streaming job: more than ${var.lag_threshold} offsets behind its topics, or not reporting, for ${var.lag_evaluation_minutes} minutes"
  namespace           = local.metrics.namespace
  metric_name         = local.metrics.lag_metric
  dimensions          = { (local.metrics.dimension) = local.lag_dimension_value }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = var.lag_evaluation_minutes
  threshold           = var.lag_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.this.arn]
  ok_actions          = [aws_sns_topic.this.arn]

  tags = var.tags
}

# ---------------------------------------------------------------- EMR

resource "aws_cloudwatch_metric_alarm" "emr_apps_failed" {
  alarm_name          = "${var.name}-emr-apps-failed"
  alarm_description   = "EMR ${var.emr_cluster_id}: a YARN application (the Spark job) failed"
  namespace           = "AWS/ElasticMapReduce"
  metric_name         = "AppsFailed"
  dimensions          = { JobFlowId = var.emr_cluster_id }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.this.arn]

  tags = var.tags
}

# A failed or cancelled step (the streaming job) is announced at once, with its details.
resource "aws_cloudwatch_event_rule" "this" {
  name        = "${var.name}-emr-step-failed"
  description = "EMR ${var.emr_cluster_id}: a step failed or was cancelled"
  event_pattern = jsonencode({
    source        = ["aws.emr"]
    "detail-type" = ["EMR Step Status Change"]
    detail = {
      clusterId = [var.emr_cluster_id]
      state     = ["FAILED", "CANCELLED"]
    }
  })

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "this" {
  rule      = aws_cloudwatch_event_rule.this.name
  target_id = "alarms-topic"
  arn       = aws_sns_topic.this.arn
}

resource "aws_cloudwatch_metric_alarm" "emr_step_failed" {
  alarm_name          = "${var.name}-emr-step-failed"
  alarm_description   = "EMR ${var.emr_cluster_id}: a step failed or was cancelled (rule ${aws_cloudwatch_event_rule.this.name} matched)"
  namespace           = "AWS/Events"
  metric_name         = "TriggeredRules"
  dimensions          = { RuleName = aws_cloudwatch_event_rule.this.name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.this.arn]

  tags = var.tags
}
