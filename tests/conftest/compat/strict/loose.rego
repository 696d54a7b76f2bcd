package main

import data.unused.lib

deny contains msg if {
	input.kind == "Job"
	limit := 3
	msg := "jobs are not allowed"
}

pick(a, b) := a if {
	input.flag
}
