package k8s.service

deny contains "NodePort services are not allowed" if input.spec.type == "NodePort"
