output "database_name" {
  description = "Name of the Glue catalog database."
  value       = aws_glue_catalog_database.this.name
}

output "data_table_names" {
  description = "Glue table per stream over data/<stream>/, for example { vehicle = \"vehicle\" }."
  value       = { for s, t in aws_glue_catalog_table.data : s => t.name }
}

output "quarantine_table_names" {
  description = "Glue table per stream over quarantine/<stream>/, for example { vehicle = \"vehicle_quarantine\" }."
  value       = { for s, t in aws_glue_catalog_table.quarantine : s => t.name }
}

output "athena_workgroup_name" {
  description = "Name of the Athena workgroup (query results encrypted with KMS)."
  value       = aws_athena_workgroup.this.name
}
