package main

deny contains "no owner" if {
	not input.metadata.owner
	noted := trace("owner missing")
	noted == true
}
