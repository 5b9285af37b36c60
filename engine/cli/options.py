"""The options the commands share, and what they share before their work: read the rules, the
configuration and --date, open the workspace (`Inputs`). Refusals are told by engine/cli/errors.py."""

from __future__ import annotations

import sqlite3
from datetime import date
from functools import cached_property
from pathlib import Path

import typer

from engine.cli.errors import fail
from engine.config.bound import Bound
from engine.store.db import connect, db_path
from engine.support import clock
from engine.support.dates import parse_date
from engine.support.settings import Settings

DEFAULTS = Settings()  # ENGINE_WORKSPACE, ENGINE_RULES, ENGINE_CONFIG, read once at start-up

WORKSPACE = typer.Option(
    DEFAULTS.workspace,
    "--workspace",
    "-w",
    help="Folder holding engine.db and reports (env ENGINE_WORKSPACE).",
)
CONFIG = typer.Option(
    DEFAULTS.config,
    "--config",
    help="Folder with agencies.yaml, conference.yaml, lead_rules.yaml, mail.yaml and (optional) lifecycle.yaml (env ENGINE_CONFIG; default ./configs).",
)
RULES = typer.Option(
    DEFAULTS.rules, "--rules", help="Folder of rule files (env ENGINE_RULES; default ./configs/rules)."
)
DATE = typer.Option(None, "--date", help="Screening date, ISO or 和暦 (R8.11.27); default today in Japan.")
DAY = typer.Option(
    None, "--date", help="The day this happened or is checked for, ISO or 和暦 (R8.11.27); default today in Japan."
)
BY = typer.Option(
    None,
    "--by",
    help="Who records this (kept in the audit log); default your login name. nightly, sweep, dispatch are the engine's.",
)
BACKDATE = typer.Option(
    None,
    "--backdate-reason",
    help="Why this is recorded late: needed for a --date before the last nightly cycle; kept in the audit log.",
)
JSON = typer.Option(False, "--json")

FIRST_YEAR, LAST_YEAR = 1900, 2199  # months and business days are added to the date: keep far from date.max


def parse_day(text: str | None) -> date:
    """The --date option: absent means today in Japan; an explicit empty value is an error (an
    unset shell variable must not silently mean today)."""
    if text is None:
        return clock.today()
    when = parse_date(text)  # a DateError is told as `--date: …`
    if not FIRST_YEAR <= when.year <= LAST_YEAR:
        fail(
            f"--date: {when.isoformat()} is outside the years the engine works with ({FIRST_YEAR}–{LAST_YEAR}); check the year"
        )
    return when


def actor(by: str | None) -> str:
    """The --by option: who records this, by default the login name."""
    from engine.store.lifecycle import default_actor, person_actor

    return default_actor() if by is None else person_actor(by)


def folder_for_output(path: Path, option: str) -> None:
    if path.exists() and not path.is_dir():
        fail(f"{option} {path} is a file; give a folder")


SQLITE_HEADER = b"SQLite format 3\x00"


def file_for_output(path: Path, option: str) -> None:
    """A file a command may write its output to: not a folder, in a folder (not under a file), and
    never a database — a report written over a workspace's engine.db would erase every case."""
    if path.is_dir():
        fail(f"{option} {path} is a folder; give a file name (e.g. {option} {path / 'report.csv'})")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        fail(f"{option} {path}: {parent} is a file, not a folder; give a file in a folder")
    database = path.name.startswith("engine.db") or path.suffix in (".db", ".sqlite", ".sqlite3")
    if path.is_file() and not database:
        try:
            with path.open("rb") as f:
                database = f.read(len(SQLITE_HEADER)) == SQLITE_HEADER
        except OSError:
            pass
    if database:
        fail(
            f"{option} {path} is a database (a workspace's engine.db?); the engine never writes a report over it:"
            f" give the output its own file name (e.g. {option} {path.with_name('report.csv')})"
        )


class Inputs(Bound):
    """The workspace, rules, configuration and day a command works on, each read when first used.

    A command uses them in the order it checks them: the first one that is wrong is the one told.
    """

    def __init__(self, workspace: Path, rules: Path | None = None, config: Path | None = None, on: str | None = None):
        self.workspace, self.rules_dir, self.config_dir, self.on = workspace, rules, config, on

    @cached_property
    def day(self) -> date:
        return parse_day(self.on)

    def run_day(self, conn: sqlite3.Connection, what: str) -> date:
        """--date of a run (cycle, screen, sweep, send): not before the last nightly cycle, nor ahead of today."""
        from engine.store.chronology import check_run, horizon

        check_run(conn, self.day, what, not_after=horizon(conn))
        return self.day

    def dating(self, conn: sqlite3.Connection, backdate_reason: str | None = None):
        """How a recorded event's --date is checked: at most a few days ahead, back-dated only with a reason."""
        from engine.store.chronology import Dating, horizon

        return Dating(not_after=horizon(conn), backdate_reason=backdate_reason)

    def db(self, *, readonly: bool = False, must_exist: bool = True) -> sqlite3.Connection:
        """Open the workspace's database; `must_exist` refuses a workspace without one (a typo in --workspace)."""
        workspace = self.workspace
        if workspace.exists() and not workspace.is_dir():
            fail(f"--workspace {workspace} is a file; give a folder")
        if must_exist and not db_path(workspace).exists():
            fail(
                f"no database at {db_path(workspace)}: check --workspace, or run `engine import` (or `engine demo`) first"
            )
        return connect(workspace, readonly=readonly)  # a FileNotFoundError (read-only, no database) is told as is
