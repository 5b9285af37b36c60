"""`engine` command line: the app and its commands, grouped by capability in engine/cli/*.py.

Each command parses its arguments and calls the engine function of the same name; every command
runs inside the one error handler (engine/cli/errors.py), so a refusal is a message and an exit code.
"""

from __future__ import annotations

import typer

from engine.cli import (
    casework,
    cycle,
    data,
    escalations,
    impact,  # noqa: F401 - registers `rules diff` and `config diff` onto their groups
    listing,
    operations,
    participation,
    region,
    report,
    resources,
    simulate,
    triage,
    web,
)
from engine.cli.errors import guard_all

app = typer.Typer(
    help="重層的支援体制整備事業の支援会議エンジン — screening of silo data with declarative rules, conferences, and the case lifecycle after them.",
    no_args_is_help=True,
    add_completion=False,
)
# `engine --help` lists the commands in this order, then the groups
for group in (
    data,
    cycle,
    casework,
    escalations,
    triage,
    participation,
    resources,
    region,
    report,
    listing,
    operations,
    simulate,
    web,
):
    app.registered_commands += group.commands.registered_commands
app.add_typer(operations.rules_app, name="rules")
app.add_typer(operations.config_app, name="config")
app.add_typer(web.users_app, name="users")
app.add_typer(resources.resources_app, name="resources")
app.add_typer(triage.backlog_app, name="backlog")
guard_all(app)

if __name__ == "__main__":  # pragma: no cover
    app()
