"""参加支援 in the demo's simulated span (engine/demo/simulate.py calls these):

- the simulated conference adds `participation:` entries to some plan and close outcomes, from the
  proposals of engine/participation/matching.py: a member is referred to the best suitable place
  (consent true for a part of them; a place that requires consent is chosen only with it), or
  the conference writes why no place is chosen, or records the need alone — the audit's
  need_without_referral then shows it until the coordinator refers the member (`engine refer`'s
  function, a few business days later), as after a decline that names a next place;
- places answer a referral from the link in their e-mail (the introducer answers one made in
  person): accept, waitlist, decline (at capacity when the place has no free place, not eligible
  sometimes), on time, late or never;
- the lead and the place answer follow-ups by link: mostly well / attending, sometimes concern or
  stopped (which bring the case back, もどし), some never.
Every draw comes from a generator seeded per referral, follow-up or case, so a seed gives the same story.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from engine.participation.answers import answer_followup, answer_referral, refer_case, settle_need
from engine.participation.matching import next_place, propose
from engine.participation.persons import member_label
from engine.participation.referrals import available_now
from engine.participation.states import ReferralRefused

NO_PLACE_REASONS = (
    "本人が当面は自宅で過ごすことを希望しているため",
    "まず主担当機関との関係づくりを優先するため",
    "本人の体調が落ち着いてから改めて検討するため",
)
CONCERN_NOTE = "参加の回数が減り、本人の表情が暗いとのこと"


NO_PLACE = "町内に受け入れられる場所がない（地域づくりの課題として記録）"


def member_number(conn, case_id: str, person_id: str, on: date) -> str:
    """世帯員N, as the agenda numbers the member (the outcome file's and `engine refer`'s --member)."""
    label = member_label(conn, case_id, person_id, on)
    return label[: label.index("（")] if "（" in label else label


def entries(sim, case_id: str, meeting_id: str, on: date) -> list[dict]:
    """The `participation:` entries the simulated conference writes for a case (often none)."""
    conn, config = sim.conn, sim.config
    r = sim.rng(f"participation:{case_id}:{meeting_id}")
    if r.random() >= 0.6:
        return []
    busy = {
        p
        for (p,) in conn.execute(
            "SELECT person_id FROM participation_needs WHERE case_id = ? AND status IN ('open', 'referred')", (case_id,)
        )
    }
    rules_by_id = {m.id: m for m in config.participation.match_rules}
    places = config.participation.places
    out: list[dict] = []
    for proposal in propose(conn, config, case_id, on, rules=sim.rules):
        if proposal.member.person_id in busy or len(out) >= 2:
            continue
        # the places the member may go to (eligible, in the area), best first, with the need that named them
        fits = [
            (p, need)
            for c in proposal.categories
            if (need := next((n for f in c.rules for n in rules_by_id[f.rule_id].when.needs), None))
            for p in c.places
            if p.eligible and p.in_area
        ]
        if not fits:
            continue
        place, need = fits[0]
        entry = {"member": proposal.member.label[: proposal.member.label.index("（")], "need": need}
        x = r.random()
        if x < 0.65:
            consent = r.random() < 0.7  # the person agreed that the place be told of them
            if places[place.place_id].consent_required and not consent:
                drop_in = [(p, n) for p, n in fits if not places[p.place_id].consent_required]
                place, need = drop_in[0] if drop_in else (None, need)
            if place is None:
                entry["reason"] = "本人がまだ場所への紹介に同意していないため"
            else:
                entry |= {"need": need, "place": place.place_id, "consent": consent}
        elif x < 0.85 or on > sim.end - timedelta(days=21):  # the need alone only when there is time to refer
            entry["reason"] = r.choice(NO_PLACE_REASONS)
        # else: the need alone; the coordinator refers the member later (refer_needs)
        out.append(entry)
    return out


def refer_needs(sim, on: date) -> None:
    """Open needs of open cases (recorded alone, or open again after a decline): the coordinator
    refers the member to the best place left a few business days after noticing."""
    conn, config = sim.conn, sim.config
    for need_id, case_id, person_id, need, tried in conn.execute(
        "SELECT n.need_id, n.case_id, n.person_id, n.need, "
        "(SELECT COUNT(*) FROM referrals r WHERE r.need_id = n.need_id) FROM participation_needs n "
        "JOIN cases c ON c.case_id = n.case_id WHERE n.status = 'open' AND c.is_open = 1 ORDER BY n.need_id"
    ).fetchall():
        key = f"need:{need_id}:{tried}"
        seen = sim.noticed.setdefault(key, on)
        r = sim.rng(key)
        if on < sim.cal.add(seen, r.randint(1, 4)):
            continue
        found = next_place(conn, config, case_id, person_id, need, on, rules=sim.rules)
        consent = sim.rng(f"{key}:{on}").random() < 0.5  # asked again, the person may agree that the place be told
        if found is None:
            found = _place_with_consent(sim, case_id, person_id, need, on) if consent else None
        if found is None:  # no place in the town can take the person: the coordinator says so (unmatched_needs)
            settle_need(
                conn,
                config,
                case_id,
                member_number(conn, case_id, person_id, on),
                need,
                NO_PLACE,
                on,
                "coordinator(sim)",
                no_place=True,
            )
            sim.story.needs_settled += 1
            continue
        consent = consent or config.participation.places[found.place_id].consent_required
        try:
            refer_case(
                conn,
                config,
                case_id,
                member_number(conn, case_id, person_id, on),
                found.place_id,
                on,
                "coordinator(sim)",
                consent=consent,
                need=need,
            )
        except ReferralRefused:
            continue
        sim.story.referrals_made_later += 1


def _place_with_consent(sim, case_id: str, person_id: str, need: str, on: date):
    """The best place for the need that the member may go to once they agree (eligible, in the
    area) and was not tried on this case; None if there is none."""
    tried = {
        p
        for (p,) in sim.conn.execute(
            "SELECT place_id FROM referrals WHERE case_id = ? AND person_id = ?", (case_id, person_id)
        )
    }
    naming = {m.id for m in sim.config.participation.match_rules if need in m.when.needs}
    for proposal in propose(
        sim.conn, sim.config, case_id, on, rules=sim.rules, needs={person_id: [need]}, person_id=person_id
    ):
        for c in proposal.categories:
            if any(f.rule_id in naming for f in c.rules):
                for p in c.places:
                    if p.eligible and p.in_area and p.place_id not in tried:
                        return p
    return None


def places(sim, on: date) -> None:
    """Places (or, for a referral made in person, the introducer) answer the referrals."""
    conn, config = sim.conn, sim.config
    for referral_id, place_id, status, requested_on, answer_due, introducer in conn.execute(
        "SELECT referral_id, place_id, status, requested_on, answer_due, introduced_by FROM referrals "
        "WHERE status IN ('requested', 'waitlisted') ORDER BY referral_id"
    ).fetchall():
        r = sim.rng(f"referral:{referral_id}:{status}")
        x = r.random()
        if x < 0.07:  # never answers: reminded, then escalated to the coordinator
            continue
        if status == "waitlisted":  # asked again when the band ends
            when = sim.cal.add(date.fromisoformat(answer_due), r.randint(1, 3))
        elif x > 0.85:  # late: after the reminder
            when = sim.cal.add(date.fromisoformat(answer_due), r.randint(1, 3))
        else:
            when = sim.cal.add(date.fromisoformat(requested_on), r.randint(1, 8))
        if on < when:
            continue
        place = config.participation.places[place_id]
        y = r.random()
        if available_now(conn, place) == 0:
            choice = "waitlist_1to3m" if status == "requested" and y < 0.3 else "decline_at_capacity"
        elif y < 0.1:
            choice = "decline_not_eligible"
        elif y < 0.2 and status == "requested":
            choice = "waitlist_lt1m"
        else:
            choice = "accept"
        keys = [f"referral_reminder:{referral_id}", f"referral:{referral_id}"]
        if not sim.by_link(on, keys, choice):
            try:
                answer_referral(conn, sim.rules, config, referral_id, choice, on, f"{introducer}(sim)")
            except ReferralRefused:
                continue
        sim.story.referral_answers += 1


def followups(sim, on: date) -> None:
    """The lead and the place answer the follow-ups they were asked."""
    for followup_id, side, who, asked_on in sim.conn.execute(
        "SELECT followup_id, side, agency_id, asked_on FROM followups WHERE status = 'asked' ORDER BY followup_id"
    ).fetchall():
        r: random.Random = sim.rng(f"followup:{followup_id}")
        x = r.random()
        if x < 0.1:  # never answers: escalated
            continue
        if on < sim.cal.add(date.fromisoformat(asked_on), r.randint(1, 4)):
            continue
        if side == "place":
            result = "attending" if x < 0.9 else "not_attending"
        else:
            result = "well" if x < 0.8 else "concern" if x < 0.9 else "stopped_by_choice" if x < 0.95 else "stopped"
        note = CONCERN_NOTE if result == "concern" else None
        if not sim.by_link(on, [f"followup:{followup_id}"], result, note):
            try:
                answer_followup(sim.conn, sim.rules, sim.config, followup_id, result, on, f"{who}(sim)", note)
            except ReferralRefused:
                continue
        sim.story.followup_answers += 1
