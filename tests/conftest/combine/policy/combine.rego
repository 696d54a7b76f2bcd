package main

# Every Deployment needs a Service selecting it.
deny contains msg if {
	some d in input
	d.contents.kind == "Deployment"
	app := d.contents.metadata.labels.app
	not service_for(app)
	msg := sprintf("%s: deployment %s has no service", [d.path, d.contents.metadata.name])
}

service_for(app) if {
	some s in input
	s.contents.kind == "Service"
	s.contents.spec.selector.app == app
}
