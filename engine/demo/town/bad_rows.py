"""Deliberately broken rows, as real extracts have, for the importer's rejects report."""

from __future__ import annotations

from engine.demo.town.chunk import Chunk
from engine.demo.town.compose import address

BAD_KINDS = (
    "person_unknown_household",
    "person_bad_date",
    "person_duplicate_id",
    "record_unknown_code",
    "record_bad_date",
    "household_missing_field",
    "record_missing_field",
    "person_missing_field",
)
BAD_DATES = ("令和6年13月1日", "2019-02-30", "R5.13.1", "令和5年2月30日", "2024/13/01")


def bad_row(c: Chunk, number: int, households_total: int) -> None:
    """Append broken row `number`: the kind cycles through BAD_KINDS, the data is plausible."""
    kind = BAD_KINDS[number % len(BAD_KINDS)]
    last_person = c.persons[-1]
    pid, hid = last_person[0], last_person[1]
    bad_date = BAD_DATES[int(c.r() * len(BAD_DATES))]
    new_pid = f"P{99_000_000 + number:08d}"
    name, kana = "田中 花子", "タナカ ハナコ"
    birth = c.fmt(c.cal.birth_lo[40])
    if kind == "person_unknown_household":
        unknown = f"H{households_total + 1 + number:07d}"
        c.persons.append([new_pid, unknown, name, kana, birth, "F", "世帯主", "日本"])
    elif kind == "person_bad_date":
        c.persons.append([new_pid, hid, name, kana, bad_date, "F", "その他", "日本"])
    elif kind == "person_duplicate_id":
        c.persons.append([pid, hid, name, kana, birth, "F", "その他", "日本"])
    elif kind == "record_unknown_code":
        c.records.append([pid, "介護保険", "care_levl", "要介護2", c.fmt(c.past(900, 30)), ""])
    elif kind == "record_bad_date":
        c.records.append([pid, "国保", "arrears", "kokuho:2", bad_date, ""])
    elif kind == "household_missing_field":
        c.households.append([f"H{households_total + 5_000_000 + number:07d}", address(c, "中央", False)])
    elif kind == "record_missing_field":
        c.records.append([pid, "水道", "water:3", c.fmt(c.past(300, 30)), ""])
    else:  # person_missing_field: the sex column is missing
        c.persons.append([new_pid, hid, name, kana, birth, "その他", "日本"])


def bad_records(bad_rows: int) -> int:
    """How many of the first `bad_rows` broken rows go to records.csv."""
    return sum(1 for n in range(bad_rows) if BAD_KINDS[n % len(BAD_KINDS)].startswith("record_"))
