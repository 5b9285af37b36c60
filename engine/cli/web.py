"""`engine web`: the coordinator's console and the agencies' answer pages, on 127.0.0.1:8300."""

from __future__ import annotations

from pathlib import Path

import typer

from engine.cli.errors import fail
from engine.cli.options import CONFIG, RULES, WORKSPACE, Inputs

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
    typer.echo(f"engine web: http://{host}:{port}/ (Ctrl-C で停止)")
    # no access log: the agencies' link paths carry their tokens
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, server_header=False)
