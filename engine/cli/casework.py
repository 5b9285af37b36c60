"""The case lifecycle after a conference: outcomes, the lead's answer, watch answers, contacts, agreed
actions, a case's history, the daily sweep and the gap audit. A refusal records nothing (errors.py)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from engine.cli.errors import fail
from engine.cli.options import BACKDATE, BY, CONFIG, DAY, JSON, RULES, WORKSPACE, Inputs, actor

commands = typer.Typer()

CASE = typer.Argument(..., help="Case id")
ANSWERING_AGENCY = typer.Option(None, "--agency", help="The agency answering (checked against the pending request).")


@commands.command()
def outcome(
    meeting: str = typer.Argument(..., help="Meeting id, e.g. M-20261201-1400-S"),
    case: str = typer.Argument(..., help="Case id, e.g. C-2026-00001"),
    file: Path = typer.Option(
        ...,
        "--file",
        "-f",
        help="The outcome YAML (see docs/lifecycle.md: decision, lead, consent, roles, next_evaluation, review_on, reason).",
    ),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
    backdate: str | None = BACKDATE,
) -> None:
    """Record what a conference decided for a case (会議の結果): plan, close, suspend or continue.

    Example: engine outcome M-20261201-1400-S C-2026-00001 --file outcome.yaml
    """
    from engine.casework.listing import agency_label
    from engine.casework.outcome import record_outcome
    from engine.casework.outcome_file import DECISION_LABELS
    from engine.store.lifecycle import STATE_LABELS
    from engine.support.dates import wareki_with_weekday

    if not file.is_file():
        fail(f"--file {file}: no such file (write the outcome as YAML; see docs/lifecycle.md, 'Recording an outcome')")
    given = Inputs(workspace, rules, config, on)
    rs, cfg, conn = given.rules, given.config, given.db()
    r = record_outcome(conn, rs, cfg, meeting, case, file, given.day, actor(by), dating=given.dating(conn, backdate))
    decision = DECISION_LABELS[r.decision]
    if r.history_only:
        typer.echo(
            f"事案 {r.case_id}: 「{decision}」を記録のみ（後の会議の決定が優先、状態は {STATE_LABELS[r.status]} のまま）"
        )
        return
    typer.echo(
        f"事案 {r.case_id}: 「{decision}」を記録、状態 {STATE_LABELS[r.status]}、役割 {r.actions} 件"
        + (f"、{agency_label(cfg, r.lead_agency)}へ受諾依頼を送付予定" if r.lead_request else "")
        + (f"、次の会議 {r.meeting_id}" if r.meeting_id else "")
    )
    for a in r.roles:  # the numbers `engine done` takes
        typer.echo(
            f"  役割 番号 {a.action_id}: {agency_label(cfg, a.agency)}「{a.action}」期日 {wareki_with_weekday(a.due)}"
        )


@commands.command()
def accept(
    case: str = CASE,
    agency: str | None = ANSWERING_AGENCY,
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
    backdate: str | None = BACKDATE,
) -> None:
    """The asked agency accepts to be the case's lead (主担当機関の受諾).

    Example: engine accept C-2026-00001 --agency houkatsu_kita
    """
    from engine.casework.handshake import accept as accept_
    from engine.store.lifecycle import STATE_LABELS

    given = Inputs(workspace, rules, config, on)
    cfg, conn = given.config, given.db()
    r = accept_(conn, cfg, case, given.day, actor(by), agency, dating=given.dating(conn, backdate))
    typer.echo(f"事案 {r.case_id}: 受諾を記録、状態 {STATE_LABELS[r.status]}")


@commands.command()
def decline(
    case: str = CASE,
    reason: str = typer.Option(..., "--reason", help="Why the agency declines (no names)."),
    agency: str | None = ANSWERING_AGENCY,
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
    backdate: str | None = BACKDATE,
) -> None:
    """The asked agency declines; the next candidate of the lead rules is asked.

    Example: engine decline C-2026-00001 --reason "担当地区外のため"
    """
    from engine.casework.handshake import decline as decline_
    from engine.casework.listing import agency_label
    from engine.store.lifecycle import STATE_LABELS

    given = Inputs(workspace, rules, config, on)
    rs, cfg, conn = given.rules, given.config, given.db()
    r = decline_(conn, rs, cfg, case, reason, given.day, actor(by), agency, dating=given.dating(conn, backdate))
    typer.echo(
        f"事案 {r.case_id}: 辞退を記録、"
        + (
            f"次の候補 {agency_label(cfg, r.next_agency)}に依頼"
            if r.next_agency
            else "候補がないためコーディネーターに通知し会議で再検討"
        )
        + f"（状態 {STATE_LABELS[r.status]}）"
    )


@commands.command()
def watch(
    case: str = CASE,
    result: str = typer.Option(..., "--result", help="stable | concern | lost_contact"),
    agency: str | None = typer.Option(
        None, "--agency", help="The agency answering (default: the lead, or the owner of a routed case)."
    ),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
    backdate: str | None = BACKDATE,
) -> None:
    """Record the answer to a watch (見守り) or check-back: concern or lost_contact reopens the case.

    Example: engine watch C-2026-00001 --result stable
    """
    from engine.casework.watch import answer_checkpoint
    from engine.store.lifecycle import STATE_LABELS
    from engine.support.vocabulary import WATCH_RESULT_LABELS

    given = Inputs(workspace, rules, config, on)
    rs, cfg, conn = given.rules, given.config, given.db()
    r = answer_checkpoint(
        conn, rs, cfg, case, result, given.day, actor(by), agency, dating=given.dating(conn, backdate)
    )
    answer = WATCH_RESULT_LABELS[r.result]
    what = f"確認 番号 {r.checkpoint_id} の結果「{answer}」" if r.checkpoint_id else f"確認日以外の報告（{answer}）"
    typer.echo(f"事案 {r.case_id}: {what}を記録、状態 {STATE_LABELS[r.status]}")


@commands.command()
def contact(
    case: str = CASE,
    agency: str = typer.Option(..., "--agency", help="The agency that was in contact with the household."),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
    backdate: str | None = BACKDATE,
) -> None:
    """Log a contact with the household (resets the 90-day no-contact watch of a closed case).

    Example: engine contact C-2026-00001 --agency houkatsu_kita --date 2027-02-01
    """
    from engine.casework.handshake import record_contact
    from engine.casework.listing import agency_label

    given = Inputs(workspace, rules, config, on)
    cfg, conn = given.config, given.db()
    record_contact(conn, cfg, case, agency, given.day, actor(by), dating=given.dating(conn, backdate))
    typer.echo(f"事案 {case}: {agency_label(cfg, agency)}との接触を記録")


@commands.command()
def done(
    action: int = typer.Argument(..., help="Action number (shown by `engine history CASE` and in reminders)"),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
    backdate: str | None = BACKDATE,
) -> None:
    """Mark an agreed action (役割) done.

    Example: engine done 12
    """
    from engine.casework.handshake import action_done

    given = Inputs(workspace, rules, config, on)
    cfg, conn = given.config, given.db()
    case = action_done(conn, cfg, action, given.day, actor(by), dating=given.dating(conn, backdate))
    typer.echo(f"役割 {action}（事案 {case}）を完了として記録")


@commands.command()
def correct(
    case: str = CASE,
    seq: int = typer.Argument(..., help="The entry's number (記録番号), shown by `engine history CASE`"),
    reason: str = typer.Option(..., "--reason", help="What was wrong (no names); kept in the case history."),
    withdraw: bool = typer.Option(False, "--withdraw", help="The entry did not happen: withdraw it."),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = typer.Option(
        None, "--date", help="The day it really happened, ISO or 和暦 (instead of --withdraw)."
    ),
    by: str | None = BY,
) -> None:
    """Correct a wrong contact or done action by appending a correcting entry (the original stays in the history).

    Example: engine correct C-2026-00001 57 --date 2026-03-29 --reason "年の入力誤り"
    """
    from engine.casework.correction import correct_entry
    from engine.support.dates import wareki_with_weekday

    if withdraw == (on is not None):
        fail("give either --date (the day it really happened) or --withdraw (it did not happen)")
    given = Inputs(workspace, rules, config, on)
    cfg, conn = given.config, given.db()
    to = None if withdraw else given.day
    r = correct_entry(conn, cfg, case, seq, reason, actor(by), to=to, dating=given.dating(conn))
    what = "を取り消し" if r.withdrawn else f"の日付を{wareki_with_weekday(r.day)}に訂正"
    typer.echo(f"事案 {r.case_id}: 記録番号 {r.corrected} {what}（訂正の記録番号 {r.seq}）")


@commands.command("history")
def history_(
    case: str = CASE, workspace: Path = WORKSPACE, rules: Path = RULES, config: Path = CONFIG, as_json: bool = JSON
) -> None:
    """The audit trail of one case, in Japanese (who, when, why; rule and config versions in --json).
    Agencies are named from the configuration.

    Example: engine history C-2026-00001
    """
    from engine.casework.history import history, render_history

    given = Inputs(workspace, rules, config)
    entries = history(given.db(), case)
    if as_json:
        typer.echo(json.dumps([e.model_dump() for e in entries], ensure_ascii=False, indent=2))
        return
    typer.echo(render_history(case, entries, {a.id: a.name for a in given.config.agencies.values()}))


@commands.command()
def sweep(
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    as_json: bool = JSON,
) -> None:
    """Run the daily sweep now (07:00 flow): reminders, escalations, evaluations, watch, reopen, digest.

    Example: engine sweep --date 2027-01-15
    """
    from engine.casework.sweep import daily_sweep

    given = Inputs(workspace, rules, config, on)
    rs, cfg, conn = given.rules, given.config, given.db()
    r = daily_sweep(conn, rs, cfg, given.run_day(conn, "sweep"))
    if as_json:
        typer.echo(json.dumps(r.model_dump(), ensure_ascii=False, indent=2))
        return
    typer.echo(
        f"期日のお知らせ {r.reminders} 件、エスカレーション {r.escalations} 件、評価の会議予約 {r.evaluations_booked} 件、"
        f"確認の照会 {r.checkpoints_asked} 件、定着の確認の照会 {r.followups_asked} 件、再開 {r.reopened} 件、ダイジェスト {'送付予定' if r.digest else 'なし'}、"
        f"監査の抜け漏れ {r.violations} 件"
    )


@commands.command()
def audit(
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    as_json: bool = JSON,
    verify: bool = typer.Option(
        False,
        "--verify",
        help="Check instead that the audit log is intact (hash chain, protecting triggers): one line per deleted "
        "or changed entry or dropped trigger, exit 1 if any; 'ok' and the chain's head if none.",
    ),
) -> None:
    """Check that no household is lost; list each gap with household, case and how long. Exit 1 if any.

    Example: engine audit --json
    """
    from engine.casework.audit import check_log, render_audit, render_log_check, run_audit

    if verify:
        check = check_log(Inputs(workspace).db())
        shown = json.dumps({"ok": check.ok, **check.model_dump()}, ensure_ascii=False, indent=2)
        typer.echo(shown if as_json else render_log_check(check))
        if not check.ok:
            raise typer.Exit(1)
        return
    given = Inputs(workspace, rules, config, on)
    cfg, conn = given.config, given.db()
    report = run_audit(conn, cfg, given.day)
    typer.echo(json.dumps(report.model_dump(), ensure_ascii=False, indent=2) if as_json else render_audit(report))
    if not report.ok:
        raise typer.Exit(1)
