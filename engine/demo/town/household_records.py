"""The records of a household as a whole: public assistance, arrears, child-welfare flags, waiting
lists, consultations and consents."""

from __future__ import annotations

from collections.abc import Callable

from engine.demo.town.chunk import Chunk, Household, Member
from engine.demo.town.population import ARREARS_KIND_COUNT, ARREARS_MONTHS, ARREARS_SOURCE


def household_records(c: Chunk, house: Household) -> None:
    """Public assistance, arrears, consultations, child-welfare flags and waiting lists."""
    r, members = c.r, house.members
    head = members[0]
    if house.assistance:
        start = c.past(10 * 365, 60)
        for m in members if r() < 0.7 else members[:1]:
            c.record(m, "生活保護", "public_assistance", "生活扶助", max(start, m.birth + 1))
    if r() < 0.04 and not house.arrears_planted:
        arrears(c, house, ARREARS_KIND_COUNT(r), lambda: ARREARS_MONTHS(r), ended_share=0.25)
        if r() < 0.1:
            c.record(head, "相談支援", "service_use", "困窮", c.past(365, 7))
    minors = [m for m in members if m.age < 18]
    if minors and r() < 0.003:
        child = minors[int(r() * len(minors))]
        start = max(child.birth + 1, c.past(3 * 365, 14))
        c.record(child, "子ども家庭", "yotaikyo_registered", "要支援児童" if r() < 0.7 else "要保護児童", start)
    if r() < 0.0025:
        women = [m for m in members if m.sex == "F" and 16 <= m.age <= 44 and m.rel in ("世帯主", "妻", "子")]
        if women:
            c.record(women[0], "母子保健", "specific_pregnancy", "登録", c.past(240, 7))
            if r() < 0.25:
                arrears(c, house, 1, lambda: c.between(1, 6), ended_share=0.0)
    toddlers = [m for m in minors if m.school_age <= 2]
    if toddlers and r() < 0.03:
        c.record(toddlers[-1], "子ども家庭", "waiting_list", "保育所", max(toddlers[-1].birth + 1, c.past(300, 14)))
    consulted = False
    for m in members:
        if m.age >= 15 and r() < 0.052:
            consultation(c, m, topic(c, m, house), ended_share=0.5)
            consulted = True
    if consulted:
        consents(c, house)


def arrears(c: Chunk, house: Household, count: int, months: Callable[[], int], ended_share: float) -> None:
    """`count` distinct kinds of arrears, owed by the head (sometimes the spouse)."""
    r = c.r
    members = house.members
    payer = members[1] if len(members) > 1 and members[1].rel in ("妻", "夫") and r() < 0.15 else members[0]
    kinds = ["resident_tax", "kokuho", "water"]
    if house.tenant:
        kinds.append("rent")
    if any(6 <= m.school_age <= 14 for m in members):
        kinds.append("school_fee")
    kinds = [kind for kind in kinds if ("arrears", kind) not in c.seen]
    for _ in range(min(count, len(kinds))):
        kind = kinds.pop(int(r() * len(kinds)))
        c.seen.add(("arrears", kind))
        n = months()
        start = c.cal.today - n * 30 - c.between(0, 25)
        end = None
        if r() < ended_share:
            end = start + int(r() * (c.cal.today - 1 - start))
        c.record(payer, ARREARS_SOURCE[kind], "arrears", f"{kind}:{n}", start, end)


def topic(c: Chunk, m: Member, house: Household) -> str:
    """A natural consultation topic that fits the person's situation."""
    r = c.r
    if m.has_care or (m.age >= 65 and r() < 0.5):
        return "介護"
    if m.has_disability:
        return "障害"
    if house.assistance or r() < 0.25:
        return "生活困窮"
    if m.rel in ("世帯主", "妻", "夫") and any(k.age < 6 for k in house.members):
        return "子育て"
    return "健康"


def consultation(c: Chunk, m: Member, topic: str, ended_share: float) -> None:
    """A consultation record of `topic`; some are closed (ended) already."""
    if not c.first_time(m.pid, topic):
        return
    start = max(m.birth + 1, c.past(3 * 365, 1))
    end = None
    if c.r() < ended_share:
        end = start + c.between(14, 400)
        if end >= c.cal.today:
            end = None
    c.record(m, "相談支援", "consultation", topic, start, end)


def consents(c: Chunk, house: Household) -> None:
    """About a third of the members of a consulted household consent to 重層的支援会議."""
    for m in house.members:
        if m.age >= 15 and c.r() < 0.34:
            c.record(m, "相談支援", "consent", "重層的支援会議", c.past(365, 1))
