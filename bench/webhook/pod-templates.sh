# Sourced by the webhook benchmarks: the 15 gatekeeper-library Pod templates they serve
# (12 pod-security-policy + 3 general), each with its first sample constraint.
#
#   copy_pod_templates LIBRARY_DIR DEST_DIR

copy_pod_templates() {
  local lib=$1 dest=$2 t name sample
  mkdir -p "$dest"
  for t in \
    pod-security-policy/allow-privilege-escalation pod-security-policy/capabilities \
    pod-security-policy/forbidden-sysctls pod-security-policy/host-filesystem \
    pod-security-policy/host-namespaces pod-security-policy/host-network-ports \
    pod-security-policy/privileged-containers pod-security-policy/proc-mount \
    pod-security-policy/read-only-root-filesystem pod-security-policy/seccomp \
    pod-security-policy/users pod-security-policy/volumes \
    general/allowedrepos general/containerlimits general/disallowedtags; do
    name="$(basename "$t")"
    cp "$lib/$t/template.yaml" "$dest/$name-template.yaml"
    sample="$(ls -d "$lib/$t"/samples/*/ | sort | head -1)"
    cp "$sample/constraint.yaml" "$dest/$name-constraint.yaml"
  done
}
