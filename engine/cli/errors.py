"""The one place where a refusal becomes a message on stderr and an exit code (never a traceback).

Every command is wrapped by `guard` (engine/cli/main.py does it for the whole app). An exception a
command lets through is looked up along its MRO in REFUSALS, which keeps the message and exit code
each refusal has always had; any other EngineError (CommandRefused, raised by `fail`, among them)
says its message and exits with its `exit_code`. Anything else is a bug and keeps its traceback.
Classes are named (engine or built-in classes only), not imported: reading the table loads nothing
(AlreadyServing's module loads Prefect), and a class moving to another module keeps its entry.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import NoReturn

import typer
from pydantic import BaseModel

from engine.store.db import BUSY_MESSAGE
from engine.support.errors import EngineError

NOTHING_RECORDED = "（何も記録していません）"


class CommandRefused(EngineError):
    """A refusal of the command line itself: a bad option value, a missing database, a busy outbox."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str, code: int = 2) -> NoReturn:
    """Refuse: `error: message` on stderr, exit `code`."""
    raise CommandRefused(message, code)


def report_problems(problems: Iterable[object], summary: str) -> NoReturn:
    """The end of a failed check: each problem on its own stderr line, then the summary; exit 1."""
    for p in problems:
        typer.echo(str(p), err=True)
    fail(summary, 1)


class Refusal(BaseModel):
    """How one kind of refusal is told: a message template and the exit code.

    The template may use {err} (the exception's text), {arg} (its first argument), {count} and
    {problems} (its located problems, one indented line each), {nothing_recorded} (said by the
    commands that record something: those with --by) and the command's own parameters ({rules},
    {config}).
    """

    exit_code: int
    template: str = "{err}"
    command: str | None = None  # only for this command (a built-in exception type caught there alone)
    starts: str | None = None  # only when the exception's text starts so (one kind of a library's error)
    attribute: str | None = None  # only when the exception has this attribute set (an OSError's filename)

    def message(self, err: BaseException, params: dict) -> str:
        problems = getattr(err, "problems", [])
        return self.template.format_map(
            params
            | {
                "err": err,
                "arg": err.args[0] if err.args else err,
                "count": len(problems),
                "problems": "\n".join(f"  {p}" for p in problems),
                "nothing_recorded": NOTHING_RECORDED if "by" in params else "",
            }
        )


