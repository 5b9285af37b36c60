"""Triage from the command line: `engine assess CASE --result …` (an agency's assessment given by
telephone) and `engine backlog` (the backlog plan: show, accept, change its pace). A refusal
records nothing (errors.py)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from engine.cli.errors import fail
from engine.cli.options import BACKDATE, BY, CONFIG, DATE, DAY, JSON, RULES, WORKSPACE, Inputs, actor

commands = typer.Typer()
backlog_app = typer.Typer(
    help="The backlog plan (対応計画) of a screening larger than the town can take at once: show, accept, change.",
    invoke_without_command=True,
)


@commands.command()
def assess(
    case: str = typer.Argument(..., help="Case id"),
    result: str = typer.Option(..., "--result", help="resolved | needs_conference | could_not_reach"),
    note: str | None = typer.Option(
        None, "--note", help="What the agency found (required with needs_conference; no names: 本人, 長男 …)."
    ),
    agency: str | None = typer.Option(None, "--agency", help="The assessing agency (default: the one asked)."),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
    backdate: str | None = BACKDATE,
) -> None:
    """Record an agency's assessment given by telephone (triage).

    resolved closes the case with that agency as its lead; needs_conference convenes it;
    could_not_reach asks again, then convenes.

    Example: engine assess C-2026-00012 --result needs_conference --note 訪問で介護と家計の課題を確認
    """
    from engine.store.lifecycle import STATE_LABELS
    from engine.support.vocabulary import ASSESSMENT_RESULT_LABELS
    from engine.triage.assessment import answer_assessment

    given = Inputs(workspace, rules, config, on)
    rs, cfg, conn = given.rules, given.config, given.db()
    r = answer_assessment(
        conn, rs, cfg, case, result, given.day, actor(by), agency, note, dating=given.dating(conn, backdate)
    )
    typer.echo(
        f"事案 {r.case_id}: アセスメントの結果「{ASSESSMENT_RESULT_LABELS[r.result]}」を記録"
        + (f"（{r.attempt}回目の依頼で接触できず）" if r.result == "could_not_reach" else "")
        + f"、状態 {STATE_LABELS[r.status]}"
    )


@backlog_app.callback()
def backlog(
    ctx: typer.Context,
    plan: int | None = typer.Option(None, "--plan", help="A plan's number (default: the latest)."),
    now: bool = typer.Option(False, "--now", help="Where the first steps fall today, not as the plan was made."),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DATE,
    as_json: bool = JSON,
) -> None:
    """Show the backlog plan: how many cases a week go to each pathway, by priority.

    Example: engine backlog --workspace workspace
    """
    if ctx.invoked_subcommand:
        return
    from engine.triage.backlog import load_plan, render, schedule
    from engine.triage.pathways import per_week

    given = Inputs(workspace, rules, config, on)
    cfg, conn = given.config, given.db()
    shown = load_plan(conn, plan)
    if plan is not None and shown is None:
        fail(f"--plan {plan}: 対応計画 第{plan}号はありません（engine backlog で最新の計画を確認してください）")
    if now:
        shown = schedule(conn, cfg, given.day, per_week(conn, cfg.triage.settings.assessments_per_week))
    if shown is None:
        typer.echo("対応計画はありません（会議の枠や機関の週あたりの件数を超える事案はまだありません）。")
        return
    typer.echo(shown.model_dump_json(indent=2) if as_json else render(shown, cfg))


@backlog_app.command("accept")
def backlog_accept(
    plan: int = typer.Argument(..., help="The plan's number (engine backlog)."),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
) -> None:
    """Accept the proposed backlog plan as it is.

    Example: engine backlog accept 1 --by 田中
    """
    from engine.triage.backlog import accept

    given = Inputs(workspace, rules, config, on)
    done = accept(given.db(), given.config, plan, given.day, actor(by))
    typer.echo(f"対応計画 第{done.plan_id}号を承認しました（{done.decided_by}）。")


@backlog_app.command("change")
def backlog_change(
    plan: int = typer.Argument(..., help="The plan's number (engine backlog)."),
    per_week: int = typer.Option(..., "--per-week", help="Assessments asked of one agency a week."),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
    as_json: bool = JSON,
) -> None:
    """Accept the proposed backlog plan with another pace.

    The assessments not yet asked get new start days, in the same priority order.

    Example: engine backlog change 1 --per-week 25 --by 田中
    """
    from engine.triage.backlog import change, render

    given = Inputs(workspace, rules, config, on)
    cfg = given.config
    done = change(given.db(), cfg, plan, per_week, given.day, actor(by))
    typer.echo(json.dumps(done.model_dump(mode="json"), ensure_ascii=False, indent=2) if as_json else render(done, cfg))
