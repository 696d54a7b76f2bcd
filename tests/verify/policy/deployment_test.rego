package main

test_too_many_replicas if {
	deny["web: too many replicas"] with input as {"kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {"replicas": 5}}
		with data.limits.max_replicas as 3
}

test_label_present if {
	print("checking the label rule")
	count(deny) == 0 with input as {"kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {"replicas": 1}}
}

test_label_missing_fails_on_purpose if {
	count(deny) == 0 with input as {"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 1}}
}

todo_test_statefulsets if {
	false
}
