"""Propose a lead agency (主担当機関) for a case from the ordered lead rules, with the reason."""

from __future__ import annotations

from pydantic import BaseModel

from engine.config.files import Agency, ConferenceType, Config, LeadRule, lead_matches


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
            and (conference_type == "multi" or a.member)
            and a.id not in exclude
        ]
        if not eligible:
            continue
        ranked = rank(eligible, served_silos, led)
        best = ranked[0]
        n = led.get(best.id, 0)
        why = [f"{rule.reason}（規則 {rule.id}）", f"{best.name}は{area}地区を担当"]
        if best.silo in served_silos:
            why.append("既に世帯員を支援している")
        why.append(f"現在の主担当 {n}件／上限 {best.capacity}件")
        if n >= best.capacity:
            why.append("上限に達しているが他に候補がない")
        if len(ranked) > 1:
            why.append(f"候補 {len(ranked)} 機関から選択（次点: {ranked[1].name}）")
        shared = f"{rule.reason}（規則 {rule.id}）。{best.name}は{area}地区を担当。"
        return LeadProposal(
            agency_id=best.id,
            rule_id=rule.id,
            reason="。".join(why) + "。",
            shared_reason=shared,
            candidates=tuple(a.id for a in ranked),
        )
    return None


def participants(
    config: Config, *, area: str, silos: set[str], lead: str | None, conference_type: ConferenceType
) -> tuple[list[str], list[str]]:
    """Agencies invited (the lead plus every agency of the case's silos serving the area) and,
    for a 支援会議, the non-member agencies left out. Both sorted by id, lead first."""
    invited, excluded = [], []
    for a in sorted(config.agencies.values(), key=lambda a: a.id):
        if a.id != lead and not (a.silo in silos and a.serves(area)):
            continue
        if conference_type == "support" and not a.member:
            excluded.append(a.id)
        elif a.id != lead:
            invited.append(a.id)
    return ([lead] if lead else []) + invited, excluded
