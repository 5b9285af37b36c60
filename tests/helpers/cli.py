"""The lifecycle commands of the CLI as a coordinator types them, on a workspace with the shipped
rules and configuration."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from engine.cli.main import app
from tests.helpers.paths import CONFIG_DIR, RULES_DIR

runner = CliRunner()
RECORDED_BY = ("outcome", "accept", "decline", "watch", "contact", "done")  # the commands that take --by


def cli(workspace: Path, *args: str, on: date | None = None):
    """`engine ARGS --workspace W` (+ --rules, --config, --by koordinator, --date `on` where they apply)."""
    extra = ["--workspace", str(workspace)]
    if args[0] != "history":
        extra += ["--rules", str(RULES_DIR), "--config", str(CONFIG_DIR)]
        extra += ["--by", "koordinator"] if args[0] in RECORDED_BY else []
        if on:
            extra += ["--date", on.isoformat()]
    return runner.invoke(app, [*args, *extra])
