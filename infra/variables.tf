variable "aws_region" {
  description = "AWS region to deploy into, for example \"eu-west-2\" (London)."
  type        = string
  default     = "eu-west-2"
}

variable "project" {
  description = "Project name: the first part of every resource name."
  type        = string
  default     = "smartcity"
}

variable "environment" {
  description = "Environment: dev, staging or prod. Part of every resource name and tag."
  type        = string
  default     = "dev"

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be one of dev, staging, prod."
  }
}

variable "tags" {
  description = "Extra tags merged onto every resource (Project, Environment and ManagedBy are always set)."
  type        = map(string)
  default     = {}
}

variable "network" {
  description = "VPC: CIDR block, whether to add a NAT gateway (internet egress for the private subnets, about 33 USD per month plus data), and the services reached through interface endpoints (null keeps the module's list)."
  type = object({
    cidr_block          = optional(string, "10.40.0.0/16")
    enable_nat_gateway  = optional(bool, false)
    interface_endpoints = optional(list(string), null)
  })
  default = {}
}

variable "msk" {
  description = "MSK cluster: Kafka version, broker instance type, data volume per broker (GiB) and CloudWatch monitoring level (DEFAULT, PER_BROKER, PER_TOPIC_PER_BROKER, PER_TOPIC_PER_PARTITION)."
  type = object({
    kafka_version        = optional(string, "3.8.x")
    broker_instance_type = optional(string, "kafka.m7g.large")
    broker_volume_size   = optional(number, 100)
    enhanced_monitoring  = optional(string, "DEFAULT")
  })
  default = {}
}

variable "topics" {
  description = "Settings of every topic (the five sensor streams, alerts and road conditions), applied by `python -m scripts.topics create`: partitions, replication factor (at most the broker count, 3) and retention in hours (the alert forwarder remembers notified alerts as long)."
  type = object({
    partitions         = optional(number, 6)
    replication_factor = optional(number, 3)
    retention_hours    = optional(number, 168)
  })
  default = {}
}

variable "emr" {
  description = "EMR cluster: instance types and core count, EBS size (GiB), idle auto-termination (seconds), managed scaling (instances), and the artifacts-bucket key of the in-transit TLS certificates zip."
  type = object({
    master_instance_type = optional(string, "m5.xlarge")
    core_instance_type   = optional(string, "m5.xlarge")
    core_instance_count  = optional(number, 2)
    ebs_volume_size      = optional(number, 64)
    idle_timeout_seconds = optional(number, 3600)
    managed_scaling = optional(object({
      enabled       = optional(bool, false)
      min_instances = optional(number, 2)
      max_instances = optional(number, 4)
    }), {})
    tls_certificates_key = optional(string, "emr/tls/certificates.zip")
  })
  default = {}
}

variable "producer" {
  description = "ECS producer: image tag in ECR, tasks to run (0 until the image is pushed and the topics exist), Fargate cpu/memory/architecture, and extra non-secret environment variables (producer/settings.py: SIM_VEHICLES, SIM_PACE, ...; the default streams in real time)."
  type = object({
    image_tag        = optional(string, "0.1.0")
    desired_count    = optional(number, 0)
    cpu              = optional(number, 512)
    memory           = optional(number, 1024)
    cpu_architecture = optional(string, "X86_64")
    environment      = optional(map(string), { SIM_PACE = "realtime" })
  })
  default = {}
}

variable "alert_forwarder" {
  description = "ECS alert forwarder (python -m scripts.alerts forward, from the producer image at producer.image_tag): tasks to run (0 until an image with scripts/alerts is pushed and the topics exist), Fargate cpu/memory, and its Kafka consumer group (ALERT_FORWARDER_GROUP; its IAM policy names exactly this group)."
  type = object({
    desired_count  = optional(number, 0)
    cpu            = optional(number, 256)
    memory         = optional(number, 512)
    consumer_group = optional(string, "smartcity-alert-forwarder")
  })
  default = {}
}

variable "alert_email_subscriptions" {
  description = "E-mail addresses subscribed to the alert topic (each alert the job raises, sent once); every address must confirm the e-mail SNS sends. Empty for none."
  type        = list(string)
  default     = []
}

variable "alarms" {
  description = "Alarms: e-mail subscribed to the SNS topic (empty for none), and thresholds for job lag (offsets), MSK disk use (%) and MSK CPU (%)."
  type = object({
    email                 = optional(string, "")
    lag_threshold         = optional(number, 10000)
    msk_disk_used_percent = optional(number, 80)
    msk_cpu_percent       = optional(number, 60)
  })
  default = {}
}

variable "log_retention_days" {
  description = "Days to keep CloudWatch logs (MSK brokers, ECS tasks, VPC flow logs); a value CloudWatch accepts, for example 30, 90, 365."
  type        = number
  default     = 365
}

variable "lake_maintenance" {
  description = "Glue table optimizers on every Iceberg table (what `python -m scripts.lake maintain` does locally): enabled; snapshots expire after snapshot_retention_days (the reach of time travel) but at least snapshots_to_retain (10 or more) are kept; unreferenced files are deleted after orphan_file_retention_days; compaction runs whenever enabled."
  type = object({
    enabled                    = optional(bool, true)
    snapshot_retention_days    = optional(number, 7)
    snapshots_to_retain        = optional(number, 10)
    orphan_file_retention_days = optional(number, 3)
  })
  default = {}
}

variable "force_destroy" {
  description = "true lets terraform destroy delete non-empty buckets, the ECR repository with its images, the Athena workgroup and the alert ledger table (its deletion protection is off). Set it, apply, then destroy, to tear down everything."
  type        = bool
  default     = false
}
