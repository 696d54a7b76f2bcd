package main

deny contains msg if {
	print("checking", input.metadata.name, "from", data.conftest.file.name)
	input.kind == "Pod"
	not input.spec.securityContext
	msg := {"msg": sprintf("%s has no securityContext", [input.metadata.name]), "_loc": {"file": data.conftest.file.name, "line": 4}, "severity": "high"}
}

deny_three contains msg if {
	some i in numbers.range(1, 3)
	msg := sprintf("message %d", [i])
}

# Non-string, non-object results are ignored, as conftest does.
warn_numbers contains 42 if true
