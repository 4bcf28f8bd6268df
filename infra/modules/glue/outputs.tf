output "database_name" {
  description = "Name of the Glue catalog database (LAKE_DATABASE for the job on EMR)."
  value       = aws_glue_catalog_database.this.name
}

output "table_names" {
  description = "Every Iceberg table: <stream>, <stream>_quarantine and duplicates (LAKE.tables in emr_jobs/core/contracts)."
  value       = sort(keys(local.tables)) # known at plan time: modules/iam builds ARNs from it
}

output "table_locations" {
  description = "S3 location of each table: s3://<lake bucket>/tables/<table>."
  value       = local.table_locations
}

output "optimizer_ids" {
  description = "Glue table optimizers, keyed <table>.<type> (compaction, retention, orphan_file_deletion)."
  value       = { for k, o in aws_glue_catalog_table_optimizer.this : k => o.id }
}

output "athena_workgroup_name" {
  description = "Name of the Athena workgroup (query results encrypted with the lake's KMS key)."
  value       = aws_athena_workgroup.this.name
}

output "athena_named_query_ids" {
  description = "Saved Athena queries in the workgroup, by name."
  value       = { for k, q in aws_athena_named_query.this : k => q.id }
}
