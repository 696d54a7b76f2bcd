package dup

test_violation if {
	true
}

test_violation if {
	false
}

test_violation if {
	1 == 1
}
