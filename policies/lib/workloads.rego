# Shared helpers for every policy in the regard library: where the pod spec
# lives in each workload kind, every container with its type, and how a
# message names the resource. Embedded in each template's `libs`; this file
# is the source of truth (a test keeps the copies identical).
package lib.workloads

# The object under review.
review_object := input.review.object

# The pod spec of the reviewed workload, wherever its kind keeps it. (Rules
# here read input directly rather than through each other: every rule
# indirection costs evaluation time, and these run for every policy.)
pod_spec := input.review.object.spec if input.review.object.kind == "Pod"

pod_spec := input.review.object.spec.template.spec if {
	input.review.object.kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}
}

pod_spec := input.review.object.spec.jobTemplate.spec.template.spec if input.review.object.kind == "CronJob"

# The pod's metadata (annotations, labels): the Pod's own or its template's.
pod_metadata := object.get(input.review.object, "metadata", {}) if input.review.object.kind == "Pod"

pod_metadata := object.get(input.review.object.spec.template, "metadata", {}) if {
	input.review.object.kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}
}

pod_metadata := object.get(input.review.object.spec.jobTemplate.spec.template, "metadata", {}) if {
	input.review.object.kind == "CronJob"
}

# The pod-level securityContext ({} when unset or not an object).
pod_security_context := as_object(object.get(pod_spec, "securityContext", {}))

# Every container of the pod with its securityContext and how messages call it:
# {"container": <object>, "sc": <securityContext or {}>, "field": "initContainers", "type": "init container"}.
containers contains {"container": c, "sc": as_object(object.get(c, "securityContext", {})), "field": field, "type": type} if {
	some field, type in {"containers": "container", "initContainers": "init container", "ephemeralContainers": "ephemeral container"}
	some c in pod_spec[field]
	is_object(c)
}

# x when it is an object, else {}.
as_object(x) := x if {
	is_object(x)
} else := {}

# Whether the pod declares it runs on Windows (Linux-only controls skip it).
is_windows if pod_spec.os.name == "windows"

# `Kind/name`, with ` in namespace ns` when the object has a namespace.
subject := sprintf("%s/%s in namespace %s", [review_object.kind, object_name, ns]) if {
	ns := object.get(review_object, ["metadata", "namespace"], "")
	ns != ""
} else := sprintf("%s/%s", [review_object.kind, object_name])

object_name := name if {
	name := object.get(review_object, ["metadata", "name"], "")
	name != ""
} else := sprintf("%s*", [object.get(review_object, ["metadata", "generateName"], "")]) if {
	object.get(review_object, ["metadata", "generateName"], "") != ""
} else := "<unnamed>"

# `container "app"`, `init container "setup"`, `ephemeral container "debug"`.
describe(c) := sprintf("%s \"%s\"", [c.type, object.get(c.container, "name", "")])

# The containers that mount volume `name`, described and comma-separated
# ("" when none does).
mounted_by(name) := concat(", ", sort([describe(c) |
	some c in containers
	some m in object.get(c.container, "volumeMounts", [])
	m.name == name
]))

# ` (mounted by container "app")`, or "" when no container mounts it.
mount_note(name) := sprintf(" (mounted by %s)", [mounted_by(name)]) if {
	mounted_by(name) != ""
} else := ""
