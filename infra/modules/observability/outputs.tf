output "sns_topic_arn" {
  description = "ARN of the SNS topic every alarm notifies."
  value       = aws_sns_topic.this.arn
}

output "job_lag_alarm_name" {
  description = "Name of the alarm on the job's lag metric (offsets behind, or not reporting)."
  value       = aws_cloudwatch_metric_alarm.job_lag.alarm_name
}

output "emr_step_failed_rule_name" {
  description = "Name of the EventBridge rule that matches failed or cancelled EMR steps."
  value       = aws_cloudwatch_event_rule.this.name
}
