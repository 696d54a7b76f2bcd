#!/usr/bin/env python3
"""Generates policy-core/data/kube-schemas.json.zz, the Kubernetes schemas regard embeds.

Source: the strict JSON schemas shipped in the `kubernetes-validate` wheel on PyPI
(Apache-2.0, https://pypi.org/project/kubernetes-validate/), themselves generated from
Kubernetes' own OpenAPI documents. The "-local-strict" variant sets
`additionalProperties: false` on every object, which is kubeconform's `-strict`.

What the script keeps, for the newest KEEP minor versions the wheel ships:
  * every definition, reduced to the keywords validation needs (type, properties,
    additionalProperties, items, required, enum, $ref, oneOf); descriptions, formats
    and x-kubernetes-* annotations are dropped;
  * `oneOf` of plain types (IntOrString, Quantity) folded into one `type` list, so an
    error reads "expected string or integer" rather than "not valid under any of";
  * a short, explicit list of enum constraints the API server enforces but the OpenAPI
    documents do not carry (ENUMS below);
  * the apiVersion/kind -> definition map, from x-kubernetes-group-version-kind.

Identical definitions are stored once across versions. The output, compressed with
zlib (level 9), is a header line
  {"source": ..., "versions": [...], "index": {version: {name: line}},
   "kinds": {version: {"apiVersion kind": name}}}
followed by one reduced definition per line (`line` counts from 0 after the header).

Usage: scripts/gen-kube-schemas.py [--wheel PATH] [--keep 6] [--out FILE]
Without --wheel, `pip download kubernetes-validate==VERSION` fetches the wheel.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
import zlib

PACKAGE_VERSION = "1.37.0"
DEFAULT_OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "policy-core", "data", "kube-schemas.json.zz"
)

# Values the API server's validation accepts for fields whose OpenAPI schema is a
# plain string (Kubernetes' OpenAPI v2 document carries no `enum`). Only fields whose
# set of values is closed and stable across the embedded versions, read from the API
# server's validation (pkg/apis/*/validation) rather than from descriptions. A list
# holds the values of the field itself; {"items": [...]} those of a list's items.
# "" is listed where the API server defaults an empty value (it is accepted, then
# replaced) or reads it as "any"; error messages leave it out.
DEFAULTED = [""]
PROTOCOLS = ["SCTP", "TCP", "UDP"] + DEFAULTED
PULL = ["Always", "IfNotPresent", "Never"] + DEFAULTED
TERMINATION = ["FallbackToLogsOnError", "File"] + DEFAULTED
PROFILE = ["Localhost", "RuntimeDefault", "Unconfined"]
ACCESS_MODES = {"items": ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]}
NODE_OPERATORS = ["DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn"]
LABEL_OPERATORS = ["DoesNotExist", "Exists", "In", "NotIn"]
WEBHOOK = {
    "failurePolicy": ["Fail", "Ignore"] + DEFAULTED,
    "matchPolicy": ["Equivalent", "Exact"] + DEFAULTED,
    "sideEffects": ["None", "NoneOnDryRun"],
}
RULE = {
    "operations": {"items": ["*", "CONNECT", "CREATE", "DELETE", "UPDATE"]},
    "scope": ["*", "Cluster", "Namespaced"] + DEFAULTED,
}
ENUMS = {
    "io.k8s.api.core.v1.Container": {
        "imagePullPolicy": PULL,
        "terminationMessagePolicy": TERMINATION,
    },
    "io.k8s.api.core.v1.EphemeralContainer": {
        "imagePullPolicy": PULL,
        "terminationMessagePolicy": TERMINATION,
    },
    "io.k8s.api.core.v1.PodSpec": {
        "restartPolicy": ["Always", "Never", "OnFailure"] + DEFAULTED,
        "dnsPolicy": ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"] + DEFAULTED,
        "preemptionPolicy": ["Never", "PreemptLowerPriority"] + DEFAULTED,
    },
    "io.k8s.api.core.v1.PodOS": {"name": ["linux", "windows"]},
    "io.k8s.api.core.v1.PodSecurityContext": {
        "fsGroupChangePolicy": ["Always", "OnRootMismatch"] + DEFAULTED,
        "seLinuxChangePolicy": ["MountOption", "Recursive"] + DEFAULTED,
        "supplementalGroupsPolicy": ["Merge", "Strict"] + DEFAULTED,
    },
    "io.k8s.api.core.v1.SecurityContext": {"procMount": ["Default", "Unmasked"] + DEFAULTED},
    "io.k8s.api.core.v1.SeccompProfile": {"type": PROFILE},
    "io.k8s.api.core.v1.AppArmorProfile": {"type": PROFILE},
    "io.k8s.api.core.v1.Toleration": {
        "operator": ["Equal", "Exists"] + DEFAULTED,
        "effect": ["NoExecute", "NoSchedule", "PreferNoSchedule"] + DEFAULTED,
    },
    "io.k8s.api.core.v1.Taint": {"effect": ["NoExecute", "NoSchedule", "PreferNoSchedule"]},
    "io.k8s.api.core.v1.NodeSelectorRequirement": {"operator": NODE_OPERATORS},
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement": {"operator": LABEL_OPERATORS},
    "io.k8s.api.core.v1.TopologySpreadConstraint": {
        "whenUnsatisfiable": ["DoNotSchedule", "ScheduleAnyway"],
        "nodeAffinityPolicy": ["Honor", "Ignore"] + DEFAULTED,
        "nodeTaintsPolicy": ["Honor", "Ignore"] + DEFAULTED,
    },
    "io.k8s.api.core.v1.HTTPGetAction": {"scheme": ["HTTP", "HTTPS"] + DEFAULTED},
    "io.k8s.api.core.v1.VolumeMount": {
        "mountPropagation": ["Bidirectional", "HostToContainer", "None"] + DEFAULTED,
        "recursiveReadOnly": ["Disabled", "Enabled", "IfPossible"] + DEFAULTED,
    },
    "io.k8s.api.core.v1.HostPathVolumeSource": {
        "type": ["BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File",
                 "FileOrCreate", "Socket"] + DEFAULTED,
    },
    "io.k8s.api.core.v1.ContainerResizePolicy": {"restartPolicy": ["NotRequired", "RestartContainer"]},
    "io.k8s.api.core.v1.PersistentVolumeClaimSpec": {
        "accessModes": ACCESS_MODES,
        "volumeMode": ["Block", "Filesystem"] + DEFAULTED,
    },
    "io.k8s.api.core.v1.PersistentVolumeSpec": {
        "accessModes": ACCESS_MODES,
        "volumeMode": ["Block", "Filesystem"] + DEFAULTED,
        "persistentVolumeReclaimPolicy": ["Delete", "Recycle", "Retain"] + DEFAULTED,
    },
    "io.k8s.api.core.v1.ServiceSpec": {
        "type": ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"] + DEFAULTED,
        "sessionAffinity": ["ClientIP", "None"] + DEFAULTED,
        "externalTrafficPolicy": ["Cluster", "Local"] + DEFAULTED,
        "internalTrafficPolicy": ["Cluster", "Local"] + DEFAULTED,
        "ipFamilyPolicy": ["PreferDualStack", "RequireDualStack", "SingleStack"] + DEFAULTED,
        "ipFamilies": {"items": ["IPv4", "IPv6"]},
    },
    "io.k8s.api.core.v1.ContainerPort": {"protocol": PROTOCOLS},
    "io.k8s.api.core.v1.ServicePort": {"protocol": PROTOCOLS},
    "io.k8s.api.core.v1.EndpointPort": {"protocol": PROTOCOLS},
    "io.k8s.api.discovery.v1.EndpointPort": {"protocol": PROTOCOLS},
    "io.k8s.api.networking.v1.NetworkPolicyPort": {"protocol": PROTOCOLS},
    "io.k8s.api.networking.v1.NetworkPolicySpec": {"policyTypes": {"items": ["Egress", "Ingress"]}},
    "io.k8s.api.networking.v1.HTTPIngressPath": {"pathType": ["Exact", "ImplementationSpecific", "Prefix"]},
    "io.k8s.api.apps.v1.DeploymentStrategy": {"type": ["Recreate", "RollingUpdate"] + DEFAULTED},
    "io.k8s.api.apps.v1.DaemonSetUpdateStrategy": {"type": ["OnDelete", "RollingUpdate"] + DEFAULTED},
    "io.k8s.api.apps.v1.StatefulSetUpdateStrategy": {"type": ["OnDelete", "RollingUpdate"] + DEFAULTED},
    "io.k8s.api.apps.v1.StatefulSetSpec": {"podManagementPolicy": ["OrderedReady", "Parallel"] + DEFAULTED},
    "io.k8s.api.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicy": {
        "whenDeleted": ["Delete", "Retain"] + DEFAULTED,
        "whenScaled": ["Delete", "Retain"] + DEFAULTED,
    },
    "io.k8s.api.batch.v1.CronJobSpec": {"concurrencyPolicy": ["Allow", "Forbid", "Replace"] + DEFAULTED},
    "io.k8s.api.batch.v1.JobSpec": {
        "completionMode": ["Indexed", "NonIndexed"] + DEFAULTED,
        "podReplacementPolicy": ["Failed", "TerminatingOrFailed"] + DEFAULTED,
    },
    "io.k8s.api.policy.v1.PodDisruptionBudgetSpec": {
        "unhealthyPodEvictionPolicy": ["AlwaysAllow", "IfHealthyBudget"] + DEFAULTED,
    },
    "io.k8s.api.storage.v1.StorageClass": {
        "reclaimPolicy": ["Delete", "Retain"] + DEFAULTED,
        "volumeBindingMode": ["Immediate", "WaitForFirstConsumer"] + DEFAULTED,
    },
    "io.k8s.api.autoscaling.v2.MetricSpec": {
        "type": ["ContainerResource", "External", "Object", "Pods", "Resource"],
    },
    "io.k8s.api.autoscaling.v2.MetricTarget": {"type": ["AverageValue", "Utilization", "Value"]},
    "io.k8s.api.autoscaling.v2.HPAScalingRules": {"selectPolicy": ["Disabled", "Max", "Min"] + DEFAULTED},
    "io.k8s.api.autoscaling.v2.HPAScalingPolicy": {"type": ["Percent", "Pods"]},
    "io.k8s.api.rbac.v1.Subject": {"kind": ["Group", "ServiceAccount", "User"]},
    "io.k8s.api.admissionregistration.v1.ValidatingWebhook": WEBHOOK,
    "io.k8s.api.admissionregistration.v1.MutatingWebhook": {
        **WEBHOOK,
        "reinvocationPolicy": ["IfNeeded", "Never"] + DEFAULTED,
    },
    "io.k8s.api.admissionregistration.v1.RuleWithOperations": RULE,
    "io.k8s.api.admissionregistration.v1.NamedRuleWithOperations": RULE,
}

KEPT = {"type", "properties", "additionalProperties", "items", "required", "enum", "$ref", "oneOf"}
REF_PREFIXES = ("/api/_definitions.json#/$defs/", "#/$defs/")


def reduce(schema):
    """The schema with only the keywords validation needs."""
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key not in KEPT:
            continue
        if key == "properties":
            out[key] = {name: reduce(sub) for name, sub in sorted(value.items())}
        elif key in ("additionalProperties", "items"):
            out[key] = reduce(value)
        elif key == "oneOf":
            out[key] = [reduce(s) for s in value]
        elif key == "$ref":
            for prefix in REF_PREFIXES:
                if value.startswith(prefix):
                    value = "#/$defs/" + value[len(prefix):]
                    break
            else:
                sys.exit(f"unexpected $ref {value!r}")
            out[key] = value
        else:
            out[key] = value
    alternatives = out.get("oneOf")
    if alternatives and all(set(a) == {"type"} for a in alternatives):
        types = []
        for a in alternatives:
            for t in a["type"] if isinstance(a["type"], list) else [a["type"]]:
                if t not in types:
                    types.append(t)
        # null last, as the other definitions list it.
        types.sort(key=lambda t: t == "null")
        del out["oneOf"]
        out["type"] = types
    return out


def version_dirs(root):
    found = []
    for name in os.listdir(root):
        m = re.fullmatch(r"v(\d+)\.(\d+)\.0-local-strict", name)
        if m:
            found.append(((int(m.group(1)), int(m.group(2))), name))
    return sorted(found)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", help="kubernetes_validate wheel (default: pip download)")
    ap.add_argument("--keep", type=int, default=6, help="newest minor versions to keep")
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel
        if not wheel:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp,
                 f"kubernetes-validate=={PACKAGE_VERSION}"],
                check=True,
            )
            wheel = next(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".whl"))
        with zipfile.ZipFile(wheel) as z:
            z.extractall(tmp)
        root = os.path.join(tmp, "kubernetes_validate", "kubernetes-json-schema")
        dist = next(f for f in os.listdir(tmp) if f.endswith(".dist-info"))
        package = os.path.basename(dist)[: -len(".dist-info")].replace("_", "-")
        versions = version_dirs(root)[-args.keep:]
        definitions, numbers = [], {}
        used = set()
        index, kinds = {}, {}
        for (major, minor), name in versions:
            version = f"{major}.{minor}"
            with open(os.path.join(root, name, "_definitions.json")) as f:
                defs = json.load(f)["$defs"]
            for def_name, props in ENUMS.items():
                for prop, values in props.items():
                    target = defs.get(def_name, {}).get("properties", {}).get(prop)
                    if target is None:
                        continue
                    if isinstance(values, dict):
                        target = target.get("items")
                        values = values["items"]
                        if target is None:
                            sys.exit(f"{def_name}.{prop} is not a list in {version}")
                    target["enum"] = values + [None]
                    used.add((def_name, prop))
            index[version], kinds[version] = {}, {}
            for def_name, schema in sorted(defs.items()):
                for gvk in schema.get("x-kubernetes-group-version-kind", []):
                    # DeleteOptions, WatchEvent: listed under every group; not objects one applies.
                    if gvk["kind"] in ("DeleteOptions", "WatchEvent"):
                        continue
                    api = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
                    kinds[version][f"{api} {gvk['kind']}"] = def_name
                text = json.dumps(reduce(schema), sort_keys=True, separators=(",", ":"))
                if text not in numbers:
                    numbers[text] = len(definitions)
                    definitions.append(text)
                index[version][def_name] = numbers[text]
        unused = [f"{d}.{p}" for d, props in ENUMS.items() for p in props if (d, p) not in used]
        if unused:
            sys.exit(f"enum fields found in no version: {', '.join(unused)}")
        header = {
            "source": f"{package} (PyPI), Apache-2.0",
            "versions": [f"{a}.{b}" for (a, b), _ in versions],
            "index": index,
            "kinds": kinds,
        }
        # The header on the first line, then one definition per line: a reader
        # parses only the header and the definitions a manifest needs.
        body = json.dumps(header, sort_keys=True, separators=(",", ":")) + "\n"
        body += "".join(d + "\n" for d in definitions)
        data = zlib.compress(body.encode(), 9)
        with open(args.out, "wb") as f:
            f.write(data)
        print(
            f"{package}: versions {', '.join(f'{a}.{b}' for (a, b), _ in versions)}; "
            f"{len(definitions)} distinct definitions; {len(body)} bytes of JSON, "
            f"{len(data)} compressed -> {args.out}"
        )


if __name__ == "__main__":
    main()
