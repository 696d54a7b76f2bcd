package main

import rego.v1

deny contains msg if {
	some resource in input.resource
	some pools in resource.google_container_node_pool
	some name, defs in pools
	some pool in defs
	some config in pool.node_config
	config.preemptible == true
	msg := sprintf("node pool %s uses preemptible nodes", [name])
}
