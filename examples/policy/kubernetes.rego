# Example conftest-style policy for Kubernetes workloads.
# Nine rules share the helpers below; `regard test` evaluates them in one
# pass per document, so each helper runs once.
package main

workload_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}

pod_spec := input.spec if input.kind == "Pod"

pod_spec := input.spec.template.spec if workload_kinds[input.kind]

pod_spec := input.spec.jobTemplate.spec.template.spec if input.kind == "CronJob"

containers contains c if some c in pod_spec.containers

containers contains c if some c in pod_spec.initContainers

name := sprintf("%s/%s", [input.kind, input.metadata.name])

deny_privileged contains msg if {
	some c in containers
	c.securityContext.privileged
	msg := sprintf("%s: container %s is privileged", [name, c.name])
}

deny_run_as_root contains msg if {
	pod_spec
	not pod_spec.securityContext.runAsNonRoot
	msg := sprintf("%s: pod does not set securityContext.runAsNonRoot", [name])
}

deny_host_network contains msg if {
	pod_spec.hostNetwork
	msg := sprintf("%s: pod uses the host network", [name])
}

deny_latest_tag contains msg if {
	some c in containers
	endswith(c.image, ":latest")
	msg := sprintf("%s: container %s uses the latest tag", [name, c.name])
}

violation_missing_limits contains msg if {
	some c in containers
	not c.resources.limits.memory
	msg := sprintf("%s: container %s has no memory limit", [name, c.name])
}

deny_privilege_escalation contains msg if {
	some c in containers
	not c.securityContext.allowPrivilegeEscalation == false
	msg := sprintf("%s: container %s may escalate privileges", [name, c.name])
}

warn_no_readiness_probe contains msg if {
	some c in pod_spec.containers
	not c.readinessProbe
	msg := sprintf("%s: container %s has no readiness probe", [name, c.name])
}

warn_missing_team_label contains msg if {
	input.metadata
	not input.metadata.labels.team
	msg := sprintf("%s: missing label \"team\"", [name])
}

warn_single_replica contains msg if {
	input.kind == "Deployment"
	input.spec.replicas < 2
	msg := sprintf("%s: a single replica is not highly available", [name])
}

# The legacy app is being migrated; its root user is a known exception.
exception contains rules if {
	input.metadata.name == "legacy"
	rules := ["run_as_root"]
}
