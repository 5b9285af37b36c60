"""参加支援's proposals: for each person a case concerns, the matching rules (matching_rules.yaml)
that fire, their categories, and the places of those categories ranked, each explained in Japanese
like `engine explain` (engine/participation/matching_explain.py writes the lines).

A rule fires for a member with any of its `when`: an indicator that holds for the member on the
day (the rules' own evaluation, engine/rules/trace.py), a flag of the household open on the case,
or a need recorded for the member (participation_needs, or `needs` given). Places are ranked:
eligible, in the household's area and without a consent problem first; then with a free place;
then verified recently; then by their acceptance rate (no record counts as 0); then by id.
A place that is not active is never proposed. Members are shown as 世帯員N（50代・続柄）, never by name.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable
from datetime import date
from typing import NamedTuple

from engine.config import Config
from engine.participation import matching_explain as words
from engine.participation.directory import MatchRule, Place
from engine.participation.place_day import PlaceDay, PlaceDays, Record
from engine.participation.proposals import (
    CategoryProposals,
    Criterion,
    FiredRule,
    Member,
    MemberProposals,
    ProposedPlace,
)
from engine.policy.consent import concerned, consents
from engine.rules.facts import Context, Household, Person, age_on, load_households
from engine.rules.model import RuleSet
from engine.rules.trace import person_holds
from engine.support.errors import EngineError
from engine.support.vocabulary import NEED_LABELS, PLACE_CATEGORY_LABELS, code_of


class UnknownCase(EngineError, LookupError):
    exit_code = 2


# --- the persons ------------------------------------------------------------------------------
def _case(conn: sqlite3.Connection, case_id: str) -> tuple[str, str]:
    row = conn.execute(
        "SELECT c.household_id, h.area FROM cases c JOIN households h ON h.household_id = c.household_id "
        "WHERE c.case_id = ?",
        (case_id,),
    ).fetchone()
    if row is None:
        raise UnknownCase(f"事案 {case_id} はありません（`engine cases` で事案番号を確認してください）")
    return row


def _labels(persons: list[Person], on_iso: str) -> dict[str, str]:
    from engine.papers.agenda import age_band, relationship_word  # the agendas' words (imported late)

    return {
        p.person_id: f"世帯員{i}（{age_band(age_on(p.birth, on_iso))}・{relationship_word(p.relationship)}）"
        for i, p in enumerate(sorted(persons, key=lambda p: p.person_id), start=1)
    }


def members_concerned(
    conn: sqlite3.Connection,
    case_id: str,
    on: date,
    *,
    rules: RuleSet | None,
    everyone: bool = False,
    household: Household | None = None,
    only_indicators: Collection[str] | None = None,
) -> list[Member]:
    """The persons the case concerns (policy/consent.py `concerned`; with `everyone`, every member
    of the household), in member order. Without `rules`, no indicator is evaluated; with
    `only_indicators`, only those (a member's `indicators` then lists no other). `household`: the
    case's household as load_households gives it for `on`, when the caller has it already."""
    hid, _ = _case(conn, case_id)
    rows = conn.execute(
        "SELECT f.rule_id, f.status, f.evidence FROM case_flags c JOIN flags f ON f.flag_id = c.flag_id "
        "WHERE c.case_id = ? ORDER BY f.rule_id",
        (case_id,),
    ).fetchall()
    if household is not None and household.household_id != hid:
        raise ValueError(f"household {household.household_id} given for case {case_id} of household {hid}")
    (hh,) = [household] if household is not None else load_households(conn, [hid], on)
    on_iso = on.isoformat()
    household = [p.person_id for p in hh.persons]
    persons = (
        set(household)
        if everyone
        else concerned([json.loads(e or "{}").get("members", []) for *_, e in rows], household)
    )
    flags = sorted({r for r, status, _ in rows if status == "open"})
    labels = _labels(hh.persons, on_iso)
    ctx = Context(on)
    indicators = [
        i
        for i in (rules.indicators.values() if rules is not None else ())
        if only_indicators is None or i.id in only_indicators
    ]
    return [
        Member(
            person_id=p.person_id,
            label=labels[p.person_id],
            age=age_on(p.birth, on_iso),
            indicators=[i.id for i in indicators if person_holds(i.when, p, ctx)],
            flags=flags,
            consent=consents(p, on_iso),
        )
        for p in sorted(hh.persons, key=lambda p: p.person_id)
        if p.person_id in persons
    ]


def recorded_needs(conn: sqlite3.Connection, case_id: str) -> dict[str, list[str]]:
    """The open needs the conference recorded on the case, per member."""
    out: dict[str, list[str]] = {}
    for pid, need in conn.execute(
        "SELECT person_id, need FROM participation_needs WHERE case_id = ? AND status = 'open' ORDER BY need_id",
        (case_id,),
    ):
        if need not in out.setdefault(pid, []):
            out[pid].append(need)
    return out


# --- the places ---------------------------------------------------------------------------------
class Fit(NamedTuple):
    """How one place fits one member, before anything is worded: enough to rank it (`rank_key`)."""

    place: Place
    now: PlaceDay
    ages_ok: bool
    for_ok: bool
    hit_needs: list[str]
    hit_inds: list[str]
    consent_ok: bool
    in_area: bool

    @property
    def suitable(self) -> bool:
        return self.ages_ok and self.for_ok and self.in_area and self.consent_ok

    @property
    def capacity_now(self) -> int:
        return self.now.free

    @property
    def fresh(self) -> bool:
        return self.now.fresh

    @property
    def record(self) -> Record:
        return self.now.record

    @property
    def place_id(self) -> str:
        return self.place.id


def fit(place: Place, member: Member, needs: Iterable[str], area: str, now: PlaceDay) -> Fit:
    """The place for the member on the day whose state is `now` (PlaceDays.of)."""
    needs = list(dict.fromkeys(needs))
    wanted_needs, wanted_inds = place.eligibility.needs, place.eligibility.indicators
    hit_needs = [n for n in wanted_needs if n in needs]
    hit_inds = [i for i in wanted_inds if i in member.indicators]
    return Fit(
        place=place,
        now=now,
        ages_ok=place.eligibility.ages.holds(member.age),
        for_ok=not (wanted_needs or wanted_inds) or bool(hit_needs or hit_inds),
        hit_needs=hit_needs,
        hit_inds=hit_inds,
        consent_ok=member.consent or not place.consent_required,
        in_area=place.serves(area),
    )


def proposed(f: Fit, member: Member, area: str, reasons: list[str], explain: bool = True) -> ProposedPlace:
    """The fit as proposed, with each criterion's ✔/✘ line (none without `explain`: the papers show
    one line a place)."""
    place, now = f.place, f.now
    criteria = (
        [
            Criterion(ok=f.ages_ok, text=words.ages(place, member.age)),
            Criterion(ok=f.for_ok, text=words.for_whom(place, f.hit_needs, f.hit_inds)),
            Criterion(ok=f.in_area, text=words.area(place, area)),
            Criterion(ok=now.next_open is not None, text=now.schedule_line),
            Criterion(ok=now.free > 0, text=now.capacity_line),
            Criterion(ok=now.fresh, text=now.fresh_line),
            Criterion(ok=f.consent_ok, text=words.consent(place, member.consent)),
            Criterion(ok=True, text=now.record_line),
        ]
        if explain
        else []
    )
    return ProposedPlace(
        place_id=place.id,
        name=place.name,
        organisation=place.organisation,
        category=place.category,
        category_label=place.category_label,
        area=place.area,
        schedule=now.schedule,
        next_open=now.next_open,
        capacity_now=now.free,
        capacity_max=place.capacity.maximum,
        eligible=f.ages_ok and f.for_ok,
        in_area=f.in_area,
        consent_ok=f.consent_ok,
        fresh=now.fresh,
        record=now.record,
        criteria=criteria,
        reasons=reasons,
    )


def assess(
    conn: sqlite3.Connection,
    config: Config,
    place: Place,
    member: Member,
    needs: Iterable[str],
    area: str,
    on: date,
    reasons: list[str],
    days: PlaceDays | None = None,
    explain: bool = True,
) -> ProposedPlace:
    """One place for one member, proposed (`fit`, then `proposed`). `days`: the places' state,
    shared by a run of proposals (engine/participation/place_day.py)."""
    now = (days or PlaceDays(conn, config)).of(place, on)
    return proposed(fit(place, member, needs, area, now), member, area, reasons, explain)


def rank_key(p: ProposedPlace | Fit):
    return (not p.suitable, p.capacity_now == 0, not p.fresh, -(p.record.rate or 0.0), p.place_id)


# --- the rules --------------------------------------------------------------------------------
def titles_of(rules: RuleSet) -> dict[str, str]:
    """Indicator titles by id, flag titles by 'flag:' + id."""
    return {i.id: i.title for i in rules.indicators.values()} | {f"flag:{f.id}": f.title for f in rules.flags.values()}


def fired(rule: MatchRule, member: Member, needs: list[str], titles: dict[str, str]) -> list[str]:
    """What makes the rule fire for the member, in Japanese (empty: it does not)."""
    if not rule.ages.holds(member.age):
        return []
    return words.because(
        [i for i in rule.when.indicators if i in member.indicators],
        [f for f in rule.when.flags if f in member.flags],
        [n for n in rule.when.needs if n in needs],
        titles,
    )


def deciding_indicators(config: Config) -> frozenset[str]:
    """The indicators a proposal can turn on: those the matching rules fire on and those places
    are for. Proposals without `explain` evaluate only these (nothing shows the others)."""
    return frozenset(i for r in config.participation.match_rules for i in r.when.indicators) | frozenset(
        i for p in config.participation.places.values() for i in p.eligibility.indicators
    )


def _rules_for(config: Config, member: Member, needs: list[str], titles) -> list[tuple[MatchRule, list[str]]]:
    return [(r, why) for r in config.participation.match_rules if (why := fired(r, member, needs, titles))]


def _implied(firing: list[tuple[MatchRule, list[str]]], needs: list[str]) -> list[str]:
    """The needs recorded, then those the fired rules name: whom a place is for is read against these."""
    return list(dict.fromkeys([*needs, *(n for r, _ in firing for n in r.when.needs)]))


def propose(
    conn: sqlite3.Connection,
    config: Config,
    case_id: str,
    on: date,
    *,
    rules: RuleSet,
    needs: dict[str, list[str]] | None = None,
    person_id: str | None = None,
    exclude_places: Iterable[str] = (),
    days: PlaceDays | None = None,
    explain: bool = True,
    household: Household | None = None,
    top: int | None = None,
) -> list[MemberProposals]:
    """Per member concerned (or only `person_id`): the categories the fired rules give, each with
    its active places ranked. `needs` replaces the open needs recorded on the case; `days` the
    places' state, when a run of proposals shares it (engine/participation/place_day.py);
    without `explain`, the places come without their criteria's lines (the papers' one line) and
    the members with only the indicators that decide (`deciding_indicators`); `household`: the
    case's, loaded for `on`, when the caller has it; `top`: only the first places of each
    category (the others are ranked, not proposed)."""
    _, area = _case(conn, case_id)
    given = recorded_needs(conn, case_id) if needs is None else needs
    excluded = set(exclude_places)
    titles = titles_of(rules)
    days = days or PlaceDays(conn, config)
    out = []
    only = None if explain else deciding_indicators(config)
    for m in members_concerned(conn, case_id, on, rules=rules, household=household, only_indicators=only):
        if person_id is not None and m.person_id != person_id:
            continue
        mine = [code_of(n, NEED_LABELS) for n in given.get(m.person_id, [])]
        firing = _rules_for(config, m, mine, titles)
        implied = _implied(firing, mine)
        categories = []
        for cat in dict.fromkeys(c for r, _ in firing for c in r.categories):
            why = [FiredRule(rule_id=r.id, reason=r.reason, because=b) for r, b in firing if cat in r.categories]
            fits = sorted(
                (
                    fit(p, m, implied, area, days.of(p, on))
                    for p in config.participation.places.values()
                    if p.category == cat and p.status == "active" and p.id not in excluded
                ),
                key=rank_key,
            )
            reasons = [f.reason for f in why]
            categories.append(
                CategoryProposals(
                    category=cat,
                    category_label=PLACE_CATEGORY_LABELS[cat],
                    rules=why,
                    places=[proposed(f, m, area, reasons, explain) for f in fits[:top]],
                )
            )
        out.append(MemberProposals(member=m, needs=mine, categories=categories))
    return out


def categories_for(config: Config, code: str) -> set[str]:
    """The place categories that serve a need (those of the matching rules naming it), or the
    category itself for a category code (a need recorded by a place's category)."""
    if code in NEED_LABELS:
        return {c for r in config.participation.match_rules if code in r.when.needs for c in r.categories}
    return {code}


def next_place(
    conn: sqlite3.Connection,
    config: Config,
    case_id: str,
    person_id: str,
    need_or_category: str,
    on: date,
    exclude_places: Iterable[str] = (),
    *,
    rules: RuleSet | None = None,
    consented: bool = False,
) -> ProposedPlace | None:
    """The best suitable place (eligible, in the area, consent) for the need (of the categories of
    the matching rules naming it) or of the category, that the person was not referred to on this
    case nor is in `exclude_places`; None if there is none. Called when a place declines: the
    conference's choice of need or category stands, so no rule needs to fire again (without
    `rules`, places that are for some indicators only are not eligible). `consented`: the
    conference recorded the person's consent to the referral declined, which stands for the next."""
    _, area = _case(conn, case_id)
    found = [m for m in members_concerned(conn, case_id, on, rules=rules, everyone=True) if m.person_id == person_id]
    if not found:
        return None
    if consented:
        found = [found[0].model_copy(update={"consent": True})]
    tried = {
        p
        for (p,) in conn.execute(
            "SELECT place_id FROM referrals WHERE case_id = ? AND person_id = ?", (case_id, person_id)
        )
    }
    excluded = tried | set(exclude_places)
    code = code_of(code_of(need_or_category, NEED_LABELS), PLACE_CATEGORY_LABELS)
    mine = recorded_needs(conn, case_id).get(person_id, [])
    if code in NEED_LABELS:
        naming = [r for r in config.participation.match_rules if code in r.when.needs]
        mine = [*mine, code]
    else:
        naming = [r for r in config.participation.match_rules if code in r.categories]
    wanted = categories_for(config, code)
    needs = _implied([(r, []) for r in naming], mine)
    places = [
        assess(conn, config, p, found[0], needs, area, on, [r.reason for r in naming if p.category in r.categories])
        for p in config.participation.places.values()
        if p.category in wanted and p.status == "active" and p.id not in excluded
    ]
    suitable = [p for p in places if p.suitable]
    return min(suitable, key=rank_key) if suitable else None
