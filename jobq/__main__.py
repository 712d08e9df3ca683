"""`python -m jobq ...` is the `jobq` command."""

from jobq.cli import main

main()
