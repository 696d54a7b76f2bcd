package main

deny contains "main: name is missing" if not input.name
