output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 CIDR block of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "IDs of the private subnets, one per availability zone, in zone order."
  value       = [for az in local.azs : aws_subnet.private[az].id]
}

output "private_route_table_id" {
  description = "ID of the route table shared by the private subnets."
  value       = aws_route_table.private.id
}

output "s3_prefix_list_id" {
  description = "Prefix list ID of the S3 gateway endpoint, for security group egress rules to S3."
  value       = aws_vpc_endpoint.s3.prefix_list_id
}

output "dynamodb_prefix_list_id" {
  description = "Prefix list ID of the DynamoDB gateway endpoint, for security group egress rules to DynamoDB."
  value       = aws_vpc_endpoint.dynamodb.prefix_list_id
}

output "endpoints_security_group_id" {
  description = "ID of the security group on the interface endpoints."
  value       = aws_security_group.this.id
}

output "nat_gateway_public_ip" {
  description = "Public IP of the NAT gateway, or null when enable_nat_gateway is false."
  value       = one(aws_eip.this[*].public_ip)
}
