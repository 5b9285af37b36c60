"""Messages withheld at send time (engine/outbox/withhold.py): a version replaced meanwhile is superseded
(also after a crash or a retry), a routing notice of a case no longer routed, reminders of a
household locked since (DV), a "due soon" reminder once the action is overdue, lifecycle messages
answered before the dispatch."""

from __future__ import annotations

from datetime import date

import pytest

from engine.casework.handshake import accept, action_done, record_contact
from engine.casework.listing import outbox
from engine.casework.sweep import daily_sweep
from engine.outbox import FileTransport, ServerUnavailable, retry, send_pending
from engine.workflows.cycle import nightly_cycle
from tests.helpers.casework import (
    LEAD,
    MEETING_DAY,
    add_arrears,
    case,
    checkpoints,
    d,
    decide,
    morning,
    open_cases,
    plan_text,
)
from tests.helpers.conference import case_of, cycle, new_import, send_by_file, sent_keys
from tests.helpers.mail import sent_texts
from tests.helpers.town import ON, add_household, elder_and_son


def test_unsent_older_version_is_superseded_not_sent(town, workspace, rules, cfg):
    nightly_cycle(town, workspace, rules, cfg, ON)
    add_household(town, "H8050B", *elder_and_son(), area="港", changed_seq=1)
    town.execute("INSERT INTO imports VALUES (1, '2026-11-27T00:00:00', 'x', 'utf-8', '{}')")
    town.commit()
    nightly_cycle(town, workspace, rules, cfg, ON)
    counts, rows = outbox(town)
    assert counts.get("superseded", 0) >= 1
    send_pending(town, cfg, workspace, transport=FileTransport(workspace / "outbox"))
    sent = {r.message_key for r in outbox(town, "sent")[1]}
    assert not any(k.endswith(":v1") and k.split(":")[2] == "houkatsu_chuo" for k in sent)


def test_retry_does_not_queue_a_failed_version_that_a_newer_one_replaced(town, workspace, rules, cfg):
    from engine.outbox import retry

    cycle(town, workspace, rules, cfg)
    meeting = case_of(town, "H8050")["meeting"]
    v1 = f"agenda:{meeting}:houkatsu_chuo:v1"
    town.execute("UPDATE outbox SET status = 'failed', last_error = '550' WHERE message_key = ?", (v1,))
    add_household(town, "H8050B", *elder_and_son(), area="港", changed_seq=1)
    town.execute("INSERT INTO imports VALUES (1, '2026-11-27T00:00:00', 'x', 'utf-8', '{}')")
    town.commit()
    cycle(town, workspace, rules, cfg)  # v2 for 中央包括, sent
    assert retry(town) == (0, 1)
    assert town.execute("SELECT status FROM outbox WHERE message_key = ?", (v1,)).fetchone()[0] == "superseded"


@pytest.mark.regression("review of the conference slice")
def test_crash_recovery_does_not_resend_a_version_that_was_superseded_meanwhile(conn, workspace, rules, cfg):
    add_household(conn, "HAGREED", *elder_and_son(consent=True), area="北部")
    nightly_cycle(conn, workspace, rules, cfg, ON)
    meeting = case_of(conn, "HAGREED")["meeting"]
    v1 = f"agenda:{meeting}:hikikomori_npo:v1"
    # the dispatch process died while handing v1 to the server (left 'sending')
    conn.execute("UPDATE outbox SET status = 'sending', attempts = 1 WHERE message_key = ?", (v1,))
    conn.execute("UPDATE records SET end_date = '2026-11-28' WHERE code = 'consent'")  # then consent is withdrawn
    conn.commit()
    nightly_cycle(conn, workspace, rules, cfg, date(2026, 11, 30))  # v2: "no case for you in this meeting"
    send_pending(conn, cfg, workspace, transport=FileTransport(workspace / "outbox"))
    status = conn.execute("SELECT status FROM outbox WHERE message_key = ?", (v1,)).fetchone()[0]
    assert status != "sent"  # v1 (with the case and its 困窮 facts) went to the non-member after consent ended


