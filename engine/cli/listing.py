"""The coordinator's views (local only): cases, meetings, an agenda as e-mailed, the outbox (and its retries)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from engine.cli.errors import fail
from engine.cli.options import CONFIG, DATE, DAY, JSON, RULES, WORKSPACE, Inputs

commands = typer.Typer()

OUTBOX_STATES = ("pending", "sending", "sent", "failed", "superseded")


@commands.command("cases")
def cases_(
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    status: str | None = typer.Option(
        None,
        "--status",
        help="Only cases in this state (detected, convened, lead_pending, active, closed, archived, routed, suspended, reopened, assessing, watching).",
    ),
    as_json: bool = JSON,
) -> None:
    """List cases with their state, lead and next dated step (the coordinator's view, local only).

    Example: engine cases --status lead_pending
    """
    from engine.casework.listing import agency_label, cases
    from engine.casework.outcome_file import CONSENT_LABELS
    from engine.store.lifecycle import STATE_LABELS
    from engine.support.dates import wareki_with_weekday

    if status and status not in STATE_LABELS:
        fail(f"--status: unknown state '{status}'; one of {', '.join(STATE_LABELS)}")
    given = Inputs(workspace, rules, config, on)
    conn = given.db()
    rows = cases(conn, given.day, status, agency=lambda a: agency_label(given.config, a))
    if as_json:
        typer.echo(json.dumps([r.model_dump() for r in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("該当する事案はありません")
    for r in rows:
        lead = agency_label(given.config, r.lead_agency_id) + ("（受諾済）" if r.lead_confirmed_on else "")
        when = wareki_with_weekday(r.next_on) if r.next_on else "-"
        typer.echo(
            f"{r.case_id}  世帯 {r.household_id}  {r.label}  主担当 {lead}  次: {when} {r.next_step}"
            + (f"  再開 {r.reopen_count} 回" if r.reopen_count else "")
            + (f"  前の事案 {r.previous_case_id}" if r.previous_case_id else "")
            + (f"  同意 {CONSENT_LABELS.get(r.consent_state, r.consent_state)}" if r.consent_state else "")
        )


@commands.command("meetings")
def meetings_(
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DATE,
    all_: bool = typer.Option(False, "--all", help="Include past meetings."),
    as_json: bool = JSON,
) -> None:
    """List upcoming meetings and their cases (case ids, lead and invited agencies).

    Example: engine meetings --workspace workspace
    """
    from engine.casework.listing import agency_label, meetings
    from engine.rules.model import SEVERITY_JA
    from engine.support.dates import wareki_with_weekday

    given = Inputs(workspace, rules, config, on)
    cfg, day = given.config, given.day.isoformat()
    rows = meetings(given.db(), cfg, given.day, include_past=all_)
    if as_json:
        typer.echo(json.dumps([r.model_dump() for r in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("予定の会議はありません")
    for m in rows:
        typer.echo(
            f"{m.meeting_id}  {m.conference}  {wareki_with_weekday(m.held_on)} {m.start_time}  {m.place}"
            + ("  (緊急のため追加)" if m.added_for_urgent else "")
            + f"  — {len(m.cases)} 件"
        )
        for c in m.cases:
            typer.echo(
                f"    {c.case_id}  重要度 {SEVERITY_JA.get(c.severity, c.severity)}  主担当 {agency_label(cfg, c.lead_agency_id)}"
                + f"  参加 {'、'.join(agency_label(cfg, a) for a in c.agencies)}"
                + ("  結果記録済" if c.outcome_recorded else ("  結果未記録" if m.held_on < day else ""))
            )


@commands.command("agenda")
def agenda_(
    meeting: str = typer.Argument(..., help="Meeting id from `engine meetings`, e.g. M-20261204-1000-S."),
    agency: str | None = typer.Option(None, "--agency", help="Agency id; without it, list the meeting's agendas."),
    html: bool = typer.Option(False, "--html", help="Print the HTML version."),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
) -> None:
    """Print the latest agenda an agency receives for a meeting (exactly what is e-mailed).

    Example: engine agenda M-20261204-1000-S --agency houkatsu_chuo
    """
    from engine.casework.listing import agency_label, agenda

    given = Inputs(workspace, rules, config)
    conn = given.db(readonly=True, must_exist=False)
    typer.echo(agenda(conn, workspace, meeting, agency, html=html, agency=lambda a: agency_label(given.config, a)))


@commands.command("outbox")
def outbox_(
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    status: str | None = typer.Option(None, "--status", help="pending | sending | sent | failed | superseded"),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Queue every failed message again (after fixing the cause)."
    ),
    retry: list[str] | None = typer.Option(
        None, "--retry", help="Queue this failed message again (its key); repeatable."
    ),
    as_json: bool = JSON,
) -> None:
    """Show the outbox: counts per status, failures and possible duplicates; queue failed messages again.

    Examples: engine outbox --status failed
              engine outbox --retry-failed     (after fixing the address in agencies.yaml)
    """
    from engine.casework.listing import agency_label, outbox
    from engine.outbox import retry as requeue
    from engine.support.vocabulary import OUTBOX_STATE_LABELS

    if status and status not in OUTBOX_STATES:
        fail(f"--status {status}: use pending, sending, sent, failed or superseded")
    if retry_failed or retry:
        n, replaced = requeue(Inputs(workspace).db(), None if retry_failed else list(retry))
        typer.echo(f"送信失敗のメール {n} 通を再び送信待ちにしました（次の送信 `engine send` で送られます）")
        if replaced:
            typer.echo(f"送信失敗のメール {replaced} 通は新しい版に差し替え済みのため、再送しません")
        if retry and n + replaced < len(retry):
            fail(
                f"{len(retry) - n - replaced} of the keys given are not failed messages; see `engine outbox --status failed`",
                1,
            )
        return
    given = Inputs(workspace, rules, config)
    counts, rows = outbox(given.db(readonly=True, must_exist=False), status)
    if as_json:
        typer.echo(
            json.dumps({"counts": counts, "messages": [r.model_dump() for r in rows]}, ensure_ascii=False, indent=2)
        )
        return
    order = list(OUTBOX_STATE_LABELS)
    shown = sorted(counts.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
    typer.echo("  ".join(f"{OUTBOX_STATE_LABELS.get(k, k)} {v} 通" for k, v in shown))
    for r in rows:
        if status or r.status in ("pending", "failed") or r.possible_duplicate:
            note = " 重複の可能性（送信後・記録前に中断）" if r.possible_duplicate else ""
            typer.echo(
                f"  {OUTBOX_STATE_LABELS.get(r.status, r.status)}  {r.message_key}  {agency_label(given.config, r.agency_id)}"
                f"  試行 {r.attempts} 回" + (f"  {r.last_error}" if r.last_error else "") + note
            )


@commands.command("export")
def export_(
    out: Path = typer.Argument(..., help="Folder to write the files into (created owner-only)."),
    workspace: Path = WORKSPACE,
    fmt: str = typer.Option("csv", "--format", help="csv | json"),
    table: list[str] | None = typer.Option(
        None, "--table", help="cases | flags | outbox | meetings; repeatable (default: all four)."
    ),
    excel: bool = typer.Option(False, "--excel", help="CSV with a BOM (UTF-8), so that Excel opens it correctly."),
) -> None:
    """Export cases, flags, the outbox and meetings as CSV or JSON files for the coordinator: ids, dates and states,
    never names, kana, addresses or birth dates (not for agencies: household and rule ids are sensitive).

    Example: engine export exports/ --format csv --table cases --table flags
    """
    from engine.store.export import EXPORTS, export

    if fmt not in ("csv", "json"):
        fail(f"--format {fmt}: use csv or json")
    unknown = [t for t in table or () if t not in EXPORTS]
    if unknown:
        fail(f"--table {', '.join(unknown)}: choose from {', '.join(EXPORTS)}")
    if out.exists() and not out.is_dir():
        fail(f"{out} is a file; give a folder")
    conn = Inputs(workspace).db(readonly=True)
    done = export(conn, out, fmt=fmt, tables=table or tuple(EXPORTS), encoding="utf-8-sig" if excel else "utf-8")
    for e in done:
        typer.echo(f"{e.path}: {e.rows} 行")
