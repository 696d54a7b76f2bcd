package main

double(x) := x * 2

# Two definitions that disagree when both apply: evaluating `level` for a
# severity above 5 is an error.
level = "high" if input.severity > 5

level = "low" if input.severity > 2
