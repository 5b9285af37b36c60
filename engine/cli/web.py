"""`engine web`: the coordinator's console and the agencies' answer pages, on 127.0.0.1:8300."""

from __future__ import annotations

from pathlib import Path

import typer

from engine.cli.errors import fail
from engine.cli.options import BY, CONFIG, RULES, WORKSPACE, Inputs, actor

commands = typer.Typer()


@commands.command("web")
def web_(
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8300, "--port", min=1, max=65535),
    allow_remote: bool = typer.Option(
        False,
        "--allow-remote",
        help="Accept a --host other than loopback. Put the console behind the municipality's reverse proxy with TLS instead (docs/web.md).",
    ),
) -> None:
    """Start the coordinator's console and the agencies' answer pages (http://127.0.0.1:8300).
    Stop with Ctrl-C.

    Example: engine web --workspace workspace
    """
    import uvicorn

    from engine.web.app import create_app
    from engine.workflows.serve import is_loopback

    if not is_loopback(host) and not allow_remote:
        fail(
            f"--host {host} is not loopback: every machine that reaches it could open the login page and the "
            "agencies' links in plain HTTP; serve on 127.0.0.1 behind a reverse proxy with TLS, or pass --allow-remote"
        )
    given = Inputs(workspace, rules, config)
    given.config  # noqa: B018 - refuse a broken configuration before serving
    given.db().close()
    app = create_app(workspace, given.rules_dir, given.config_dir)
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address is bracketed in a URL (RFC 3986)
    typer.echo(f"engine web: http://{shown}:{port}/ (Ctrl-C で停止)")
    # no access log: the agencies' link paths carry their tokens
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, server_header=False)


users_app = typer.Typer(
    help="The console's accounts: add, list, unlock and remove coordinators (engine web).", no_args_is_help=True
)


def _password() -> str:
    """The new password: asked twice, hidden, at a terminal; else the first line of stdin."""
    import sys

    if sys.stdin is not None and sys.stdin.isatty():
        return typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = (sys.stdin.readline() if sys.stdin is not None else "").rstrip("\r\n")
    if not line:
        fail("no password on stdin: pipe it in (one line), or run the command at a terminal to be asked")
    return line


@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., help="The account's name: the name its changes are recorded under."),
    role: str = typer.Option(..., "--role", help="coordinator (the only role)."),
    workspace: Path = WORKSPACE,
    by: str | None = BY,
) -> None:
    """Add an account. The password is asked twice at a terminal, or read from the first line of
    stdin; at least 12 characters.

    Example: engine users add 山田 --role coordinator --workspace workspace
    """
    from engine.accounts import users

    db = Inputs(workspace).db()
    name, role = users.account_name(name), users.check_role(role)  # refused before the password is asked
    account = users.add(db, name, role, _password(), by=actor(by))
    typer.echo(f"added {account.name} ({account.role}); log in at engine web")


@users_app.command("list")
def users_list(workspace: Path = WORKSPACE) -> None:
    """The accounts, their role, last login and lock."""
    from engine.accounts import users

    accounts = users.all_accounts(Inputs(workspace).db(readonly=True))
    if not accounts:
        typer.echo("no accounts: add one with `engine users add NAME --role coordinator`")
    for a in accounts:
        lock = f"  locked until {a.locked_until}" if a.locked() else ""
        typer.echo(f"{a.name}\t{a.role}\tlast login {a.last_login_at or '-'}{lock}")


@users_app.command("unlock")
def users_unlock(name: str = typer.Argument(...), workspace: Path = WORKSPACE, by: str | None = BY) -> None:
    """Lift the lock-out of an account after failed logins."""
    from engine.accounts import users

    users.unlock(Inputs(workspace).db(), name, by=actor(by))
    typer.echo(f"unlocked {name}")


@users_app.command("remove")
def users_remove(name: str = typer.Argument(...), workspace: Path = WORKSPACE, by: str | None = BY) -> None:
    """Remove an account and end its sessions (its past entries in the audit log stay)."""
    from engine.accounts import users

    users.remove(Inputs(workspace).db(), name, by=actor(by))
    typer.echo(f"removed {name}")
