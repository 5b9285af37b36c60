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
# by class name: the refusals the commands have always told, each with its message and exit code
REFUSALS: dict[str, Refusal] = {
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
    "OperationalError": Refusal(exit_code=1, template=BUSY_MESSAGE + "{nothing_recorded}", starts="database is locked"),
}


def refusal(err: BaseException, command: str, params: dict) -> tuple[str, int] | None:
    """The message and exit code for `err` raised by `command`, or None when it is not a refusal (a bug)."""
    for cls in type(err).__mro__:
        told = REFUSALS.get(cls.__name__) if cls.__module__.split(".")[0] in ("engine", "builtins", "sqlite3") else None
        if told is not None and told.command in (None, command) and str(err).startswith(told.starts or ""):
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
        guard_all(group.typer_instance, f"{prefix}{group.name} ")
