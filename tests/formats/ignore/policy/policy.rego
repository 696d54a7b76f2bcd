package main

import rego.v1

ignored contains entry.Value if {
	some entry in input
	entry.Kind == "Path"
}

deny contains ".env files must be excluded from the build context" if not ".env" in ignored
