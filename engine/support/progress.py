"""Progress of long work, as a plain callback: engine functions stay free of any terminal code.

A long step (generate, import, a full screen, the demo's span) takes `progress: Progress | None`
and calls it as `progress(done, total, what)` now and then; `total` may be 0 when unknown. The
CLI passes a callback that draws a bar on a terminal (engine/cli/progress.py) and nothing with
`--json` or when its output is not a terminal.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, done: int, total: int, what: str) -> None: ...


def report(progress: Progress | None, done: int, total: int, what: str) -> None:
    """Call `progress` if there is one."""
    if progress is not None:
        progress(done, total, what)
