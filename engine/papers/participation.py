"""「参加支援の候補」 on the papers: per member concerned and category, the top places with a
one-line reason (name, area, schedule, free places). Only on the agenda of the case's proposed lead
and on the coordinator's local copy, never for a DV-locked case (engine/papers/agenda.py decides
where; this module only builds the lines). Members appear as 世帯員N（50代・続柄）; place names are
public information."""

from __future__ import annotations

import sqlite3
from datetime import date

from pydantic import BaseModel

from engine.config import Config
from engine.participation.matching import propose
from engine.participation.place_day import PlaceDays
from engine.rules.facts import Household
from engine.rules.model import RuleSet

TOP = 3


class Candidate(BaseModel):
    member: str  # 世帯員2（50代・子）
    category: str  # 居場所
    reason: str  # the matching rules' reasons
    places: list[str]  # one line each: 名前 — 中央、毎週火曜 13:00〜16:00、空き2人


def candidates(
    conn: sqlite3.Connection,
    rules: RuleSet,
    config: Config,
    case_id: str,
    on: date,
    labels: dict[str, str],
    only: set[str] | None = None,
    days: PlaceDays | None = None,
    household: Household | None = None,
) -> list[Candidate]:
    """The case's proposals as the papers show them; `labels` are the paper's own member labels,
    `only` the members whose information the paper may carry (None: every member concerned),
    `days` the places' state shared by the night's papers (engine/participation/place_day.py),
    `household` the case's household loaded for `on`, when the papers have it."""
    if not config.participation.present:
        return []
    out = []
    for mp in propose(conn, config, case_id, on, rules=rules, days=days, explain=False, household=household, top=TOP):
        pid = mp.member.person_id
        if only is not None and pid not in only:
            continue
        for c in mp.categories:
            if not c.places:
                continue
            out.append(
                Candidate(
                    member=labels.get(pid, mp.member.label),
                    category=c.category_label,
                    reason="／".join(dict.fromkeys(r.reason for r in c.rules)),
                    places=[p.one_line() for p in c.places],
                )
            )
    return out
