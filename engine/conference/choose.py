"""Which conference takes a case: left with the silo conference already handling the household
(routing), else a 重層的支援会議 when everyone concerned has consented, else a 支援会議."""

from __future__ import annotations

import sqlite3

from engine.conference.candidates import Candidate
from engine.config import Agency, ConferenceType, Config, Routing
from engine.policy import consent
from engine.policy.dv import Locks
from engine.rules.facts import Household, current
from engine.rules.model import RuleSet


def concerned_persons(cand: Candidate, hh: Household) -> set[str]:
    return consent.concerned((f[3] for f in cand.flags), (p.person_id for p in hh.persons))


def choose_conference(
    cand: Candidate, hh: Household, on_iso: str, config: Config, *, through_iso: str | None = None
) -> tuple[ConferenceType, str]:
    """重層的支援会議 only when every person concerned has consented, and (given the meeting day)
    the consent lasts until the meeting; else 支援会議."""
    concerned = concerned_persons(cand, hh)
    agreed = concerned & consent.consenting(hh, on_iso)
    names = config.conference.names
    if agreed == concerned and (through_iso is None or consent.consent_lasts(hh, concerned, on_iso, through_iso)):
        return "multi", f"対象者{len(concerned)}人全員の本人同意あり → {names['multi']}"
    if agreed == concerned:
        return "support", (
            f"本人同意の期限が会議日（{through_iso}）より前に切れる対象者がいる → "
            f"{names['support']}（社会福祉法第106条の6。同意なしの情報共有は構成員に限る）"
        )
    return "support", (
        f"本人同意が確認できない対象者がいる（{len(concerned)}人中 同意 {len(agreed)}人）→ "
        f"{names['support']}（社会福祉法第106条の6。同意なしの情報共有は構成員に限る）"
    )


def routing_for(
    conn: sqlite3.Connection,
    cand: Candidate,
    hh: Household,
    on_iso: str,
    config: Config,
    rules: RuleSet,
    *,
    locks: Locks | None = None,
) -> tuple[Routing, Agency] | None:
    """The silo conference already handling this household, if every flag lies wholly within its
    silo. A locked (DV) household is never left to a silo conference: the DV centre must take part.
    `locks`: the DV locks a night's convening read at once (dv.Locks)."""
    if not cand.flags:
        return None
    if (locks or Locks(conn, config, on_iso)).case(hh.household_id, cand.flag_ids):
        return None
    for routing in config.conference.routing:
        if not any(current(r, on_iso) for p in hh.persons for r in p.records.get(routing.code, ())):
            continue
        owners = sorted(
            (a for a in config.agencies.values() if a.kind == routing.owner_kind and a.serves(cand.area)),
            key=lambda a: a.id,
        )
        if not owners:
            continue
        owner = owners[0]
        if all(set(rules.flags[f].silos) <= {owner.silo} for f in cand.flag_ids):
            return routing, owner
    return None
