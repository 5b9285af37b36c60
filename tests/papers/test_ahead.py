"""The papers of new meetings built in a second process (engine/papers/ahead.py) are the papers the
write builds itself: the same versions, files and e-mails, in the same order with the same
document numbers, and a meeting with papers already is still compared in this process."""

from __future__ import annotations

import shutil

import pytest

from engine.conference.convene import convene
from engine.papers import ahead
from engine.papers.write import write_papers
from engine.screening.screen import screen
from engine.store.db import connect
from tests.helpers.town import ON


def _outcome(conn, workspace):
    agendas = conn.execute(
        "SELECT meeting_id, agency_id, version, content_hash FROM agendas ORDER BY meeting_id, agency_id, version"
    ).fetchall()
    outbox = conn.execute("SELECT message_key, agency_id, subject, parts FROM outbox ORDER BY message_key").fetchall()
    numbers = conn.execute("SELECT * FROM document_numbers").fetchall()
    files = {
        str(p.relative_to(workspace)): p.read_bytes() for p in sorted((workspace / "agendas").rglob("*")) if p.is_file()
    }
    return agendas, outbox, numbers, files


def test_the_worker_builds_the_same_papers_as_the_write(town, workspace, rules, cfg, tmp_path, monkeypatch):
    screen(town, workspace, rules, ON, workers=1)
    convene(town, rules, cfg, ON)
    town.commit()
    meetings = town.execute("SELECT COUNT(DISTINCT meeting_id) FROM cases WHERE meeting_id IS NOT NULL").fetchone()[0]
    assert meetings >= 2
    twin = tmp_path / "twin"
    town.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copytree(workspace, twin)
    built = []
    monkeypatch.setattr(ahead, "AHEAD_FROM", 10**9)
    write_papers(town, rules, cfg, workspace, ON)
    alone = _outcome(town, workspace)
    monkeypatch.setattr(ahead, "AHEAD_FROM", 1)
    monkeypatch.setattr(ahead, "HERE_FIRST", 0)
    monkeypatch.setattr(ahead, "HERE_EVERY", 2)  # this process builds every other meeting
    take = ahead.Ahead.take

    def counted(self, meeting_id):
        papers = take(self, meeting_id)
        built.append(papers is not None)
        return papers

    monkeypatch.setattr(ahead.Ahead, "take", counted)
    other = connect(twin)
    try:
        write_papers(other, rules, cfg, twin, ON)
        assert _outcome(other, twin) == alone and alone[0] and alone[1]
    finally:
        other.close()
    assert built == [i % 2 == 1 for i in range(meetings)]  # True: the worker's papers


def test_a_worker_that_fails_fails_the_write_and_nothing_is_recorded(town, workspace, rules, cfg, monkeypatch):
    """An error in the worker (here: its database gone from under it) reaches the write, which
    records no version and no e-mail."""
    screen(town, workspace, rules, ON, workers=1)
    convene(town, rules, cfg, ON)
    town.commit()
    monkeypatch.setattr(ahead, "AHEAD_FROM", 1)
    monkeypatch.setattr(ahead, "HERE_FIRST", 0)
    monkeypatch.setattr(ahead, "HERE_EVERY", 10**9)  # the worker builds all but the first
    monkeypatch.setattr("engine.papers.write._database", lambda conn: str(workspace / "no-such.db"))
    from concurrent.futures.process import BrokenProcessPool

    with pytest.raises(BrokenProcessPool):
        write_papers(town, rules, cfg, workspace, ON)
    assert town.execute("SELECT COUNT(*) FROM agendas").fetchone()[0] == 0
    assert town.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0


def test_inside_a_transaction_the_caller_holds_no_worker_builds(town, workspace, rules, cfg, monkeypatch):
    """A worker reads what is committed: inside a transaction the caller holds, with writes of its
    own not committed yet, the write builds every paper itself (and sees those writes)."""
    screen(town, workspace, rules, ON, workers=1)
    convene(town, rules, cfg, ON)
    town.commit()
    monkeypatch.setattr(ahead, "AHEAD_FROM", 1)
    monkeypatch.setattr(ahead, "HERE_FIRST", 0)
    monkeypatch.setattr(ahead, "HERE_EVERY", 10**9)
    started = []
    monkeypatch.setattr(ahead, "ProcessPoolExecutor", lambda *a, **k: started.append(1) or pytest.fail("a worker"))
    town.execute("BEGIN IMMEDIATE")
    (meeting,) = town.execute("SELECT meeting_id FROM cases WHERE meeting_id IS NOT NULL LIMIT 1").fetchone()
    town.execute("UPDATE meetings SET place = '臨時会場（未確定）' WHERE meeting_id = ?", (meeting,))
    write_papers(town, rules, cfg, workspace, ON)
    town.commit()
    assert not started
    text = (workspace / "agendas" / meeting).glob("*.v1.txt")
    assert any("臨時会場（未確定）" in p.read_text(encoding="utf-8") for p in text)


def test_without_a_process_to_start_the_write_builds_every_paper_itself(town, workspace, rules, cfg, monkeypatch):
    """Where no process can be started (a limit on processes, no /dev/shm), the night is not lost:
    the write builds every paper itself."""
    screen(town, workspace, rules, ON, workers=1)
    convene(town, rules, cfg, ON)
    town.commit()
    monkeypatch.setattr(ahead, "AHEAD_FROM", 1)
    monkeypatch.setattr(ahead, "HERE_FIRST", 0)

    def refused(*a, **k):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(ahead, "ProcessPoolExecutor", refused)
    done = write_papers(town, rules, cfg, workspace, ON)
    assert done.agendas > 0 and town.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'agenda'").fetchone()[0] > 0
