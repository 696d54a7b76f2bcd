package main

import rego.v1

deny contains msg if {
	some name, buckets in input.resource.aws_s3_bucket
	some bucket in buckets
	bucket.acl == "public-read"
	msg := sprintf("S3 bucket %s must not be public", [name])
}

deny contains msg if {
	some name, rules in input.resource.aws_security_group_rule
	some rule in rules
	rule.from_port <= 22
	rule.to_port >= 22
	"0.0.0.0/0" in rule.cidr_blocks
	msg := sprintf("security group rule %s opens SSH to the world", [name])
}
