output "sns_topic_arn" {
  description = "ARN of the SNS topic every alarm notifies."
  value       = aws_sns_topic.this.arn
}

output "job_lag_alarm_names" {
  description = "Lag alarm per stream, for example { vehicle = \"smartcity-dev-job-lag-vehicle\" }."
  value       = { for s, a in aws_cloudwatch_metric_alarm.job_lag : s => a.alarm_name }
}

output "emr_step_failed_rule_name" {
  description = "Name of the EventBridge rule that matches failed or cancelled EMR steps."
  value       = aws_cloudwatch_event_rule.this.name
}
