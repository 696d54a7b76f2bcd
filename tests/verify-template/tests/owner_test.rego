package demoownerlabel

review(labels) := {"object": {"kind": "Pod", "metadata": {"name": "web", "labels": labels}}}

test_missing_label {
	violation[{"msg": "Pod web has no owner label"}] with input as {"review": review({}), "parameters": {"label": "owner"}}
}

test_known_owner {
	count(violation) == 0 with input as {"review": review({"owner": "team-a"}), "parameters": {"label": "owner"}}
}

test_unknown_owner {
	violation[{"msg": "unknown owner bob"}] with input as {"review": review({"owner": "bob"}), "parameters": {"label": "owner"}}
}
