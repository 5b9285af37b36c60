"""E-mail through a real SMTP server on loopback (aiosmtpd): sent once to registry addresses, permanent
and temporary rejections, a refused or dropped connection, a slow server, dot-stuffing, a wrong
password."""

from __future__ import annotations

import email
import email.policy
import smtplib
import ssl
from datetime import timedelta

import pytest

from engine.casework.listing import outbox
from engine.outbox import FileTransport, send_pending
from engine.support import clock
from engine.workflows.cycle import nightly_cycle
from tests.helpers.conference import sent_keys
from tests.helpers.served import free_port, wait_for
from tests.helpers.smtp import smtp_config
from tests.helpers.town import ON, add_household, person


@pytest.fixture
def queued(conn, workspace, rules):
    add_household(
        conn, "H8050", person(82, "世帯主", ("care_level", "要介護2"), sex="M"), person(52, "子", sex="M"), area="中央"
    )
    add_household(conn, "HHIKI", person(48, "世帯主", sex="M"), area="北部")
    return conn


def test_agendas_go_through_smtp_once_to_registry_addresses(queued, workspace, rules, sink):
    handler, port = sink
    cfg = smtp_config(rules, port)
    nightly_cycle(queued, workspace, rules, cfg, ON)
    pending = outbox(queued, "pending")[1]
    result = send_pending(queued, cfg, workspace)
    assert result.sent == len(pending) == len(handler.messages) > 0
    registry = {a.email: a.id for a in cfg.agencies.values()}
    for (rcpts, raw), row in zip(
        sorted(handler.messages, key=lambda m: m[0]), sorted(pending, key=lambda r: cfg.agencies[r.agency_id].email)
    ):
        assert rcpts == [cfg.agencies[row.agency_id].email] and rcpts[0] in registry
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg["To"] == rcpts[0] and msg["Message-ID"].startswith("<agenda.")
        assert any(p.get_content_type() == "text/calendar" for p in msg.walk())
        text = raw.decode("utf-8", "replace")
        assert "試験" not in text and "テスト町" not in text
    again = send_pending(queued, cfg, workspace)
    assert again.sent == 0 and len(handler.messages) == result.sent


def test_permanent_rejection_of_one_recipient_is_shown_and_the_rest_is_sent(queued, workspace, rules, sink):
    handler, port = sink
    cfg = smtp_config(rules, port)
    handler.reject[cfg.agencies["jiritsu_soudan"].email] = (550, "5.1.1 mailbox unavailable")
    nightly_cycle(queued, workspace, rules, cfg, ON)
    result = send_pending(queued, cfg, workspace)
    failed = outbox(queued, "failed")[1]
    assert result.failed == len(failed) >= 1 and all(
        r.agency_id == "jiritsu_soudan" and "550" in r.last_error for r in failed
    )
    assert result.sent == len(handler.messages) >= 1
    assert send_pending(queued, cfg, workspace).sent == 0  # a failed message is not retried silently


def test_temporary_rejection_is_retried_later(queued, workspace, rules, sink):
    handler, port = sink
    cfg = smtp_config(rules, port)
    handler.reject[cfg.agencies["jiritsu_soudan"].email] = (451, "4.3.0 try again later")
    nightly_cycle(queued, workspace, rules, cfg, ON)
    first = send_pending(queued, cfg, workspace)
    assert first.deferred >= 1 and first.failed == 0
    row = next(r for r in outbox(queued, "pending")[1] if r.agency_id == "jiritsu_soudan")
    assert "451" in row.last_error and row.attempts == 1
    handler.reject.clear()
    assert send_pending(queued, cfg, workspace).sent == 0  # not due yet (backoff)
    later = send_pending(queued, cfg, workspace, now=clock.now() + timedelta(hours=1))
    assert later.sent == first.deferred and not outbox(queued, "pending")[1]


def test_refused_connection_keeps_everything_queued(queued, workspace, rules):
    cfg = smtp_config(rules, free_port())  # nothing listens there
    nightly_cycle(queued, workspace, rules, cfg, ON)
    n = len(outbox(queued, "pending")[1])
    result = send_pending(queued, cfg, workspace)
    assert result.sent == 0 and result.deferred == n and len(outbox(queued, "pending")[1]) == n
    rows = outbox(queued, "pending")[1]
    assert (
        sum(1 for r in rows if r.last_error and "cannot connect" in r.last_error) == 1
    )  # one try, not one per message
    assert sum(r.attempts for r in rows) == 0  # no message was handed over: none used up an attempt


