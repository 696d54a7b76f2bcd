package main

import rego.v1

# Resolved against this file's directory (builtins/a), as in conftest.
deny contains msg if {
	cfg := parse_config_file("settings.yaml")
	msg := sprintf("a: owner is %s", [cfg.owner])
}

deny contains msg if {
	docs := parse_combined_config_files(["settings.yaml", "../b/settings.yaml"])
	msg := sprintf("a: combined %v", [[d.contents.owner | some d in docs]])
}
