package main

import rego.v1

deny contains msg if {
	some pkg in input.packages
	startswith(pkg.licenseConcluded, "GPL")
	msg := sprintf("package %s is licensed under %s", [pkg.name, pkg.licenseConcluded])
}
