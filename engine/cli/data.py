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
) -> None:
    """Import a silo extract; bad rows go to a rejects report, the rest is imported.

    Example: engine import extracts/2026-11/ --workspace workspace
    """
    from engine.intake.importer import import_dir

    conn = Inputs(workspace).db(must_exist=False)
    with progress_bar() as progress:
        result = import_dir(conn, source_dir, encoding=encoding, report_dir=workspace / "reports", progress=progress)
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
