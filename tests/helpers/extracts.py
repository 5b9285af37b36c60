"""The small silo extract the import tests start from (four households, six persons, five records,
dates written as the silos write them), and how they import it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from engine.intake.importer import import_dir, import_summary

TODAY = date(2024, 6, 1)


HOUSEHOLDS = """\
household_id,area,address
H001,東地区,東町1-1
H002,西地区,西町2-2
H003,南地区,南町3-3
H004,北地区,北町4-4
"""


PERSONS = """\
person_id,household_id,name,kana,birth_date,sex,relationship,nationality
P001,H001,山田太郎,ヤマダタロウ,昭和20年1月1日,男,世帯主,日本
P002,H001,山田一郎,ヤマダイチロウ,S50.5.5,M,子,日本
P003,H002,佐藤花子,サトウハナコ,1990-02-03,女,世帯主,日本
P004,H002,佐藤ゆい,サトウユイ,R2.4.1,F,子,日本
P005,H003,鈴木次郎,スズキジロウ,1948/7/7,1,世帯主,日本
P006,H004,グエン・ミン,グエンミン,19950310,2,世帯主,ベトナム
"""


RECORDS = """\
person_id,source,code,value,start_date,end_date
P001,介護,care_level,要介護2,R5.4.1,
P002,困窮,earned_income,0,2024-04-01,
P003,困窮,arrears,kokuho:4,2024-01-01,
P004,子ども,health_check_missed,連絡なし,R6.6.1,
P005,介護,care_level,要支援1,2023-10-01,2024-09-30
"""


BASE = {"households.csv": HOUSEHOLDS, "persons.csv": PERSONS, "records.csv": RECORDS}


BASE_COUNTS = {"households.csv": 4, "persons.csv": 6, "records.csv": 5}


def write_town(folder: Path, encoding: str = "utf-8", newline: str = "\n", **files: str) -> Path:
    """Write the small town (overridden per file: households=..., persons=..., records=...) as CSV."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in BASE.items():
        text = files.get(name.removesuffix(".csv"), text)
        (folder / name).write_bytes(text.replace("\n", newline).encode(encoding))
    return folder


def header(text: str) -> str:
    """Only the header line of a CSV text."""
    return text.splitlines()[0] + "\n"


def run(conn, folder, **kwargs):
    return import_dir(conn, folder, today=TODAY, **kwargs)


def counts(conn):
    return import_summary(conn)


def changed_seqs(conn):
    return dict(conn.execute("SELECT household_id, changed_seq FROM households"))


# Each bad row is appended to the file; (file, row, field, text expected in the reason)
BAD_ROWS = [
    ("households", "H010,東地区", None, "wrong column count: expected 3 fields, found 2"),
    ("households", "H010,東地区,x,y", None, "wrong column count: expected 3 fields, found 4"),
    ("households", ",東地区,x", "household_id", "household_id is empty"),
    ("households", "H010,,x", "area", "area is empty"),
    ("households", "H001,東地区,別", "household_id", "duplicate household_id 'H001' (first seen on line 2)"),
    ("persons", "P010,H001,x,x,2000-01-01,M,子", None, "wrong column count: expected 8 fields, found 7"),
    ("persons", ",H001,x,x,2000-01-01,M,子,日本", "person_id", "person_id is empty"),
    ("persons", "P010,,x,x,2000-01-01,M,子,日本", "household_id", "household_id is empty"),
    ("persons", "P010,H001,x,x,,M,子,日本", "birth_date", "birth_date is empty"),
    ("persons", "P010,H001,x,x,2000-13-45,M,子,日本", "birth_date", "unparseable date"),
    ("persons", "P010,H001,x,x,H31.5.1,M,子,日本", "birth_date", "outside the 平成 (H) era"),
    ("persons", "P010,H001,x,x,R6.6.2,M,子,日本", "birth_date", "birth_date is in the future (after 2024-06-01)"),
    ("persons", "P010,H001,x,x,1899-12-31,M,子,日本", "birth_date", "birth_date is before 1900-01-01"),
    ("persons", "P001,H001,x,x,2000-01-01,M,子,日本", "person_id", "duplicate person_id 'P001' (first seen on line 2)"),
    ("persons", "P010,H999,x,x,2000-01-01,M,子,日本", "household_id", "unknown household_id 'H999'"),
    ("persons", "P010,H001,x,x,2000-01-01,X,子,日本", "sex", "unrecognised sex: "),
    ("records", "P001,介護,care_level", None, "wrong column count: expected 6 fields, found 3"),
    ("records", ",介護,care_level,要介護1,2024-01-01,", "person_id", "person_id is empty"),
    ("records", "P001,,care_level,要介護1,2024-01-01,", "source", "source is empty"),
    ("records", "P001,介護,,要介護1,2024-01-01,", "code", "code is empty"),
    ("records", "P001,介護,care_level,要介護1,,", "start_date", "start_date is empty"),
    ("records", "P001,介護,care_level,要介護1,R6.2.30,", "start_date", "unparseable date 'R6.2.30'"),
    ("records", "P001,介護,care_level,要介護1,2024-01-01,someday", "end_date", "unparseable date 'someday'"),
    ("records", "P001,介護,care_level,要介護1,2024-01-01,2023-12-31", "end_date", "end_date 2023-12-31 is before start_date 2024-01-01"),
    ("records", "P001,介護,care_level,要介護3,R5.4.1,", None, "duplicate record for person_id 'P001', code 'care_level', start_date 2023-04-01 (first seen on line 2)"),
    ("records", "P999,介護,care_level,要介護1,2024-01-01,", "person_id", "unknown person_id 'P999'"),
    ("records", "P001,介護,care_levl,要介護1,2024-01-01,", "code", "unknown code 'care_levl' — did you mean 'care_level'?"),
    ("records", "P001,介護,care_level,要介護9,2024-01-01,", "value", "value '要介護9' is not one of"),
    ("records", "P003,困窮,arrears,kokuho,2024-01-01,", "value", "value 'kokuho' must be '<kind>:<months>'"),
    ("records", "P002,困窮,earned_income,たくさん,2024-01-01,", "value", "must be a whole number"),
]  # fmt: skip
