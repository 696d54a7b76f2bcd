package main

import rego.v1

deny contains msg if {
	some cmd in input
	cmd.Cmd == "from"
	endswith(cmd.Value[0], ":latest")
	msg := sprintf("stage %d uses a latest tag: %s", [cmd.Stage, cmd.Value[0]])
}

deny contains "the final image runs as root" if {
	some cmd in input
	cmd.Cmd == "user"
	cmd.Value[0] == "root"
}
