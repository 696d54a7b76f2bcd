# METADATA
# title: Image rules
# description: Where container images may come from.
package images

# METADATA
# title: Trusted registries
# description: Images must come from a registry on the allow list.
# related_resources:
# - ref: https://example.org/registries
#   description: The allow list
# - https://example.org/why
deny contains msg if {
	some c in input.spec.containers
	not startswith(c.image, "registry.example.org/")
	msg := sprintf("%s: untrusted registry", [c.name])
}
