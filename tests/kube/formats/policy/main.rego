package main

# No findings of its own: these fixtures test the Kubernetes checks.
deny contains msg if {
	input.kind == "Forbidden"
	msg := "forbidden kind"
}
