package main

import rego.v1

deny contains msg if {
	cfg := parse_config_file("settings.yaml")
	msg := sprintf("b: owner is %s", [cfg.owner])
}

deny contains msg if {
	parsed := parse_config("hcl2", "resource \"aws_s3_bucket\" \"x\" { acl = \"public-read\" }")
	parsed.resource.aws_s3_bucket.x[0].acl == "public-read"
	msg := "b: parse_config read HCL"
}

deny contains msg if {
	parsed := parse_config("dockerfile", "FROM alpine:latest")
	msg := sprintf("b: parse_config keeps the dockerfile nesting: %s", [parsed[0][0].Value[0]])
}

# A missing file is a builtin error: undefined unless errors are strict.
deny contains "b: missing file was read" if {
	parse_config_file("missing.yaml")
}
