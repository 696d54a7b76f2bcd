# Shared helpers for every policy in the regard library: where the pod spec
# lives in each workload kind, every container with its type, and how a
# message names the resource. Embedded in each template's `libs`; this file
# is the source of truth (a test keeps the copies identical).
package lib.workloads

# The object under review.
review_object := input.review.object

# Kinds whose pod template is at spec.template.
templated_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}

# The pod spec of the reviewed workload, wherever its kind keeps it.
pod_spec := review_object.spec if review_object.kind == "Pod"

pod_spec := review_object.spec.template.spec if review_object.kind in templated_kinds

pod_spec := review_object.spec.jobTemplate.spec.template.spec if review_object.kind == "CronJob"

# The pod's metadata (annotations, labels): the Pod's own or its template's.
pod_metadata := object.get(review_object, "metadata", {}) if review_object.kind == "Pod"

pod_metadata := object.get(review_object.spec.template, "metadata", {}) if review_object.kind in templated_kinds

pod_metadata := object.get(review_object.spec.jobTemplate.spec.template, "metadata", {}) if review_object.kind == "CronJob"

# The pod-level securityContext ({} when unset).
pod_security_context := sc if {
	sc := pod_spec.securityContext
	is_object(sc)
} else := {}

# Where each kind of container is listed, and how messages call it.
container_fields := {"containers": "container", "initContainers": "init container", "ephemeralContainers": "ephemeral container"}

# Every container of the pod: {"container": <object>, "field": "initContainers", "type": "init container"}.
containers contains {"container": c, "field": field, "type": type} if {
	some field, type in container_fields
	some c in pod_spec[field]
	is_object(c)
}

# A container's securityContext ({} when unset).
security_context(c) := sc if {
	sc := c.container.securityContext
	is_object(sc)
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
