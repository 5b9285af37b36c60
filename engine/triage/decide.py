"""Which pathway a new case takes, and why: the triage rules (engine/triage/model.py) read top to
bottom, inside the limits the law and safety set, which live here and nowhere else:

- an urgent flag always goes to an urgent conference (no rule can downgrade it);
- a DV-locked household always goes to a conference, where the DV centre takes part;
- a household flagged again after its archived case goes to a conference with its previous lead
  (つなぎ直し);
- a rule's agency must serve the household's area and, without everyone's consent, be a
  registered member of the 支援会議 (社会福祉法106条の6): a rule with no such agency is skipped.
A case no rule takes goes to a conference.
"""

from __future__ import annotations

from pydantic import BaseModel

from engine.conference.candidates import Candidate
from engine.conference.lead import rank
from engine.config import SEVERITY_ORDER, Agency, ConferenceType, Config, lead_matches
from engine.policy.members import may_share_with
from engine.rules.model import RuleSet
from engine.triage.model import PATHWAY_LABELS, Pathway, TriageRule, When


class Decision(BaseModel):
    pathway: Pathway
    rule_id: str  # the triage rule, or urgent | dv_lock | relink | default
    reason: str  # Japanese, stored with the case and shown in its history
    agency_id: str | None = None  # assessment, watch: the assessor; served: the serving agency
    due_business_days: int | None = None  # the rule's own interval, if it sets one


class CaseFacts(BaseModel):
    """What the triage rules may look at, computed once per case."""

    flag_ids: frozenset[str]
    severity: str
    silos: frozenset[str]  # touched by the case's flags
    served: frozenset[str]  # silos whose agencies already serve a member
    all_consented: bool
    area: str


def case_facts(rules: RuleSet, cand: Candidate, served: set[str], all_consented: bool) -> CaseFacts:
    return CaseFacts(
        flag_ids=frozenset(cand.flag_ids),
        severity=cand.severity,
        silos=frozenset(s for f in cand.flag_ids if f in rules.flags for s in rules.flags[f].silos),
        served=frozenset(served),
        all_consented=all_consented,
        area=cand.area,
    )


def holds(w: When, f: CaseFacts) -> bool:
    sev = SEVERITY_ORDER.index(f.severity)
    overlap = f.silos & f.served
    return (
        (not w.flags or bool(f.flag_ids & set(w.flags)))
        and (not w.only_flags or f.flag_ids <= set(w.only_flags))
        and (w.min_severity is None or sev >= SEVERITY_ORDER.index(w.min_severity))
        and (w.max_severity is None or sev <= SEVERITY_ORDER.index(w.max_severity))
        and (w.min_silos is None or len(f.silos) >= w.min_silos)
        and (w.max_silos is None or len(f.silos) <= w.max_silos)
        and (w.min_flags is None or len(f.flag_ids) >= w.min_flags)
        and (w.max_flags is None or len(f.flag_ids) <= w.max_flags)
        and (w.consent is None or f.all_consented == (w.consent == "all"))
        and (
            w.served is None
            or (w.served == "all" and bool(f.silos) and f.silos <= f.served)
            or (w.served == "some" and bool(overlap))
            or (w.served == "none" and not overlap)
        )
    )


def _agency(config: Config, rule: TriageRule, f: CaseFacts, led: dict[str, int]) -> Agency | None:
    """The agency a rule names for this case, or None (the rule is then skipped)."""
    # a serving agency is told as a 支援会議 member is (the notice goes to members only)
    kind: ConferenceType = "multi" if f.all_consented and rule.pathway != "served" else "support"
    eligible = [
        a
        for a in config.agencies.values()
        if (rule.by is None or lead_matches(rule.by, a)) and a.serves(f.area) and may_share_with(a, kind)
    ]
    if rule.pathway == "served":  # one already serving the household, in a silo the flags touch
        eligible = [a for a in eligible if a.silo in f.served & f.silos]
    ranked = rank(eligible, set(f.served), led)
    return ranked[0] if ranked else None


def decide(
    config: Config,
    f: CaseFacts,
    *,
    urgent: bool,
    locked: bool,
    relinked: bool,
    led: dict[str, int],
    skip: frozenset[str] = frozenset(),
) -> Decision:
    """The pathway of a new case (`led`: the open cases each agency leads; `skip`: pathways not
    to take, e.g. watch again at a watched case's re-screen)."""
    if urgent:
        return Decision(
            pathway="urgent_conference", rule_id="urgent", reason="緊急度「緊急」のフラグがあるため緊急の会議で検討する"
        )
    if locked:
        return Decision(
            pathway="conference",
            rule_id="dv_lock",
            reason="DVロックの対象世帯のため、DVの相談支援機関を含む会議で検討する（一機関には任せない）",
        )
    if relinked:
        return Decision(
            pathway="conference",
            rule_id="relink",
            reason="見守りを終えた事案の世帯に新たな課題があるため、前回の主担当機関を含む会議で検討する（つなぎ直し）",
        )
    skipped: list[str] = []
    for rule in config.triage.rules:
        if rule.pathway in skip or not holds(rule.when, f):
            continue
        agency = _agency(config, rule, f, led) if rule.pathway in ("assessment", "watch", "served") else None
        if rule.pathway in ("assessment", "watch", "served") and agency is None:
            skipped.append(rule.id)
            continue
        why = f"{rule.reason}（振り分け規則 {rule.id}）"
        if agency is not None and rule.pathway != "watch":  # a watched case has no owner until its re-screen
            why += f"。担当: {agency.name}（{f.area}地区を担当）"
        if skipped:
            why += f"。規則 {'、'.join(skipped)} は担当できる機関がないため適用しない"
        return Decision(
            pathway=rule.pathway,
            rule_id=rule.id,
            reason=why,
            agency_id=agency.id if agency else None,
            due_business_days=rule.due_business_days,
        )
    tail = f"（規則 {'、'.join(skipped)} は担当できる機関がないため適用しない）" if skipped else ""
    return Decision(
        pathway="conference",
        rule_id="default",
        reason=f"どの振り分け規則にも当たらないため{PATHWAY_LABELS['conference']}で検討する{tail}",
    )
