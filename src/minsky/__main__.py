"""`python -m minsky`: the same as the `minsky` command."""

from minsky.cli import main

main()
