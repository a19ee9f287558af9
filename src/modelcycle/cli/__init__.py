"""The `modelcycle` command line: parses options, calls the core, formats the answer."""
