package main

import rego.v1

deny contains msg if {
	walk(input, [_, node])
	is_object(node)
	node.text
	contains(node.text, "--token=")
	msg := sprintf("line %d passes a token on the command line", [node.line])
}
