"""private_files.Writer: the night's papers are written on a thread of their own; every file is on
disk, owner-only, when the block ends, and a failed write fails the block before anything that
records the files is committed (the papers' transaction rolls back)."""

from __future__ import annotations

import os
import stat

import pytest

from engine.papers.write import write_papers
from engine.support.private_files import Writer
from tests.helpers.town import ON


def test_every_file_is_written_owner_only_when_the_block_ends(tmp_path):
    old = os.umask(0o022)
    try:
        with Writer(queued=4) as files:
            for i in range(50):
                files.write(tmp_path / "m" / f"{i}.txt", f"第{i}版")
            files.write(tmp_path / "m" / "b.bin", b"\x00\x01")
    finally:
        os.umask(old)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == sorted([*(f"{i}.txt" for i in range(50)), "b.bin"])
    assert (tmp_path / "m" / "7.txt").read_text(encoding="utf-8") == "第7版"
    assert (tmp_path / "m" / "b.bin").read_bytes() == b"\x00\x01"
    assert stat.S_IMODE((tmp_path / "m").stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "m").iterdir()} == {0o600}


def test_a_failed_write_is_raised_when_the_block_ends_and_nothing_after_it_is_written(tmp_path):
    (tmp_path / "taken").write_text("a file where a folder is wanted")
    with pytest.raises(OSError) as raised:
        with Writer() as files:
            files.write(tmp_path / "ok" / "first.txt", "1")
            files.write(tmp_path / "taken" / "agenda.txt", "2")
            files.write(tmp_path / "ok" / "after.txt", "3")
    assert "taken" in str(raised.value)
    assert (tmp_path / "ok" / "first.txt").read_text() == "1"
    assert not (tmp_path / "ok" / "after.txt").exists()
    assert not list((tmp_path / "ok").glob("*.tmp"))


def test_a_write_after_a_failed_one_raises_at_once(tmp_path):
    (tmp_path / "taken").write_text("x")
    files = Writer()
    files.write(tmp_path / "taken" / "a.txt", "a")
    with pytest.raises(OSError):
        for _ in range(10_000):  # the failure reaches the caller by the next write after it happened
            files.write(tmp_path / "later.txt", "b")
            os.sched_yield()
    with pytest.raises(OSError):
        files.close()
    assert not (tmp_path / "later.txt").exists()


def test_the_blocks_own_error_is_the_one_raised_and_the_writes_are_finished(tmp_path):
    (tmp_path / "taken").write_text("x")
    with pytest.raises(KeyError):
        with Writer() as files:
            files.write(tmp_path / "taken" / "a.txt", "a")
            files.write(tmp_path / "kept.txt", "k")
            raise KeyError("the rendering failed")
    assert not (tmp_path / "kept.txt").exists()  # after the failed write, nothing more


def test_papers_that_cannot_be_written_leave_no_version_and_no_mail_and_are_written_next_time(
    town, workspace, rules, cfg
):
    """A night whose agenda folder cannot be written (a file in its place) raises; no agenda version
    and no e-mail is recorded for files that are not there. Once the folder can be written, the
    same night's papers are written in full."""
    from engine.conference.convene import convene
    from engine.screening.screen import screen

    screen(town, workspace, rules, ON, workers=1)
    convene(town, rules, cfg, ON)
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "agendas").write_text("not a folder")
    with pytest.raises(OSError):
        write_papers(town, rules, cfg, workspace, ON)
    assert town.execute("SELECT COUNT(*) FROM agendas").fetchone()[0] == 0
    assert town.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'agenda'").fetchone()[0] == 0
    (workspace / "agendas").unlink()
    done = write_papers(town, rules, cfg, workspace, ON)
    assert done.agendas > 0
    rows = town.execute("SELECT meeting_id, agency_id, version, folder FROM agendas").fetchall()
    assert len(rows) >= done.agendas
    for meeting_id, agency_id, version, folder in rows:
        ext = ("html",) if agency_id == "coordinator" else ("txt", "html", "ics", "json")
        for e in ext:
            assert (workspace / folder / f"{agency_id}.v{version}.{e}").is_file()
