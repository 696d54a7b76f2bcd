package main

import rego.v1

deny contains msg if {
	input.server.tls == false
	msg := sprintf("server %s:%v must use TLS", [input.server.host, input.server.port])
}

warn contains msg if {
	some w in input.workers
	w.replicas < 2
	msg := sprintf("worker %s has a single replica", [w.name])
}
