package main

import data.limits

deny contains msg if {
	input.kind == "Deployment"
	input.spec.replicas > limits.max_replicas
	msg := sprintf("%s: too many replicas", [input.metadata.name])
}

deny contains msg if {
	input.kind == "Deployment"
	not input.metadata.labels.app
	msg := "app label is required"
}

# Never exercised by the tests: coverage shows it.
uncovered_helper(x) if {
	x > 100
	x < 1000
}
