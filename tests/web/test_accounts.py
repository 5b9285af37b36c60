"""The console's accounts (engine/accounts) and `engine users`: argon2 hashes, refused names and
passwords, the lock-out on the pinned clock, sessions that end when idle or too old."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from engine.accounts import passwords, sessions, users
from engine.cli.main import app
from engine.support import clock
from tests.helpers.console import NAME, PASSWORD, add_coordinator

runner = CliRunner()


def audit(conn, event: str) -> list[tuple]:
    return conn.execute("SELECT actor, reason, detail FROM audit_log WHERE event = ? ORDER BY seq", (event,)).fetchall()


def later(minutes: float):
    clock.pin(clock.now() + timedelta(minutes=minutes))


def test_password_is_kept_as_an_argon2_hash_only(conn):
    add_coordinator(conn)
    (stored,) = conn.execute("SELECT password_hash FROM users").fetchone()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    dump = "\n".join(conn.iterdump())
    assert PASSWORD not in dump


def test_an_old_hash_is_rehashed_at_the_next_login(conn):
    from argon2 import PasswordHasher

    add_coordinator(conn)
    weak = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    conn.execute("UPDATE users SET password_hash = ?", (weak,))
    conn.commit()
    assert users.authenticate(conn, NAME, PASSWORD).result == "ok"
    (stored,) = conn.execute("SELECT password_hash FROM users").fetchone()
    assert stored != weak and not passwords.needs_rehash(stored)


@pytest.mark.parametrize(
    "name, role, password, says",
    [
        ("山田", "coordinator", "short", "at least 12 characters"),
        ("山田", "coordinator", "aaaaaaaaaaaaaaaa", "too few characters"),
        ("山田", "admin", PASSWORD, "--role admin: not a role"),
        ("nightly", "coordinator", PASSWORD, "reserved"),
        ("Web", "coordinator", PASSWORD, "reserved"),
        ("ext(sim)", "coordinator", PASSWORD, "reserved"),
        ("a\x1bb", "coordinator", PASSWORD, "printable"),
    ],
)
def test_refused_accounts(conn, name, role, password, says):
    with pytest.raises(users.AccountRefused, match=says.replace("(", r"\(")):
        users.add(conn, name, role, password, by="admin")
    assert conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0


def test_a_name_is_taken_once(conn):
    add_coordinator(conn)
    with pytest.raises(users.AccountRefused, match="already exists"):
        add_coordinator(conn)


def test_five_failures_lock_the_account_for_15_minutes(conn):
    add_coordinator(conn)
    for _ in range(users.MAX_FAILURES):
        assert users.authenticate(conn, NAME, "wrong password here").result == "failed"
    # locked: even the right password is refused, and says no more than a wrong one would (the page)
    assert users.authenticate(conn, NAME, PASSWORD).result == "locked"
    later(users.LOCK_MINUTES - 1)
    assert users.authenticate(conn, NAME, PASSWORD).result == "locked"
    later(1)
    assert users.authenticate(conn, NAME, PASSWORD).result == "ok"
    assert [a for a, *_ in audit(conn, "login_failed")] == [NAME] * (users.MAX_FAILURES - 1)
    assert len(audit(conn, "login_locked")) == 3  # the lock, and the two refusals while locked


def test_a_success_resets_the_count(conn):
    add_coordinator(conn)
    for _ in range(users.MAX_FAILURES - 1):
        users.authenticate(conn, NAME, "wrong password here")
    assert users.authenticate(conn, NAME, PASSWORD).result == "ok"
    for _ in range(users.MAX_FAILURES - 1):
        users.authenticate(conn, NAME, "wrong password here")
    assert users.authenticate(conn, NAME, PASSWORD).result == "ok"


def test_unlock_lifts_the_lock(conn):
    add_coordinator(conn)
    for _ in range(users.MAX_FAILURES):
        users.authenticate(conn, NAME, "wrong password here")
    users.unlock(conn, NAME, by="admin")
    assert users.authenticate(conn, NAME, PASSWORD).result == "ok"


def test_an_unknown_name_is_audited_without_the_name(conn):
    add_coordinator(conn)
    typed = "correct horse battery staple"  # a password typed in the name box
    assert users.authenticate(conn, typed, "x").result == "failed"
    ((actor, reason, detail),) = audit(conn, "login_failed")
    assert actor == "web" and typed not in reason + (detail or "")
    assert json.loads(detail)["via"] == "console"


def test_a_session_ends_after_30_idle_minutes(conn):
    add_coordinator(conn)
    sid = users.authenticate(conn, NAME, PASSWORD).session_id
    later(sessions.IDLE_MINUTES - 1)
    assert sessions.find(conn, sid) is not None  # used: the idle time starts again
    later(sessions.IDLE_MINUTES - 1)
    assert sessions.find(conn, sid) is not None
    later(sessions.IDLE_MINUTES)
    assert sessions.find(conn, sid) is None
    assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0


def test_a_session_ends_after_12_hours_even_in_use(conn):
    add_coordinator(conn)
    sid = users.authenticate(conn, NAME, PASSWORD).session_id
    for _ in range(sessions.LIFETIME_HOURS * 60 // 20 - 1):
        later(20)
        assert sessions.find(conn, sid) is not None
    later(20)
    assert sessions.find(conn, sid) is None


def test_only_the_hash_of_a_session_id_is_stored(conn):
    add_coordinator(conn)
    sid = users.authenticate(conn, NAME, PASSWORD).session_id
    assert sid and len(sid) >= 43  # 256 bits
    dump = "\n".join(conn.iterdump())
    assert sid not in dump and sessions.id_hash(sid) in dump


def test_remove_ends_the_sessions(conn):
    add_coordinator(conn)
    sid = users.authenticate(conn, NAME, PASSWORD).session_id
    users.remove(conn, NAME, by="admin")
    assert sessions.find(conn, sid) is None and users.get(conn, NAME) is None


# `engine users`


def cli(workspace, *args, input: str | None = None):
    return runner.invoke(app, ["users", *args, "--workspace", str(workspace)], input=input)


def test_users_add_reads_the_password_from_stdin(conn, workspace):
    r = cli(workspace, "add", "佐藤", "--role", "coordinator", "--by", "admin", input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert "added 佐藤" in r.output and PASSWORD not in r.output
    assert users.authenticate(conn, "佐藤", PASSWORD).result == "ok"
    ((actor, reason, _),) = audit(conn, "user_added")
    assert actor == "admin" and "佐藤" in reason


@pytest.mark.parametrize(
    "args, stdin, says",
    [
        (["add", "佐藤", "--role", "coordinator"], "short\n", "at least 12 characters"),
        (["add", "佐藤", "--role", "coordinator"], "", "no password on stdin"),
        (["add", "佐藤", "--role", "boss"], PASSWORD, "--role boss: not a role"),
        (["add", "sweep", "--role", "coordinator"], PASSWORD, "reserved"),
        (["unlock", "nobody"], None, "no account is named nobody"),
        (["remove", "nobody"], None, "no account is named nobody"),
    ],
)
def test_users_refusals_are_one_line(conn, workspace, args, stdin, says):
    r = cli(workspace, *args, input=stdin)
    assert r.exit_code == 2, r.output
    assert says in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0


def test_users_list_unlock_remove(conn, workspace):
    add_coordinator(conn)
    for _ in range(users.MAX_FAILURES):
        users.authenticate(conn, NAME, "wrong password here")
    r = cli(workspace, "list")
    assert r.exit_code == 0 and NAME in r.output and "locked until" in r.output
    assert cli(workspace, "unlock", NAME).exit_code == 0
    assert "locked" not in cli(workspace, "list").output
    assert cli(workspace, "remove", NAME).exit_code == 0
    assert "no accounts" in cli(workspace, "list").output
