package k8s.service

test_nodeport if {
	deny["NodePort services are not allowed"] with input as {"spec": {"type": "NodePort"}}
}
