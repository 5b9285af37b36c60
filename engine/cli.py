"""`engine` command line. Each command parses arguments and calls the function of the same name."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from datetime import date
from pathlib import Path
from typing import Optional

import typer

from engine.db import connect, db_path
from engine.dates import DateError, parse_date

app = typer.Typer(help="重層的支援体制整備事業の支援会議エンジン — screening of silo data with declarative rules.", no_args_is_help=True, add_completion=False)
rules_app = typer.Typer(help="Check and inspect the rule files.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")

WORKSPACE = typer.Option(Path(os.environ.get("ENGINE_WORKSPACE", "workspace")), "--workspace", "-w", help="Folder holding engine.db and reports (env ENGINE_WORKSPACE).")
def _default_rules() -> Path:
    """ENGINE_RULES, else ./configs/rules, else the example rules shipped beside the package."""
    if os.environ.get("ENGINE_RULES"):
        return Path(os.environ["ENGINE_RULES"])
    here = Path("configs/rules")
    return here if here.is_dir() else Path(__file__).resolve().parent.parent / "configs" / "rules"


RULES = typer.Option(_default_rules(), "--rules", help="Folder of rule files (env ENGINE_RULES; default ./configs/rules).")
DATE = typer.Option(None, "--date", help="Screening date, ISO or 和暦 (R8.11.27); default today.")


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _date(text: Optional[str]) -> date:
    if not text:
        return date.today()
    try:
        return parse_date(text)
    except DateError as err:
        fail(f"--date: {err}")


def _rules(path: Path):
    from engine.rules.loader import RulesInvalid, load_rules

    try:
        return load_rules(path)
    except RulesInvalid as err:
        fail(f"the rules in {path} have {len(err.problems)} problem(s); nothing was run:\n" + "\n".join(f"  {p}" for p in err.problems) + f"\nrun `engine rules check --rules {path}` after fixing them")


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
    on: Optional[str] = DATE,
) -> None:
    """Write a synthetic town (same seed → same files).

    Example: engine generate town/ --households 10000 --seed 7
    """
    from engine.generate import generate_town

    if encoding.lower() not in ("utf-8", "utf8", "cp932", "shift_jis", "sjis"):
        fail(f"--encoding {encoding}: use utf-8 or cp932")
    _folder_for_output(out_dir, "OUT_DIR")
    result = generate_town(out_dir, households, seed, today=_date(on), encoding=encoding, bad_rows=bad_rows)
    typer.echo(f"wrote {out_dir}: {result.households:,} households, {result.persons:,} persons, {result.records:,} records")


@app.command("import")
def import_(
    source_dir: Path = typer.Argument(..., help="Folder with households.csv, persons.csv, records.csv."),
    workspace: Path = WORKSPACE,
    encoding: Optional[str] = typer.Option(None, "--encoding", help="Force utf-8 or cp932 (default: detect)."),
) -> None:
    """Import a silo extract; bad rows go to a rejects report, the rest is imported.

    Example: engine import extracts/2026-11/ --workspace workspace
    """
    from engine.importer import ImportRefused, import_dir

    conn = _connect(workspace)
    try:
        result = import_dir(conn, source_dir, encoding=encoding, report_dir=workspace / "reports")
    except ImportRefused as err:
        fail(f"import refused, nothing was written:\n{err}")
    for name, f in result.files.items():
        typer.echo(f"{name}: read {f.read:,}, new {f.inserted:,}, updated {f.updated:,}, unchanged {f.unchanged:,}, rejected {f.rejected:,}")
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
    from engine.vocabulary import CODES

    for c in CODES.values():
        values = ", ".join(c.values) if c.values else ("number" if c.value_type == "amount" else "any text")
        typer.echo(f"{c.code:<24} {c.value_type:<9} {c.title}  [{values}]")


@app.command()
def screen(
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    on: Optional[str] = DATE,
    full: bool = typer.Option(False, "--full", help="Evaluate every household, not only what changed."),
    workers: int = typer.Option(2, "--workers", min=1, help="Processes for a full screen."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Evaluate the rules over the town and store flags with their evidence (incremental by default).

    Example: engine screen --workspace workspace --date 2026-11-27
    """
    from engine.screening import screen as run_screen

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
    rule: Optional[str] = typer.Option(None, "--rule", help="Explain this rule in full, fired or not."),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    on: Optional[str] = DATE,
) -> None:
    """Explain in Japanese why a household is flagged, or why a rule did not fire.

    Example: engine explain H0000123 --rule 8050
    """
    from engine.explain import UnknownHousehold
    from engine.explain import explain as run_explain

    rs = _rules(rules)
    conn = _connect(workspace, readonly=True)
    when = _date(on) if on else _last_screen_date(conn)
    try:
        typer.echo(run_explain(conn, rs, household_id, when, rule))
    except (UnknownHousehold, KeyError) as err:
        fail(str(err.args[0]))


def _last_screen_date(conn) -> date:
    row = conn.execute("SELECT screened_on FROM screen_runs ORDER BY run_id DESC LIMIT 1").fetchone()
    return date.fromisoformat(row[0]) if row else date.today()


@app.command()
def summary(workspace: Path = WORKSPACE, rules: Path = RULES, as_json: bool = typer.Option(False, "--json")) -> None:
    """Print households, persons, records, rejects, flags per rule and top areas."""
    from engine.summary import render_summary
    from engine.summary import summary as build

    rs = _rules(rules)
    s = build(_connect(workspace, readonly=True), rs)
    typer.echo(s.model_dump_json(indent=2) if as_json else render_summary(s, rs))


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
    on: Optional[str] = DATE,
    bad_rows: int = typer.Option(5, "--bad-rows", min=0, help="Broken rows to show the rejects report."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Generate a synthetic town, import it, screen it and print a summary.

    Example: engine demo --households 5000 --seed 42 --json
    """
    from engine.demo import run_demo

    rs = _rules(rules)
    _folder_for_output(workspace, "--workspace")
    if not _is_demo_workspace(workspace):
        fail(f"{workspace} holds data that is not from a demo; pass another --workspace (the demo starts from scratch)")
    marker = workspace / ".demo"
    if workspace.exists():
        shutil.rmtree(workspace)
    workspace.mkdir(parents=True)
    marker.touch()
    started = time.perf_counter()
    result = run_demo(workspace, rs, households=households, seed=seed, on=_date(on), bad_rows=bad_rows)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        typer.echo(result["text"])
    typer.echo(f"(demo took {time.perf_counter() - started:.1f} s; database: {workspace / 'engine.db'})", err=as_json)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
