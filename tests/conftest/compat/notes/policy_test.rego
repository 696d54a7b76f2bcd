package main

test_owner_required if {
	count(deny) == 0 with input as {"metadata": {"name": "x"}}
}

test_owner_given if {
	count(deny) == 0 with input as {"metadata": {"owner": "me"}}
}
