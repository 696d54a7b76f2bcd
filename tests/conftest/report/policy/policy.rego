package main

deny_root contains msg if {
	not input.securityContext.runAsNonRoot
	msg := sprintf("%s runs as root", [input.name])
}

warn_latest contains msg if {
	endswith(input.image, ":latest")
	msg := "image uses latest tag"
}

deny_replicas contains msg if {
	input.replicas < 2
	msg := "too few replicas"
}

deny_ports contains msg if {
	input.port == 22
	msg := "ssh port exposed"
}

exception contains rules if {
	input.name == "legacy"
	rules := ["replicas"]
}
