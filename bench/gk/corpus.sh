# Sourced by the `regard gk test` corpus benchmarks: the reference corpus
# (../shared/bench/gen_corpus.py) and the 15 gatekeeper-library templates with
# bench/gk/constraints.yaml.
#
#   make_gk_corpus SHARED_DIR REPO_DIR WORK_DIR FILES
#     writes WORK_DIR/corpus (FILES files, 3 objects each) and WORK_DIR/policy

make_gk_corpus() {
  local shared=$1 repo=$2 work=$3 files=$4 t
  python3 "$shared/bench/gen_corpus.py" "$work/corpus" "$files"
  mkdir -p "$work/policy"
  for t in general/allowedrepos general/containerlimits general/containerrequests \
    general/disallowedtags general/imagedigests general/requiredlabels general/requiredprobes \
    general/block-loadbalancer-services general/replicalimits pod-security-policy/capabilities \
    pod-security-policy/privileged-containers pod-security-policy/host-namespaces \
    pod-security-policy/host-network-ports pod-security-policy/allow-privilege-escalation \
    pod-security-policy/read-only-root-filesystem; do
    cp "$shared/gatekeeper-library/library/$t/template.yaml" "$work/policy/$(basename "$t").yaml"
  done
  cp "$repo/bench/gk/constraints.yaml" "$work/policy/constraints.yaml"
}
