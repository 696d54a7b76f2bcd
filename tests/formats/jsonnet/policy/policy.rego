package main

import rego.v1

deny contains msg if {
	input.privileged
	msg := sprintf("%s must not be privileged", [input.name])
}
