data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id

  # The forwarder's ledger item (scripts/alerts LEDGER_KEY, LEDGER_TTL_ATTRIBUTE; tests/infra
  # holds the three equal): one item per alert id, deleted by DynamoDB some time after expiresAt.
  ledger_key           = "alertId"
  ledger_ttl_attribute = "expiresAt"

  # The forwarder uses the key only through the two services that encrypt with it.
  key_via_services = [
    "sns.${data.aws_region.current.region}.amazonaws.com",
    "dynamodb.${data.aws_region.current.region}.amazonaws.com",
  ]
}

# One key for the alert topic and the ledger. SNS encrypts each message with a data key it asks
# for with the publisher's credentials, and DynamoDB decrypts the table key with the caller's, so
# the key policy names the forwarder, through those two services only. Terraform's own principal
# (DynamoDB's grants at table creation) reaches it through AccountAdministration and its IAM policy.
resource "aws_kms_key" "this" {
  description         = "${var.name}: alert notifications (SNS) and the alert ledger (DynamoDB)"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministration"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "AlertForwarderThroughSnsAndDynamoDb"
        Effect    = "Allow"
        Principal = { AWS = var.forwarder_role_arn }
        Action    = ["kms:GenerateDataKey", "kms:Decrypt"]
        Resource  = "*"
        Condition = { StringEquals = { "kms:ViaService" = local.key_via_services } }
      },
    ]
  })

  tags = var.tags
}

resource "aws_sns_topic" "this" {
  name              = "${var.name}-alerts"
  kms_master_key_id = aws_kms_key.this.arn

  tags = var.tags
}

# Only the forwarder publishes, and only over TLS: an e-mail from this topic is an alert the job
# raised, never a message someone else injected.
resource "aws_sns_topic_policy" "this" {
  arn = aws_sns_topic.this.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "sns:Publish"
        Resource  = aws_sns_topic.this.arn
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
      {
        Sid       = "OnlyTheForwarderPublishes"
        Effect    = "Deny"
        Principal = "*"
        Action    = "sns:Publish"
        Resource  = aws_sns_topic.this.arn
        Condition = { ArnNotEquals = { "aws:PrincipalArn" = var.forwarder_role_arn } }
      },
    ]
  })
}

# Each address gets a confirmation e-mail; SNS delivers nothing to it until the link is followed.
resource "aws_sns_topic_subscription" "this" {
  for_each = toset(var.email_subscriptions)

  topic_arn = aws_sns_topic.this.arn
  protocol  = "email"
  endpoint  = each.value
}

# The forwarder's once-only ledger: one item per alert id it has notified, kept until expiresAt.
resource "aws_dynamodb_table" "this" {
  name                        = "${var.name}-alert-ledger"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = local.ledger_key
  deletion_protection_enabled = !var.force_destroy

  attribute {
    name = local.ledger_key
    type = "S"
  }

  ttl {
    attribute_name = local.ledger_ttl_attribute
    enabled        = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }

  point_in_time_recovery {
    enabled = true
  }

  tags = var.tags
}
