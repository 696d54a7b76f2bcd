package main

import rego.v1

deny contains "Grafana admin password is the default" if input.security.admin_password == "admin"

deny contains "anonymous access must be disabled" if input["auth.anonymous"].enabled == true

warn contains "cookies should be secure" if input.security.cookie_secure == false
