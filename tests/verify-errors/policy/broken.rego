package broken

test_never_runs if {
	x :=
}
