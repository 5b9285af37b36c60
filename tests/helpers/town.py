"""Hand-written households for tests, inserted straight into a workspace database."""

from __future__ import annotations

import itertools
import sqlite3
from datetime import date

ON = date(2026, 11, 27)  # the screening date used by the tests
_ids = itertools.count(1)


def born(age: int, month: int = 4, day: int = 1) -> str:
    """A birth date that makes someone `age` full years old on ON (default birthday 1 April)."""
    year = ON.year - age - (1 if (month, day) > (ON.month, ON.day) else 0)
    return date(year, month, day).isoformat()


def person(
    age: int,
    rel: str = "世帯主",
    *records,
    sex: str = "F",
    nationality: str = "日本",
    pid: str | None = None,
    birth: str | None = None,
) -> dict:
    """A member; records are (code, value[, start[, end]]) tuples."""
    recs = []
    for r in records:
        code, value, *dates = r
        start = dates[0] if dates else "2024-04-01"
        end = dates[1] if len(dates) > 1 else None
        recs.append((code, value, start, end))
    return {
        "pid": pid or f"T{next(_ids):07d}",
        "birth": birth or born(age),
        "rel": rel,
        "sex": sex,
        "nat": nationality,
        "records": recs,
    }


def add_household(conn: sqlite3.Connection, hid: str, *members: dict, area: str = "中央", changed_seq: int = 0) -> str:
    conn.execute(
        "INSERT INTO households (household_id, area, address, changed_seq) VALUES (?,?,?,?)",
        (hid, area, "テスト町1-1", changed_seq),
    )
    for m in members:
        conn.execute(
            "INSERT INTO persons VALUES (?,?,?,?,?,?,?,?)",
            (m["pid"], hid, "試験 太郎", "シケン タロウ", m["birth"], m["sex"], m["rel"], m["nat"]),
        )
        for code, value, start, end in m["records"]:
            key = f"{m['pid']}|test|{code}|{start}|{value}"
            conn.execute("INSERT INTO records VALUES (?,?,?,?,?,?,?)", (key, m["pid"], "test", code, value, start, end))
    conn.commit()
    return hid


CONSENT = ("consent", "重層的支援会議", "2026-01-10")  # a consent record, open-ended


def elder_and_son(consent: bool = False) -> tuple[dict, dict]:
    """An 8050 pair: a father of 82 in need of care and his son of 52 (both with CONSENT if asked)."""
    extra = (CONSENT,) if consent else ()
    return (person(82, "世帯主", ("care_level", "要介護2"), *extra, sex="M"), person(52, "子", *extra, sex="M"))
