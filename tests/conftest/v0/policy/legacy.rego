package main

deny[msg] {
	input.kind == "Deployment"
	not input.spec.replicas
	msg := "replicas must be set"
}

deny[msg] {
	re_match("^.*:latest$", input.image)
	msg = "latest tag"
}

warn[msg] {
	any([input.debug, false])
	msg := "debugging enabled"
}