LIFECYCLE = Refusal(exit_code=1, template="{err}{nothing_recorded}")
WORKSPACE_DB = "the workspace's database (engine.db)"
DAMAGED = (
    f"{WORKSPACE_DB} is damaged or is not an engine database; nothing was changed. Restore the last"
    " backup (docs/operations.md, バックアップ) or give the right workspace with --workspace"
)
NO_SPACE = "the disk is full; nothing of this command was kept. Free space, then run it again"
READ_ONLY = f"{WORKSPACE_DB} may only be read (its file or folder is read-only); check their owner and permissions"
CANNOT_OPEN = (
    f"{WORKSPACE_DB} cannot be opened (a read-only folder, or missing permissions); check the workspace folder"
)
# by class name: the refusals the commands have always told, each with its message and exit code
REFUSALS: dict[str, Refusal | tuple[Refusal, ...]] = {
    "DateError": Refusal(exit_code=2, template="--date: {err}"),
    "OutcomeInvalid": Refusal(
        exit_code=1, template="the outcome file has {count} problem(s); nothing was recorded:\n{problems}"
    ),
    "ConfigInvalid": Refusal(
        exit_code=2,
        template="the configuration in {config} has {count} problem(s); nothing was run:\n{problems}"
        "\nrun `engine config check --config {config}` after fixing them",
    ),
    "RulesInvalid": Refusal(
        exit_code=2,
        template="the rules in {rules} have {count} problem(s); nothing was run:\n{problems}"
        "\nrun `engine rules check --rules {rules}` after fixing them",
    ),
    "ImportRefused": Refusal(exit_code=2, template="import refused, nothing was written:\n{err}"),
    "OutcomeRefused": LIFECYCLE,
    "HandshakeError": LIFECYCLE,
    "WatchError": LIFECYCLE,
    "InvalidTransition": LIFECYCLE,
    "CaseNotFound": LIFECYCLE,
    "CorrectionRefused": LIFECYCLE,
    "UnknownHousehold": Refusal(exit_code=2, template="{arg}"),
    "KeyError": Refusal(exit_code=2, template="{arg}", command="explain"),  # an unknown --rule
    "AgendaNotFound": Refusal(exit_code=2),
    "AlreadyServing": Refusal(exit_code=2),
    "RuntimeError": Refusal(exit_code=2, command="serve"),  # the Prefect server would not start
    "FileNotFoundError": Refusal(exit_code=2),  # no database to read (engine.store.db.connect)
    # another command held the write lock longer than engine.store.db.BUSY_TIMEOUT_S
    "OperationalError": (
        Refusal(exit_code=1, template=BUSY_MESSAGE + "{nothing_recorded}", starts="database is locked"),
        # the machine, not the engine: a full disk, a read-only or unreadable workspace
        Refusal(exit_code=1, template=f"{{err}}: {NO_SPACE}{{nothing_recorded}}", starts="database or disk is full"),
        Refusal(
            exit_code=1, template=f"{{err}}: {READ_ONLY}{{nothing_recorded}}", starts="attempt to write a readonly"
        ),
        Refusal(exit_code=2, template=f"{{err}}: {CANNOT_OPEN}", starts="unable to open database file"),
        Refusal(exit_code=1, template=f"{{err}}: {DAMAGED}{{nothing_recorded}}", starts="disk I/O error"),
    ),
    "DatabaseError": (
        Refusal(exit_code=2, template=f"{{err}}: {DAMAGED}", starts="database disk image is malformed"),
        Refusal(exit_code=2, template=f"{{err}}: {DAMAGED}", starts="file is not a database"),
    ),
    # a file or folder the command reads or writes (--out, a workspace, an export folder): not the engine's fault
    "OSError": Refusal(
        exit_code=2,
        template="{err.filename}: {err.strerror}; give a path the engine can use (a folder you may write to,"
        " not a file in a folder's place) or fix its permissions{nothing_recorded}",
        attribute="filename",
    ),
}


def refusal(err: BaseException, command: str, params: dict) -> tuple[str, int] | None:
    """The message and exit code for `err` raised by `command`, or None when it is not a refusal (a bug)."""
    for cls in type(err).__mro__:
        found = (
            REFUSALS.get(cls.__name__) if cls.__module__.split(".")[0] in ("engine", "builtins", "sqlite3") else None
        )
        for told in found if isinstance(found, tuple) else (found,) if found else ():
            if (
                told.command in (None, command)
                and str(err).startswith(told.starts or "")
                and (told.attribute is None or getattr(err, told.attribute, None))
            ):
                return told.message(err, params), told.exit_code
    if isinstance(err, EngineError):
        return str(err), err.exit_code
    return None


def guard(callback: Callable, command: str) -> Callable:
    """`callback` with its refusals told as `error: message` on stderr and an exit code."""

    @functools.wraps(callback)
    def guarded(**params):
        try:
            return callback(**params)
        except (typer.Exit, typer.Abort):  # a command's own exit (RuntimeErrors too): not a refusal
            raise
        except Exception as err:
            told = refusal(err, command, params)
            if told is None:
                raise
            typer.echo(f"error: {told[0]}", err=True)
            raise typer.Exit(told[1]) from None

    return guarded


def guard_all(app: typer.Typer, prefix: str = "") -> None:
    """Wrap every command of `app` and of its groups with `guard` (once, at start-up)."""
    for info in app.registered_commands:
        name = info.name or info.callback.__name__
        info.callback = guard(info.callback, f"{prefix}{name}")
    for group in app.registered_groups:
        sub = group.typer_instance
        if sub.registered_callback is not None and sub.registered_callback.callback is not None:
            # a group that does something without a subcommand (`engine backlog`): its callback too
            sub.registered_callback.callback = guard(sub.registered_callback.callback, f"{prefix}{group.name}")
        guard_all(sub, f"{prefix}{group.name} ")
