"""The lifecycle commands of the CLI as a coordinator types them, on a workspace with the shipped
rules and configuration."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import date, datetime, time
from pathlib import Path

from typer.testing import CliRunner

from engine.cli.main import app
from engine.support import clock
from tests.helpers.paths import CONFIG_DIR, RULES_DIR

runner = CliRunner()
RECORDED_BY = (
    "outcome",
    "accept",
    "decline",
    "watch",
    "contact",
    "done",
    "correct",
    "refer",
    "referral",
    "followup",
    "need",
)  # the commands that take --by


def cli(workspace: Path, *args: str, on: date | None = None):
    """`engine ARGS --workspace W` (+ --rules, --config, --by koordinator, --date `on` where they apply),
    typed on the day `on` (the clock is pinned to 09:00 of it: a date is checked against today)."""
    extra = ["--workspace", str(workspace), "--rules", str(RULES_DIR), "--config", str(CONFIG_DIR)]
    if args[0] != "history":
        extra += ["--by", "koordinator"] if args[0] in RECORDED_BY else []
        if on:
            extra += ["--date", on.isoformat()]
    with clock.pinned(datetime.combine(on, time(9), clock.TOKYO)) if on else nullcontext():
        return runner.invoke(app, [*args, *extra])
