"""The natural records of one person, silo by silo: 障害者手帳, school enrollment and absence,
earned income, care certification and dementia, and missed infant health checks."""

from __future__ import annotations

from engine.demo.town.chunk import Chunk, Household, Member
from engine.demo.town.population import (
    CARE_LEVELS,
    DEMENTIA,
    DISABILITY_CHILD,
    DISABILITY_MIDDLE,
    DISABILITY_OLD,
    DISABILITY_YOUNG,
    HEAVY_CARE,
)


def person_records(c: Chunk, m: Member, house: Household) -> None:
    """Natural records of one member (respecting the planted flags)."""
    age = m.age
    disability(c, m, age)
    enrolled = schooling(c, m) if m.school_age <= 21 else False
    if m.hikikomori:
        former_activity(c, m)
    elif age >= 15:
        income(c, m, age, enrolled)
    if age >= 65 or m.care or m.dementia:
        care(c, m, age, house)
    if age <= 5:
        health_check(c, m, house)


def disability(c: Chunk, m: Member, age: int) -> None:
    """障害者手帳 (mostly 身体 among the old, 療育 among children), half with services."""
    kind = m.disability
    if kind is None:
        r = c.r
        if age < 18:
            kind = DISABILITY_CHILD(r) if r() < 0.013 else None
        elif age < 40:
            kind = DISABILITY_YOUNG(r) if r() < 0.010 else None
        elif age < 65:
            kind = DISABILITY_MIDDLE(r) if r() < 0.020 else None
        else:
            kind = DISABILITY_OLD(r) if r() < 0.19 else None
    if kind is None:
        return
    m.has_disability = kind
    lived = c.cal.today - m.birth
    start = c.past(min(lived - 30, 20 * 365), 30) if lived > 60 else m.birth + 1
    c.record(m, "障害福祉", "disability_certificate", kind, start)
    if not m.no_service and c.r() < 0.5:
        c.record(m, "障害福祉", "service_use", "障害", min(c.cal.today - 1, start + c.between(14, 400)))


def schooling(c: Chunk, m: Member) -> bool:
    """Preschool, school or college enrollment from the school-year age; True if enrolled now."""
    if m.hikikomori or m.unenrolled:
        return False
    cal, r, sa = c.cal, c.r, m.school_age
    if sa <= 5:
        rate = 0.15 if sa == 0 else 0.45 if sa <= 2 else 0.75 if sa <= 4 else 0.97
        if r() >= rate:
            return False
        start = max(m.birth + 180, cal.school_start - 365 * int(r() * (sa + 1)))
        if start >= cal.today:
            return False
        place = "保育所" if sa < 3 or r() < 0.55 else "幼稚園"
        c.record(m, "子ども家庭" if place == "保育所" else "学校", "school_enrollment", place, start)
        return True
    if sa <= 17:
        if sa >= 15 and not m.absence and r() < 0.03:
            return False  # left school: works (or is planted as ひきこもり)
        if m.has_disability == "療育" and r() < 0.5:
            c.record(m, "学校", "school_enrollment", "特別支援学校", cal.april(cal.school_year - (sa - 6)))
        else:
            stage, first, previous = (
                ("小学校", 6, None) if sa <= 11 else ("中学校", 12, "小学校") if sa <= 14 else ("高校", 15, "中学校")
            )
            entry = cal.school_year - (sa - first)
            if previous:
                years = 6 if previous == "小学校" else 3
                c.record(m, "学校", "school_enrollment", previous, cal.april(entry - years), cal.april(entry) - 1)
            c.record(m, "学校", "school_enrollment", stage, cal.april(entry))
        if m.absence or r() < 0.05:
            days = m.absence or (c.between(5, 29) if r() < 0.6 else c.between(30, 120))
            c.record(m, "学校", "school_absence_days", str(days), cal.school_start)
        return True
    # 18-21 on the school-year start: university or vocational school
    if r() >= (0.6 if sa <= 19 else 0.5):
        return False
    place = "専門学校" if sa <= 19 and r() < 0.3 else "大学"
    entry = cal.school_year - (sa - 18)
    c.record(m, "学校", "school_enrollment", "高校", cal.april(entry - 3), cal.april(entry) - 1)
    c.record(m, "学校", "school_enrollment", place, cal.april(entry))
    return True


