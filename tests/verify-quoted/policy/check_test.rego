# A package whose name is not an identifier, as linters name theirs after
# the rule they test (`package rules["image-tag_test"]`).
package rules["image-tag_test"]

import rego.v1

latest(image) if endswith(image, ":latest")

test_latest_is_found if latest("nginx:latest")

test_fails_on_purpose if latest("nginx:1.27")
