"""これまでの経過 at a 重層的支援会議 (engine/papers/casebrief.py reviews): a plan decided at a
支援会議 gave a role to the 福祉事務所 for a wife who did not consent; once the persons the case
concerns consent, the evaluation goes to a 重層的支援会議 that invites a non-member. No agency there
reads the 福祉事務所's role (its name alone says that someone receives 生活保護), and the non-member
reads nothing a 支援会議 decided (shared among its members alone, 法第106条の6)."""

from __future__ import annotations

import json

from engine.casework.sweep import daily_sweep
from engine.papers.agenda import meeting_papers
from engine.workflows.cycle import nightly_cycle
from tests.helpers.casework import d, decided_and_accepted, plan_text
from tests.helpers.conference import case_of
from tests.helpers.town import ON, add_household, person


def test_a_consent_based_evaluation_names_no_role_of_a_non_consenting_member_and_no_support_decision(
    conn, workspace, rules, cfg
):
    elder = person(82, "世帯主", ("care_level", "要介護2"), sex="M")
    son = person(52, "子", sex="M")
    wife = person(78, "妻", ("public_assistance", ""))  # never consents
    add_household(conn, "HS", elder, son, wife, area="北部")
    nightly_cycle(conn, workspace, rules, cfg, ON)
    first = case_of(conn, "HS")
    assert first["type"] == "support"
    roles = (
        (first["lead"], "介護サービスの利用調整", "2027-01-29"),
        ("fukushi_jimusho", "家計管理の見直し", "2027-02-26"),
    )
    decided_and_accepted(conn, workspace, rules, cfg, first, plan_text(lead=first["lead"], roles=roles))
    with conn:  # the elder and the son, whom the 8050 case concerns, consent in January
        for pid in (elder["pid"], son["pid"]):
            conn.execute(
                "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
                (f"{pid}|t|consent", pid, "t", "consent", "重層的支援会議", "2027-01-10", None),
            )
    (due,) = conn.execute(
        "SELECT due_on FROM checkpoints WHERE case_id = ? AND kind = 'evaluation'", (first["case_id"],)
    ).fetchone()
    daily_sweep(conn, rules, cfg, d(due))
    nightly_cycle(conn, workspace, rules, cfg, d(due))
    later = case_of(conn, "HS")
    assert later["type"] == "multi", later
    papers = meeting_papers(conn, rules, cfg, later["meeting"], d(due))
    items = {a.agency_id: i for a in papers.agendas for i in a.cases if i.case_id == first["case_id"]}
    members = {a for a in items if cfg.agencies[a].member}
    others = set(items) - members
    assert members and others, items  # both kinds of agency are at the evaluation
    fukushi = cfg.agencies["fukushi_jimusho"].name
    for agency_id, item in items.items():
        assert fukushi not in json.dumps(item.model_dump(), ensure_ascii=False), agency_id
    for agency_id in members:  # a member still reads the lead's role decided at the 支援会議
        assert items[agency_id].review and items[agency_id].review.roles, agency_id
    for agency_id in others:  # nothing was decided at a 重層的支援会議 yet
        assert items[agency_id].review is None, (agency_id, items[agency_id].review)


def test_a_non_member_reads_no_watch_result_of_a_closure_a_support_conference_decided(conn, workspace, rules, cfg):
    """Once the lineage has a 重層的支援会議 outcome, a non-member reads that decision and its roles,
    not the watch that followed a 支援会議's closure (found by a review of today's change)."""
    from engine.papers.casebrief import review

    add_household(conn, "HS", person(82, "世帯主", ("care_level", "要介護2"), sex="M"), person(52, "子", sex="M"))
    nightly_cycle(conn, workspace, rules, cfg, ON)
    case = case_of(conn, "HS")
    with conn:  # a watch answered after a closure, and a later 重層的支援会議's outcome
        conn.execute(
            "INSERT INTO checkpoints (case_id, kind, due_on, status, result) VALUES (?, 'watch', '2027-03-01', 'done', 'stable')",
            (case["case_id"],),
        )
        conn.execute(
            "INSERT INTO meetings (meeting_id, conference_type, held_on, start_time, place, capacity) "
            "VALUES ('M-20270310-1400-J', 'multi', '2027-03-10', '14:00', '会議室', 8)"
        )
        conn.execute(
            "INSERT INTO outcomes VALUES (?, 'M-20270310-1400-J', '2027-03-10', '2027-03-10', 'continue', NULL, 'obtained', '{}')",
            (case["case_id"],),
        )
    member = review(conn, cfg, case["case_id"], "2027-03-11")
    non_member = review(conn, cfg, case["case_id"], "2027-03-11", consent_based_only=True)
    assert member.watch and non_member is not None and non_member.watch == []
