package main

test_low_port_denied if {
	deny["port 80 is privileged"] with input as {"port": 80}
}
