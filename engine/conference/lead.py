"""Propose a lead agency (主担当機関) for a case from the ordered lead rules, with the reason;
a confirmed lead stays, and a reopened or re-linked case proposes its previous lead again."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from engine.config import Agency, ConferenceType, Config, LeadRule, lead_matches
from engine.policy.members import may_share_with


class LeadProposal(BaseModel):
    agency_id: str
    rule_id: str
    reason: str  # Japanese, stored with the case, shown to the coordinator
    shared_reason: str  # what agencies see: rule and area only (that the lead already serves a member would reveal its silo's facts)
    candidates: tuple[str, ...]  # every agency the rule allowed, best first


def rule_applies(rule: LeadRule, flag_ids: set[str]) -> bool:
    return rule.flags == "any" or bool(flag_ids & set(rule.flags))


def rank(candidates: list[Agency], served_silos: set[str], led: dict[str, int]) -> list[Agency]:
    """Best first: already serves a member, then lowest load for capacity, then id."""
    return sorted(
        candidates,
        key=lambda a: (a.silo not in served_silos, led.get(a.id, 0) >= a.capacity, led.get(a.id, 0) / a.capacity, a.id),
    )


def propose_lead(
    config: Config,
    *,
    area: str,
    flag_ids: set[str],
    served_silos: set[str],
    conference_type: ConferenceType,
    led: dict[str, int],
    exclude: frozenset[str] = frozenset(),
) -> LeadProposal | None:
    """The first rule naming one of the flags that has an eligible agency decides.

    Eligible: matches the rule's kind/silo/agency, serves the household's area, and, for a
    支援会議, is a registered member. None if no rule yields an agency (cannot happen with a
    valid configuration that ends with a `flags: any` rule naming a town-wide member agency).
    `exclude`: agencies that declined this case (the next candidate is asked)."""
    for rule in config.lead_rules:
        if not rule_applies(rule, flag_ids):
            continue
        eligible = [
            a
            for a in config.agencies.values()
            if lead_matches(rule.lead, a)
            and a.serves(area)
            and may_share_with(a, conference_type)
            and a.id not in exclude
        ]
        if not eligible:
            continue
        ranked = rank(eligible, served_silos, led)
        best = ranked[0]
        n = led.get(best.id, 0)
        # the area as agencies.yaml names it: a households.csv area the agency does not list (it serves
        # 全域) is not repeated to agencies, for the extract's column may hold more than an area's name
        covers = f"{area}地区" if area in best.areas else "全域"
        why = [f"{rule.reason}（規則 {rule.id}）", f"{best.name}は{covers}を担当"]
        if best.silo in served_silos:
            why.append("既に世帯員を支援している")
        why.append(f"現在の主担当 {n}件／上限 {best.capacity}件")
        if n >= best.capacity:
            why.append("上限に達しているが他に候補がない")
        if len(ranked) > 1:
            why.append(f"候補 {len(ranked)} 機関から選択（次点: {ranked[1].name}）")
        shared = f"{rule.reason}。{best.name}は{covers}を担当。"  # agencies read it: no rule id
        return LeadProposal(
            agency_id=best.id,
            rule_id=rule.id,
            reason="。".join(why) + "。",
            shared_reason=shared,
            candidates=tuple(a.id for a in ranked),
        )
    return None


@dataclass(frozen=True)
class CaseLead:
    """A case's lead so far (all None for a new case) and, when it is reopened or re-linked, the
    lead before (もどし・つなぎ直し)."""

    agency_id: str | None = None
    rule_id: str | None = None
    reason: str | None = None
    shared_reason: str | None = None
    confirmed_on: str | None = None
    previous: str | None = None
    continued: bool = False  # 継続審議: the conference goes on with the lead it was proposed


def lead_for_case(
    config: Config,
    before: CaseLead,
    *,
    area: str,
    flag_ids: set[str],
    served_silos: set[str],
    conference_type: ConferenceType,
    led: dict[str, int],
) -> tuple[LeadProposal | None, str]:
    """The lead of a case decided (again), and what to add to the conference basis.

    A confirmed lead (the hand-shake was accepted) stays the lead, and so does the proposed lead of
    a case whose conference continues (継続審議); a reopened or re-linked case proposes its previous
    lead again; each if it may take part. Otherwise the lead rules decide, but an unconfirmed lead
    the same rule still allows is not switched over load alone."""
    keep = before.agency_id if before.confirmed_on or before.continued else before.previous
    agency = config.agencies.get(keep) if keep else None
    basis = ""
    if agency and (before.confirmed_on or may_share_with(agency, conference_type)):
        why = (
            f"{before.confirmed_on}に受諾した主担当機関を継続"
            if before.confirmed_on
            else "継続審議のため主担当機関の案を継続"
            if before.continued
            else "前回の主担当機関（もどし・つなぎ直し）"
        )
        lead = LeadProposal(
            agency_id=agency.id,
            rule_id=before.rule_id or "previous",
            reason=f"{why}: {agency.name}。",
            shared_reason=f"{why}。",
            candidates=(agency.id,),
        )
    else:
        lead = propose_lead(
            config,
            area=area,
            flag_ids=flag_ids,
            served_silos=served_silos,
            conference_type=conference_type,
            led=led,
        )
        if agency:  # the previous lead cannot take part in a 支援会議 it is not a member of (社会福祉法106条の6)
            basis = f"。前回の主担当機関（{agency.name}）は{config.name_of('support')}の構成員でないため招集しない（本人同意を得て{config.name_of('multi')}で再検討を）"
    old = before.agency_id
    if (
        lead
        and not before.confirmed_on
        and old
        and old != lead.agency_id
        and lead.rule_id == before.rule_id
        and old in lead.candidates
    ):
        # same rule, and the earlier lead is still eligible: do not switch the lead over load alone
        lead = lead.model_copy(
            update={"agency_id": old, "reason": before.reason, "shared_reason": before.shared_reason}
        )
    return lead, basis


def participants(
    config: Config, *, area: str, silos: set[str], lead: str | None, conference_type: ConferenceType
) -> tuple[list[str], list[str]]:
    """Agencies invited (the lead plus every agency of the case's silos serving the area) and,
    for a 支援会議, the non-member agencies left out. Both sorted by id, lead first."""
    invited, excluded = [], []
    for a in sorted(config.agencies.values(), key=lambda a: a.id):
        if a.id != lead and not (a.silo in silos and a.serves(area)):
            continue
        if not may_share_with(a, conference_type):
            excluded.append(a.id)
        elif a.id != lead:
            invited.append(a.id)
    return ([lead] if lead else []) + invited, excluded
