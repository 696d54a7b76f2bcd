package main

deny contains "failure" if input.fail

warn contains "warning" if input.warn
