"""Members only (社会福祉法106条の6): a 支援会議's papers, its routing notices and the lifecycle mail of
its cases reach registered members only — also when the registry changes after queueing, or when
consent lapses — and a non-member cannot be given a role in a 支援会議 case."""

from __future__ import annotations

import pytest

from engine.casework.handshake import accept
from engine.casework.outcome import OutcomeInvalid
from engine.casework.sweep import daily_sweep
from engine.outbox import FileTransport, send_pending
from engine.workflows.cycle import nightly_cycle
from tests.helpers.casework import LEAD, MEETING_DAY, case, d, decide, held_on, morning, open_cases, plan_text
from tests.helpers.conference import case_of, cycle, send_by_file, sent_keys, with_agency
from tests.helpers.town import ON, add_household, person


def test_non_member_agencies_never_receive_support_meeting_papers(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    non_members = {a.id for a in cfg.agencies.values() if not a.member}
    assert non_members, "the shipped registry should hold a non-member to test with"
    support = {m for (m,) in town.execute("SELECT meeting_id FROM meetings WHERE conference_type = 'support'")}
    for key, agency_id in town.execute("SELECT message_key, agency_id FROM outbox WHERE kind = 'agenda'"):
        if key.split(":")[1] in support:
            assert agency_id not in non_members, key
    support_case = case_of(town, "H8050")
    invited = {
        a for (a,) in town.execute("SELECT agency_id FROM case_agencies WHERE case_id = ?", (support_case["case_id"],))
    }
    assert "hikikomori_npo" not in invited and "構成員でないため招集しない機関" in support_case["basis"]
    # with consent the same kind of case may include the NPO (困窮 silo, serves 全域)
    agreed = case_of(town, "HAGREED")
    invited = {
        a for (a,) in town.execute("SELECT agency_id FROM case_agencies WHERE case_id = ?", (agreed["case_id"],))
    }
    assert "hikikomori_npo" in invited
    assert (
        town.execute(
            "SELECT COUNT(*) FROM outbox WHERE agency_id = 'hikikomori_npo' AND message_key LIKE ?",
            (f"agenda:{agreed['meeting']}:%",),
        ).fetchone()[0]
        == 1
    )


@pytest.mark.regression("review of the conference slice")
def test_agency_that_stops_being_a_member_still_receives_the_queued_support_agenda(town, workspace, rules, cfg):
    nightly_cycle(town, workspace, rules, cfg, ON)  # 02:00: v1 queued for houkatsu_chuo (member)
    meeting = case_of(town, "H8050")["meeting"]
    # the registry is corrected at 07:00: 中央包括 is not (or no longer) a registered member.
    # dispatch_task loads the new agencies.yaml at 08:00, before any nightly run re-renders the papers
    changed = with_agency(cfg, "houkatsu_chuo", member=False)
    send_pending(town, changed, workspace, transport=FileTransport(workspace / "outbox"))
    leaked = [k for k in sent_keys(town) if k.startswith(f"agenda:{meeting}:houkatsu_chuo:")]
    assert leaked == [], leaked  # v1 carries the case, its 介護 facts and the 106条の6 notice


@pytest.mark.regression("second review of the conference slice")
def test_a_routing_notice_is_not_sent_to_an_owner_that_is_not_a_member(town, workspace, rules, cfg):
    nightly_cycle(town, workspace, rules, cfg, ON)
    case = case_of(town, "HYOTAI")
    assert case["status"] == "routed"
    # the registry is corrected before the 08:00 dispatch: こども家庭センター is not a registered member
    changed = with_agency(cfg, "kodomo_center", member=False)
    send_by_file(town, changed, workspace)
    # the notice (queued with members_only = 0) carries the case, flag titles and facts, shared without consent
    assert [k for k in sent_keys(town) if k.startswith("routing:")] == []


@pytest.mark.regression("review of the case lifecycle")
def test_a_reminder_of_a_support_conference_case_is_not_sent_to_a_non_member(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    assert case(conn, cid)["conference_type"] == "support"
    partner = "jiritsu_soudan"
    assert cfg.agencies[partner].member
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        MEETING_DAY,
        plan_text(roles=((LEAD, "介護サービスの利用調整", "2027-02-26"), (partner, "就労に向けた相談", "2027-01-29"))),
    )
    accept(conn, cfg, cid, MEETING_DAY, "tester")
    # agencies.yaml is updated: the agency leaves the 支援会議 (no longer bound by 106条の6)
    left = cfg.model_copy(
        update={"agencies": {**cfg.agencies, partner: cfg.agencies[partner].model_copy(update={"member": False})}}
    )
    daily_sweep(conn, rules, left, d("2027-01-26"))
    send_pending(conn, left, workspace, transport=FileTransport(workspace / "outbox"), now=morning("2027-01-26"))
    to_partner = conn.execute(
        "SELECT message_key FROM outbox WHERE agency_id = ? AND status = 'sent'", (partner,)
    ).fetchall()
    assert to_partner == []


@pytest.mark.regression("review of the case lifecycle")
def test_after_consent_lapses_a_non_member_lead_gets_no_reminder(conn, workspace, rules, cfg):
    consent = ("consent", "重層的支援会議", "2026-01-10", "2027-01-15")  # withdrawn in mid-January
    add_household(
        conn,
        "HC",
        person(82, "世帯主", ("care_level", "要介護2"), consent, sex="M"),
        person(52, "子", consent, sex="M"),
        area="中央",
    )
    nightly_cycle(conn, workspace, rules, cfg, ON)
    cid, mid, kind = conn.execute(
        "SELECT case_id, meeting_id, conference_type FROM cases WHERE household_id = 'HC'"
    ).fetchone()
    assert kind == "multi"
    npo = "hikikomori_npo"
    assert not cfg.agencies[npo].member
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        held_on(conn, mid),
        plan_text(lead=npo, roles=((npo, "居場所への参加支援", "2027-01-29"),)),
    )
    accept(conn, cfg, cid, held_on(conn, mid), "tester")
    for day in ("2027-01-26", "2027-02-01"):
        daily_sweep(conn, rules, cfg, d(day))
        send_pending(conn, cfg, workspace, transport=FileTransport(workspace / "outbox"), now=morning(day))
    sent = conn.execute("SELECT message_key FROM outbox WHERE agency_id = ? AND status = 'sent'", (npo,)).fetchall()
    assert sent == [], f"consent ended 2027-01-15, yet {sent} went to a non-member"


def test_a_non_member_cannot_take_a_role_in_a_support_conference_case(convened):
    before = convened.snapshot()
    with pytest.raises(OutcomeInvalid) as err:
        convened.outcome(
            "decision: plan\nlead: houkatsu_chuo\nroles:\n  - {agency: hikikomori_npo, action: 訪問, due: 2026-12-09}\n"
        )
    assert [p.field for p in err.value.problems] == ["roles.agency"]
    assert convened.snapshot() == before
