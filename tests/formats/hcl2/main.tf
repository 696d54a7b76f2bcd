variable "region" {
  type    = string
  default = "eu-west-1"
}

locals {
  common_tags = {
    team = "payments"
    env  = var.environment
  }
}

provider "aws" {
  region = var.region
}

resource "aws_s3_bucket" "logs" {
  bucket = "payments-logs-${var.environment}"
  acl    = "public-read"
  tags   = local.common_tags
}

resource "aws_s3_bucket" "artifacts" {
  bucket        = "payments-artifacts"
  acl           = "private"
  force_destroy = false

  versioning {
    enabled = true
  }
}

resource "aws_security_group_rule" "ssh" {
  type        = "ingress"
  from_port   = 22
  to_port     = 22
  cidr_blocks = ["0.0.0.0/0"]
  count       = var.enable_ssh ? 1 : 0
}

output "bucket_arn" {
  value = aws_s3_bucket.logs.arn
}
