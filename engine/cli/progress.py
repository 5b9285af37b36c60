"""Progress bars for long commands: a rich bar on stderr when stderr is a terminal, else silence.

`progress_bar()` gives the `engine.support.progress.Progress` callback a command passes to the
engine function (generate_town, import_dir, screen, run_demo), or None when stderr is not a
terminal or the command prints --json: pipes, logs and JSON stay exactly as without a bar.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from engine.support import clock
from engine.support.progress import Progress


@contextmanager
def progress_bar(*, quiet: bool = False) -> Iterator[Progress | None]:
    """A callback drawing one bar per step (`what`) while the block runs; None if `quiet` (--json) or
    stderr is not a terminal. The bars are cleared when the block ends."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bars

    bars = Bars(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        redirect_stdout=False,  # what the engine prints stays on its own stream
        redirect_stderr=False,
        get_time=clock.monotonic,
    )
    tasks: dict[str, int] = {}

    def progress(done: int, total: int, what: str) -> None:
        total_or_unknown = total or None  # 0: not known yet, a pulsing bar
        if what not in tasks:
            tasks[what] = bars.add_task(what, total=total_or_unknown)
        bars.update(tasks[what], completed=done, total=total_or_unknown)

    with bars:
        yield progress
