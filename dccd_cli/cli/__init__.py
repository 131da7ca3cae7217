"""The command line: thin Typer commands over the API, and how results are printed."""
