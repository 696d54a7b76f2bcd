# A Jenkinsfile policy written against conftest's Groovy tree: it matches
# node kinds (CallExpr, IdentExpr, Identifier and the string token kinds).
package main

import rego.v1

shell_steps := {"sh", "bat", "powershell", "pwsh"}

string_kinds := {
	"StringLiteral", "GStringFull", "GStringBegin", "GStringPart",
	"GStringEnd", "SlashyStringLit", "DollarSlashyStringLit",
}

shell_calls contains call if {
	walk(input, [_, call])
	call.kind == "CallExpr"
	callee := call.children[0]
	callee.kind == "IdentExpr"
	callee.children[0].kind == "Identifier"
	callee.children[0].text in shell_steps
}

# The literal text of a call's strings, quotes and dollars removed, so that
# interpolations cannot split a command name.
script(call) := lower(regex.replace(concat("", texts), `["'$]`, "")) if {
	texts := [node.text | walk(call, [_, node]); node.kind in string_kinds]
}

deny contains result if {
	some call in shell_calls
	command := script(call)
	regex.match(`(curl|wget)\s`, command)
	regex.match(`\|\s*(ba|z)?sh\b`, command)
	result := sprintf("line %d pipes a download into a shell", [call.line])
}
