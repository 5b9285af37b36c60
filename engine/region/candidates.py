"""資源開発の候補: per area, the needs with the largest unmet count over the view's months, ranked,
each with its evidence — the counts that make it, the categories of place that would take the need
(configs/matching_rules.yaml: the rules whose `when.needs` name it), and how many such places serve
the area (its own or 全域, active) and how many of them have a free place now.

Unmet = needs without a place (unmatched, or open past the grace) + referrals for the need declined
because the place was full (at_capacity) or the person was not eligible (not_eligible). A decline
for another reason (could not contact, other) says nothing about the town's resources.

Ranked by the unmet count (largest first), then fewer places with a free place first (a need with
nowhere to go outranks one whose places are only busy), then by area and need."""

from __future__ import annotations

import sqlite3

from pydantic import BaseModel

from engine.config import Config
from engine.participation.place_day import capacity_now
from engine.region.figures import Figures
from engine.support.vocabulary import NEED_LABELS, PLACE_CATEGORY_LABELS, need_label


class Candidate(BaseModel):
    rank: int
    area: str
    need: str
    need_label: str
    unmet: int
    unmatched: int
    open_past_grace: int
    declined_capacity: int
    declined_eligibility: int
    categories: list[str]  # the category codes that would take the need
    category_labels: list[str]
    places: int  # active places of those categories serving the area (its own or 全域)
    places_with_free: int  # of them: with a free place now
    free: int  # their free places now

    def evidence(self) -> str:
        """One line in Japanese: what makes the count, and what the area has for the need."""
        parts = [f"紹介先のないニーズ {self.unmatched} 件"]
        if self.open_past_grace:
            parts.append(f"紹介も理由もないまま期限を過ぎたニーズ {self.open_past_grace} 件")
        parts.append(f"定員超過による受入れ不可 {self.declined_capacity} 件")
        parts.append(f"対象外による受入れ不可 {self.declined_eligibility} 件")
        cats = "・".join(self.category_labels) or "該当する種類なし（マッチング規則にない）"
        have = (
            f"この地区で利用できる{cats}は {self.places} か所、うち空きのある場所 {self.places_with_free} か所（空き {self.free} 人）"
            if self.category_labels
            else f"受け入れる場所の種類: {cats}"
        )
        return "、".join(parts) + "。" + have


def categories_for(config: Config, need: str) -> list[str]:
    """The place categories that would take `need`: those of the matching rules naming it (a need
    recorded as a category, by `engine refer` without --need, is that category)."""
    if need in PLACE_CATEGORY_LABELS and need not in NEED_LABELS:
        return [need]
    found = [c for r in config.participation.match_rules if need in r.when.needs for c in r.categories]
    order = list(PLACE_CATEGORY_LABELS)
    return sorted(dict.fromkeys(found), key=order.index)


def rank_candidates(conn: sqlite3.Connection, config: Config, figures: Figures) -> list[Candidate]:
    """Every area's needs with an unmet count, ranked (see the module's docstring)."""
    out = []
    for u in figures.unmet:
        cats = categories_for(config, u.need)
        places = [
            p
            for p in config.participation.places.values()
            if p.category in cats and p.status == "active" and p.serves(u.area)
        ]
        free = [capacity_now(conn, p) for p in places]
        out.append(
            Candidate(
                rank=0,
                area=u.area,
                need=u.need,
                need_label=need_label(u.need),
                unmet=u.total,
                unmatched=u.unmatched,
                open_past_grace=u.open_past_grace,
                declined_capacity=u.declined_capacity,
                declined_eligibility=u.declined_eligibility,
                categories=cats,
                category_labels=[PLACE_CATEGORY_LABELS[c] for c in cats],
                places=len(places),
                places_with_free=sum(f > 0 for f in free),
                free=sum(free),
            )
        )
    out.sort(key=lambda c: (-c.unmet, c.places_with_free, c.area, c.need))
    for i, c in enumerate(out, start=1):
        c.rank = i
    return out


def top_per_area(candidates: list[Candidate], n: int = 3) -> dict[str, list[Candidate]]:
    """Each area's first `n` candidates, in rank order."""
    out: dict[str, list[Candidate]] = {}
    for c in candidates:
        if len(out.setdefault(c.area, [])) < n:
            out[c.area].append(c)
    return out
