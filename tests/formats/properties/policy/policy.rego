package main

import rego.v1

deny contains msg if {
	some key, _ in input
	endswith(key, ".password")
	msg := sprintf("%s must come from a secret store", [key])
}

warn contains "all actuator endpoints are exposed" if input["management.endpoints.web.exposure.include"] == "*"