def test_connection_dropped_during_data_is_retried_and_reported_as_uncertain(queued, workspace, rules, sink):
    handler, port = sink
    cfg = smtp_config(rules, port)
    handler.drop_data = 1
    nightly_cycle(queued, workspace, rules, cfg, ON)
    n = len(outbox(queued, "pending")[1])
    first = send_pending(queued, cfg, workspace)
    assert first.deferred == 1 and first.sent == n - 1
    counts, rows = outbox(queued)
    assert counts["possible_duplicate"] == 1  # the engine cannot know whether it arrived: it says so
    later = send_pending(queued, cfg, workspace, now=clock.now() + timedelta(hours=1))
    assert later.sent == 1 and len(handler.messages) == n and not outbox(queued, "pending")[1]


def test_slow_server_past_the_timeout_defers_and_flags_the_possible_duplicate(queued, workspace, rules, sink):
    handler, port = sink
    cfg = smtp_config(rules, port)
    cfg = cfg.model_copy(
        update={"mail": cfg.mail.model_copy(update={"smtp": cfg.mail.smtp.model_copy(update={"timeout": 1})})}
    )
    handler.data_delay = 2.5
    nightly_cycle(queued, workspace, rules, cfg, ON)
    first = send_pending(queued, cfg, workspace)
    assert first.sent == 0 and first.deferred >= 1
    assert outbox(queued)[0]["possible_duplicate"] >= 1
    handler.data_delay = 0

    wait_for(lambda: handler.in_data == 0, 30, "the slow server to finish the message it held")
    later = send_pending(queued, cfg, workspace, now=clock.now() + timedelta(hours=1))
    assert later.sent == first.deferred and not outbox(queued, "pending")[1]
    # every message arrived at least once; the ones that may have arrived twice are marked
    keys = [email.message_from_bytes(raw, policy=email.policy.default)["X-Engine-Key"] for _, raw in handler.messages]
    assert set(keys) == {r.message_key for r in outbox(queued, "sent")[1]}
    duplicated = {k for k in keys if keys.count(k) > 1}
    marked = {r.message_key for r in outbox(queued)[1] if r.possible_duplicate}
    assert duplicated <= marked


def test_lines_starting_with_a_dot_arrive_intact(rules, sink):
    """SMTP is spoken step by step (engine/outbox/mail.py): the body is dot-stuffed by the engine."""
    from email.message import EmailMessage

    from engine.outbox import SmtpTransport

    handler, port = sink
    cfg = smtp_config(rules, port)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = cfg.mail.sender, "a@example.jp", "dots"
    text = ".\n..two\n.three\nend.\n"
    msg.set_content(text, cte="8bit")
    transport = SmtpTransport(cfg)
    transport.send(msg, "a@example.jp", "test:dots")
    transport.close()
    ((rcpts, raw),) = handler.messages
    got = email.message_from_bytes(raw, policy=email.policy.default).get_content()
    assert rcpts == ["a@example.jp"] and got.replace("\r\n", "\n") == text


@pytest.mark.regression("review of the conference slice")
def test_wrong_smtp_password_does_not_lose_every_agenda(town, workspace, rules, cfg, monkeypatch):
    import engine.outbox.transports

    class BadLogin:
        def __init__(self, *a, **k):
            pass

        def starttls(self, context=None):  # the engine passes its verifying context
            assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname

        def login(self, user, password):
            raise smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication credentials invalid")

        def close(self):
            pass

    monkeypatch.setenv("ENGINE_SMTP_USER", "kaigi")
    monkeypatch.setattr(engine.outbox.transports.smtplib, "SMTP", BadLogin)
    smtp = cfg.model_copy(update={"mail": cfg.mail.model_copy(update={"transport": "smtp"})})
    nightly_cycle(town, workspace, rules, smtp, ON)
    queued = town.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    send_pending(town, smtp, workspace)  # the password in the environment was mistyped
    # the password is fixed; the next night and the next dispatch should deliver everything
    nightly_cycle(town, workspace, rules, cfg, ON)
    send_pending(
        town, cfg, workspace, transport=FileTransport(workspace / "outbox"), now=clock.now() + timedelta(days=1)
    )
    assert len(sent_keys(town)) == queued, outbox(town)[0]
