"""The nightly cycle and the dispatch as plain functions (engine/workflows/cycle.py): a re-run books and
sends nothing twice; the dispatch waits for a business day."""

from __future__ import annotations

from datetime import date

from engine.outbox import FileTransport
from engine.workflows.cycle import dispatch, nightly_cycle
from tests.helpers.conference import cycle
from tests.helpers.town import ON


def test_rerun_books_nothing_twice_and_sends_nothing_twice(town, workspace, rules, cfg):
    first, sent = cycle(town, workspace, rules, cfg)
    assert first.convene.cases_opened == 3 and first.convene.cases_routed == 1 and sent.sent > 0
    counts = [
        town.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
        for t in ("cases", "meetings", "case_flags", "agendas", "outbox")
    ]
    files = sorted(p.name for p in (workspace / "outbox").iterdir())
    again, resent = cycle(town, workspace, rules, cfg)
    assert again.convene.cases_opened == 0 and again.papers.agendas == 0 and resent.sent == 0
    assert counts == [
        town.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
        for t in ("cases", "meetings", "case_flags", "agendas", "outbox")
    ]
    assert files == sorted(p.name for p in (workspace / "outbox").iterdir())


def test_dispatch_waits_for_a_business_day(town, workspace, rules, cfg):
    nightly_cycle(town, workspace, rules, cfg, ON)
    closed = dispatch(town, cfg, workspace, date(2026, 12, 31), transport=FileTransport(workspace / "outbox"))
    assert not closed.business_day and closed.send is None and "年末年始" in closed.closed_reason
    assert not (workspace / "outbox").exists()
    opened = dispatch(town, cfg, workspace, date(2027, 1, 4), transport=FileTransport(workspace / "outbox"))
    assert opened.send.sent > 0