@pytest.mark.regression("second review of the conference slice")
def test_retry_failed_does_not_send_a_version_replaced_meanwhile(conn, workspace, rules, cfg):
    add_household(conn, "HAGREED", *elder_and_son(consent=True), area="北部")
    nightly_cycle(conn, workspace, rules, cfg, ON)
    meeting = case_of(conn, "HAGREED")["meeting"]
    v1 = f"agenda:{meeting}:hikikomori_npo:v1"
    # the NPO's mail server refused v1 (550): failed, shown by `engine outbox`
    conn.execute(
        "UPDATE outbox SET status = 'failed', attempts = 1, last_error = '550 mailbox unavailable' WHERE message_key = ?",
        (v1,),
    )
    conn.execute("UPDATE records SET end_date = '2026-11-28' WHERE code = 'consent'")  # consent withdrawn
    conn.commit()
    nightly_cycle(conn, workspace, rules, cfg, date(2026, 11, 30))  # v2: "no case for you in this meeting"
    send_by_file(conn, cfg, workspace)
    # v1 never reached the NPO: it is withdrawn (superseded), and no cancellation is sent for it
    assert conn.execute("SELECT status FROM outbox WHERE message_key = ?", (v1,)).fetchone()[0] == "superseded"
    assert f"agenda:{meeting}:hikikomori_npo:v2" not in sent_keys(conn)
    retry(conn)  # the address is fixed: `engine outbox --retry-failed`
    send_by_file(conn, cfg, workspace)
    assert v1 not in sent_keys(
        conn
    )  # v1 (the case and its 困窮 facts) reached the non-member after consent ended, after v2


@pytest.mark.regression("second review of the conference slice")
def test_a_queued_routing_notice_is_not_sent_once_the_case_is_no_longer_routed(town, workspace, rules, cfg):
    nightly_cycle(town, workspace, rules, cfg, ON)  # Friday 02:00: routing notice queued (sent at the 08:00 dispatch…)
    case = case_of(town, "HYOTAI")
    assert case["status"] == "routed"
    # …which did not run (server down, or it was a holiday). Saturday's extract: a DV support measure for the mother
    pid = town.execute(
        "SELECT person_id FROM persons WHERE household_id = 'HYOTAI' AND relationship = '世帯主'"
    ).fetchone()[0]
    town.execute(
        "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
        (f"{pid}|t|dv", pid, "t", "dv_support_measure", "", "2026-11-28", None),
    )
    new_import(town, 1, "HYOTAI", "2026-11-28")
    nightly_cycle(town, workspace, rules, cfg, date(2026, 11, 28))
    assert case_of(town, "HYOTAI")["status"] == "convened"  # escalated: DV household, locked
    send_by_file(town, cfg, workspace)  # Monday 08:00
    leaked = [k for k in sent_keys(town) if k.startswith(f"routing:{case['case_id']}:")]
    assert leaked == []  # the stale notice (case id, flag titles, 子ども facts) of a now DV-locked household went out


# --- lifecycle messages ------------------------------------------------------------------------------
@pytest.mark.regression("review of the case lifecycle")
def test_a_reminder_queued_before_a_dv_lock_does_not_go_out_with_its_wording(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    action = "長男の就労相談と家計の見直し"
    decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, plan_text(roles=((LEAD, action, "2027-01-29"),)))
    accept(conn, cfg, cid, MEETING_DAY, "tester")
    (aid,) = [a for (a,) in conn.execute("SELECT action_id FROM case_actions WHERE case_id = ?", (cid,))]
    transport = FileTransport(workspace / "outbox")
    daily_sweep(conn, rules, cfg, d("2027-01-26"))
    send_pending(conn, cfg, workspace, transport=transport, now=morning("2027-01-26"))
    daily_sweep(conn, rules, cfg, d("2027-01-30"))  # Saturday: the overdue reminder is queued, sent on Monday
    # Sunday night's import: a DV support measure (住民票の閲覧制限) for the son
    pid = conn.execute("SELECT person_id FROM persons WHERE household_id = 'H1' AND relationship = '子'").fetchone()[0]
    conn.execute(
        "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
        (f"{pid}|t|dv", pid, "t", "dv_support_measure", "", "2027-01-31", None),
    )
    conn.commit()
    daily_sweep(conn, rules, cfg, d("2027-02-01"))
    send_pending(conn, cfg, workspace, transport=transport, now=morning("2027-02-01"))
    overdue = sent_texts(workspace).get(f"reminder:{aid}:overdue", "")
    assert action not in overdue, "the action's wording of a DV-locked household went out by e-mail"


