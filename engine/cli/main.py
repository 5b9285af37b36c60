"""`engine` command line. Each command parses arguments and calls the function of the same name."""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import date
from pathlib import Path

import typer

from engine.store.db import connect, db_path
from engine.support import clock
from engine.support.dates import DateError, parse_date

app = typer.Typer(
    help="重層的支援体制整備事業の支援会議エンジン — screening of silo data with declarative rules, conferences, and the case lifecycle after them.",
    no_args_is_help=True,
    add_completion=False,
)
rules_app = typer.Typer(help="Check and inspect the rule files.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
config_app = typer.Typer(
    help="Check the conference configuration (agencies, meetings, lead rules, mail, lifecycle).", no_args_is_help=True
)
app.add_typer(config_app, name="config")

WORKSPACE = typer.Option(
    Path(os.environ.get("ENGINE_WORKSPACE", "workspace")),
    "--workspace",
    "-w",
    help="Folder holding engine.db and reports (env ENGINE_WORKSPACE).",
)


def _default_rules() -> Path:
    """ENGINE_RULES, else ./configs/rules, else the example rules shipped beside the package."""
    if os.environ.get("ENGINE_RULES"):
        return Path(os.environ["ENGINE_RULES"])
    here = Path("configs/rules")
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "configs" / "rules"


def _default_config() -> Path:
    """ENGINE_CONFIG, else ./configs (if it has agencies.yaml), else the example configs shipped beside the package."""
    if os.environ.get("ENGINE_CONFIG"):
        return Path(os.environ["ENGINE_CONFIG"])
    from engine.config.files import default_config_dir

    return default_config_dir()


CONFIG = typer.Option(
    _default_config(),
    "--config",
    help="Folder with agencies.yaml, conference.yaml, lead_rules.yaml, mail.yaml and (optional) lifecycle.yaml (env ENGINE_CONFIG; default ./configs).",
)
RULES = typer.Option(
    _default_rules(), "--rules", help="Folder of rule files (env ENGINE_RULES; default ./configs/rules)."
)
DATE = typer.Option(None, "--date", help="Screening date, ISO or 和暦 (R8.11.27); default today in Japan.")
DAY = typer.Option(
    None, "--date", help="The day this happened or is checked for, ISO or 和暦 (R8.11.27); default today in Japan."
)


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


FIRST_YEAR, LAST_YEAR = 1900, 2199  # months and business days are added to the date: keep far from date.max


def _date(text: str | None) -> date:
    """The --date option: absent means today in Japan; an explicit empty value is an error (an
    unset shell variable must not silently mean today)."""
    if text is None:
        return clock.today()
    try:
        day = parse_date(text)
    except DateError as err:
        fail(f"--date: {err}")
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        fail(
            f"--date: {day.isoformat()} is outside the years the engine works with ({FIRST_YEAR}–{LAST_YEAR}); check the year"
        )
    return day


def _rules(path: Path):
    from engine.rules.loader import RulesInvalid, load_rules

    try:
        return load_rules(path)
    except RulesInvalid as err:
        fail(
            f"the rules in {path} have {len(err.problems)} problem(s); nothing was run:\n"
            + "\n".join(f"  {p}" for p in err.problems)
            + f"\nrun `engine rules check --rules {path}` after fixing them"
        )


def _config(path: Path, rules):
    from engine.config.files import ConfigInvalid, load_config

    try:
        return load_config(path, rules)
    except ConfigInvalid as err:
        fail(
            f"the configuration in {path} has {len(err.problems)} problem(s); nothing was run:\n"
            + "\n".join(f"  {p}" for p in err.problems)
            + f"\nrun `engine config check --config {path}` after fixing them"
        )


def _connect(workspace: Path, readonly: bool = False, must_exist: bool = False):
    if workspace.exists() and not workspace.is_dir():
        fail(f"--workspace {workspace} is a file; give a folder")
    if must_exist and not db_path(workspace).exists():
        fail(f"no database at {db_path(workspace)}: check --workspace, or run `engine import` (or `engine demo`) first")
    try:
        return connect(workspace, readonly=readonly)
    except FileNotFoundError as err:
        fail(str(err))


def _folder_for_output(path: Path, option: str) -> None:
    if path.exists() and not path.is_dir():
        fail(f"{option} {path} is a file; give a folder")


@app.command()
def generate(
    out_dir: Path = typer.Argument(..., help="Folder to write households.csv, persons.csv, records.csv into."),
    households: int = typer.Option(5000, "--households", "-n", min=1),
    seed: int = typer.Option(42, "--seed"),
    encoding: str = typer.Option("utf-8", "--encoding", help="utf-8 or cp932"),
    bad_rows: int = typer.Option(0, "--bad-rows", min=0, help="Add this many broken rows, as real extracts have."),
    on: str | None = DATE,
) -> None:
    """Write a synthetic town (same seed → same files).

    Example: engine generate town/ --households 10000 --seed 7
    """
    from engine.demo.generate import generate_town

    if encoding.lower() not in ("utf-8", "utf8", "cp932", "shift_jis", "sjis"):
        fail(f"--encoding {encoding}: use utf-8 or cp932")
    _folder_for_output(out_dir, "OUT_DIR")
    result = generate_town(out_dir, households, seed, today=_date(on), encoding=encoding, bad_rows=bad_rows)
    typer.echo(
        f"wrote {out_dir}: {result.households:,} households, {result.persons:,} persons, {result.records:,} records"
    )


@app.command("import")
def import_(
    source_dir: Path = typer.Argument(..., help="Folder with households.csv, persons.csv, records.csv."),
    workspace: Path = WORKSPACE,
    encoding: str | None = typer.Option(
        None,
        "--encoding",
        help="Force utf-8, utf-8-sig, cp932, shift_jis, euc-jp or iso-2022-jp (default: detect UTF-8 or CP932).",
    ),
) -> None:
    """Import a silo extract; bad rows go to a rejects report, the rest is imported.

    Example: engine import extracts/2026-11/ --workspace workspace
    """
    from engine.intake.importer import ImportRefused, import_dir

    conn = _connect(workspace)
    try:
        result = import_dir(conn, source_dir, encoding=encoding, report_dir=workspace / "reports")
    except ImportRefused as err:
        fail(f"import refused, nothing was written:\n{err}")
    for name, f in result.files.items():
        typer.echo(
            f"{name}: read {f.read:,}, new {f.inserted:,}, updated {f.updated:,}, unchanged {f.unchanged:,}, rejected {f.rejected:,}"
        )
    for w in result.warnings:
        typer.echo(f"warning: {w}")
    if result.rejects:
        typer.echo(f"{result.total_rejected:,} rejected row(s); report: {result.report_path}")
        for r in result.rejects[:10]:
            typer.echo(f"  {r.file}:{r.line} [{r.field}] {r.reason}")


@rules_app.command("check")
def rules_check(rules: Path = RULES) -> None:
    """Check every rule file; list each problem with file, line, rule id, field and a suggestion.

    Example: engine rules check --rules configs/rules
    """
    from engine.rules.loader import check_rules, load_rules

    problems = check_rules(rules)
    if problems:
        for p in problems:
            typer.echo(str(p), err=True)
        fail(f"{len(problems)} problem(s) in {rules}; no rule was changed", 1)
    rs = load_rules(rules)
    typer.echo(f"ok: {len(rs.indicators)} indicators, {len(rs.flags)} flags (rules hash {rs.hash})")


@rules_app.command("vocabulary")
def rules_vocabulary() -> None:
    """List the record codes rules may use, with their values."""
    from engine.support.vocabulary import CODES

    for c in CODES.values():
        values = ", ".join(c.values) if c.values else ("number" if c.value_type == "amount" else "any text")
        typer.echo(f"{c.code:<24} {c.value_type:<9} {c.title}  [{values}]")


@app.command()
def screen(
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    on: str | None = DATE,
    full: bool = typer.Option(False, "--full", help="Evaluate every household, not only what changed."),
    workers: int = typer.Option(2, "--workers", min=1, help="Processes for a full screen."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Evaluate the rules over the town and store flags with their evidence (incremental by default).

    Example: engine screen --workspace workspace --date 2026-11-27
    """
    from engine.screening.screen import screen as run_screen

    rs = _rules(rules)
    when = _date(on)
    conn = _connect(workspace, must_exist=True)
    result = run_screen(conn, workspace, rs, when, full=full, workers=workers)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    typer.echo(
        f"{result.mode} screen on {result.screened_on}: {result.scope:,} households in scope, {result.candidates:,} evaluated by the rules, "
        f"{result.flags_opened:,} new flags, {result.flags_resolved:,} resolved ({result.seconds:.2f} s)"
    )


@app.command()
def explain(
    household_id: str = typer.Argument(..., help="Household id, e.g. H0000123."),
    rule: str | None = typer.Option(None, "--rule", help="Explain this rule in full, fired or not."),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    on: str | None = DATE,
) -> None:
    """Explain in Japanese why a household is flagged, or why a rule did not fire.

    Example: engine explain H0000123 --rule 8050
    """
    from engine.screening.explain import UnknownHousehold
    from engine.screening.explain import explain as run_explain

    rs = _rules(rules)
    conn = _connect(workspace, readonly=True)
    when = _date(on) if on is not None else _last_screen_date(conn)
    try:
        typer.echo(run_explain(conn, rs, household_id, when, rule))
    except (UnknownHousehold, KeyError) as err:
        fail(str(err.args[0]))


def _last_screen_date(conn) -> date:
    row = conn.execute("SELECT screened_on FROM screen_runs ORDER BY run_id DESC LIMIT 1").fetchone()
    return date.fromisoformat(row[0]) if row else clock.today()


@app.command()
def summary(workspace: Path = WORKSPACE, rules: Path = RULES, as_json: bool = typer.Option(False, "--json")) -> None:
    """Print households, persons, records, rejects, flags per rule and top areas."""
    from engine.screening.summary import render_summary
    from engine.screening.summary import summary as build

    rs = _rules(rules)
    s = build(_connect(workspace, readonly=True), rs)
    typer.echo(s.model_dump_json(indent=2) if as_json else render_summary(s, rs))


@config_app.command("check")
def config_check(config: Path = CONFIG, rules: Path = RULES) -> None:
    """Check agencies.yaml, conference.yaml, lead_rules.yaml and mail.yaml against each other and the rules.

    Example: engine config check --config configs
    """
    from engine.config.files import ConfigInvalid, load_config

    rs = _rules(rules)
    try:
        cfg = load_config(config, rs)
    except ConfigInvalid as err:
        for p in err.problems:
            typer.echo(str(p), err=True)
        fail(f"{len(err.problems)} problem(s) in {config}; nothing was changed", 1)
    members = sum(a.member for a in cfg.agencies.values())
    typer.echo(
        f"ok: {len(cfg.agencies)} agencies ({members} 支援会議 members), {len(cfg.lead_rules)} lead rules, transport {cfg.mail.transport} (config hash {cfg.hash})"
    )


@app.command()
def run(
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DATE,
    send: bool = typer.Option(True, "--send/--no-send", help="Also send the outbox now (as the 08:00 dispatch would)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run one nightly cycle now: screen, open cases, book meetings, propose leads, write agendas, queue e-mails.

    Example: engine run --workspace workspace --date 2026-11-27
    """
    from engine.workflows.cycle import dispatch, nightly_cycle

    rs = _rules(rules)
    cfg = _config(config, rs)
    when = _date(on)
    conn = _connect(workspace, must_exist=True)
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


@app.command()
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

    cfg = _config(config, _rules(rules))
    result = dispatch(_connect(workspace, must_exist=True), cfg, workspace, _date(on), force=force)
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


BY = typer.Option(None, "--by", help="Who records this (kept in the audit log); default your login name.")


def _actor(by: str | None) -> str:
    from engine.store.lifecycle import default_actor

    return by or default_actor()


def _lifecycle_call(fn, *args, writes: bool = True, **kwargs):
    """Run a lifecycle function; a refusal is a clear message and exit code 1, never a traceback."""
    from engine.casework.handshake import HandshakeError
    from engine.casework.outcome import OutcomeInvalid, OutcomeRefused
    from engine.casework.watch import WatchError
    from engine.store.lifecycle import CaseNotFound, InvalidTransition

    try:
        return fn(*args, **kwargs)
    except OutcomeInvalid as err:
        fail(
            f"the outcome file has {len(err.problems)} problem(s); nothing was recorded:\n"
            + "\n".join(f"  {p}" for p in err.problems),
            1,
        )
    except (OutcomeRefused, HandshakeError, InvalidTransition, CaseNotFound, WatchError) as err:
        fail(f"{err}（何も記録していません）" if writes else str(err), 1)


@app.command()
def outcome(
    meeting: str = typer.Argument(..., help="Meeting id, e.g. M-20261201-1400-S"),
    case: str = typer.Argument(..., help="Case id, e.g. C-2026-00001"),
    file: Path = typer.Option(
        ...,
        "--file",
        "-f",
        help="The outcome YAML (see README: decision, lead, consent, roles, next_evaluation, review_on, reason).",
    ),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
) -> None:
    """Record what a conference decided for a case (会議の結果): plan, close, suspend or continue.

    Example: engine outcome M-20261201-1400-S C-2026-00001 --file outcome.yaml
    """
    from engine.casework.outcome import record_outcome

    if not file.is_file():
        fail(f"--file {file}: no such file (write the outcome as YAML; see README 'Recording an outcome')")
    rs = _rules(rules)
    cfg = _config(config, rs)
    r = _lifecycle_call(
        record_outcome, _connect(workspace, must_exist=True), rs, cfg, meeting, case, file, _date(on), _actor(by)
    )
    from engine.store.lifecycle import STATE_LABELS

    if r.history_only:
        typer.echo(
            f"事案 {r.case_id}: {r.decision} を記録のみ（後の会議の決定が優先、状態は {STATE_LABELS[r.status]} のまま）"
        )
        return
    typer.echo(
        f"事案 {r.case_id}: {r.decision} を記録、状態 {STATE_LABELS[r.status]}、役割 {r.actions} 件"
        + (f"、受諾依頼 {r.lead_request} を送付予定" if r.lead_request else "")
        + (f"、次の会議 {r.meeting_id}" if r.meeting_id else "")
    )


@app.command()
def accept(
    case: str = typer.Argument(..., help="Case id"),
    agency: str | None = typer.Option(
        None, "--agency", help="The agency answering (checked against the pending request)."
    ),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
) -> None:
    """The asked agency accepts to be the case's lead (主担当機関の受諾).

    Example: engine accept C-2026-00001 --agency houkatsu_kita
    """
    from engine.casework.handshake import accept as accept_

    cfg = _config(config, _rules(rules))
    r = _lifecycle_call(accept_, _connect(workspace, must_exist=True), cfg, case, _date(on), _actor(by), agency)
    from engine.store.lifecycle import STATE_LABELS

    typer.echo(f"事案 {r.case_id}: 受諾を記録、状態 {STATE_LABELS[r.status]}")


@app.command()
def decline(
    case: str = typer.Argument(..., help="Case id"),
    reason: str = typer.Option(..., "--reason", help="Why the agency declines (no names)."),
    agency: str | None = typer.Option(
        None, "--agency", help="The agency answering (checked against the pending request)."
    ),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
) -> None:
    """The asked agency declines; the next candidate of the lead rules is asked.

    Example: engine decline C-2026-00001 --reason "担当地区外のため"
    """
    from engine.casework.handshake import decline as decline_
    from engine.store.lifecycle import STATE_LABELS

    rs = _rules(rules)
    cfg = _config(config, rs)
    r = _lifecycle_call(
        decline_, _connect(workspace, must_exist=True), rs, cfg, case, reason, _date(on), _actor(by), agency
    )
    typer.echo(
        f"事案 {r.case_id}: 辞退を記録、"
        + (
            f"次の候補 {r.next_agency} に依頼"
            if r.next_agency
            else "候補がないためコーディネーターに通知し会議で再検討"
        )
        + f"（状態 {STATE_LABELS[r.status]}）"
    )


@app.command()
def watch(
    case: str = typer.Argument(..., help="Case id"),
    result: str = typer.Option(..., "--result", help="stable | concern | lost_contact"),
    agency: str | None = typer.Option(
        None, "--agency", help="The agency answering (default: the lead, or the owner of a routed case)."
    ),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
) -> None:
    """Record the answer to a watch (見守り) or check-back: concern or lost_contact reopens the case.

    Example: engine watch C-2026-00001 --result stable
    """
    from engine.casework.watch import answer_checkpoint

    rs = _rules(rules)
    cfg = _config(config, rs)
    r = _lifecycle_call(
        answer_checkpoint, _connect(workspace, must_exist=True), rs, cfg, case, result, _date(on), _actor(by), agency
    )
    from engine.store.lifecycle import STATE_LABELS

    what = f"確認 {r.checkpoint_id} の結果 {r.result}" if r.checkpoint_id else f"確認日以外の報告（{r.result}）"
    typer.echo(f"事案 {r.case_id}: {what} を記録、状態 {STATE_LABELS[r.status]}")


@app.command()
def contact(
    case: str = typer.Argument(..., help="Case id"),
    agency: str = typer.Option(..., "--agency", help="The agency that was in contact with the household."),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
) -> None:
    """Log a contact with the household (resets the 90-day no-contact watch of a closed case).

    Example: engine contact C-2026-00001 --agency houkatsu_kita --date 2027-02-01
    """
    from engine.casework.handshake import record_contact

    cfg = _config(config, _rules(rules))
    _lifecycle_call(record_contact, _connect(workspace, must_exist=True), cfg, case, agency, _date(on), _actor(by))
    typer.echo(f"事案 {case}: {agency} の接触を記録")


@app.command()
def done(
    action: int = typer.Argument(..., help="Action number (shown by `engine history CASE` and in reminders)"),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
) -> None:
    """Mark an agreed action (役割) done.

    Example: engine done 12
    """
    from engine.casework.handshake import action_done

    cfg = _config(config, _rules(rules))
    case = _lifecycle_call(action_done, _connect(workspace, must_exist=True), cfg, action, _date(on), _actor(by))
    typer.echo(f"役割 {action}（事案 {case}）を完了として記録")


@app.command("history")
def history_(
    case: str = typer.Argument(..., help="Case id"),
    workspace: Path = WORKSPACE,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The audit trail of one case, in Japanese (who, when, why; rule and config versions in --json).

    Example: engine history C-2026-00001
    """
    from engine.casework.history import history, render_history

    entries = _lifecycle_call(history, _connect(workspace, must_exist=True), case, writes=False)
    if as_json:
        typer.echo(json.dumps([e.model_dump() for e in entries], ensure_ascii=False, indent=2))
        return
    typer.echo(render_history(case, entries))


@app.command()
def sweep(
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run the daily sweep now (07:00 flow): reminders, escalations, evaluations, watch, reopen, digest.

    Example: engine sweep --date 2027-01-15
    """
    from engine.casework.sweep import daily_sweep

    rs = _rules(rules)
    cfg = _config(config, rs)
    r = daily_sweep(_connect(workspace, must_exist=True), rs, cfg, _date(on))
    if as_json:
        typer.echo(json.dumps(r.model_dump(), ensure_ascii=False, indent=2))
        return
    typer.echo(
        f"reminders {r.reminders}, escalations {r.escalations}, evaluations booked {r.evaluations_booked}, checkpoints asked {r.checkpoints_asked}, reopened {r.reopened}, digest {'queued' if r.digest else 'none'}, audit violations {r.violations}"
    )


@app.command()
def audit(
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Check that no household is lost; list each gap with household, case and how long. Exit 1 if any.

    Example: engine audit --json
    """
    from engine.casework.audit import render_audit, run_audit

    cfg = _config(config, _rules(rules))
    report = run_audit(_connect(workspace, must_exist=True), cfg, _date(on))
    typer.echo(json.dumps(report.model_dump(), ensure_ascii=False, indent=2) if as_json else render_audit(report))
    if not report.ok:
        raise typer.Exit(1)


@app.command("cases")
def cases_(
    workspace: Path = WORKSPACE,
    on: str | None = DAY,
    status: str | None = typer.Option(
        None,
        "--status",
        help="Only cases in this state (detected, convened, lead_pending, active, closed, archived, routed, suspended, reopened).",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List cases with their state, lead and next dated step (the coordinator's view, local only).

    Example: engine cases --status lead_pending
    """
    from engine.casework.listing import cases
    from engine.store.lifecycle import STATE_LABELS

    CONSENT_LABELS = {"obtained": "取得済", "pending": "未取得", "refused": "拒否"}

    if status and status not in STATE_LABELS:
        fail(f"--status: unknown state '{status}'; one of {', '.join(STATE_LABELS)}")
    rows = cases(_connect(workspace, must_exist=True), _date(on), status)
    if as_json:
        typer.echo(json.dumps([r.model_dump() for r in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("該当する事案はありません")
    for r in rows:
        lead = (r.lead_agency_id or "-") + ("（受諾済）" if r.lead_confirmed_on else "")
        typer.echo(
            f"{r.case_id}  世帯 {r.household_id}  {r.label:<16} 主担当 {lead:<24} 次: {r.next_on or '-'} {r.next_step}"
            + (f"  再開 {r.reopen_count} 回" if r.reopen_count else "")
            + (f"  前の事案 {r.previous_case_id}" if r.previous_case_id else "")
            + (f"  同意 {CONSENT_LABELS.get(r.consent_state, r.consent_state)}" if r.consent_state else "")
        )


@app.command("meetings")
def meetings_(
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DATE,
    all_: bool = typer.Option(False, "--all", help="Include past meetings."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List upcoming meetings and their cases (case ids, lead and invited agencies).

    Example: engine meetings --workspace workspace
    """
    from engine.casework.listing import meetings

    cfg = _config(config, _rules(rules))
    day = _date(on).isoformat()
    rows = meetings(_connect(workspace, must_exist=True), cfg, _date(on), include_past=all_)
    if as_json:
        typer.echo(json.dumps([r.model_dump() for r in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("no upcoming meetings")
    for m in rows:
        typer.echo(
            f"{m.meeting_id}  {m.conference}  {m.held_on} {m.start_time}  {m.place}"
            + ("  (緊急のため追加)" if m.added_for_urgent else "")
            + f"  — {len(m.cases)} 件"
        )
        for c in m.cases:
            typer.echo(
                f"    {c.case_id}  {c.severity:<7} lead {c.lead_agency_id or '-':<20} {', '.join(c.agencies)}"
                + ("  結果記録済" if c.outcome_recorded else ("  結果未記録" if m.held_on < day else ""))
            )


@app.command("agenda")
def agenda_(
    meeting: str = typer.Argument(..., help="Meeting id from `engine meetings`, e.g. M-20261204-1000-S."),
    agency: str | None = typer.Option(None, "--agency", help="Agency id; without it, list the meeting's agendas."),
    html: bool = typer.Option(False, "--html", help="Print the HTML version."),
    workspace: Path = WORKSPACE,
) -> None:
    """Print the latest agenda an agency receives for a meeting (exactly what is e-mailed).

    Example: engine agenda M-20261204-1000-S --agency houkatsu_chuo
    """
    from engine.casework.listing import AgendaNotFound, agenda

    try:
        typer.echo(agenda(_connect(workspace, readonly=True), workspace, meeting, agency, html=html))
    except AgendaNotFound as err:
        fail(str(err))


@app.command("outbox")
def outbox_(
    workspace: Path = WORKSPACE,
    status: str | None = typer.Option(None, "--status", help="pending | sending | sent | failed | superseded"),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Queue every failed message again (after fixing the cause)."
    ),
    retry: list[str] | None = typer.Option(
        None, "--retry", help="Queue this failed message again (its key); repeatable."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show the outbox: counts per status, failures and possible duplicates; queue failed messages again.

    Examples: engine outbox --status failed
              engine outbox --retry-failed     (after fixing the address in agencies.yaml)
    """
    from engine.casework.listing import outbox
    from engine.outbox.mail import retry as requeue

    if status and status not in ("pending", "sending", "sent", "failed", "superseded"):
        fail(f"--status {status}: use pending, sending, sent, failed or superseded")
    if retry_failed or retry:
        n, replaced = requeue(_connect(workspace, must_exist=True), None if retry_failed else list(retry))
        typer.echo(f"{n} failed message(s) queued again; they go out with the next dispatch (`engine send`)")
        if replaced:
            typer.echo(f"{replaced} failed message(s) not queued: a newer version replaced them (now superseded)")
        if retry and n + replaced < len(retry):
            fail(
                f"{len(retry) - n - replaced} of the keys given are not failed messages; see `engine outbox --status failed`",
                1,
            )
        return
    counts, rows = outbox(_connect(workspace, readonly=True), status)
    if as_json:
        typer.echo(
            json.dumps({"counts": counts, "messages": [r.model_dump() for r in rows]}, ensure_ascii=False, indent=2)
        )
        return
    typer.echo("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    for r in rows:
        if status or r.status in ("pending", "failed") or r.possible_duplicate:
            note = " 重複の可能性（送信後・記録前に中断）" if r.possible_duplicate else ""
            typer.echo(
                f"  {r.status:<10} {r.message_key:<48} {r.agency_id:<22} tries {r.attempts} {r.last_error or ''}{note}"
            )


@app.command("serve")
def serve_(
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(4200, "--port", min=1, max=65535),
) -> None:
    """Start a local Prefect server (UI at http://127.0.0.1:4200) and run the schedules: nightly cycle
    02:00, daily sweep 07:00 and agenda dispatch 08:00 on business days, Asia/Tokyo. Stop with Ctrl-C.

    Example: engine serve --workspace workspace
    """
    from engine.workflows.serve import AlreadyServing, serve

    _config(config, _rules(rules))  # refuse to schedule a broken configuration
    _connect(workspace, must_exist=True).close()
    try:
        serve(workspace, rules, config, host=host, port=port)
    except AlreadyServing as err:
        fail(str(err))
    except RuntimeError as err:  # the server would not start
        fail(f"{err}")


def _is_demo_workspace(workspace: Path) -> bool:
    """Empty or absent, or made by `engine demo` and holding only its own town's imports."""
    if not workspace.exists() or not any(workspace.iterdir()):
        return True
    if not (workspace / ".demo").exists():
        return False
    if not db_path(workspace).exists():
        return True
    town = (workspace / "town").resolve()
    conn = connect(workspace, readonly=True)
    try:
        sources = [Path(s).resolve() for (s,) in conn.execute("SELECT source_dir FROM imports")]
    finally:
        conn.close()
    return all(s == town for s in sources)


@app.command()
def demo(
    households: int = typer.Option(5000, "--households", "-n", min=1),
    seed: int = typer.Option(42, "--seed"),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DATE,
    bad_rows: int = typer.Option(5, "--bad-rows", min=0, help="Broken rows to show the rejects report."),
    days: int = typer.Option(
        120,
        "--days",
        min=0,
        max=1000,
        help="Days simulated after the first night (fake clock): outcomes, answers, reminders, watch, relapses. 0: only the first night.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Generate a synthetic town, import it, screen it, convene cases, write agendas and e-mail them to the outbox folder,
    then simulate --days days of the case lifecycle on a fake clock and end with the gap audit.

    Example: engine demo --households 5000 --seed 42 --json
    """
    from engine.demo.run import run_demo

    rs = _rules(rules)
    cfg = _config(config, rs)
    _folder_for_output(workspace, "--workspace")
    if not _is_demo_workspace(workspace):
        fail(f"{workspace} holds data that is not from a demo; pass another --workspace (the demo starts from scratch)")
    marker = workspace / ".demo"
    if workspace.exists():
        shutil.rmtree(workspace)
    workspace.mkdir(parents=True)
    marker.touch(mode=0o600)
    started = clock.monotonic()
    result = run_demo(workspace, rs, cfg, households=households, seed=seed, on=_date(on), bad_rows=bad_rows, days=days)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        typer.echo(result["text"])
    typer.echo(f"(demo took {clock.monotonic() - started:.1f} s; database: {workspace / 'engine.db'})", err=as_json)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
