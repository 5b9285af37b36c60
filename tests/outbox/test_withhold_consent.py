"""Consent at send time: the agenda of a 重層的支援会議 is shared on the persons' consent, also with
agencies that are not members of the 支援会議. Consent that ends between the night that queued it and
the dispatch withholds it (to every agency, the members too), tells the coordinator, and the next
night takes the case to a 支援会議 (engine/outbox/withhold.py)."""

from __future__ import annotations

from datetime import date, timedelta

from engine.outbox.withhold import CONSENT_ENDED
from engine.workflows.cycle import nightly_cycle
from tests.helpers.casework import morning
from tests.helpers.conference import case_of, send_by_file
from tests.helpers.mail import sent_texts
from tests.helpers.town import ON, add_household, elder_and_son
from tests.outbox.test_withhold_dv import told


def test_a_consent_based_agenda_is_withheld_when_consent_ended_before_the_dispatch(conn, workspace, rules, cfg):
    add_household(conn, "HAG", *elder_and_son(consent=True), area="北部")
    nightly_cycle(conn, workspace, rules, cfg, ON)
    case = case_of(conn, "HAG")
    assert case["type"] == "multi", case
    queued = [k for (k,) in conn.execute("SELECT message_key FROM outbox WHERE kind = 'agenda' AND status = 'pending'")]
    assert any(":hikikomori_npo:" in k for k in queued), queued  # a non-member, on consent
    day_before = (ON - timedelta(days=1)).isoformat()
    with conn:  # the person withdraws consent; the extract imported before 08:00 ends the record
        conn.execute("UPDATE records SET end_date = ? WHERE code = 'consent'", (day_before,))
    send_by_file(conn, cfg, workspace, now=morning(ON.isoformat()))
    sent = sent_texts(workspace)
    for key in queued:
        assert key not in sent, f"{key}: a 重層的支援会議's agenda went out after consent ended"
        state, reason = conn.execute("SELECT status, last_error FROM outbox WHERE message_key = ?", (key,)).fetchone()
        assert state == "superseded" and reason.startswith(CONSENT_ENDED), (key, state, reason)
        assert told(conn, key), "the coordinator is not told that an agenda was held back"
    assert not any(case["case_id"] in text for text in sent.values())
    nightly_cycle(conn, workspace, rules, cfg, ON + timedelta(days=1))
    assert case_of(conn, "HAG")["type"] == "support"  # the next night: a 支援会議, members only


def test_a_consent_that_ends_before_the_meeting_withholds_it_too(conn, workspace, rules, cfg):
    """The booking asks consent through the meeting day (consent_lasts): so does the dispatch."""
    add_household(conn, "HAG", *elder_and_son(consent=True), area="北部")
    nightly_cycle(conn, workspace, rules, cfg, ON)
    case = case_of(conn, "HAG")
    (held,) = conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (case["meeting"],)).fetchone()
    queued = [k for (k,) in conn.execute("SELECT message_key FROM outbox WHERE kind = 'agenda' AND status = 'pending'")]
    ends = (date.fromisoformat(held) - timedelta(days=1)).isoformat()  # valid today, not on the meeting day
    with conn:
        conn.execute("UPDATE records SET end_date = ? WHERE code = 'consent'", (ends,))
    send_by_file(conn, cfg, workspace, now=morning(ON.isoformat()))
    assert queued and not set(queued) & set(sent_texts(workspace))


def test_an_agenda_of_a_consenting_household_still_goes(conn, workspace, rules, cfg):
    add_household(conn, "HAG", *elder_and_son(consent=True), area="北部")
    nightly_cycle(conn, workspace, rules, cfg, ON)
    queued = [k for (k,) in conn.execute("SELECT message_key FROM outbox WHERE kind = 'agenda' AND status = 'pending'")]
    send_by_file(conn, cfg, workspace, now=morning(ON.isoformat()))
    assert queued and set(queued) <= set(sent_texts(workspace))
