"""The one error base: every refusal the engine explains to a person is an EngineError.

An EngineError carries located problems (file, line, field, message, suggestion); the CLI
turns any of them into a message in one place (engine/cli/errors.py), so a command never
ends in a traceback. Internal signals (an SMTP reply classified as temporary, a durable_rules
batch to redo) are not EngineErrors: they never reach a person.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from pydantic import BaseModel


class Problem(BaseModel):
    """One thing wrong, located as precisely as the input allows."""

    file: str | None = None
    line: int | None = None
    field: str = ""
    message: str
    suggestion: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}: " if self.file and self.line else f"{self.file}: " if self.file else ""
        field = f"[{self.field}] " if self.field else ""
        hint = f" — {self.suggestion}" if self.suggestion else ""
        return f"{where}{field}{self.message}{hint}"


class EngineError(Exception):
    """A refusal with its reasons. `exit_code` is what the CLI exits with (1 unless a subclass says otherwise)."""

    exit_code: int = 1

    def __init__(self, message: str = "", problems: Sequence[Problem] = ()):
        self.problems = list(problems)
        super().__init__(message or "\n".join(str(p) for p in self.problems))

    def __reduce__(self):
        """Pickled as it is (a worker process's refusal reaches its parent whole): subclasses take
        other arguments than the message, which Exception's own pickling would pass them."""
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[EngineError], args: tuple, state: dict) -> EngineError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


def closest(word: str, choices: Iterable) -> str | None:
    """The choice closest to a misspelt `word`, if any is close enough (the one did-you-mean of the engine)."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable) -> str | None:
    """A suggestion for a problem: "did you mean 'x'?", or None."""
    match = closest(word, choices)
    return f"did you mean '{match}'?" if match else None
