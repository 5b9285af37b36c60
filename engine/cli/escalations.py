"""Escalations from the command line: `engine escalations` (by age, oldest first) and
`engine escalation KEY --note … [--due DATE]` (the coordinator's act: a decision, a reassignment or
a new due date). An escalation nobody acts on ages into the gap audit (engine/casework/escalations.py)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from engine.cli.options import BY, CONFIG, DATE, DAY, JSON, RULES, WORKSPACE, Inputs, actor

commands = typer.Typer()


@commands.command("escalations")
def list_escalations(
    show_all: bool = typer.Option(False, "--all", help="Settled ones too."),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DATE,
    as_json: bool = JSON,
) -> None:
    """List the escalations nobody has acted on yet, oldest first, with their age in business days.

    Example: engine escalations --workspace workspace
    """
    from engine.casework.escalations import escalations

    given = Inputs(workspace, rules, config, on)
    cfg = given.config
    rows = [e for e in escalations(given.db(), cfg, given.day) if show_all or not e.settled]
    if as_json:
        typer.echo(json.dumps([e.model_dump(mode="json") for e in rows], ensure_ascii=False, indent=2))
        return
    limit = cfg.lifecycle.escalation_business_days
    if not rows:
        typer.echo("対応の記録を待つエスカレーションはありません。")
    for e in rows:
        state = (
            f"対応済み: {e.settled_how}" if e.settled else f"{e.age}営業日" + ("（上限超過）" if e.age > limit else "")
        )
        typer.echo(f"{e.key}  {e.raised_on}  {state}\n  {e.detail}")


@commands.command("escalation")
def act_on_escalation(
    key: str = typer.Argument(..., help="The escalation's key, as `engine escalations` shows it."),
    note: str = typer.Option(..., "--note", help="What was decided or done (no names: 本人, 長男 …)."),
    due: str | None = typer.Option(None, "--due", help="A new due date (ISO or 和暦): it ages again after it."),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
) -> None:
    """Record the coordinator's act on an escalation: a decision, a reassignment or a new due date.

    Example: engine escalation lead:12 --note 電話で催促し、来週までに回答と確認 --due 2027-01-15
    """
    from engine.casework.escalations import record_act
    from engine.cli.errors import fail
    from engine.support.dates import DateError, parse_date

    given = Inputs(workspace, rules, config, on)
    try:
        due_on = parse_date(due) if due else None
    except DateError as err:
        fail(f"--due: {err}")
    e = record_act(given.db(), given.config, key, given.day, actor(by), due=due_on, note=note)
    typer.echo(f"エスカレーション {e.key}: 対応を記録しました（{e.settled_how or '期日を過ぎています'}）。")