def income(c: Chunk, m: Member, age: int, enrolled: bool) -> None:
    """earned_income: a positive amount, or 0 (declared no income) for the working-age rest."""
    r = c.r
    male = m.sex == "M"
    if enrolled:
        if age >= 18 and r() < 0.4:  # アルバイト
            job(c, m, age, 200_000 + int(r() * 800_000))
        return
    if age < 20:
        if r() < 0.85:
            job(c, m, age, 1_000_000 + int(r() * 1_800_000))
        else:
            c.record(m, "住民税", "earned_income", "0", c.cal.tax_year_start)
        return
    if age < 65:
        if male:
            p = 0.62 if m.has_disability else 0.93
        else:
            p = 0.70 if m.rel == "妻" else 0.86
            if m.has_disability:
                p -= 0.3
        if r() < p:
            if male:
                amount = 1_800_000 + int(6_400_000 * r() * r())
            else:
                amount = 600_000 + int(4_200_000 * r() * r())
            job(c, m, age, amount)
        else:
            c.record(m, "住民税", "earned_income", "0", c.cal.tax_year_start)
        return
    if r() < ((0.5 if male else 0.3) if age < 70 else (0.28 if male else 0.14) if age < 75 else 0.02):
        job(c, m, age, 600_000 + int(2_400_000 * r() * r()))


def job(c: Chunk, m: Member, age: int, amount: int) -> None:
    """A current job (rounded yen/year); some people also have an earlier, ended one."""
    r = c.r
    value = str(amount // 1000 * 1000)
    working_days = max(60, (age - 16) * 365)
    start = c.past(min(working_days, 25 * 365), 30)
    c.record(m, "住民税", "earned_income", value, start)
    if r() < 0.12 and working_days > 3 * 365:
        end = start - c.between(1, 120)
        old = end - c.between(365, 8 * 365)
        if old > m.birth + 16 * 365:
            c.record(m, "住民税", "earned_income", str(int(amount * (0.6 + 0.4 * r())) // 1000 * 1000), old, end)


def former_activity(c: Chunk, m: Member) -> None:
    """A planted ひきこもり: at most an income or school record that ended over 6 months ago."""
    r, cal = c.r, c.cal
    ended = cal.today - c.between(200, 200 + min(15 * 365, max(1, (m.age - 16) * 365)))
    if ended - 365 <= m.birth + 15 * 365:
        if m.age <= 22 and r() < 0.5:
            c.record(m, "学校", "school_enrollment", "高校", cal.today - 3 * 365 - 200, cal.today - 200)
        return
    if r() < 0.5:
        c.record(
            m,
            "住民税",
            "earned_income",
            str(c.between(800, 3500) * 1000),
            ended - c.between(365, 6 * 365),
            ended,
        )
    elif m.age <= 30 and r() < 0.5:
        c.record(m, "学校", "school_enrollment", "大学", ended - c.between(365, 3 * 365), ended)


def care(c: Chunk, m: Member, age: int, house: Household) -> None:
    """Care certification (by age), dementia, care services and waiting lists."""
    r = c.r
    level = m.care
    if level is None and age >= 65:
        rate = (
            0.02 if age < 70 else 0.06 if age < 75 else 0.12 if age < 80
            else 0.25 if age < 85 else 0.45 if age < 90 else 0.7 if age < 95 else 0.85
        )  # fmt: skip
        if r() < rate:
            level = CARE_LEVELS(r)
    if level is None:
        if m.dementia:
            c.record(m, "介護保険", "dementia", m.dementia, c.past(3 * 365, 30))
        return
    m.has_care = True
    start = c.past(min(6 * 365, max(60, (age - 64) * 365)), 14)
    if age >= 68 and r() < 0.3:  # an earlier certification, replaced on renewal
        c.record(m, "介護保険", "care_level", CARE_LEVELS(r), start - c.between(180, 1000), start - 1)
    c.record(m, "介護保険", "care_level", level, start)
    dementia = m.dementia or (DEMENTIA(r) if r() < 0.5 else None)
    if dementia:
        c.record(m, "介護保険", "dementia", dementia, start)
    if not m.no_service and r() < (0.9 if len(house.members) == 1 else 0.8):
        c.record(m, "介護保険", "service_use", "介護", min(c.cal.today - 1, start + c.between(7, 120)))
    if level in HEAVY_CARE and r() < 0.12 and c.first_time(m.pid, "特養"):
        c.record(m, "介護保険", "waiting_list", "特養", c.past(700, 10))


def health_check(c: Chunk, m: Member, house: Household) -> None:
    """乳幼児健診: a missed check (4%, 10% in foreign households) is a record."""
    value = m.check_missed
    if value is None:
        if c.r() >= (0.10 if house.foreign else 0.04):
            return
        value = "連絡なし" if c.r() < 0.25 else "連絡あり"
    first = m.birth + 120  # the 4-month check
    if first >= c.cal.today - 1:
        first = m.birth + 1
    c.record(m, "母子保健", "health_check_missed", value, first + int(c.r() * (c.cal.today - 1 - first)))
