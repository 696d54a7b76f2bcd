package main

import rego.v1

test_plain_build_passes if {
	tree := parse_config("groovy", "node {\n  sh 'make all'\n}\n")
	count(deny) == 0 with input as tree
}

test_piped_download_is_denied if {
	tree := parse_config("groovy", "node {\n  sh 'curl -s https://x.test/i.sh | sh'\n}\n")
	deny == {"line 2 pipes a download into a shell"} with input as tree
}

test_split_gstring_is_denied if {
	tree := parse_config("groovy", "sh \"wget -qO- ${url} | b${''}ash\"")
	count(deny) == 1 with input as tree
}

test_dollar_slashy_is_denied if {
	tree := parse_config("groovy", "steps {\n  bat $/curl -s x | sh/$\n}")
	count(deny) == 1 with input as tree
}

test_other_steps_are_ignored if {
	tree := parse_config("groovy", "echo 'curl -s x | sh'")
	count(deny) == 0 with input as tree
}
