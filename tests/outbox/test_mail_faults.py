"""Mail faults: the outbox against a loopback SMTP server that misbehaves on command.

Two servers share one fault plan (tests/helpers/faulty_smtp.py): an aiosmtpd Controller whose handler
misbehaves at MAIL / RCPT / end of DATA, and `RawSmtp`, a socket server in a thread speaking just enough
SMTP for what aiosmtpd cannot do (421 in the greeting, a reply to the DATA command itself, a drop
between 354 and the body). Faults: refused connection, 421 / drop / slowness in the greeting,
421 and 451 at MAIL FROM / RCPT TO / DATA, 550 for one recipient, 554 at DATA, a server slower
than the client timeout, a drop during DATA (before and after the body), a server that accepts
and drops before QUIT, a malformed 250 after the body.

The guarantees checked for every fault: a temporary fault keeps the message pending and retries
it with the documented backoff (nothing is sent before next_attempt_at) until max_attempts; a
permanent one is `failed` with the SMTP code, listed by `engine outbox --status failed`, logged
(mail_failed) and in the coordinator's next digest, and `--retry-failed` queues it again;
nothing arrives twice unless the engine marked it possible_duplicate. Time moves through the
`now=` of send_pending; only the slow server waits for a real (0.5 s) timeout. Three engine bugs
these tests found are fixed and kept by the tests at the end. Many dispatches with faults switched on
and off: tests/outbox/test_mail_fault_scenarios.py.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from engine.casework.listing import outbox
from engine.outbox import BACKOFF_MINUTES, ServerUnavailable, retry, send_pending
from engine.workflows.cycle import nightly_cycle
from tests.helpers.faulty_smtp import AioSmtp, Fault, RawSmtp, cases
from tests.helpers.mail_checks import (
    AGENCIES,
    DIGEST_DAY,
    T0,
    TOKYO,
    assert_in_digest,
    assert_no_silent_outcome,
    assert_shown,
    email_of,
    engine_cli,
    marked,
    queue_messages,
    row,
    run_until_done,
    smtp,
    statuses,
)
from tests.helpers.served import free_port
from tests.helpers.town import ON

TEMPORARY = {
    f"{code}-at-{stage}": Fault(
        stage,
        code=code,
        text="4.3.2 service not available, closing" if code == 421 else "4.3.0 try again later",
        times=None,
    )
    for stage in ("mail", "rcpt", "data_cmd", "data_end")
    for code in (421, 451)
}
PERMANENT = {
    "550-one-recipient": Fault("rcpt", code=550, text="5.1.1 mailbox unavailable", times=None),
    "554-at-data-command": Fault("data_cmd", code=554, text="5.7.1 transaction failed", times=None),
    "554-after-the-body": Fault("data_end", code=554, text="5.6.0 message content rejected", times=None),
}
UNCERTAIN = {  # (fault, copies the server ends up with)
    "drop-at-data-command": (Fault("data_cmd", "drop"), 1),
    "drop-before-the-body": (Fault("data_body", "drop"), 1),
    "drop-after-the-body-not-kept": (Fault("data_end", "drop"), 1),
    "drop-after-the-body-kept": (Fault("data_end", "drop", store=True), 2),
    "slow-data-past-the-timeout": (Fault("data_end", "slow", delay=1.0), 2),
    "slow-mail-from-past-the-timeout": (Fault("mail", "slow", delay=1.0), 1),
}


# --- temporary faults: pending, growing backoff, nothing early, given up after max_attempts ---- -----
@pytest.mark.parametrize("kind,fault", cases(TEMPORARY))
def test_temporary_fault_is_retried_with_backoff_then_given_up_and_shown(kind, fault, conn, workspace, cfg, start):
    server = start(kind)
    c = smtp(cfg, server.port)
    server.plan.add(fault)
    (key,) = queue_messages(conn, c, ["houkatsu_chuo"])
    now = T0
    for attempt in range(1, c.mail.max_attempts):
        result = send_pending(conn, c, workspace, now=now)
        assert (result.sent, result.deferred, result.failed) == (0, 1, 0)
        m = row(conn, key)
        assert m.status == "pending" and m.attempts == attempt and str(fault.code) in m.last_error
        assert not m.dup  # the server answered: nothing can have been delivered
        assert m.next_at - now == timedelta(minutes=BACKOFF_MINUTES[attempt - 1])
        early = send_pending(conn, c, workspace, now=m.next_at - timedelta(seconds=1))  # one second early
        assert (early.sent, early.deferred, early.failed) == (0, 0, 0) and row(conn, key).attempts == attempt
        now = m.next_at
    last = send_pending(conn, c, workspace, now=now)
    assert last.failed == 1
    m = row(conn, key)
    assert m.status == "failed" and m.attempts == c.mail.max_attempts
    assert f"gave up after {c.mail.max_attempts} attempts" in m.last_error and str(fault.code) in m.last_error
    assert not server.plan.deliveries
    assert send_pending(conn, c, workspace, now=now + timedelta(days=1)).deferred == 0  # failed is not retried silently
    assert_shown(conn, workspace, key, fault.code)
    # the cause is fixed: --retry-failed queues it again and it goes out once
    server.plan.clear()
    assert "送信失敗のメール 1 通を再び送信待ち" in engine_cli(workspace, "outbox", "--retry-failed").output
    assert (row(conn, key).status, row(conn, key).attempts) == ("pending", 0)
    assert send_pending(conn, c, workspace, now=now + timedelta(days=1)).sent == 1
    assert server.plan.keys() == Counter({key: 1}) and row(conn, key).status == "sent"


@pytest.mark.parametrize(
    "kind,fault", cases({"451-at-data": TEMPORARY["451-at-data_end"], "421-at-mail": TEMPORARY["421-at-mail"]})
)
def test_a_temporary_fault_in_a_batch_defers_only_that_message(kind, fault, conn, workspace, cfg, start):
    server = start(kind)
    c = smtp(cfg, server.port)
    server.plan.add(replace(fault, times=1, skip=2))  # the 3rd message
    keys = queue_messages(conn, c, AGENCIES[:5])
    result = send_pending(conn, c, workspace, now=T0)
    assert (result.sent, result.deferred, result.failed) == (4, 1, 0)
    assert server.plan.keys() == Counter({k: 1 for k in keys if k != keys[2]})
    m = row(conn, keys[2])
    assert (
        m.status == "pending"
        and m.attempts == 1
        and not m.dup
        and m.next_at == T0 + timedelta(minutes=BACKOFF_MINUTES[0])
    )
    assert send_pending(conn, c, workspace, now=T0 + timedelta(minutes=4)).sent == 0
    assert send_pending(conn, c, workspace, now=T0 + timedelta(minutes=5)).sent == 1
    assert server.plan.keys() == Counter({k: 1 for k in keys}) and not marked(conn)


# --- no connection at all: the run waits, no attempt used, nothing failed ----------------------------
UNAVAILABLE = {
    "refused-connection": None,
    "421-in-the-greeting": Fault("greeting", code=421, text="4.3.2 too busy, try later", times=None),
    "554-in-the-greeting": Fault("greeting", code=554, text="5.3.2 no SMTP service here", times=None),
    "closed-without-greeting": Fault("greeting", "drop", times=None),
    "greeting-past-the-timeout": Fault("greeting", "slow", delay=0.8, times=1),
    "554-to-ehlo-and-helo": Fault("ehlo", code=554, text="5.7.1 you are blocked", times=None),
    "421-to-ehlo": Fault("ehlo", code=421, text="4.3.2 shutting down", times=None),
}


@pytest.mark.parametrize("fault", UNAVAILABLE.values(), ids=UNAVAILABLE.keys())
def test_server_unavailable_keeps_the_run_queued_without_using_attempts(fault, conn, workspace, cfg, start):
    port = free_port()
    server = start("raw", port) if fault else None
    if server:
        server.plan.add(fault)
    c = smtp(cfg, port, timeout=0.5)
    keys = queue_messages(conn, c, AGENCIES[:4])
    now = T0
    runs = 1 if fault and fault.action == "slow" else 6  # more runs than max_attempts
    for _ in range(runs):
        result = send_pending(conn, c, workspace, now=now)
        assert result.sent == 0 and result.failed == 0 and result.server_unavailable
        if (
            fault and fault.action == "reply" and not (fault.stage == "ehlo" and fault.code == 421)
        ):  # smtplib then tries HELO on the closed connection
            assert str(fault.code) in result.server_unavailable
        assert set(statuses(conn).values()) == {"pending"}
        assert sum(row(conn, k).attempts for k in keys) == 0 and not marked(conn)
        assert row(conn, keys[0]).next_at == now + timedelta(minutes=BACKOFF_MINUTES[0])
        now += timedelta(hours=1)
    if server:
        assert server.plan.connections == runs  # one try per run, not one per message
        assert not server.plan.deliveries
        server.plan.clear()
    else:
        server = start("raw", port)  # the server comes back on its port
    # a dispatch before the first message's next attempt leaves it alone but sends the others
    back = send_pending(conn, c, workspace, now=now - timedelta(hours=1) + timedelta(minutes=1))
    assert back.sent == 3 and row(conn, keys[0]).status == "pending"
    assert send_pending(conn, c, workspace, now=now).sent == 1
    assert server.plan.keys() == Counter({k: 1 for k in keys}) and not marked(conn)
    assert all(row(conn, k).attempts == 1 for k in keys)


def test_server_going_away_in_the_middle_of_a_batch_leaves_the_rest_queued(conn, workspace, cfg, start):
    server = start("raw")
    c = smtp(cfg, server.port)
    # the 2nd message's MAIL FROM gets 421 (the server closes); reconnecting meets 421 in the greeting
    server.plan.add(Fault("mail", code=421, skip=1), Fault("greeting", code=421, skip=1))
    keys = queue_messages(conn, c, AGENCIES[:5])
    result = send_pending(conn, c, workspace, now=T0)
    assert result.sent == 1 and result.deferred == 4 and result.failed == 0 and "421" in result.server_unavailable
    assert [row(conn, k).attempts for k in keys] == [1, 1, 0, 0, 0] and statuses(conn)[keys[0]] == "sent"
    assert all(row(conn, k).status == "pending" for k in keys[1:])
    later = send_pending(conn, c, workspace, now=T0 + timedelta(minutes=5))
    assert later.sent == 4 and server.plan.keys() == Counter({k: 1 for k in keys}) and not marked(conn)


@pytest.mark.regression("review of the conference slice")
def test_a_mail_server_outage_does_not_fail_a_message_it_never_tried(town, workspace, rules, cfg):
    nightly_cycle(town, workspace, rules, cfg, ON)

    class Down:
        def send(self, msg, recipient, key):
            raise ServerUnavailable("cannot connect to localhost:587: Connection refused")

        def close(self):
            pass

    start = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)  # 08:00 JST dispatches, one per day
    for day in range(cfg.mail.max_attempts):
        send_pending(town, cfg, workspace, transport=Down(), now=start + timedelta(days=day))
    assert outbox(town)[0].get("failed", 0) == 0, outbox(town, "failed")[1]


# --- permanent failures: failed, shown (CLI, audit, digest), --retry-failed --------------------------
@pytest.mark.parametrize("kind,fault", cases(PERMANENT))
def test_permanent_failure_is_shown_to_the_coordinator_and_can_be_retried(
    kind, fault, conn, workspace, cfg, rules, start
):
    server = start(kind)
    c = smtp(cfg, server.port)
    victim = "kikan_soudan"
    server.plan.add(replace(fault, rcpt=email_of(c, victim)))
    keys = queue_messages(conn, c, AGENCIES[:5])
    key = keys[AGENCIES.index(victim)]
    result = send_pending(conn, c, workspace, now=T0)
    assert (result.sent, result.failed, result.deferred) == (4, 1, 0)
    m = row(conn, key)
    assert (
        m.status == "failed" and m.attempts == 1 and str(fault.code) in m.last_error and m.next_at is None and not m.dup
    )
    assert server.plan.keys() == Counter({k: 1 for k in keys if k != key})
    assert send_pending(conn, c, workspace, now=T0 + timedelta(days=1)).sent == 0  # never silently retried
    assert_shown(conn, workspace, key, fault.code)
    assert_in_digest(conn, workspace, rules, c, server, DIGEST_DAY, [key], T0 + timedelta(days=1))
    # fixed (say the address in agencies.yaml): queued again with --retry-failed, goes out once
    server.plan.clear()
    assert "送信失敗のメール 1 通を再び送信待ち" in engine_cli(workspace, "outbox", "--retry-failed").output
    assert send_pending(conn, c, workspace, now=T0 + timedelta(days=1)).sent == 1
    assert server.plan.keys() == Counter({k: 1 for k in keys} | {f"digest:{DIGEST_DAY}": 1})


def test_retry_of_one_failed_key_through_the_cli(conn, workspace, cfg, start):
    server = start("raw")
    c = smtp(cfg, server.port)
    server.plan.add(PERMANENT["550-one-recipient"])  # every recipient
    keys = queue_messages(conn, c, AGENCIES[:2])
    assert send_pending(conn, c, workspace, now=T0).failed == 2
    server.plan.clear()
    assert "送信失敗のメール 1 通を再び送信待ち" in engine_cli(workspace, "outbox", "--retry", keys[1]).output
    assert [row(conn, k).status for k in keys] == ["failed", "pending"]
    wrong = engine_cli(workspace, "outbox", "--retry", "faulttest:99")
    assert wrong.exit_code == 1 and "not failed messages" in wrong.output
    assert send_pending(conn, c, workspace, now=T0).sent == 1 and server.plan.keys() == Counter({keys[1]: 1})


# --- uncertain: drops and slowness while the message is handed over ----------------------------------
@pytest.mark.parametrize(
    "kind,fault,copies",
    [
        pytest.param(kind, f, n, id=f"{name}-{kind}")
        for name, (f, n) in UNCERTAIN.items()
        for kind in ("raw", "aiosmtpd")
        if f.stage in (RawSmtp.stages if kind == "raw" else AioSmtp.stages)
    ],
)
def test_drop_or_timeout_during_the_handover_is_retried_and_never_an_unmarked_duplicate(
    kind, fault, copies, conn, workspace, cfg, start
):
    server = start(kind)
    c = smtp(cfg, server.port, timeout=0.5)
    server.plan.add(replace(fault, skip=1))  # the 2nd message
    keys = queue_messages(conn, c, AGENCIES[:3])
    result = send_pending(conn, c, workspace, now=T0)
    if fault.stage in ("mail", "data_cmd"):
        # before the body: the server has nothing, so the message goes again at once on a new
        # connection, once, and is not reported as a possible duplicate
        assert (result.sent, result.deferred, result.failed) == (3, 0, 0)
        assert server.plan.keys() == Counter({k: 1 for k in keys}) and not any(row(conn, k).dup for k in keys)
        return
    assert (result.sent, result.deferred, result.failed) == (2, 1, 0)
    m = row(conn, keys[1])
    assert m.status == "pending" and m.attempts == 1 and m.next_at == T0 + timedelta(minutes=BACKOFF_MINUTES[0])
    if copies > 1:  # the server has it: the engine must say it may arrive twice
        assert m.dup
    assert send_pending(conn, c, workspace, now=T0 + timedelta(minutes=4)).sent == 0  # backoff
    assert send_pending(conn, c, workspace, now=T0 + timedelta(minutes=5)).sent == 1
    assert server.plan.keys() == Counter({keys[0]: 1, keys[1]: copies, keys[2]: 1})
    assert set(statuses(conn).values()) == {"sent"}
    assert_no_silent_outcome(conn, server)
    if m.dup:  # and `engine outbox` shows it
        listed = engine_cli(workspace, "outbox").output
        assert any(keys[1] in ln and "重複の可能性" in ln for ln in listed.splitlines())


def test_uncertain_on_the_last_attempt_is_failed_marked_and_shown(conn, workspace, cfg, rules, start):
    server = start("raw")
    c = smtp(cfg, server.port, max_attempts=2)
    server.plan.add(Fault("data_end", "drop", store=True, times=None))
    (key,) = queue_messages(conn, c, ["houkatsu_kita"])
    send_pending(conn, c, workspace, now=T0)
    send_pending(conn, c, workspace, now=T0 + timedelta(minutes=5))
    m = row(conn, key)
    assert m.status == "failed" and m.dup and "gave up after 2 attempts" in m.last_error
    assert_shown(conn, workspace, key, "gave up")
    server.plan.clear()
    assert_in_digest(conn, workspace, rules, c, server, DIGEST_DAY, [key], T0 + timedelta(hours=1))
    engine_cli(workspace, "outbox", "--retry-failed")
    assert send_pending(conn, c, workspace, now=T0 + timedelta(hours=1)).sent == 1
    assert server.plan.keys()[key] == 3 and row(conn, key).dup  # three copies, all announced
    assert_no_silent_outcome(conn, server)


@pytest.mark.parametrize("kind", ["raw", "aiosmtpd"])
def test_server_that_accepts_then_drops_before_quit(kind, conn, workspace, cfg, start):
    server = start(kind)
    c = smtp(cfg, server.port)
    server.plan.add(Fault("after_accept", "drop", times=None))
    (key,) = queue_messages(conn, c, ["houkatsu_chuo"])
    result = send_pending(conn, c, workspace, now=T0)
    assert result.sent == 1 and row(conn, key).status == "sent" and not row(conn, key).dup
    # with more messages on the connection: each one arrives, none is lost or sent twice unmarked
    keys = queue_messages(conn, c, AGENCIES[:4], prefix="batch")
    now = run_until_done(conn, c, workspace, T0)
    assert set(statuses(conn).values()) == {"sent"} and now <= T0 + timedelta(days=4)
    assert server.plan.keys() == Counter({k: 1 for k in [key, *keys]})
    assert_no_silent_outcome(conn, server)


# --- engine bugs found by these tests, fixed in engine/outbox/ (SmtpTransport step by step, send_pending's datetime()) ---
BEFORE_DATA = {  # the 2nd message never reaches DATA: the server cannot have it
    "next-after-421-at-rcpt": Fault("rcpt", code=421, text="4.3.2 closing"),  # hits the 1st message
    "next-after-accept-then-drop": Fault("after_accept", "drop"),  # after the 1st message
    "drop-at-mail-from": Fault("mail", "drop", skip=1),
    "drop-at-rcpt-to": Fault("rcpt", "drop", skip=1),
}


@pytest.mark.parametrize("kind", ["raw", "aiosmtpd"])
@pytest.mark.parametrize("fault", BEFORE_DATA.values(), ids=BEFORE_DATA.keys())
def test_a_message_that_never_reached_data_is_not_a_possible_duplicate(fault, kind, conn, workspace, cfg, start):
    server = start(kind)
    c = smtp(cfg, server.port)
    server.plan.add(fault)
    keys = queue_messages(conn, c, AGENCIES[:3])
    send_pending(conn, c, workspace, now=T0)
    # the server never had it before the connection went: sent again on a new one, once, unmarked
    # (the 421-at-RCPT message itself is deferred, certainly not delivered, and unmarked too)
    assert server.plan.keys()[keys[1]] <= 1
    assert not any(row(conn, k).dup for k in keys), [(k, row(conn, k).last_error) for k in keys if row(conn, k).dup]


MALFORMED = {  # the server has the message and says so, in a reply smtplib cannot read
    "overlong-250-line": Fault("data_end", code=250, text="2.0.0 queued as " + "x" * 9000, store=True),
    "unparsable-250": Fault("data_end", code="25O", text="2.0.0 queued", store=True),
}


@pytest.mark.parametrize("fault", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_reply_after_the_body_is_uncertain(fault, conn, workspace, cfg, start):
    server = start("raw")
    c = smtp(cfg, server.port)
    server.plan.add(fault)
    (key,) = queue_messages(conn, c, ["houkatsu_chuo"])
    send_pending(conn, c, workspace, now=T0)
    server.plan.clear()
    retry(conn)
    run_until_done(conn, c, workspace, T0)
    assert server.plan.keys()[key] == 2
    assert_no_silent_outcome(conn, server)


def test_backoff_holds_whatever_the_time_zone_of_the_dispatch_clock(conn, workspace, cfg, start):
    server = start("raw")
    c = smtp(cfg, server.port)
    server.plan.add(replace(TEMPORARY["451-at-data_end"], times=1))
    (key,) = queue_messages(conn, c, ["houkatsu_chuo"])
    first = datetime(2026, 11, 30, 22, 58, tzinfo=UTC)  # 07:58 on 1 December in Japan
    assert send_pending(conn, c, workspace, now=first).deferred == 1
    assert row(conn, key).next_at == first + timedelta(minutes=5)
    early = (first + timedelta(minutes=2)).astimezone(TOKYO)  # 08:00 JST, 3 minutes before the next attempt
    assert send_pending(conn, c, workspace, now=early).sent == 0
