"""The papers of new meetings built in a second process (engine/papers/ahead.py) are the papers the
write builds itself: the same versions, files and e-mails, in the same order with the same
document numbers, and a meeting with papers already is still compared in this process."""

from __future__ import annotations

import shutil

import pytest

from engine.cli.main import app
from engine.conference.convene import convene
from engine.papers import ahead
from engine.papers.write import write_papers
from engine.screening.screen import screen
from engine.store.db import connect
from tests.helpers.cli import runner
from tests.helpers.paths import ROOT, RULES_DIR
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


def _twins(town, workspace, rules, cfg, tmp_path, monkeypatch):
    """The papers the write builds alone (the outcome) and a second workspace, convened the same,
    for a write with a worker that builds all but the first new meeting's papers."""
    screen(town, workspace, rules, ON, workers=1)
    convene(town, rules, cfg, ON)
    town.commit()
    twin = tmp_path / "twin"
    town.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copytree(workspace, twin)
    monkeypatch.setattr(ahead, "AHEAD_FROM", 10**9)
    write_papers(town, rules, cfg, workspace, ON)
    monkeypatch.setattr(ahead, "AHEAD_FROM", 1)
    monkeypatch.setattr(ahead, "HERE_FIRST", 1)
    monkeypatch.setattr(ahead, "HERE_EVERY", 10**9)
    return _outcome(town, workspace), twin


def _the_same_as_alone_after_the_worker_stopped(twin, rules, cfg, alone) -> None:
    other = connect(twin)
    try:
        done = write_papers(other, rules, cfg, twin, ON)
        assert _outcome(other, twin) == alone and alone[0] and alone[1]
    finally:
        other.close()
    assert done.worker_stopped == "BrokenProcessPool"


def test_a_worker_that_cannot_work_costs_the_night_nothing(town, workspace, rules, cfg, tmp_path, monkeypatch):
    """An error in the worker (here: its database gone from under it) stops it; the write builds the
    papers itself and records exactly what it records alone, and says the worker stopped."""
    alone, twin = _twins(town, workspace, rules, cfg, tmp_path, monkeypatch)
    monkeypatch.setattr("engine.papers.write.database_file", lambda conn: str(twin / "no-such.db"))
    _the_same_as_alone_after_the_worker_stopped(twin, rules, cfg, alone)


def test_a_worker_killed_mid_run_costs_the_night_nothing(town, workspace, rules, cfg, tmp_path, monkeypatch):
    """The OOM killer takes the worker while it builds: the write builds the rest itself, with the
    same versions, files, e-mails and document numbers as alone."""
    alone, twin = _twins(town, workspace, rules, cfg, tmp_path, monkeypatch)
    started = ahead.Ahead.__init__

    def killed(self, *args, **kwargs):
        started(self, *args, **kwargs)
        assert self.active
        for process in list(self._pool._processes.values()):  # spawned, still starting: nothing built yet
            process.kill()
            process.join()

    monkeypatch.setattr(ahead.Ahead, "__init__", killed)
    _the_same_as_alone_after_the_worker_stopped(twin, rules, cfg, alone)


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


def test_the_night_says_in_japanese_that_its_worker_stopped(town, workspace, monkeypatch):
    """`engine run` tells the coordinator that the papers' worker stopped and that nothing is missing."""
    town.commit()
    monkeypatch.setattr(ahead, "AHEAD_FROM", 1)
    monkeypatch.setattr(ahead, "HERE_FIRST", 1)
    monkeypatch.setattr(ahead, "HERE_EVERY", 10**9)
    monkeypatch.setattr("engine.papers.write.database_file", lambda conn: str(workspace / "no-such.db"))
    done = runner.invoke(
        app,
        ["run", "--workspace", str(workspace), "--rules", str(RULES_DIR), "--config", str(ROOT / "configs"),
         "--date", ON.isoformat(), "--no-send"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "作成を分担していた別プロセスが途中で止まりました（BrokenProcessPool）" in done.output
    assert "欠けはありません" in done.output and "Traceback" not in done.output
    assert town.execute("SELECT COUNT(DISTINCT meeting_id) FROM agendas").fetchone()[0] >= 2
