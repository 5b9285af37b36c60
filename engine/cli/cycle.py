"""The scheduled work, run by hand: the nightly cycle (`run`) and the 08:00 dispatch of the outbox (`send`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from engine.cli.errors import fail
from engine.cli.options import CONFIG, DATE, JSON, RULES, WORKSPACE, Inputs

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
    typer.echo(f"screen: {cycle.screen.flags_opened:,} new flags, {cycle.screen.flags_resolved:,} resolved")
    typer.echo(
        f"cases: {c.cases_opened:,} opened, {c.cases_routed:,} routed to a silo conference, {c.flags_attached:,} flags added to open cases, {c.reopened:,} reopened, {c.relinked:,} re-linked to an archived case"
    )
    typer.echo(
        f"agendas: {p.agendas:,} new versions for {p.meetings:,} upcoming meetings; {p.messages_queued + p.routing_notices:,} e-mails queued"
    )
    if sent and sent.send:
        s = sent.send
        if s.busy:
            typer.echo("e-mail: another dispatch is sending the outbox right now; this run sent nothing", err=True)
        typer.echo(
            f"e-mail: {s.sent:,} sent, {s.deferred:,} deferred, {s.failed:,} failed"
            + (
                f", {s.possible_duplicates} possibly sent twice (crash window; see `engine outbox`)"
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
        typer.echo(f"not sent: {result.closed_reason} is not a business day (use --force)")
        return
    s = result.send
    if s.busy:
        fail(
            "another dispatch is sending the outbox right now; nothing was sent by this one (try again when it has finished)",
            1,
        )
    typer.echo(
        f"{s.sent:,} sent, {s.deferred:,} deferred, {s.failed:,} failed, {s.possible_duplicates} possibly sent twice"
    )
    if s.server_unavailable:
        fail(f"the mail server could not be used: {s.server_unavailable}; the messages stay queued", 1)
