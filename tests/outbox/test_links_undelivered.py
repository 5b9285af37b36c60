"""An agency keeps a working answer link while the mail server is down: a later e-mail about the
same question retires the links of the earlier ones only once it is delivered; one that is not
(server unavailable, 4xx, 5xx) takes its own new link with it instead (engine/links/tokens.py
retire_earlier_links, not_delivered). Found by a review of the dispatch."""

from __future__ import annotations

from datetime import date

import pytest

from engine import links
from engine.casework.handshake import accept
from engine.casework.sweep import daily_sweep
from engine.workflows.cycle import dispatch
from tests.helpers.casework import DAY, LEAD, MEETING_DAY, decide, open_cases, plan_text
from tests.helpers.faulty_smtp import Fault
from tests.helpers.mail_checks import smtp
from tests.helpers.served import free_port
from tests.links.conftest import send, token_in

LATER = date(2026, 12, 11)  # the day after the action was due: the overdue reminder asks again
LEAD_MAIL = "houkatsu-chuo@city.example.lg.jp"


def reminded(conn, workspace, rules, cfg) -> tuple[int, str]:
    """A role due 2026-12-10, its reminder delivered (the agency holds its link), and on LATER the
    overdue reminder queued about the same action: (action id, the delivered link's token)."""
    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    roles = ((LEAD, "訪問", "2026-12-10"),)
    decide(conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, plan_text(roles=roles))
    accept(conn, cfg, case_id, DAY, "tester")
    (action_id,) = conn.execute("SELECT action_id FROM case_actions WHERE case_id = ?", (case_id,)).fetchone()
    assert daily_sweep(conn, rules, cfg, DAY).reminders == 1
    send(conn, cfg, workspace)
    token = token_in(workspace, f"reminder:{action_id}:due")
    daily_sweep(conn, rules, cfg, LATER)
    assert conn.execute(
        "SELECT status FROM outbox WHERE message_key = ?", (f"reminder:{action_id}:overdue",)
    ).fetchone() == ("pending",)
    return action_id, token


@pytest.mark.parametrize("how", ["server_down", "550_at_rcpt", "451_at_rcpt", "554_after_the_body"])
def test_a_delivered_link_lives_while_the_next_email_is_not_delivered(how, conn, workspace, rules, cfg, start):
    action_id, token = reminded(conn, workspace, rules, cfg)
    if how == "server_down":
        with conn:  # the digest out of the way: the reminder is the first message the run claims
            conn.execute("UPDATE outbox SET status = 'superseded' WHERE kind = 'digest'")
        server_cfg = smtp(cfg, free_port())
    else:
        server = start("raw")
        server.plan.add(
            {
                "550_at_rcpt": Fault("rcpt", code=550, text="5.1.1 mailbox unavailable", times=None),
                "451_at_rcpt": Fault("rcpt", code=451, text="4.3.0 later", times=None, rcpt=LEAD_MAIL),
                "554_after_the_body": Fault("data_end", code=554, text="5.6.0 rejected", times=None, rcpt=LEAD_MAIL),
            }[how]
        )
        server_cfg = smtp(cfg, server.port)
    dispatch(conn, server_cfg, workspace, LATER, force=True)
    (status,) = conn.execute(
        "SELECT status FROM outbox WHERE message_key = ?", (f"reminder:{action_id}:overdue",)
    ).fetchone()
    assert status in ("pending", "failed")
    assert links.lookup(conn, cfg, token, LATER).state == "open", (
        "the agency's only link died with an undelivered e-mail"
    )
    live = conn.execute(
        "SELECT COUNT(*) FROM answer_links WHERE kind = 'action' AND revoked_at IS NULL AND used_at IS NULL"
    ).fetchone()
    assert live == (1,)  # the undelivered e-mail's own link died with it


def test_once_the_next_email_is_delivered_only_its_link_answers(conn, workspace, rules, cfg):
    action_id, token = reminded(conn, workspace, rules, cfg)
    send(conn, cfg, workspace, LATER)
    fresh = token_in(workspace, f"reminder:{action_id}:overdue")
    assert links.lookup(conn, cfg, fresh, LATER).state == "open"
    assert links.lookup(conn, cfg, token, LATER).state == "revoked"


def test_two_emails_about_one_question_delivered_together_leave_the_newest_link_alive(conn, workspace, rules, cfg):
    """Two e-mails asking about one action minted their links in one group and are marked delivered in
    that order: each delivery retires only the links minted before its own, so the agency is left with
    the newest working link, not two dead ones (found by a review of today's change)."""
    from engine.links.tokens import fill_links, retire_earlier_links
    from engine.outbox.keys import MessageKey
    from engine.papers.notices import ANSWER_LINK

    action_id, token = reminded(conn, workspace, rules, cfg)
    parts = {"text": f"x {ANSWER_LINK}", "html": f"<p>{ANSWER_LINK}</p>"}
    keys = [MessageKey.reminder(action_id, overdue=False), MessageKey.reminder(action_id, overdue=True)]
    for key in keys:  # both claimed in one group: both links minted before either is marked sent
        fill_links(conn, cfg, key, LEAD, parts)
    with conn:
        for key in keys:
            retire_earlier_links(conn, key, LEAD, asks=True)
    live = conn.execute(
        "SELECT link_id FROM answer_links WHERE kind = 'action' AND revoked_at IS NULL AND used_at IS NULL"
    ).fetchall()
    assert live == [conn.execute("SELECT MAX(link_id) FROM answer_links WHERE kind = 'action'").fetchone()], live
    assert links.lookup(conn, cfg, token, LATER).state == "revoked"  # the one delivered before
