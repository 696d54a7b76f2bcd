package main

deny contains msg if {
	input.kind == "Pod"
	not input.metadata.labels.team
	msg := sprintf("pod %s has no team label (required by %s)", [input.metadata.name, data.owner])
}
