package main

deny contains msg if {
	name == "web"
	name := input.metadata.name
	msg := sprintf("%s is not allowed", [name])
}
