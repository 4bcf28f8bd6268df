output "cluster_id" {
  description = "ID of the EMR cluster (j-...), where the step script submits the job."
  value       = aws_emr_cluster.this.id
}

output "cluster_name" {
  description = "Name of the EMR cluster."
  value       = aws_emr_cluster.this.name
}

output "cluster_release_label" {
  description = "EMR release of the cluster (emr-7.13.0: Spark 3.5.6)."
  value       = aws_emr_cluster.this.release_label
}

output "master_security_group_id" {
  description = "ID of the EMR-managed security group of the primary node."
  value       = aws_security_group.this["master"].id
}

output "core_security_group_id" {
  description = "ID of the EMR-managed security group of the core nodes."
  value       = aws_security_group.this["core"].id
}

output "security_configuration_name" {
  description = "Name of the EMR security configuration (at-rest and in-transit encryption)."
  value       = aws_emr_security_configuration.this.name
}

output "python_packages_s3_uri" {
  description = "S3 URI of the wheel set the bootstrap action installs into the cluster's Python 3.11 (upload it with `python -m scripts.artifacts upload`)."
  value       = local.python_packages_s3_uri
}

output "bootstrap_script_s3_uri" {
  description = "S3 URI of the bootstrap script that installs the job's Python packages on every node."
  value       = "s3://${aws_s3_object.this.bucket}/${aws_s3_object.this.key}"
}
