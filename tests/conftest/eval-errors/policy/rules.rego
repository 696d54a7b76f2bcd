package main

deny contains msg if {
	input.kind == "Pod"
	msg := sprintf("%s: pods are not allowed", [input.metadata.name])
}

# A document labelled with two different teams gives `team` two values:
# an evaluation error of deny_team for that document.
team = input.metadata.labels.team

team = input.metadata.labels.owner

deny_team contains msg if {
	team == "nobody"
	msg := "nobody owns this"
}

# regorus 0.14.1 panics when `pattern` is empty.
warn_pattern contains msg if {
	strings.count(input.metadata.name, input.pattern) > 1
	msg := sprintf("%s repeats %s", [input.metadata.name, input.pattern])
}
