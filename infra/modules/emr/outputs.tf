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
