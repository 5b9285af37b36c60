"""`engine simulate`: a year of the engine on a synthetic town and a fake clock, measured against
the no-gap promise (engine/demo/year.py). Like `engine demo`, it starts from scratch in a demo
workspace and refuses any folder holding other data."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from engine.cli.options import CONFIG, DATE, RULES, WORKSPACE, Inputs

commands = typer.Typer()


@commands.command()
def simulate(
    households: int = typer.Option(50000, "--households", "-n", min=10, max=2_000_000),
    days: int = typer.Option(365, "--days", min=1, max=1000, help="Days simulated after the first night."),
    movers: int | None = typer.Option(None, "--movers", min=0, help="Households moving in over the span (default 2%)."),
    seed: int = typer.Option(42, "--seed"),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DATE,
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Simulate a year on a synthetic town and measure the no-gap promise (figures in sim/year.json).

    Example: engine simulate --households 50000 --days 365 --workspace /tmp/year
    """
    from engine.cli.operations import fresh_demo_workspace
    from engine.cli.progress import progress_bar
    from engine.demo.year import render_year, run_year

    given = Inputs(workspace, rules, config, on)
    rs, cfg, day = given.rules, given.config, given.day
    fresh_demo_workspace(workspace)
    with progress_bar(quiet=as_json) as progress:
        figures = run_year(
            workspace, rs, cfg, households=households, seed=seed, on=day, days=days, movers=movers, progress=progress
        )
    typer.echo(json.dumps(figures, ensure_ascii=False, indent=2) if as_json else render_year(figures))
