# METADATA
# title: Not documented (a test file)
package images

test_nothing if true
