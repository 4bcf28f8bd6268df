variable "name" {
  description = "Name of the MSK cluster and prefix of its other resources, for example \"smartcity-dev\"."
  type        = string
  default     = "smartcity"
}

variable "tags" {
  description = "Tags merged onto every resource."
  type        = map(string)
  default     = {}
}

variable "vpc_id" {
  description = "ID of the VPC the brokers run in."
  type        = string
  default     = ""
}

variable "subnet_ids" {
  description = "Private subnet IDs for the brokers, one per availability zone (3)."
  type        = list(string)
  default     = []
}

variable "client_security_group_ids" {
  description = "Security groups allowed to reach the brokers on the IAM port 9098, keyed by a static name (for example { emr_core = \"sg-...\" })."
  type        = map(string)
  default     = {}
}

variable "kafka_version" {
  description = "Apache Kafka version of the cluster, one MSK supports (for example \"3.6.0\", \"3.8.x\", \"3.9.x\")."
  type        = string
  default     = "3.8.x"
}

variable "broker_instance_type" {
  description = "Broker instance type, for example \"kafka.t3.small\" (test only), \"kafka.m7g.large\" or \"kafka.m5.large\"."
  type        = string
  default     = "kafka.m7g.large"
}

variable "broker_count" {
  description = "Number of brokers: a multiple of the number of subnets. 3 gives one per zone, so replication factor 3 with min.insync.replicas 2 survives a zone loss."
  type        = number
  default     = 3
}

variable "broker_volume_size" {
  description = "EBS data volume per broker, in GiB."
  type        = number
  default     = 100
}

variable "enhanced_monitoring" {
  description = "MSK CloudWatch monitoring level: DEFAULT, PER_BROKER, PER_TOPIC_PER_BROKER or PER_TOPIC_PER_PARTITION (all but DEFAULT are billed per metric)."
  type        = string
  default     = "DEFAULT"
}

variable "default_partitions" {
  description = "num.partitions for topics created without an explicit count (the topics command always passes one)."
  type        = number
  default     = 6
}

variable "log_retention_days" {
  description = "Days to keep broker logs in CloudWatch Logs (a value CloudWatch accepts, for example 30, 90, 365)."
  type        = number
  default     = 365
}
