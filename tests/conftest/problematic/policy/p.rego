package main

deny[msg] if {
	input.x
	msg := "x"
}
