package main

deny contains msg if {
	not startswith(input.image, data.registries.allowed[_])
	msg := sprintf("image %s is not from an allowed registry (%s)", [input.image, concat(", ", data.registries.allowed)])
}

warn contains msg if {
	input.owner != data.owner
	msg := sprintf("owner should be %s", [data.owner])
}
