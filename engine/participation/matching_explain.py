"""The Japanese words of 参加支援's proposals (engine/participation/matching.py): one line per
criterion of a place, the reasons a matching rule fired, the one-line summary on the lead's agenda,
and the whole explanation `engine match CASE` prints (in the style of `engine explain`)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from engine.participation.directory import ALL_AREAS, Place
from engine.support.dates import to_wareki, wareki_with_weekday
from engine.support.vocabulary import NEED_LABELS

if TYPE_CHECKING:  # pragma: no cover
    from engine.participation.place_day import Record
    from engine.participation.proposals import MemberProposals, ProposedPlace

FULL = "空きなし（空き待ちの可能性）"


def ages(place: Place, age: int) -> str:
    return f"対象年齢: {place.eligibility.ages.text()}（本人 {age}歳）"


def for_whom(place: Place, hit_needs: list[str], hit_indicators: list[str]) -> str:
    e = place.eligibility
    if not (e.needs or e.indicators):
        return "対象: 限定なし" + (f"（{e.description}）" if e.description else "")
    wanted = "・".join([NEED_LABELS[n] for n in e.needs] + list(e.indicators))
    if hit_needs or hit_indicators:
        return f"対象: {'・'.join([NEED_LABELS[n] for n in hit_needs] + hit_indicators)}に当たる"
    return f"対象: {wanted}の方が対象で、本人の必要（会議での記録・規則の見立て）に当たらない"


def area(place: Place, household_area: str) -> str:
    if place.area == ALL_AREAS:
        return f"地区: {ALL_AREAS}（世帯は{household_area}）"
    if place.area == household_area:
        return f"地区: {place.area}（世帯と同じ地区）"
    return f"地区: {place.area}（世帯は{household_area}、地区外）"


def schedule(place: Place, next_open: date | None) -> str:
    if next_open is None:
        return f"日程: {place.schedule.text()}（次の開催日がありません）"
    return f"日程: {place.schedule.text()}（次回 {wareki_with_weekday(next_open)}）"


def capacity(place: Place, free: int) -> str:
    c = place.capacity
    counted = f"{to_wareki(c.updated_on)}時点の空き{c.available}人からその後の受入れを差し引き"
    if free <= 0:
        return f"定員: {FULL} — 定員{c.maximum}人、{counted}"
    return f"定員: 空き{free}人 — 定員{c.maximum}人、{counted}"


def freshness(place: Place, fresh: bool) -> str:
    when = to_wareki(place.assured_on)
    return f"掲載情報: 最終確認 {when}" if fresh else f"情報が古い（最終確認 {when}）"


def consent(place: Place, consented: bool) -> str:
    if consented:
        return "本人同意: 同意の記録あり"
    if place.consent_required:
        return "本人同意: 受入れに本人の同意が必要ですが、同意の記録がありません"
    return "本人同意: 受入れに同意書は不要（同意がない間は、場所に本人のことを伝えず、主担当機関が案内・同行します）"


def record(r: Record) -> str:
    if not r.referred:
        return "紹介の実績なし"
    return f"これまでの紹介 {r.referred}件、受入れ {r.accepted}件、参加継続 {r.attending}件"


def because(indicators: list[str], flags: list[str], needs: list[str], titles: dict[str, str]) -> list[str]:
    """Indicator and flag titles from the rules (`titles` by id)."""
    return (
        [f"本人の状態「{titles.get(i, i)}」" for i in indicators]
        + [f"世帯の課題「{titles.get('flag:' + f, f)}」" for f in flags]
        + [f"会議で記録した必要「{NEED_LABELS[n]}」" for n in needs]
    )


def one_line(p: ProposedPlace) -> str:
    """名前 — 中央、毎週火・木曜 13:00〜16:00、空き2人 (for the agenda); the criteria that fail in brackets."""
    state = f"空き{p.capacity_now}人" if p.capacity_now > 0 else FULL
    notes = [n for ok, n in ((p.fresh, "情報が古い"), (p.consent_ok, "同意が必要"), (p.in_area, "地区外")) if not ok]
    if not p.eligible:
        notes.append("対象外の条件あり")
    return f"{p.name} — {p.area}、{p.schedule}、{state}" + (f"［{'、'.join(notes)}］" if notes else "")


def render(case_id: str, on: date, proposals: list[MemberProposals], titles: dict[str, str] | None = None) -> str:
    """The whole explanation of a case's proposals, one block per member and category."""
    titles = titles or {}
    lines = [f"事案 {case_id} — 参加支援の候補（{wareki_with_weekday(on)}時点）"]
    if not proposals:
        lines.append("この事案が関わる世帯員がいません。")
    for mp in proposals:
        m = mp.member
        head = f"■ {m.label}"
        shown = [titles.get(i, i) for i in m.indicators]
        if shown:
            head += f" — 本人の状態: {'、'.join(shown)}"
        lines.append(head)
        if mp.needs:
            lines.append(f"  会議で記録した必要: {'、'.join(NEED_LABELS.get(n, n) for n in mp.needs)}")
        if not mp.categories:
            lines.append("  当てはまるマッチング規則はありません。")
        for c in mp.categories:
            lines.append(f"  ◆ {c.category_label}")
            for r in c.rules:
                lines.append(f"    理由: {r.reason}（{'、'.join(r.because)}。規則 {r.rule_id}）")
            if not c.places:
                lines.append("    この種類の場所は登録されていません。")
            for rank, p in enumerate(c.places, start=1):
                lines.append(
                    f"    {rank}. {p.name}（{p.organisation}）{'' if p.suitable else ' ※条件に合わない点があります'}"
                )
                lines += [f"       {line}" for line in p.lines()]
    return "\n".join(lines)
