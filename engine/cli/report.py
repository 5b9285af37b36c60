"""The national figures from the command line: `engine report --month 2027-03 [--year 2026]
[--format text|csv|xlsx|json] [--out FILE]`, and `engine report --trace FIGURE --month …` (the
ids counted in one figure). Read-only. docs/report.md."""

from __future__ import annotations

from pathlib import Path

import typer

from engine.cli.errors import fail
from engine.cli.options import CONFIG, RULES, WORKSPACE, Inputs, file_for_output

commands = typer.Typer()
FORMATS = ("text", "csv", "xlsx", "json")


@commands.command()
def report(
    month: str | None = typer.Option(None, "--month", help="The month reported: 2027-03."),
    year: str | None = typer.Option(
        None, "--year", help="The fiscal year (年度, April–March) by its first year: 2026 for 令和8年度."
    ),
    fmt: str = typer.Option("text", "--format", help="text | csv | xlsx | json."),
    out: Path | None = typer.Option(None, "--out", help="The file to write (csv and xlsx need it)."),
    trace_id: str | None = typer.Option(
        None, "--trace", help="List the ids (cases, meetings, places) counted in this figure."
    ),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
) -> None:
    """The figures a municipality reports (国への報告), each per 100,000 residents against its target
    (report.yaml in the configuration folder; optional).

    Example: engine report --month 2027-03 --year 2026 --format xlsx --out 報告_2027-03.xlsx
    """
    from engine.report.build import build_report, month_period, trace, year_period
    from engine.report.figures import BY_ID, Context
    from engine.report.model import load_report
    from engine.report.render import render_json, render_text, render_trace, write_report
    from engine.support.errors import did_you_mean

    if fmt not in FORMATS:
        fail(f"--format {fmt}: one of {', '.join(FORMATS)}")
    if month is None and year is None:
        fail("give --month 2027-03 and/or --year 2026 (年度)")
    if fmt in ("csv", "xlsx") and out is None:
        fail(f"--format {fmt} needs --out FILE")
    if out is not None:
        file_for_output(out, "--out")
    periods = [p for p in (month and month_period(month), year and year_period(year)) if p]
    settings = load_report(config)
    given = Inputs(workspace, rules, config)
    places = given.config.participation.places
    conn = given.db(readonly=True)
    try:
        ctx = Context(conn, places, settings.community_categories)
        if trace_id is not None:
            if trace_id not in BY_ID:
                hint = did_you_mean(trace_id, BY_ID)
                fail(f"--trace {trace_id}: no such figure" + (f" ({hint})" if hint else "") + "; ids: docs/report.md")
            text = "".join(render_trace(trace_id, p.label, *trace(ctx, trace_id, p)) for p in periods)
            _emit(text, out)
            return
        reports = [build_report(ctx, settings, p) for p in periods]
    finally:
        conn.close()
    if fmt in ("csv", "xlsx"):
        written = write_report(reports, fmt, out)
        typer.echo(f"wrote {written}")
    elif fmt == "json":
        _emit(render_json(reports), out)
    else:
        _emit("\n".join(render_text(r) for r in reports), out)


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
        return
    from engine.support.private_files import write_private

    write_private(out, text)
    typer.echo(f"wrote {out}")
