"""A night whose papers cannot be written raises, and records nothing for files that are not there:
the papers' transaction rolls back, and the next run writes them in full."""

from __future__ import annotations

import pytest

from engine.papers.write import write_papers
from tests.helpers.town import ON


def test_papers_that_cannot_be_written_leave_no_version_and_no_mail_and_are_written_next_time(
    town, workspace, rules, cfg
):
    """A night whose last file cannot be written raises; no agenda version and no e-mail is recorded,
    of that meeting or of those before it. Once it can be written, the same night's papers are
    written in full."""
    from engine.conference.convene import convene
    from engine.screening.screen import screen

    screen(town, workspace, rules, ON, workers=1)
    convene(town, rules, cfg, ON)
    meetings = [
        m
        for m in town.execute(
            "SELECT DISTINCT m.meeting_id, m.held_on, m.start_time FROM meetings m JOIN cases c ON c.meeting_id = m.meeting_id "
            "WHERE c.is_open = 1 ORDER BY m.held_on, m.start_time, m.meeting_id"
        ).fetchall()
    ]
    assert len(meetings) >= 2, meetings
    # the last file of the run cannot be written: a folder where the last meeting's coordinator copy goes
    blocked = workspace / "agendas" / meetings[-1][0] / "coordinator.v1.html"
    blocked.mkdir(parents=True)
    with pytest.raises(OSError):
        write_papers(town, rules, cfg, workspace, ON)
    assert town.execute("SELECT COUNT(*) FROM agendas").fetchone()[0] == 0
    assert town.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'agenda'").fetchone()[0] == 0
    blocked.rmdir()
    done = write_papers(town, rules, cfg, workspace, ON)
    assert done.agendas > 0
    rows = town.execute("SELECT meeting_id, agency_id, version, folder FROM agendas").fetchall()
    assert len(rows) >= done.agendas
    for meeting_id, agency_id, version, folder in rows:
        ext = ("html",) if agency_id == "coordinator" else ("txt", "html", "ics", "json")
        for e in ext:
            assert (workspace / folder / f"{agency_id}.v{version}.{e}").is_file()
