terraform {
  required_version = ">= 1.5.0"

  required_providers {
    # ~> 6.37: the first release known to have iceberg_table_input (Iceberg schema, partition spec,
    # properties) in aws_glue_catalog_table, which modules/glue creates the lake tables with.
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.37"
    }
  }
}
