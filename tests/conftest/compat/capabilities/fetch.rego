package main

deny contains msg if {
	resp := http.send({"method": "GET", "url": input.url})
	resp.status_code == 500
	msg := sprintf("%s is down", [input.url])
}
