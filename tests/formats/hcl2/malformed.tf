resource "aws_s3_bucket" "logs" {
  bucket = "payments-logs"
  acl    =
}
