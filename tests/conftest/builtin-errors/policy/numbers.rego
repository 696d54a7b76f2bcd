package main

deny contains msg if {
	to_number(input.replicas) > 3
	msg := "too many replicas"
}

deny_bad_number contains msg if {
	not is_number(input.replicas)
	msg := sprintf("replicas %v is not a number", [input.replicas])
}
