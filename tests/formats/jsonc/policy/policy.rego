package main

import rego.v1

deny contains "dev container must not run as root" if input.remoteUser == "root"
