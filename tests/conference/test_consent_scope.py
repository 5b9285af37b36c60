"""Consent covers everyone whose records shaped the case (issue 12): every flag's evidence names the
members whose records raised it, `multi_domain` included; the consent check, the conference type and
the invitations use them all."""

from __future__ import annotations

import json

import pytest

from engine.workflows.cycle import nightly_cycle
from tests.helpers.conference import case_of, cycle
from tests.helpers.mail import body, emails
from tests.helpers.town import CONSENT, ON, add_household, person


def _invited(conn, case_id: str) -> set[str]:
    return {a for (a,) in conn.execute("SELECT agency_id FROM case_agencies WHERE case_id = ?", (case_id,))}


@pytest.mark.regression("issue 12: multi_domain named no members")
def test_a_wife_whose_records_raise_multi_domain_without_consent_keeps_the_case_in_a_support_conference(
    conn, workspace, rules, cfg
):
    # an 8050 elder and son who consent, and the elder's wife: 精神手帳 and 生活保護, no consent
    elder = person(82, "世帯主", ("care_level", "要介護2"), CONSENT, sex="M")
    son = person(52, "子", CONSENT, sex="M")
    wife = person(78, "妻", ("disability_certificate", "精神"), ("public_assistance", ""))
    add_household(conn, "HWIFE", elder, son, wife, area="中央")
    cycle(conn, workspace, rules, cfg)
    evidence = {
        rule: json.loads(ev)
        for rule, ev in conn.execute("SELECT rule_id, evidence FROM flags WHERE household_id = 'HWIFE'")
    }
    assert {"8050", "multi_domain"} <= set(evidence)
    assert wife["pid"] in evidence["multi_domain"]["members"]  # her records made the 3 silos
    case = case_of(conn, "HWIFE")
    assert case["type"] == "support", case["basis"]  # was 「対象者2人全員の本人同意あり → 重層的支援会議」
    assert "全員の本人同意あり" not in case["basis"]
    assert "3人中 同意 2人" in case["basis"]
    # a 支援会議: only registered members hear of her 障害 and 保護 silos (社会福祉法106条の6)
    invited = _invited(conn, case["case_id"])
    assert invited and all(cfg.agencies[a].member for a in invited), invited
    assert "soudan_jigyosho_hikari" not in invited  # the non-member 障害 agency of 中央
    # the 複合課題 title built from her records goes only to members, in 支援会議 papers
    title = rules.flags["multi_domain"].title
    members = {a.email for a in cfg.agencies.values() if a.member}
    carrying = [m for m in emails(workspace) if title in body(m)]
    assert carrying
    for m in carrying:
        assert m["To"] in members and cfg.name_of("multi") not in m["Subject"], (m["To"], m["Subject"])


@pytest.mark.regression("issue 12: the invitations of a consent-based conference")
def test_a_consent_based_conference_invites_no_agency_for_a_member_it_does_not_concern(conn, workspace, rules, cfg):
    # the elder and son consent; the wife's 生活保護 shapes no flag (2 silos: no multi_domain)
    elder = person(82, "世帯主", ("care_level", "要介護2"), CONSENT, sex="M")
    son = person(52, "子", CONSENT, sex="M")
    wife = person(78, "妻", ("public_assistance", ""))
    add_household(conn, "HSPLIT", elder, son, wife, area="中央")
    nightly_cycle(conn, workspace, rules, cfg, ON)
    case = case_of(conn, "HSPLIT")
    assert case["type"] == "multi", case["basis"]
    invited = _invited(conn, case["case_id"])
    assert "fukushi_jimusho" not in invited, invited  # would tell the meeting that she receives 生活保護
    assert "houkatsu_chuo" in invited
