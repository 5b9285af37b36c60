"""The scheduled work, run by hand: the nightly cycle (`run`) and the 08:00 dispatch of the outbox (`send`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from engine.cli.errors import fail
from engine.cli.options import CONFIG, DATE, JSON, RULES, WORKSPACE, Inputs
from engine.triage.model import mix_text

commands = typer.Typer()


@commands.command()
def run(
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DATE,
    send: bool = typer.Option(True, "--send/--no-send", help="Also send the outbox now (as the 08:00 dispatch would)."),
    as_json: bool = JSON,
) -> None:
    """Run one nightly cycle now: screen, open cases, book meetings, propose leads, write agendas, queue e-mails.

    Example: engine run --workspace workspace --date 2026-11-27
    """
    from engine.workflows.cycle import dispatch, nightly_cycle

    given = Inputs(workspace, rules, config, on)
    rs, cfg, when, conn = given.rules, given.config, given.day, given.db()
    given.run_day(conn, "nightly cycle")
    cycle = nightly_cycle(conn, workspace, rs, cfg, when)
    sent = dispatch(conn, cfg, workspace, when, force=True) if send else None
    if as_json:
        typer.echo(
            json.dumps(
                {"cycle": cycle.model_dump(), "dispatch": sent.model_dump() if sent else None},
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    c, p = cycle.convene, cycle.papers
    typer.echo(f"抽出: 新しいフラグ {cycle.screen.flags_opened:,} 件、解消 {cycle.screen.flags_resolved:,} 件")
    typer.echo(
        f"事案: 開始 {c.cases_opened:,} 件、分野別の会議（要対協等）へ引継ぎ {c.cases_routed:,} 件、"
        f"開いている事案へのフラグの追加 {c.flags_attached:,} 件、再開 {c.reopened:,} 件、"
        f"見守り完了の事案へのつなぎ直し {c.relinked:,} 件"
    )
    typer.echo(mix_text(c.pathways) + f"（アセスメントのうち翌週以降に依頼 {c.assessments_deferred:,} 件）")
    typer.echo(
        f"議題: 予定の会議 {p.meetings:,} 回について新しい版 {p.agendas:,} 件、"
        f"送信待ちのメール {p.messages_queued + p.routing_notices:,} 通"
    )
    if p.worker_stopped:
        typer.echo(
            f"議題: 作成を分担していた別プロセスが途中で止まりました（{p.worker_stopped}）。残りの議題はこのプロセスで作成しており、欠けはありません",
            err=True,
        )
    if sent and sent.send:
        s = sent.send
        if s.busy:
            done = f"this run stopped after sending {s.sent:,}" if s.sent else "this run sent nothing"
            typer.echo(f"e-mail: another dispatch is sending the outbox right now; {done}", err=True)
        typer.echo(
            f"メール: 送信 {s.sent:,} 通、延期 {s.deferred:,} 通、失敗 {s.failed:,} 通"
            + (
                f"、二重送信の可能性 {s.possible_duplicates} 通（送信中の中断。`engine outbox` を参照）"
                if s.possible_duplicates
                else ""
            )
        )
        if s.server_unavailable:
            typer.echo(
                f"e-mail: the mail server could not be used: {s.server_unavailable}; the messages stay queued", err=True
            )


@commands.command()
def send(
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DATE,
    force: bool = typer.Option(False, "--force", help="Send even on a weekend, holiday or closed day."),
) -> None:
    """Send queued e-mails (the 08:00 dispatch); does nothing on a closed day unless --force.

    Example: engine send --workspace workspace
    """
    from engine.workflows.cycle import dispatch

    given = Inputs(workspace, rules, config, on)
    cfg, conn = given.config, given.db()
    result = dispatch(conn, cfg, workspace, given.run_day(conn, "send"), force=force)
    if result.send is None:
        typer.echo(f"送信していません: {result.closed_reason}は開庁日ではありません（送る場合は --force）")
        return
    s = result.send
    if s.busy:
        done = f"this one stopped after sending {s.sent:,}" if s.sent else "nothing was sent by this one"
        fail(f"another dispatch is sending the outbox right now; {done} (try again when it has finished)", 1)
    typer.echo(
        f"送信 {s.sent:,} 通、延期 {s.deferred:,} 通、失敗 {s.failed:,} 通、二重送信の可能性 {s.possible_duplicates} 通"
    )
    if s.server_unavailable:
        fail(f"the mail server could not be used: {s.server_unavailable}; the messages stay queued", 1)
