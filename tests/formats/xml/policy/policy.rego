package main

import rego.v1

deny contains msg if {
	some dep in input.project.dependencies.dependency
	dep.artifactId == "log4j-core"
	startswith(dep.version, "2.14")
	msg := sprintf("log4j-core %s is vulnerable to Log4Shell", [dep.version])
}
