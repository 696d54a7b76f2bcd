package main

import rego.v1

deny contains "Play http server bind address should be 0.0.0.0" if {
	not input.play.server.http.address = "0.0.0.0"
}

deny contains "Play http server port should be 9000" if {
	not input.play.server.http.port = 9000
}
