"""`python -m modelcycle` runs the CLI."""

from modelcycle.cli.main import run

run()
