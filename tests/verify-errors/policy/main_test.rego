package main

test_double if double(2) == 4

test_level_conflict if {
	level == "high" with input as {"severity": 9}
}

test_level_low if {
	level == "low" with input as {"severity": 3}
}

# regorus 0.14.1 panics on an empty substring.
test_count_panics if {
	strings.count("abc", "") == 0
}

test_double_fails if double(2) == 5
