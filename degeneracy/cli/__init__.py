"""The typer command-line app: thin commands over the library."""
