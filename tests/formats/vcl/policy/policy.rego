package main

import rego.v1

deny contains msg if {
	some entry in input.acl.purge
	endswith(entry, "/8")
	msg := sprintf("purge ACL entry %s is too broad", [entry])
}
