"""The file transport's messages are committed in groups (engine/outbox/dispatch.py): each group's
claims and links are synced once before any of its files is written, its folder is synced before
its `sent` marks are committed, and a server that becomes unavailable mid-group leaves the rest of
the group waiting, not half-sent. The SMTP transport keeps one message a group."""

from __future__ import annotations

import sqlite3

from engine.outbox import FileTransport, send_pending
from engine.outbox.queue import queue
from engine.outbox.transports import ServerUnavailable, SmtpTransport

AGENCY = "houkatsu_chuo"


def _queue(conn, n: int) -> list[str]:
    keys = [f"notice:group:{i:03d}" for i in range(n)]
    with conn:
        for key in keys:
            assert queue(
                conn,
                key=key,
                kind="notice",
                agency_id=AGENCY,
                subject="お知らせ",
                parts={"text": "本文", "html": "<p>本文</p>"},
            )
    return keys


def _statuses(workspace, keys) -> dict[str, str]:
    """What another process would read: the committed state."""
    other = sqlite3.connect(workspace / "engine.db")
    try:
        marks = dict(other.execute("SELECT message_key, status FROM outbox"))
    finally:
        other.close()
    return {k: marks[k] for k in keys}


def test_every_message_of_several_groups_is_written_once_and_marked_sent(conn, workspace, cfg):
    keys = _queue(conn, FileTransport.group * 2 + 7)
    result = send_pending(conn, cfg, workspace, transport=FileTransport(workspace / "outbox"))
    assert result.sent == len(keys) and result.failed == result.deferred == 0
    assert set(_statuses(workspace, keys).values()) == {"sent"}
    assert sorted(p.name for p in (workspace / "outbox").glob("notice_group_*.eml")) == [
        k.replace(":", "_") + ".eml" for k in keys
    ]
    assert not list((workspace / "outbox").glob("*.tmp"))


def test_a_group_is_claimed_on_disk_before_its_files_and_marked_sent_after_its_folder_sync(conn, workspace, cfg):
    keys = _queue(conn, 10)
    seen: list[tuple[str, dict[str, str]]] = []

    class Watched(FileTransport):
        group = 4

        def send(self, msg, recipient, key):
            seen.append(("send", _statuses(workspace, [key])))
            super().send(msg, recipient, key)

        def flush(self):
            seen.append(("flush", _statuses(workspace, keys)))
            super().flush()

    assert send_pending(conn, cfg, workspace, transport=Watched(workspace / "outbox")).sent == 10
    assert all(marks == {k: "sending"} for what, marks in seen if what == "send" for k in marks)
    flushes = [marks for what, marks in seen if what == "flush"]
    assert [sum(s == "sent" for s in m.values()) for m in flushes[:3]] == [0, 4, 8]  # after each group's sync
    assert [sum(s == "sending" for s in m.values()) for m in flushes[:3]] == [4, 4, 2]


def test_a_server_that_goes_away_mid_group_leaves_the_rest_waiting_not_half_sent(conn, workspace, cfg):
    keys = _queue(conn, 6)

    class Failing(FileTransport):
        group = 4

        def send(self, msg, recipient, key):
            if key == keys[2]:
                raise ServerUnavailable("cannot connect to mail.example:587: Connection refused")
            super().send(msg, recipient, key)

    result = send_pending(conn, cfg, workspace, transport=Failing(workspace / "outbox"))
    assert result.sent == 2 and result.deferred == 4 and result.server_unavailable
    assert list(_statuses(workspace, keys).values()) == ["sent", "sent"] + ["pending"] * 4
    attempts = dict(conn.execute("SELECT message_key, attempts FROM outbox"))
    assert [attempts[k] for k in keys] == [1, 1, 0, 0, 0, 0]  # an unavailable server is nobody's attempt


def test_smtp_keeps_one_message_a_group():
    assert getattr(SmtpTransport, "group", 1) == 1  # each one claimed and marked on disk around its hand-over


def test_unreadable_parts_fail_that_message_and_the_rest_go_out(conn, workspace, cfg):
    """Parts that cannot become an e-mail (not JSON, a lone surrogate) are failed with the reason,
    their claim rolled back with its link; the run goes on (found by a review: it stopped)."""
    keys = _queue(conn, 3)
    with conn:
        conn.execute("UPDATE outbox SET parts = '{not json' WHERE message_key = ?", (keys[0],))
        conn.execute("UPDATE outbox SET parts = ? WHERE message_key = ?", ('{"text": "\\ud800", "html": "x"}', keys[1]))
    result = send_pending(conn, cfg, workspace, transport=FileTransport(workspace / "outbox"))
    assert result.sent == 1 and result.failed == 2
    assert list(_statuses(workspace, keys).values()) == ["failed", "failed", "sent"]
    errors = [e for (e,) in conn.execute("SELECT last_error FROM outbox WHERE status = 'failed' ORDER BY message_key")]
    assert all("cannot be built" in e for e in errors), errors


def test_a_file_a_killed_run_left_is_synced_before_it_counts_as_sent(conn, workspace, cfg, monkeypatch):
    """A group's files written by a run killed before its folder sync: the next run finds them and
    syncs the folder before marking them sent (found by a review)."""
    import engine.outbox.transports as transports

    keys = _queue(conn, 2)
    folder = workspace / "outbox"
    send_pending(conn, cfg, workspace, transport=FileTransport(folder))
    with conn:  # as if the run had been killed after writing the files
        conn.execute("UPDATE outbox SET status = 'sending'")
    synced = []
    monkeypatch.setattr(transports, "fsync_folder", lambda path: synced.append(path))
    assert send_pending(conn, cfg, workspace, transport=FileTransport(folder)).sent == 2
    assert synced == [folder] and set(_statuses(workspace, keys).values()) == {"sent"}


def test_a_failure_in_a_dispatch_for_another_day_is_logged_on_that_day(conn, workspace, cfg):
    """`engine send --date` logs its failures on its day, as its sends (found by a review)."""
    from datetime import date

    from engine.outbox.transports import PermanentFailure
    from engine.workflows.cycle import dispatch

    keys = _queue(conn, 2)

    class Refusing(FileTransport):
        def send(self, msg, recipient, key):
            if key == keys[0]:
                raise PermanentFailure("550 mailbox unavailable")
            super().send(msg, recipient, key)

    day = date(2026, 11, 30)  # a Monday; the clock says Friday 2026-11-27
    dispatch(conn, cfg, workspace, day, transport=Refusing(workspace / "outbox"))
    logged = conn.execute("SELECT event, on_day FROM audit_log WHERE event IN ('mail_sent', 'mail_failed')").fetchall()
    assert {e for e, _ in logged} == {"mail_sent", "mail_failed"}
    assert {d for _, d in logged} == {day.isoformat()}, logged


def test_a_dispatch_whose_lock_another_took_claims_nothing_more(conn, workspace, cfg):
    """Another dispatch took the lock as stale while this one handed over its first message (a clock
    step, a hung server): this one stops instead of going on beside it (found by a review)."""
    keys = _queue(conn, 3)
    db = workspace / "engine.db"

    class TakenOver(FileTransport):
        group = 1  # one message a group, as over SMTP

        def send(self, msg, recipient, key):
            super().send(msg, recipient, key)
            other = sqlite3.connect(db)
            with other:  # the other dispatch's _take_lock
                other.execute("UPDATE dispatch_lock SET token = 'other', pid = 1")
            other.close()

    result = send_pending(conn, cfg, workspace, transport=TakenOver(workspace / "outbox"))
    assert result.busy and result.sent == 1
    assert list(_statuses(workspace, keys).values()).count("pending") == 2
