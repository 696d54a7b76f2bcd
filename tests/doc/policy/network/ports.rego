# METADATA
# title: Port rules
package images.network

# METADATA
# title: No privileged ports
deny contains "privileged port" if {
	input.spec.ports[_].port < 1024
}
