package main

import rego.v1

deny contains "DEBUG must be off" if input.DEBUG == "true"

deny contains msg if {
	contains(input.DATABASE_URL, ":secret@")
	msg := "DATABASE_URL embeds a password"
}
