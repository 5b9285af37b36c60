"""`python -m engine.cli`: the same as the `engine` command."""

from engine.cli.main import app

app()
