variable "name" {
  description = "Name of the ECS cluster and prefix of its other resources, for example \"smartcity-dev\"."
  type        = string
  default     = "smartcity"
}

variable "tags" {
  description = "Tags merged onto every resource."
  type        = map(string)
  default     = {}
}

variable "vpc_id" {
  description = "ID of the VPC the tasks run in."
  type        = string
  default     = ""
}

variable "vpc_cidr_block" {
  description = "CIDR block of the VPC: the tasks may reach the brokers (9098) and the interface endpoints (443) in it."
  type        = string
  default     = ""
}

variable "subnet_ids" {
  description = "Private subnet IDs for the tasks."
  type        = list(string)
  default     = []
}

variable "s3_prefix_list_id" {
  description = "Prefix list ID of the S3 gateway endpoint (ECR image layers are served from S3)."
  type        = string
  default     = ""
}

variable "ecr_repository_name" {
  description = "Name of the ECR repository for the producer image."
  type        = string
  default     = "smartcity"
}

variable "image_tag" {
  description = "Tag of the producer image to run. Tags are immutable: push a new tag for each build."
  type        = string
  default     = "0.1.0"
}

variable "log_group_name" {
  description = "Name of the CloudWatch log group for the tasks."
  type        = string
  default     = "/ecs/smartcity"
}

variable "log_retention_days" {
  description = "Days to keep task logs (a value CloudWatch accepts, for example 30, 90, 365)."
  type        = number
  default     = 365
}

variable "execution_role_arn" {
  description = "ARN of the ECS execution role (image pull and logs)."
  type        = string
  default     = ""
}

variable "producer_task_role_arn" {
  description = "ARN of the producer's task role."
  type        = string
  default     = ""
}

variable "topics_admin_task_role_arn" {
  description = "ARN of the topics-admin task role."
  type        = string
  default     = ""
}

variable "alert_forwarder_task_role_arn" {
  description = "ARN of the alert forwarder's task role."
  type        = string
  default     = ""
}

variable "alert_forwarder_environment" {
  description = "Environment of the alert forwarder, exactly the variables it reads: KAFKA_BOOTSTRAP_SERVERS, KAFKA_AUTH_MODE, AWS_REGION, ALERTS_TOPIC, ALERT_FORWARDER_GROUP, ALERT_SNS_TOPIC_ARN, ALERT_DEDUPE_TABLE, ALERT_DEDUPE_TTL_DAYS. No secrets."
  type        = map(string)
  default     = {}
}

variable "alert_forwarder_desired_count" {
  description = "Alert forwarder tasks to keep running. 0 until the image (with scripts/alerts) is pushed and the topics exist."
  type        = number
  default     = 0
}

variable "alert_forwarder_task_size" {
  description = "Fargate size of the alert forwarder task: cpu units (256, 512, ...) and memory in MiB valid for that cpu. Its CPU architecture is task_size's: it runs the producer image."
  type = object({
    cpu    = optional(number, 256)
    memory = optional(number, 512)
  })
  default = {}
}

variable "dynamodb_prefix_list_id" {
  description = "Prefix list ID of the DynamoDB gateway endpoint (the alert forwarder's ledger table)."
  type        = string
  default     = ""
}

variable "kafka_environment" {
  description = "Kafka settings for the producer and topics-admin containers, as environment variables: KAFKA_BOOTSTRAP_SERVERS, KAFKA_AUTH_MODE, AWS_REGION and one <STREAM>_TOPIC per stream. No secrets: IAM authentication needs none."
  type        = map(string)
  default     = {}
}

variable "producer_environment" {
  description = "Extra environment variables for the producer (its own settings). Never put secrets here."
  type        = map(string)
  default     = {}
}

variable "topics_admin_environment" {
  description = "Extra environment variables for the topics-admin task (partitions, replication factor, retention)."
  type        = map(string)
  default     = {}
}

variable "producer_desired_count" {
  description = "Producer tasks to keep running. 0 until the image is pushed and the topics exist."
  type        = number
  default     = 0
}

variable "task_size" {
  description = "Fargate size of each task: cpu units (256, 512, 1024, ...) and memory in MiB valid for that cpu, and CPU architecture (X86_64 or ARM64) of the image."
  type = object({
    cpu              = optional(number, 512)
    memory           = optional(number, 1024)
    cpu_architecture = optional(string, "X86_64")
  })
  default = {}
}

variable "force_destroy" {
  description = "true lets terraform destroy delete the ECR repository while it still holds images."
  type        = bool
  default     = false
}
