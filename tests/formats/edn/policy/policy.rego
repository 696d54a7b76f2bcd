package main

import rego.v1

deny contains "production should log errors only" if {
	input[":env"] == ":production"
	input[":log"] != ":error"
}
