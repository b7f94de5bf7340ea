"""The `seal` subcommands: thin wiring of a domain, an engine and a loop into a run directory."""
