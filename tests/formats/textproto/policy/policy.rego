package main

import rego.v1

deny contains "debug must be off in production" if input.debug

deny contains msg if {
	some l in input.listeners
	l.address == "0.0.0.0"
	msg := sprintf("listener on port %d binds all interfaces", [l.port])
}
