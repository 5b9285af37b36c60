"""Weighted choice from a fixed table: every draw of the town goes through one of these."""

from __future__ import annotations

from bisect import bisect
from collections.abc import Callable, Iterable
from itertools import accumulate


class Picker:
    """Weighted choice from a fixed table, by bisecting cumulative weights (fast, no copies)."""

    __slots__ = ("items", "cum", "total")

    def __init__(self, table: Iterable[tuple[object, float]]):
        pairs = list(table)
        self.items = [item for item, _ in pairs]
        self.cum = list(accumulate(weight for _, weight in pairs))
        self.total = self.cum[-1]

    def __call__(self, r: Callable[[], float]):
        return self.items[bisect(self.cum, r() * self.total)]
