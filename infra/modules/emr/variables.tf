variable "name" {
  description = "Name of the EMR cluster and prefix of its other resources, for example \"smartcity-dev\"."
  type        = string
  default     = "smartcity"
}

variable "tags" {
  description = "Tags merged onto every resource."
  type        = map(string)
  default     = {}
}

variable "vpc_id" {
  description = "ID of the VPC the cluster runs in."
  type        = string
  default     = ""
}

variable "subnet_id" {
  description = "ID of the private subnet the cluster's instances run in (instance groups use one subnet)."
  type        = string
  default     = ""
}

variable "service_role_arn" {
  description = "ARN of the EMR service role."
  type        = string
  default     = ""
}

variable "instance_profile_arn" {
  description = "ARN of the EC2 instance profile of the cluster's instances (the Spark job's identity)."
  type        = string
  default     = ""
}

variable "log_uri" {
  description = "S3 URI for cluster logs, for example \"s3://<logs bucket>/emr/\"."
  type        = string
  default     = ""
}

variable "artifacts_bucket_name" {
  description = "Name of the artifacts bucket: the bootstrap script is uploaded there, and the wheel set it installs (python/<set>/, staged by `python -m scripts.artifacts upload`) must be there before the cluster is created."
  type        = string
  default     = ""
}

variable "lake_bucket_name" {
  description = "Name of the lake bucket: the Iceberg warehouse of the `lake` catalog is s3://<bucket>/tables."
  type        = string
  default     = ""
}

variable "kms_key_arn" {
  description = "ARN of the KMS key for EMRFS SSE-KMS, local disks, EBS volumes, log files and the bootstrap script."
  type        = string
  default     = ""
}

variable "tls_certificates_s3_uri" {
  description = "S3 URI of the zip with privateKey.pem, certificateChain.pem and trustedCertificates.pem that EMR uses for in-transit encryption (see infra/scripts/emr_tls_certificates.sh)."
  type        = string
  default     = ""
}

variable "master_instance_type" {
  description = "Instance type of the primary node, for example \"m5.xlarge\": x86_64 only (m5, m6i, r5, c5, ...), the platform of the job's Python wheels; no Graviton (m6g, r7g, ...)."
  type        = string
  default     = "m5.xlarge"

  validation {
    condition     = !can(regex("^([a-z]+[0-9]+[a-z-]*g[a-z-]*|a1)\\.", var.master_instance_type))
    error_message = "The bootstrap action installs x86_64 wheels (infra/scripts/emr_python_requirements.txt); a Graviton (arm64) instance type would fail it."
  }
}

variable "core_instance_type" {
  description = "Instance type of the core nodes, for example \"m5.xlarge\": x86_64 only (m5, m6i, r5, c5, ...), the platform of the job's Python wheels; no Graviton (m6g, r7g, ...)."
  type        = string
  default     = "m5.xlarge"

  validation {
    condition     = !can(regex("^([a-z]+[0-9]+[a-z-]*g[a-z-]*|a1)\\.", var.core_instance_type))
    error_message = "The bootstrap action installs x86_64 wheels (infra/scripts/emr_python_requirements.txt); a Graviton (arm64) instance type would fail it."
  }
}

variable "core_instance_count" {
  description = "Number of core nodes when managed scaling is off (the starting size when it is on)."
  type        = number
  default     = 2
}

variable "ebs_volume_size" {
  description = "gp3 EBS volume per node, in GiB."
  type        = number
  default     = 64
}

variable "idle_timeout_seconds" {
  description = "Seconds without running steps after which EMR terminates the cluster (60 to 604800). The streaming step keeps the cluster busy while it runs."
  type        = number
  default     = 3600
}

variable "step_concurrency_level" {
  description = "Steps that may run at once (1 to 256): the long-running streaming step plus maintenance steps."
  type        = number
  default     = 2
}

variable "managed_scaling" {
  description = "EMR managed scaling of the core nodes: enabled, and the minimum and maximum number of instances."
  type = object({
    enabled       = optional(bool, false)
    min_instances = optional(number, 2)
    max_instances = optional(number, 4)
  })
  default = {}
}
