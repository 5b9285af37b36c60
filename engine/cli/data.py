"""The town's data: generate a synthetic extract, import one, screen it, explain and summarise the flags."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from engine.cli.errors import fail
from engine.cli.options import DATE, JSON, RULES, WORKSPACE, Inputs, folder_for_output, parse_day
from engine.cli.progress import progress_bar
from engine.support import clock

commands = typer.Typer()


@commands.command()
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
    from engine.demo.town import generate_town

    if encoding.lower() not in ("utf-8", "utf8", "cp932", "shift_jis", "sjis"):
        fail(f"--encoding {encoding}: use utf-8 or cp932")
    folder_for_output(out_dir, "OUT_DIR")
    when = parse_day(on)
    with progress_bar() as progress:
        result = generate_town(
            out_dir, households, seed, today=when, encoding=encoding, bad_rows=bad_rows, progress=progress
        )
    typer.echo(
        f"wrote {out_dir}: {result.households:,} households, {result.persons:,} persons, {result.records:,} records"
    )


@commands.command("import")
def import_(
    source_dir: Path = typer.Argument(..., help="Folder with households.csv, persons.csv, records.csv."),
    workspace: Path = WORKSPACE,
    encoding: str | None = typer.Option(
        None,
        "--encoding",
        help="Force utf-8, utf-8-sig, cp932, shift_jis, euc-jp or iso-2022-jp (default: detect UTF-8 or CP932).",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Say what the import would add, update, end, re-open and blank; write nothing."
    ),
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help="The day the silo took the extract, ISO or 和暦 (default: the date of its newest file).",
    ),
    allow_older: bool = typer.Option(False, "--allow-older", help="Import an extract older than the last one."),
    allow_reopen: bool = typer.Option(False, "--allow-reopen", help="Let the extract re-open ended records."),
    allow_blank: bool = typer.Option(
        False, "--allow-blank", help="Let the extract empty a filled column (name, kana, address, …) for many rows."
    ),
) -> None:
    """Import a silo extract; bad rows go to a rejects report, the rest is imported.

    An extract older than the last one, or one that would re-open ended records or empty a filled
    column for many rows, is refused (nothing written) unless an --allow-… option says otherwise.

    Example: engine import extracts/2026-11/ --workspace workspace --dry-run
    """
    from engine.intake.importer import Allow, import_dir

    dated = _as_of(as_of)
    allow = Allow(older=allow_older, reopen=allow_reopen, blank=allow_blank)
    conn = _dry_run_db(workspace) if dry_run else Inputs(workspace).db(must_exist=False)
    reports = None if dry_run else workspace / "reports"
    with progress_bar() as progress:
        result = import_dir(
            conn, source_dir, encoding=encoding, report_dir=reports, progress=progress, as_of=dated, allow=allow,
            dry_run=dry_run,
        )  # fmt: skip
    last = f"; the last imported extract: {result.last_extract_date}" if result.last_extract_date else ""
    typer.echo(f"extract dated {result.extract_date} ({result.extract_dated_by}){last}")
    for name, f in result.files.items():
        c = result.changes[name]
        done = [f"ended {c.ended:,}"] if c.ended else []
        done += [f"re-opened {c.reopened:,}"] if c.reopened else []
        done += [f"blanked {', '.join(f'{col} {n:,} row(s)' for col, n in c.blanked.items())}"] if c.blanked else []
        typer.echo(
            f"{name}: read {f.read:,}, new {f.inserted:,}, updated {f.updated:,}, unchanged {f.unchanged:,}, rejected {f.rejected:,}"
            + "".join(f"; {d}" for d in done)
        )
    for w in result.warnings:
        typer.echo(f"warning: {w}")
    if result.rejects:
        report = "not written (dry run)" if dry_run else result.report_path
        typer.echo(f"{result.total_rejected:,} rejected row(s); report: {report}")
        for r in result.rejects[:10]:
            typer.echo(f"  {r.file}:{r.line} [{r.field}] {r.reason}")
    if dry_run:
        verdict = "a real import would be refused:" if result.refusals else "a real import would go through"
        typer.echo(f"dry run, nothing was written; {verdict}")
        for line in result.refusals:
            typer.echo(f"  {line}")


def _as_of(text: str | None) -> date | None:
    """The --as-of option: a day, not after today."""
    from engine.support.dates import DateError, parse_date

    if text is None:
        return None
    try:
        when = parse_date(text)
    except DateError as e:
        fail(f"--as-of: {e}")
    if when > clock.today():
        fail(f"--as-of: {when} is after today ({clock.today()}); give the day the silo took the extract")
    return when


def _dry_run_db(workspace: Path):
    """The workspace's database, or an empty one in memory when there is none yet: a dry run creates nothing."""
    import sqlite3

    from engine.store.db import db_path
    from engine.store.migrations import migrate

    if db_path(workspace).exists() or (workspace.exists() and not workspace.is_dir()):
        return Inputs(workspace).db()
    conn = sqlite3.connect(":memory:")
    migrate(conn)
    return conn


@commands.command()
def screen(
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    on: str | None = DATE,
    full: bool = typer.Option(False, "--full", help="Evaluate every household, not only what changed."),
    workers: int = typer.Option(2, "--workers", min=1, help="Processes for a full screen."),
    as_json: bool = JSON,
) -> None:
    """Evaluate the rules over the town and store flags with their evidence (incremental by default).

    Example: engine screen --workspace workspace --date 2026-11-27
    """
    from engine.screening.screen import screen as run_screen

    given = Inputs(workspace, rules, on=on)
    rs, when, conn = given.rules, given.day, given.db()
    given.run_day(conn, "screen")
    with progress_bar(quiet=as_json or not full) as progress:
        result = run_screen(conn, workspace, rs, when, full=full, workers=workers, progress=progress)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    typer.echo(
        f"{result.mode} screen on {result.screened_on}: {result.scope:,} households in scope, {result.candidates:,} evaluated by the rules, "
        f"{result.flags_opened:,} new flags, {result.flags_resolved:,} resolved ({result.seconds:.2f} s)"
    )


@commands.command()
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
    from engine.screening.explain import explain as run_explain

    given = Inputs(workspace, rules, on=on)
    rs, conn = given.rules, given.db(readonly=True, must_exist=False)
    when = given.day if on is not None else _last_screen_date(conn)
    typer.echo(run_explain(conn, rs, household_id, when, rule))


def _last_screen_date(conn) -> date:
    row = conn.execute("SELECT screened_on FROM screen_runs ORDER BY run_id DESC LIMIT 1").fetchone()
    return date.fromisoformat(row[0]) if row else clock.today()


@commands.command()
def summary(workspace: Path = WORKSPACE, rules: Path = RULES, as_json: bool = JSON) -> None:
    """Print households, persons, records, rejects, flags per rule and top areas.

    Example: engine summary --json
    """
    from engine.screening.summary import render_summary
    from engine.screening.summary import summary as build

    given = Inputs(workspace, rules)
    rs = given.rules
    s = build(given.db(readonly=True, must_exist=False), rs)
    typer.echo(s.model_dump_json(indent=2) if as_json else render_summary(s, rs))
