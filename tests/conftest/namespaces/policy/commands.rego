package commands

deny_shell contains msg if {
	input.command == "sh"
	msg := "commands: no shells"
}

helper := true
