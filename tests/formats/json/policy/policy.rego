package main

import rego.v1

deny contains "postinstall scripts must not download code" if {
	contains(input.scripts.postinstall, "curl")
}
