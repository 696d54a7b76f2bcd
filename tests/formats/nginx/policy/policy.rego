package main

import rego.v1

directives contains d if {
	walk(input, [_, d])
	is_object(d)
	d.name
}

deny contains "server_tokens must be off" if {
	some d in directives
	d.name == "server_tokens"
	d.parameters[0] == "on"
}

deny contains msg if {
	some d in directives
	d.name == "ssl_protocols"
	some p in d.parameters
	p in {"TLSv1", "TLSv1.1"}
	msg := sprintf("%s is deprecated", [p])
}
