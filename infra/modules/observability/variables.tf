variable "name" {
  description = "Prefix of alarm, topic and rule names, for example \"smartcity-dev\"."
  type        = string
  default     = "smartcity"
}

variable "tags" {
  description = "Tags merged onto every resource."
  type        = map(string)
  default     = {}
}

variable "msk_cluster_name" {
  description = "Name of the MSK cluster (the \"Cluster Name\" dimension of AWS/Kafka metrics)."
  type        = string
  default     = ""
}

variable "msk_broker_count" {
  description = "Number of brokers; disk and CPU alarms are per broker ID 1..N."
  type        = number
  default     = 3
}

variable "emr_cluster_id" {
  description = "ID of the EMR cluster (j-...) whose failed steps and applications raise alarms."
  type        = string
  default     = ""
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic; empty for none (subscribe later by any means SNS supports)."
  type        = string
  default     = ""
}

variable "msk_disk_used_percent_threshold" {
  description = "Alarm when a broker's data volume is fuller than this percentage (KafkaDataLogsDiskUsed)."
  type        = number
  default     = 80
}

variable "msk_cpu_percent_threshold" {
  description = "Alarm when a broker's CPU (user + system) stays above this percentage."
  type        = number
  default     = 60
}

variable "lag_threshold" {
  description = "Alarm when the job is more than this many offsets behind the latest offset of any partition of its topics (MaxOffsetsBehindLatest)."
  type        = number
  default     = 10000
}

variable "lag_evaluation_minutes" {
  description = "Minutes the lag must stay above the threshold, or be missing, before the alarm fires."
  type        = number
  default     = 10
}