@pytest.mark.regression("review of the case lifecycle")
def test_a_due_soon_reminder_is_not_sent_once_the_action_is_overdue(conn, workspace, rules, cfg):

    class Down:
        def send(self, *a):
            raise ServerUnavailable("cannot connect")

        def close(self):
            pass

    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        MEETING_DAY,
        plan_text(roles=((LEAD, "介護サービスの利用調整", "2026-12-10"),)),
    )
    accept(conn, cfg, cid, MEETING_DAY, "tester")
    (aid,) = [a for (a,) in conn.execute("SELECT action_id FROM case_actions WHERE case_id = ?", (cid,))]
    daily_sweep(conn, rules, cfg, d("2026-12-07"))
    send_pending(conn, cfg, workspace, transport=Down(), now=morning("2026-12-07"))  # the mail server is down for days
    daily_sweep(conn, rules, cfg, d("2026-12-11"))
    send_pending(conn, cfg, workspace, transport=FileTransport(workspace / "outbox"), now=morning("2026-12-11"))
    sent = sent_texts(workspace)
    assert f"reminder:{aid}:overdue" in sent
    assert f"reminder:{aid}:due" not in sent, "「期日が近づいています」 arrived a day after the due date"


def test_stale_lifecycle_messages_are_withheld(conn, workspace, rules, cfg):
    (a, ma), (b, mb) = open_cases(conn, workspace, rules, cfg, "HA", "HB")
    # a lead request answered before the 08:00 dispatch
    decide(
        conn,
        workspace,
        rules,
        cfg,
        a,
        ma,
        MEETING_DAY,
        plan_text(roles=((LEAD, "介護サービスの利用調整", "2026-12-10"),)),
    )
    (req,) = conn.execute("SELECT request_id FROM lead_requests WHERE case_id = ?", (a,)).fetchone()
    accept(conn, cfg, a, MEETING_DAY, "tester")
    # a reminder for an action done before the dispatch
    daily_sweep(conn, rules, cfg, d("2026-12-07"))
    (aid,) = conn.execute("SELECT action_id FROM case_actions WHERE case_id = ?", (a,)).fetchone()
    action_done(conn, cfg, aid, d("2026-12-07"), "tester")
    # a checkpoint question of a case reopened by a new flag before the dispatch
    decide(
        conn,
        workspace,
        rules,
        cfg,
        b,
        mb,
        MEETING_DAY,
        f"decision: close\nlead: {LEAD}\nreason: 介護サービスにつながったため\n",
    )
    accept(conn, cfg, b, MEETING_DAY, "tester")
    record_contact(conn, cfg, b, LEAD, d("2027-02-20"), "tester")
    daily_sweep(conn, rules, cfg, d("2027-03-04"))
    (cp,) = [c["checkpoint_id"] for c in checkpoints(conn, b, "watch") if c["status"] == "asked"]
    add_arrears(conn, "HB", 1, "2027-03-04")
    nightly_cycle(conn, workspace, rules, cfg, d("2027-03-04"))
    assert case(conn, b)["status"] in ("convened", "detected")
    send_pending(conn, cfg, workspace, transport=FileTransport(workspace / "outbox"), now=morning("2027-03-04"))
    status = dict(conn.execute("SELECT message_key, status FROM outbox"))
    assert status[f"lead_request:{req}"] == "superseded"
    assert status[f"reminder:{aid}:due"] == "superseded"
    assert status[f"checkpoint:{cp}"] == "superseded"
    assert not (workspace / "outbox" / f"checkpoint_{cp}.eml").exists()
