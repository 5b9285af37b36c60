"""参加支援's directory and matching from the command line: `engine resources check|list`, `engine match CASE`."""

from __future__ import annotations

import typer

commands = typer.Typer()
resources_app = typer.Typer(
    help="The 参加支援 resource directory (configs/resources.yaml): check it, list its places.", no_args_is_help=True
)
