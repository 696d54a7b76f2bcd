package main

# Reports each document's shape so tests can see how the YAML was read.
warn contains msg if {
	msg := sprintf("doc %v", [input])
}
