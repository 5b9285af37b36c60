"""Sending the outbox (engine/outbox/dispatch.py): one dispatch at a time (a lock, also one left by a dead
run), a crash between send and mark reported as a possible duplicate, the day of the dispatch,
failed messages queued again."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from engine.casework.listing import outbox
from engine.casework.sweep import daily_sweep
from engine.cli.main import app
from engine.outbox import FileTransport, send_pending
from engine.store.db import connect
from engine.support import clock
from engine.workflows.cycle import dispatch, nightly_cycle
from tests.helpers.casework import LEAD, d, open_cases, plan
from tests.helpers.conference import send_by_file
from tests.helpers.town import ON


def test_crash_between_send_and_mark_is_reported_not_hidden(town, workspace, rules, cfg):
    nightly_cycle(town, workspace, rules, cfg, ON)

    class Crash(Exception):
        pass

    class CrashAfterAccept:
        def __init__(self):
            self.inner, self.sent = FileTransport(workspace / "outbox"), 0

        def send(self, msg, recipient, key):
            self.inner.send(msg, recipient, key)
            raise Crash  # the process dies after the server accepted, before marking

        def close(self):
            pass

    class CannotTell(FileTransport):  # a transport that cannot tell what it delivered (SMTP)
        delivered = None

    with pytest.raises(Crash):
        send_pending(town, cfg, workspace, transport=CrashAfterAccept())
    assert outbox(town)[0].get("sending") == 1
    result = send_pending(town, cfg, workspace, transport=CannotTell(workspace / "outbox"))
    assert result.possible_duplicates == 1
    counts, rows = outbox(town)
    assert counts["possible_duplicate"] == 1 and "sending" not in counts
    dup = [r for r in rows if r.possible_duplicate]
    assert dup[0].status == "sent"
    (told,) = town.execute("SELECT detail FROM escalations WHERE subject_key LIKE 'duplicate:%'").fetchone()
    assert "二重に届いた可能性" in told  # the coordinator hears of it in the next digest
    # the file transport wrote that message once: its file name is the key
    assert len(list((workspace / "outbox").glob("*.eml"))) == counts["sent"]


def test_a_file_transport_crash_after_writing_is_recorded_sent_not_a_possible_duplicate(town, workspace, rules, cfg):
    """The file transport can tell: the .eml is there, so the message was delivered once."""
    nightly_cycle(town, workspace, rules, cfg, ON)
    with pytest.raises(RuntimeError):
        send_pending(town, cfg, workspace, transport=_CrashingFile(workspace / "outbox"))
    result = send_pending(town, cfg, workspace, transport=FileTransport(workspace / "outbox"))
    counts, rows = outbox(town)
    assert result.possible_duplicates == counts["possible_duplicate"] == 0 and "sending" not in counts
    assert len(list((workspace / "outbox").glob("*.eml"))) == counts["sent"] == result.sent


class _CrashingFile(FileTransport):
    """Dies after writing its first file, before the `sent` mark."""

    def send(self, msg, recipient, key):
        super().send(msg, recipient, key)
        raise RuntimeError("killed")


def test_engine_send_says_so_when_another_dispatch_is_running(town, workspace, rules, cfg):
    import os
    import socket

    nightly_cycle(town, workspace, rules, cfg, ON)
    from engine.support.clock import stamp as now_iso

    town.execute(
        "INSERT INTO dispatch_lock VALUES ('outbox', ?, ?, 'other', ?)", (socket.gethostname(), os.getppid(), now_iso())
    )
    town.commit()
    result = CliRunner().invoke(app, ["send", "--workspace", str(workspace), "--date", "2026-11-27"])
    assert result.exit_code == 1 and "another dispatch is sending" in result.output
    assert not (workspace / "outbox").exists()


@pytest.mark.regression("review of the conference slice")
def test_two_dispatch_runs_at_the_same_time_send_nothing_twice(town, workspace, rules, cfg):
    nightly_cycle(town, workspace, rules, cfg, ON)
    sends: list[str] = []

    class Recording:
        def __init__(self, start_second_run: bool):
            self.start_second_run = start_second_run

        def send(self, msg, recipient, key):
            sends.append(key)
            if self.start_second_run:  # e.g. `engine run` (sends by default) while the 08:00 dispatch is running
                self.start_second_run = False
                other = connect(workspace)
                try:
                    send_pending(other, cfg, workspace, transport=Recording(False))
                finally:
                    other.close()

        def close(self):
            pass

    send_pending(town, cfg, workspace, transport=Recording(True))
    assert len(sends) > 1 and len(sends) == len(set(sends)), sorted(k for k in set(sends) if sends.count(k) > 1)


@pytest.mark.regression("second review of the conference slice")
@pytest.mark.parametrize("holder", ["pid_reused", "other_host"])
def test_a_dispatch_lock_left_by_a_dead_run_does_not_block_every_later_dispatch(town, workspace, rules, cfg, holder):
    nightly_cycle(town, workspace, rules, cfg, ON)
    # the dispatch was killed (OOM, SIGKILL, reboot) holding the lock, three days ago. After the restart its
    # pid belongs to another live process (here: our parent), or the container came back with a new hostname
    host, pid = (socket.gethostname(), os.getppid()) if holder == "pid_reused" else ("3f2a9c1d07b4", 7)
    taken = (clock.now() - timedelta(days=3)).isoformat(timespec="seconds")
    town.execute("INSERT INTO dispatch_lock VALUES ('outbox', ?, ?, 'dead-run', ?)", (host, pid, taken))
    town.commit()
    result = send_by_file(town, cfg, workspace)
    # busy on every run from now on (taken_at is never read); `engine send` prints "送信 0 通、延期 0 通、失敗 0 通…", exit 0
    assert not result.busy and result.sent > 0, result


@pytest.mark.regression("issue 4: the case lifecycle used from the CLI")
def test_dispatch_on_a_given_day_uses_that_day(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid, roles=((LEAD, "介護サービスの利用調整", "2027-01-12"),))
    daily_sweep(conn, rules, cfg, d("2027-01-07"))  # queues the "due soon" reminder
    (aid,) = conn.execute("SELECT action_id FROM case_actions WHERE case_id = ?", (cid,)).fetchone()
    day = d("2027-01-14")  # the action is overdue by then: the "due soon" reminder must be withheld
    dispatch(conn, cfg, workspace, day, transport=FileTransport(workspace / "outbox"))
    logged = {r for (r,) in conn.execute("SELECT DISTINCT on_day FROM audit_log WHERE event = 'mail_sent'")}
    status = conn.execute("SELECT status FROM outbox WHERE message_key = ?", (f"reminder:{aid}:due",)).fetchone()[0]
    assert logged == {day.isoformat()} and status == "superseded", (logged, status)


# --- failed messages queued again --------------------------------------------------------------------
def test_failed_messages_can_be_queued_again_from_the_cli(town, workspace, rules, cfg):

    nightly_cycle(town, workspace, rules, cfg, ON)
    town.execute(
        "UPDATE outbox SET status = 'failed', last_error = '550 mailbox unavailable' WHERE agency_id = 'jiritsu_soudan'"
    )
    town.commit()
    failed = [r.message_key for r in outbox(town, "failed")[1]]
    assert failed
    runner = CliRunner()
    shown = runner.invoke(app, ["outbox", "--workspace", str(workspace)])
    assert "送信失敗" in shown.output and "550 mailbox unavailable" in shown.output
    bad = runner.invoke(app, ["outbox", "--workspace", str(workspace), "--retry", "agenda:nothing:v1"])
    assert bad.exit_code == 1 and "not failed messages" in bad.output
    ok = runner.invoke(app, ["outbox", "--workspace", str(workspace), "--retry-failed"])
    assert ok.exit_code == 0 and f"送信失敗のメール {len(failed)} 通を再び送信待ち" in ok.output
    assert send_pending(town, cfg, workspace, transport=FileTransport(workspace / "outbox")).sent >= len(failed)
    assert not outbox(town, "failed")[1]
