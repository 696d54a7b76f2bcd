package main

# Rego v1 syntax: `contains` and `if` are keywords without an import.
deny contains msg if {
	input.port < 1024
	msg := sprintf("port %d is privileged", [input.port])
}
