package main

# Five rule definitions: three deny bodies, one violation, one warn.
deny contains msg if {
	input.kind == "Deployment"
	msg := "deployments are checked elsewhere"
}

deny contains msg if {
	input.kind == "Service"
	input.spec.type == "LoadBalancer"
	msg := "no load balancers"
}

deny contains msg if {
	input.kind == "Service"
	not input.spec.selector
	msg := "services need a selector"
}

violation contains msg if {
	input.kind == "Ingress"
	msg := "ingress needs review"
}

warn contains msg if {
	input.kind == "Service"
	input.spec.type == "NodePort"
	msg := "NodePort services are discouraged"
}
