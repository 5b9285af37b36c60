"""地域づくり from the command line: `engine areas`, the area view (engine/region, docs/community.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from engine.cli.errors import fail
from engine.cli.options import CONFIG, RULES, WORKSPACE, Inputs, file_for_output

commands = typer.Typer()
FORMATS = ("text", "csv", "xlsx", "json")


@commands.command("areas")
def areas(
    on: str | None = typer.Option(
        None,
        "--date",
        help="The last day of the view, ISO or 和暦 (R8.11.27); default the workspace's today.",
    ),
    months: int = typer.Option(
        12, "--months", min=1, max=120, help="Calendar months up to --date (its month included)."
    ),
    fmt: str = typer.Option("text", "--format", help="text | csv | xlsx | json"),
    out: Path | None = typer.Option(None, "--out", help="Write to this file (needed for xlsx); default: print."),
    config: Path = CONFIG,
    rules: Path = RULES,
    workspace: Path = WORKSPACE,
) -> None:
    """地区別の状況: per area and month, flagged households per 1,000 by pattern, cases opened and the
    median business days from flag to first conference, needs without a place, declines by reason,
    places and free capacity now, and the ranked 資源開発の候補. Households are counted, never named.

    Example: engine areas --months 6 --format xlsx --out areas.xlsx
    """
    from engine.region.view import area_view, csv_of, json_of, text_of, write_csv_file, write_xlsx_file
    from engine.store.chronology import workspace_today

    if fmt not in FORMATS:
        fail(f"--format {fmt}: use {', '.join(FORMATS)}")
    if fmt == "xlsx" and out is None:
        fail("--format xlsx: give the file with --out (e.g. --out areas.xlsx)")
    if out is not None:
        file_for_output(out, "--out")
    given = Inputs(workspace, rules, config, on)
    cfg = given.config
    conn = given.db(readonly=True)
    try:
        day = given.day if on is not None else workspace_today(conn)
        view = area_view(conn, cfg, given.rules, day, months)
    finally:
        conn.close()
    if fmt == "xlsx":
        typer.echo(
            f"{write_xlsx_file(out, view)}: {len(view.figures.areas)} 地区、資源開発の候補 {len(view.candidates)} 件"
        )
        return
    if fmt == "csv" and out is not None:
        typer.echo(
            f"{write_csv_file(out, view)}: {len(view.figures.areas)} 地区、資源開発の候補 {len(view.candidates)} 件"
        )
        return
    text = {"text": text_of, "csv": csv_of, "json": json_of}[fmt](view)
    if out is None:
        typer.echo(text, nl=False)
        return
    from engine.support.private_files import write_private

    write_private(out, text)
    typer.echo(f"{out}: {len(view.figures.areas)} 地区、資源開発の候補 {len(view.candidates)} 件")
