variable "name" {
  description = "Name prefix for every resource in this module, for example \"smartcity-dev\"."
  type        = string
  default     = "smartcity"
}

variable "tags" {
  description = "Tags merged onto every resource."
  type        = map(string)
  default     = {}
}

variable "cidr_block" {
  description = "IPv4 CIDR block of the VPC (a /16 leaves room for three /20 private subnets and a /24 public one)."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zone_suffixes" {
  description = "Availability zones, as letters after the region name (\"a\" is eu-west-2a in eu-west-2), each with one private subnet. MSK's 3 brokers need 3."
  type        = list(string)
  default     = ["a", "b", "c"]
}

variable "interface_endpoints" {
  description = "AWS services reached through interface VPC endpoints in the private subnets (the part after com.amazonaws.<region>.). Each costs about 0.01 USD per hour per zone."
  type        = list(string)
  default = [
    "ecr.api",          # ECS: image manifests
    "ecr.dkr",          # ECS: image pulls (layers come through the S3 gateway endpoint)
    "ecs",              # ECS control plane
    "ecs-agent",        # ECS agent
    "ecs-telemetry",    # ECS Container Insights
    "elasticmapreduce", # EMR instances talking to the EMR service
    "glue",             # the job's Iceberg catalog (Glue Data Catalog)
    "kms",              # EMR local-disk encryption keys
    "logs",             # CloudWatch Logs for ECS tasks and flow logs
    "monitoring",       # CloudWatch metrics: the job's lag metric
    "sns",              # the alert forwarder's notifications
    "sts",              # IAM role credentials for the producer's MSK IAM tokens
  ]
  nullable = false # null from the caller means this list
}

variable "enable_nat_gateway" {
  description = "true adds one public subnet, an internet gateway and a single NAT gateway so private subnets reach the internet (about 33 USD per month plus 0.045 USD per GB). false keeps the VPC private-only: AWS services are reached through the endpoints."
  type        = bool
  default     = false
}

variable "flow_log_retention_days" {
  description = "Days to keep VPC flow logs in CloudWatch Logs (one of the values CloudWatch accepts, for example 30, 90, 365)."
  type        = number
  default     = 365
}
