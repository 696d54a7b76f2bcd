#!/bin/sh
# Prints the plugin directory's name, the argument count and the arguments;
# the exit status is the argument count.
echo "$(basename "$CONFTEST_PLUGIN_DIR"): $# arguments: $*"
exit $#
