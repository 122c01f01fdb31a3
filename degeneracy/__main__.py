"""`python -m degeneracy` runs the CLI."""

from degeneracy.cli.app import main

main()
