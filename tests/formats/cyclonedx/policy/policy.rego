package main

import rego.v1

deny contains msg if {
	some c in input.components
	c.name == "log4j-core"
	c.version == "2.14.1"
	msg := sprintf("%s %s is vulnerable", [c.name, c.version])
}
