"""Calendar arithmetic for one `today`, in date ordinals: birth-date windows per age, school-year
starts (1 April) and the 住民税 year (from June)."""

from __future__ import annotations

from datetime import date


def _shift_years(d: date, years: int) -> date:
    """The same day `years` later (29 Feb becomes 28 Feb)."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


class TownCalendar:
    """Ordinal arithmetic for one `today`: birth-date windows per age and school-year starts."""

    def __init__(self, today: date):
        self.today = today.toordinal()
        self.today_year = today.year
        school_year = today.year if (today.month, today.day) >= (4, 1) else today.year - 1
        self.school_year = school_year
        self.school_start = date(school_year, 4, 1).toordinal()
        june = date(today.year if today.month >= 6 else today.year - 1, 6, 1)
        self.tax_year_start = june.toordinal()  # 住民税 assessments run from June
        # Born in (today - (a+1) years, today - a years] <=> age a today.
        self.birth_lo = [_shift_years(today, -a - 1).toordinal() + 1 for a in range(111)]
        self.birth_hi = [_shift_years(today, -a).toordinal() for a in range(111)]
        # Age on the school-year start is a (not a-1) when born on or before 1 April, year - a.
        self.school_cut = [date(school_year - a, 4, 1).toordinal() for a in range(111)]
        self.aprils = {y: date(y, 4, 1).toordinal() for y in range(school_year - 111, school_year + 1)}

    def april(self, year: int) -> int:
        """Ordinal of 1 April of `year` (a school year's first day)."""
        return self.aprils[year]
