"""Importing silo CSV extracts: encodings, 和暦, rejects, refusals, idempotent upserts, changed_seq."""

from __future__ import annotations

import csv
import stat
from datetime import date
from pathlib import Path

import pytest

import engine.intake.importer as importer
from engine.intake.csvio import FileRefused, read_csv
from engine.intake.importer import ImportRefused, import_dir, import_summary
from engine.store.db import connect

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


@pytest.fixture
def conn(tmp_path):
    c = connect(tmp_path / "ws")
    yield c
    c.close()


def run(conn, folder, **kwargs):
    return import_dir(conn, folder, today=TODAY, **kwargs)


def counts(conn):
    return import_summary(conn)


def changed_seqs(conn):
    return dict(conn.execute("SELECT household_id, changed_seq FROM households"))


def test_utf8_import_counts(conn, tmp_path):
    result = run(conn, write_town(tmp_path / "in"))
    assert result.import_seq == 1
    assert result.encoding == dict.fromkeys(BASE, "utf-8")
    for name, n in BASE_COUNTS.items():
        assert result.files[name].model_dump() == {
            "read": n,
            "inserted": n,
            "updated": 0,
            "unchanged": 0,
            "rejected": 0,
        }
    assert result.total_inserted == 15 and result.total_rejected == 0 and result.rejects == []
    assert result.changed_households == 4
    assert counts(conn) == {"households": 4, "persons": 6, "records": 5, "imports": 1}
    seq, encoding, summary = conn.execute("SELECT import_seq, encoding, summary FROM imports").fetchone()
    assert (seq, encoding) == (1, "utf-8") and '"inserted": 6' in summary
    assert conn.execute("SELECT sex FROM persons ORDER BY person_id").fetchall() == [
        ("M",),
        ("M",),
        ("F",),
        ("F",),
        ("M",),
        ("F",),
    ]


def test_utf8_with_bom(conn, tmp_path):
    result = run(conn, write_town(tmp_path / "in", encoding="utf-8-sig"))
    assert result.encoding == dict.fromkeys(BASE, "utf-8-sig")
    assert result.total_inserted == 15 and result.warnings == []


def test_cp932_detected_automatically(conn, tmp_path):
    result = run(conn, write_town(tmp_path / "in", encoding="cp932", newline="\r\n"))
    assert result.encoding == dict.fromkeys(BASE, "cp932")
    assert result.total_inserted == 15
    assert conn.execute("SELECT name, kana FROM persons WHERE person_id = 'P006'").fetchone() == (
        "グエン・ミン",
        "グエンミン",
    )
    assert conn.execute("SELECT area FROM households WHERE household_id = 'H001'").fetchone() == ("東地区",)


def test_cp932_half_width_kana(conn, tmp_path):
    folder = write_town(
        tmp_path / "in", encoding="cp932", persons=PERSONS + "P007,H001,山田花,ﾔﾏﾀﾞﾊﾅ,H2.2.2,女,孫,日本\n"
    )
    result = run(conn, folder)
    assert result.encoding["persons.csv"] == "cp932" and result.total_rejected == 0
    assert conn.execute("SELECT kana, birth_date FROM persons WHERE person_id = 'P007'").fetchone() == (
        "ﾔﾏﾀﾞﾊﾅ",
        "1990-02-02",
    )


def test_cp932_with_nec_characters(conn, tmp_path):
    # ① and ㈱ are CP932 (Windows) extensions that strict Shift_JIS lacks
    folder = write_town(tmp_path / "in", encoding="cp932", households=HOUSEHOLDS + "H005,東地区,㈱ビル①\n")
    assert run(conn, folder).encoding["households.csv"] == "cp932"
    assert conn.execute("SELECT address FROM households WHERE household_id = 'H005'").fetchone() == ("㈱ビル①",)


def test_explicit_encoding(conn, tmp_path):
    folder = write_town(tmp_path / "in", encoding="cp932")
    with pytest.raises(ImportRefused, match="--encoding"):
        run(conn, folder, encoding="utf-8")
    result = run(conn, folder, encoding="cp932")
    assert result.encoding == dict.fromkeys(BASE, "cp932") and result.total_inserted == 15


def test_unknown_encoding_name_refused(conn, tmp_path):
    with pytest.raises(ImportRefused, match="unknown encoding 'klingon'"):
        run(conn, write_town(tmp_path / "in"), encoding="klingon")


def test_undecodable_file_refused(conn, tmp_path):
    folder = write_town(tmp_path / "in")
    # 0x82 starts a two-byte CP932 character and cannot be followed by a space; invalid UTF-8 too
    (folder / "persons.csv").write_bytes(PERSONS.encode() + b"P007,H001,\x82 x,x,2000-01-01,M,,\n")
    with pytest.raises(ImportRefused) as e:
        run(conn, folder)
    message = str(e.value)
    assert "persons.csv" in message and "cannot decode" in message
    assert "UTF-8 or CP932 (Shift_JIS)" in message and "--encoding" in message and "line 8" in message
    assert counts(conn) == {"households": 0, "persons": 0, "records": 0, "imports": 0}


def test_cp932_file_with_a_broken_character_names_its_line(conn, tmp_path):
    folder = write_town(tmp_path / "in", encoding="cp932")
    lines = (folder / "persons.csv").read_bytes().split(b"\n")
    lines[6] = lines[6].replace(b",", b"\x81,", 1)  # line 7: a lead byte followed by ','
    (folder / "persons.csv").write_bytes(b"\n".join(lines))
    for encoding in (None, "cp932"):
        with pytest.raises(ImportRefused) as e:
            run(conn, folder, encoding=encoding)
        message = str(e.value)
        assert "persons.csv" in message and "byte 0x81 at line 7, column 5" in message and "line 2" not in message
        assert "CP932" in message if encoding is None else "cannot decode it as cp932" in message


def test_decode_error_line_with_cr_line_ends(conn, tmp_path):
    folder = write_town(tmp_path / "in", encoding="cp932", newline="\r")
    (folder / "households.csv").write_bytes(HOUSEHOLDS.replace("\n", "\r").encode("cp932").replace(b"3-3", b"3-\x81"))
    with pytest.raises(ImportRefused, match=r"households\.csv: .*line 4, column 14"):
        run(conn, folder)


def test_nul_byte_is_located(conn, tmp_path):
    folder = write_town(tmp_path / "in")
    (folder / "persons.csv").write_bytes(PERSONS.encode().replace("佐藤花子".encode(), "佐藤\x00花子".encode()))
    with pytest.raises(ImportRefused) as e:
        run(conn, folder)
    message = str(e.value)
    assert "persons.csv" in message and "NUL byte" in message and "line 4, column 13" in message
    assert "delete it" in message and "佐藤" not in message
    assert counts(conn)["imports"] == 0


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "utf-32-le", "rot13", "base64", "hex", "cp1252", "ascii"])
def test_unsupported_encoding_refused(conn, tmp_path, encoding):
    with pytest.raises(ImportRefused) as e:
        run(conn, write_town(tmp_path / "in"), encoding=encoding)
    message = str(e.value)
    assert "households.csv" in message and f"--encoding '{encoding}' is refused" in message
    assert "utf-8, utf-8-sig, cp932" in message and "Traceback" not in message
    assert counts(conn)["imports"] == 0


@pytest.mark.parametrize(
    "written, given, stored",
    [("euc-jp", "EUC-JP", "euc_jp"), ("cp932", "Windows-31J", "cp932"), ("cp932", "MS932", "cp932"),
     ("shift_jis", "sjis", "shift_jis"), ("iso-2022-jp", "iso-2022-jp", "iso2022_jp"), ("utf-8", "UTF8", "utf-8")],
)  # fmt: skip
def test_japanese_encodings_accepted(conn, tmp_path, written, given, stored):
    result = run(conn, write_town(tmp_path / "in", encoding=written), encoding=given)
    assert result.encoding == dict.fromkeys(BASE, stored) and result.total_inserted == 15
    assert conn.execute("SELECT name FROM persons WHERE person_id = 'P006'").fetchone() == ("グエン・ミン",)


def test_wareki_dates_stored_iso(conn, tmp_path):
    run(conn, write_town(tmp_path / "in"))
    births = dict(conn.execute("SELECT person_id, birth_date FROM persons"))
    assert births == {
        "P001": "1945-01-01", "P002": "1975-05-05", "P003": "1990-02-03",
        "P004": "2020-04-01", "P005": "1948-07-07", "P006": "1995-03-10",
    }  # fmt: skip
    starts = dict(conn.execute("SELECT person_id, start_date FROM records"))
    assert starts["P001"] == "2023-04-01" and starts["P004"] == "2024-06-01"
    assert conn.execute("SELECT end_date FROM records WHERE person_id = 'P005'").fetchone() == ("2024-09-30",)
    assert conn.execute("SELECT end_date FROM records WHERE person_id = 'P001'").fetchone() == (None,)


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
    ("persons", "P010,H001,x,x,2000-01-01,X,子,日本", "sex", "unrecognised sex 'X'"),
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


@pytest.mark.parametrize("file, row, field, text", BAD_ROWS, ids=[f"{b[0]}:{b[3][:40]}" for b in BAD_ROWS])
def test_each_reject_reason(conn, tmp_path, file, row, field, text):
    folder = write_town(tmp_path / "in", **{file: BASE[f"{file}.csv"] + row + "\n"})
    result = run(conn, folder)
    name = f"{file}.csv"
    line = BASE_COUNTS[name] + 2  # header is line 1
    assert [(r.file, r.line, r.field) for r in result.rejects] == [(name, line, field)], result.rejects
    assert text in result.rejects[0].reason
    assert result.files[name].rejected == 1 and result.files[name].read == BASE_COUNTS[name] + 1
    assert result.total_inserted == 15  # the valid rows are all imported
    assert counts(conn) == {"households": 4, "persons": 6, "records": 5, "imports": 1}
    stored = conn.execute("SELECT import_seq, file, line, field, reason FROM rejects").fetchall()
    assert stored == [(1, name, line, field, result.rejects[0].reason)]


def test_several_problems_in_one_row_are_all_reported_once_counted(conn, tmp_path):
    folder = write_town(tmp_path / "in", persons=PERSONS + ",H001,x,x,someday,X,,\n")
    result = run(conn, folder)
    assert {(r.line, r.field) for r in result.rejects} == {(8, "person_id"), (8, "birth_date"), (8, "sex")}
    assert result.files["persons.csv"].rejected == 1


def test_reference_to_a_rejected_row_says_so(conn, tmp_path):
    folder = write_town(
        tmp_path / "in",
        households=HOUSEHOLDS + "H005,,x\n",
        persons=PERSONS + "P007,H005,x,x,2000-01-01,M,,\n",
        records=RECORDS + "P007,介護,care_level,要介護1,2024-01-01,\n",
    )
    result = run(conn, folder)
    reasons = {r.file: r.reason for r in result.rejects if r.field in ("household_id", "person_id")}
    assert "its row in households.csv was rejected (line 6)" in reasons["persons.csv"]
    assert "its row in persons.csv was rejected (line 8)" in reasons["records.csv"]


def test_references_to_rows_already_in_the_database(conn, tmp_path):
    run(conn, write_town(tmp_path / "first"))
    # a later extract with only new people and records, their households known from before
    folder = write_town(
        tmp_path / "second",
        households="household_id,area,address\n",
        persons=PERSONS.splitlines()[0] + "\nP007,H004,x,x,2001-01-01,女,子,日本\n",
        records=RECORDS.splitlines()[0] + "\nP001,介護,dementia,IIa,2024-05-01,\n",
    )
    result = run(conn, folder)
    assert result.total_rejected == 0 and result.total_inserted == 2
    assert changed_seqs(conn) == {"H001": 2, "H002": 1, "H003": 1, "H004": 2}


@pytest.mark.parametrize(
    "file, row, value",
    [
        ("persons", "P010,H001,x,x,{v},M,,", "2000-13-45"),
        ("persons", "P010,H001,x,x,{v},M,,", "H31.5.1"),
        ("persons", "P010,H001,x,x,{v},M,,", "2030-01-01"),
        ("persons", "P010,H001,x,x,{v},M,,", "1850-01-01"),
        ("persons", "P010,H001,{v},x,2000-01-01,M,,", "秘密の名前" * 2001),
        ("persons", "P010,H001,x,{v},2000-01-01,M,,", "ヒミツ" * 3334),
        ("households", "H010,東地区,{v}", "秘密町" * 3334),
    ],
    ids=["unparseable", "era", "future", "before-1900", "long-name", "long-kana", "long-address"],
)
def test_private_values_never_in_reasons(conn, tmp_path, file, row, value):
    folder = write_town(tmp_path / "in", **{file: BASE[f"{file}.csv"] + row.format(v=value) + "\n"})
    result = run(conn, folder, report_dir=tmp_path / "reports")
    assert len(result.rejects) == 1
    reason = result.rejects[0].reason
    assert value not in reason and value[:6] not in reason
    assert result.rejects[0].field in ("birth_date", "name", "kana", "address")
    assert value[:6] not in result.report_path.read_text(encoding="utf-8-sig")


def test_too_long_value_is_a_row_reject(conn, tmp_path):
    folder = write_town(tmp_path / "in", records=RECORDS + f"P001,介護,consultation,{'x' * 10_001},2024-01-01,\n")
    result = run(conn, folder)
    [reject] = result.rejects
    assert (reject.file, reject.line, reject.field) == ("records.csv", 7, "value")
    assert "10,001 characters" in reject.reason and "limit is 10,000" in reject.reason
    assert result.total_inserted == 15


def test_sex_values_normalised(conn, tmp_path):
    rows = ["男", "女", "M", "F", "m", "f", "male", "Female", "1", "2", "不明", "U", "", " 女 "]
    persons = header(PERSONS) + "".join(f"Q{i:02d},H001,x,x,2000-01-01,{sex},,\n" for i, sex in enumerate(rows))
    run(conn, write_town(tmp_path / "in", persons=persons, records=header(RECORDS)))
    got = [sex for (sex,) in conn.execute("SELECT sex FROM persons ORDER BY person_id")]
    assert got == ["M", "F", "M", "F", "M", "F", "M", "F", "M", "F", "U", "U", "U", "F"]


def test_missing_column_refused_with_suggestion_and_nothing_written(conn, tmp_path):
    run(conn, write_town(tmp_path / "first"))
    before = counts(conn)
    folder = write_town(tmp_path / "in", households=HOUSEHOLDS.replace("household_id", "houshold_id"))
    with pytest.raises(ImportRefused) as e:
        run(conn, folder)
    message = str(e.value)
    assert "households.csv" in message and "missing required column(s): household_id" in message
    assert "column 'houshold_id' — did you mean 'household_id'?" in message
    assert "'houshold_id', 'area', 'address'" in message  # what was found
    assert "nothing was written" in message
    assert counts(conn) == before


def test_duplicated_column_refused(conn, tmp_path):
    folder = write_town(tmp_path / "in", households="household_id,area,area,address\nH001,東,東,x\n")
    with pytest.raises(ImportRefused, match="duplicated column name 'area' \\(columns 2 and 3\\)"):
        run(conn, folder)


def test_empty_file_refused(conn, tmp_path):
    folder = write_town(tmp_path / "in", records="")
    with pytest.raises(ImportRefused, match="records.csv: the file is empty"):
        run(conn, folder)


def test_missing_file_refused(conn, tmp_path):
    folder = write_town(tmp_path / "in")
    (folder / "records.csv").rename(folder / "record.csv")
    with pytest.raises(ImportRefused) as e:
        run(conn, folder)
    assert "missing file(s) records.csv" in str(e.value) and "'record.csv' — did you mean 'records.csv'?" in str(
        e.value
    )


@pytest.mark.parametrize(
    "content, text",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "not a text CSV file"),
        (b"PK\x03\x04\x14\x00\x06\x00", "Excel workbook"),
        ("household_id,area,address\n".encode("utf-16"), "UTF-16"),
    ],
    ids=["png", "xlsx", "utf-16"],
)
def test_binary_file_refused(conn, tmp_path, content, text):
    folder = write_town(tmp_path / "in")
    (folder / "households.csv").write_bytes(content)
    with pytest.raises(ImportRefused, match=text):
        run(conn, folder)
    assert counts(conn)["imports"] == 0


def test_unknown_column_is_a_warning(conn, tmp_path):
    households = "household_id,area,address,memo,adress\nH001,東地区,x,,y\nH002,西地区,y,memo,z\n"
    folder = write_town(tmp_path / "in", households=households, persons=header(PERSONS), records=header(RECORDS))
    result = run(conn, folder)
    assert result.total_rejected == 0 and result.files["households.csv"].inserted == 2
    assert result.warnings == [
        "households.csv: column 'memo' is not used and was ignored",
        "households.csv: column 'adress' is not used and was ignored",
    ]


def test_failure_during_merge_writes_nothing(conn, tmp_path, monkeypatch):
    run(conn, write_town(tmp_path / "first"))
    before = counts(conn), changed_seqs(conn)

    def boom(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(importer, "_record_import", boom)
    folder = write_town(tmp_path / "in", persons=PERSONS.replace("山田太郎", "山田太朗"))
    with pytest.raises(RuntimeError):
        run(conn, folder)
    assert (counts(conn), changed_seqs(conn)) == before


def test_idempotent_reimport(conn, tmp_path):
    folder = write_town(tmp_path / "in", persons=PERSONS + "P010,H999,x,x,2000-01-01,M,,\n")
    first = run(conn, folder)
    second = run(conn, folder)
    assert second.import_seq == 2
    for name, n in BASE_COUNTS.items():
        assert second.files[name].unchanged == n
        assert second.files[name].inserted == second.files[name].updated == 0
    assert second.files["persons.csv"].rejected == 1 and second.rejects == first.rejects
    assert second.changed_households == 0
    assert set(changed_seqs(conn).values()) == {1}
    assert counts(conn) == {"households": 4, "persons": 6, "records": 5, "imports": 2}


def test_changed_row_updates_and_marks_only_its_household(conn, tmp_path):
    run(conn, write_town(tmp_path / "first"))
    result = run(conn, write_town(tmp_path / "second", persons=PERSONS.replace("佐藤花子", "佐藤華子")))
    assert result.files["persons.csv"].model_dump() == {
        "read": 6,
        "inserted": 0,
        "updated": 1,
        "unchanged": 5,
        "rejected": 0,
    }
    assert changed_seqs(conn) == {"H001": 1, "H002": 2, "H003": 1, "H004": 1}
    assert result.changed_households == 1
    assert conn.execute("SELECT name FROM persons WHERE person_id = 'P003'").fetchone() == ("佐藤華子",)

    result = run(
        conn,
        write_town(
            tmp_path / "third",
            persons=PERSONS.replace("佐藤花子", "佐藤華子"),
            households=HOUSEHOLDS.replace("北町4-4", "北町4-5"),
        ),
    )
    assert result.files["households.csv"].updated == 1 and result.files["persons.csv"].updated == 0
    assert changed_seqs(conn) == {"H001": 1, "H002": 2, "H003": 1, "H004": 3}


def test_person_moving_marks_both_households(conn, tmp_path):
    run(conn, write_town(tmp_path / "first"))
    moved = PERSONS.replace("P002,H001,", "P002,H003,")
    result = run(conn, write_town(tmp_path / "second", persons=moved))
    assert result.files["persons.csv"].updated == 1
    assert changed_seqs(conn) == {"H001": 2, "H002": 1, "H003": 2, "H004": 1}
    assert conn.execute("SELECT household_id FROM persons WHERE person_id = 'P002'").fetchone() == ("H003",)


def test_record_end_date_change_updates_the_row(conn, tmp_path):
    run(conn, write_town(tmp_path / "first"))
    ended = RECORDS.replace("要介護2,R5.4.1,", "要介護2,R5.4.1,R6.3.31")
    result = run(conn, write_town(tmp_path / "second", records=ended))
    assert result.files["records.csv"].model_dump() == {
        "read": 5,
        "inserted": 0,
        "updated": 1,
        "unchanged": 4,
        "rejected": 0,
    }
    assert counts(conn)["records"] == 5
    assert conn.execute("SELECT end_date FROM records WHERE person_id = 'P001'").fetchone() == ("2024-03-31",)
    assert changed_seqs(conn) == {"H001": 2, "H002": 1, "H003": 1, "H004": 1}


def test_record_identity(conn, tmp_path):
    run(conn, write_town(tmp_path / "first"))
    # arrears months change: the same record (kind kokuho) is updated
    result = run(conn, write_town(tmp_path / "second", records=RECORDS.replace("kokuho:4", "kokuho:6")))
    assert (result.files["records.csv"].updated, result.files["records.csv"].inserted) == (1, 0)
    # another kind of arrears from the same date is another record
    result = run(conn, write_town(tmp_path / "third", records=RECORDS.replace("kokuho:4", "water:3")))
    assert (result.files["records.csv"].updated, result.files["records.csv"].inserted) == (0, 1)
    keys = [k for (k,) in conn.execute("SELECT record_key FROM records WHERE person_id = 'P003' ORDER BY 1")]
    assert keys == ["P003|困窮|arrears|2024-01-01|kokuho", "P003|困窮|arrears|2024-01-01|water"]
    assert changed_seqs(conn) == {"H001": 1, "H002": 3, "H003": 1, "H004": 1}


def test_quoted_newlines_keep_physical_line_numbers(conn, tmp_path):
    persons = (
        header(PERSONS)
        + 'P001,H001,"山田\n太郎","ヤマダ,\nタロウ",1945-01-01,男,世帯主,日本\n'  # lines 2-4
        + "P002,H001,x,x,1975-05-05,M,子,日本\n"  # line 5
        + "P003,H001,x,x,someday,M,子,日本\n"  # line 6
    )  # fmt: skip
    result = run(conn, write_town(tmp_path / "in", persons=persons))
    assert [(r.line, r.field) for r in result.rejects if r.file == "persons.csv"] == [(6, "birth_date")]
    assert conn.execute("SELECT name, kana FROM persons WHERE person_id = 'P001'").fetchone() == (
        "山田\n太郎",
        "ヤマダ,\nタロウ",
    )


def test_mixed_newlines_and_blank_lines(conn, tmp_path):
    households = "household_id,area,address\r\nH001,東地区,x\nH002,西地区,y\rH003,南地区,z\r\n\r\n\nH004,北地区\nH005,北地区,w\n,,\n"
    result = run(conn, write_town(tmp_path / "in", households=households))
    assert result.files["households.csv"].read == 5  # blank lines and an empty row are skipped
    assert [(r.line, r.field) for r in result.rejects if r.file == "households.csv"] == [(7, None)]
    assert counts(conn)["households"] == 4  # H001-H003, H005
    assert counts(conn)["persons"] == 5  # P006 lives in the rejected H004


def test_unclosed_quote_is_reported_where_the_row_starts(conn, tmp_path):
    # the quote opened on line 6 is never closed: line 6 alone is rejected, the valid H006 (line 7) is imported
    households = HOUSEHOLDS + 'H005,東地区,"東町\nH006,西地区,y\n'
    result = run(conn, write_town(tmp_path / "in", households=households))
    [reject] = [r for r in result.rejects if r.file == "households.csv"]
    assert reject.line == 6 and "never closed" in reject.reason and "double quote" in reject.reason
    assert result.files["households.csv"].model_dump() == {
        "read": 6,
        "inserted": 5,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
    }
    assert conn.execute("SELECT household_id FROM households WHERE household_id IN ('H005', 'H006')").fetchall() == [
        ("H006",)
    ]


def test_unclosed_quote_closed_by_a_later_quote_loses_no_row(conn, tmp_path):
    persons = (
        PERSONS  # lines 1-7
        + 'P007,H001,"山田 花子,ヤマダハナコ,1950-01-01,F,妻,日本\n'  # line 8: the quote is never closed
        + "P008,H002,x,x,2000-01-01,M,子,日本\n"  # line 9
        + 'P009,H003,"y",x,2001-01-01,M,子,日本\n'  # line 10: its first quote would close line 8's
        + 'P010,H001,"山田\n太郎",x,1990-01-01,M,子,日本\n'  # lines 11-12: a real line break in a value
        + "P011,H002,x,x,someday,M,子,日本\n"  # line 13
    )  # fmt: skip
    result = run(conn, write_town(tmp_path / "in", persons=persons))
    rejects = [(r.line, r.field) for r in result.rejects if r.file == "persons.csv"]
    assert rejects == [(8, None), (13, "birth_date")]
    reason = result.rejects[0].reason
    assert "never closed" in reason and "line 10" in reason and "double quote" in reason and "山田" not in reason
    stored = dict(conn.execute("SELECT person_id, name FROM persons WHERE person_id >= 'P007'"))
    assert stored == {"P008": "x", "P009": "y", "P010": "山田\n太郎"}


def test_unclosed_quote_giving_a_wrong_column_count_loses_no_row(conn, tmp_path):
    persons = (
        PERSONS
        + 'P007,H001,"山田 花子,x,1950-01-01,F,妻,日本\n'  # line 8
        + 'P008,H002,x,x",2000-01-01,M,子,日本\n'  # line 9: closes line 8's quote, 7 fields in all
        + "P009,H003,x,x,2001-01-01,M,子,日本\n"
    )  # fmt: skip
    result = run(conn, write_town(tmp_path / "in", persons=persons))
    [reject] = [r for r in result.rejects if r.file == "persons.csv"]
    assert reject.line == 8 and "never closed" in reject.reason and "7 fields instead of 8" in reject.reason
    assert [p for (p,) in conn.execute("SELECT person_id FROM persons WHERE person_id >= 'P007' ORDER BY 1")] == [
        "P008",
        "P009",
    ]


def test_trailing_comma_in_the_header_only(conn, tmp_path):
    persons = (
        header(PERSONS).replace("\n", ",\n")  # an empty, unnamed 9th column
        + "\n".join(PERSONS.splitlines()[1:4])  # rows without the trailing comma (lines 2-4)
        + "\n" + "\n".join(line + "," for line in PERSONS.splitlines()[4:])  # rows with it (lines 5-7)
        + "\nP007,H001,x,x,2000-01-01,M,子\n"  # line 8: 7 fields
    )  # fmt: skip
    result = run(conn, write_town(tmp_path / "in", persons=persons))
    assert "persons.csv: 1 column(s) without a name were ignored" in result.warnings
    [reject] = [r for r in result.rejects if r.file == "persons.csv"]
    assert reject.line == 8 and "expected 8 to 9 fields, found 7" in reject.reason
    assert counts(conn)["persons"] == 6 and result.files["persons.csv"].inserted == 6
    assert conn.execute("SELECT nationality FROM persons WHERE person_id = 'P006'").fetchone() == ("ベトナム",)


def test_rejects_report_file(conn, tmp_path):
    folder = write_town(tmp_path / "in", persons=PERSONS + "P010,H999,x,x,2000-01-01,M,,\n")
    result = run(conn, folder, report_dir=tmp_path / "reports")
    path = tmp_path / "reports" / "rejects-1.csv"
    assert result.report_path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["file", "line", "field", "reason"]
    assert rows[1][:3] == ["persons.csv", "8", "household_id"]
    # no rejects, no report
    assert run(conn, write_town(tmp_path / "clean"), report_dir=tmp_path / "reports").report_path is None
    assert not (tmp_path / "reports" / "rejects-2.csv").exists()


def test_second_process_gives_the_same_result(conn, tmp_path, monkeypatch):
    bad = "\n".join(row for f, row, *_ in BAD_ROWS if f == "records") + "\n"
    folder = write_town(tmp_path / "in", records=RECORDS + bad)
    sequential = run(conn, folder)
    monkeypatch.setattr(importer, "PARALLEL_MIN_BYTES", 0)
    other = connect(tmp_path / "ws2")
    parallel = run(other, folder)
    assert parallel.files == sequential.files and parallel.rejects == sequential.rejects
    assert len(parallel.rejects) == len(bad.splitlines())
    assert counts(other) == counts(conn)
    assert sorted(p.name for p in (tmp_path / "ws2").iterdir() if not p.name.startswith("engine.db")) == []
    again = run(other, folder)
    assert again.files["records.csv"].unchanged == 5 and again.changed_households == 0
    other.close()


# --- csvio on its own


def test_read_csv_rows_as_dicts(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(" b , a ,extra\n2,1,z\n\n4,3,z\n", encoding="utf-8")
    f = read_csv(path, ["a"], ["b", "c"])
    assert f.header == ["b", "a", "extra"] and f.columns == ["a", "b"]
    assert list(f) == [(2, {"a": "1", "b": "2"}), (4, {"a": "3", "b": "4"})]
    assert f.rows_read == 2 and f.rejects == []
    assert f.warnings == ["x.csv: column 'extra' is not used and was ignored"]


def test_read_csv_value_beyond_the_csv_module_limit(tmp_path):
    path = tmp_path / "x.csv"
    with open(path, "w", encoding="utf-8") as out:
        out.write("a,b\n1,2\n3,")
        out.write("x" * (17 << 20))
        out.write("\n5,6\n")
    f = read_csv(path, ["a", "b"])
    assert [line for line, _ in f] == [2, 4]
    [reject] = f.rejects
    assert reject.line == 3 and "far too long" in reject.reason


def test_read_csv_messages_name_the_file(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a\tb\n1\t2\n", encoding="utf-8")
    with pytest.raises(FileRefused) as e:
        read_csv(path, ["a", "b"])
    assert str(path) in str(e.value) and "tab- or semicolon-separated" in str(e.value)
    with pytest.raises(FileRefused, match="file not found"):
        read_csv(tmp_path / "nope.csv", ["a"])
    path.write_text("\n\n  \n", encoding="utf-8")
    with pytest.raises(FileRefused, match="the file is empty"):
        read_csv(path, ["a"])


# --- files without a header line: line 1 is data and must never be echoed


@pytest.mark.parametrize(
    "file, first_row, secrets",
    [
        (
            "persons",
            "P001,H001,山田太郎,ヤマダタロウ,昭和20年1月1日,男,世帯主,日本",
            ["山田太郎", "ヤマダタロウ", "昭和20年1月1日"],
        ),
        ("persons", "P001,H001,Kana,サトウカナ,1990-02-03,F,子,日本", ["Kana", "サトウカナ", "1990-02-03"]),
        (
            "persons",
            "P001\tH001\t山田太郎\tヤマダタロウ\t1945-01-01\t男\t世帯主\t日本",
            ["山田太郎", "ヤマダタロウ", "1945-01-01"],
        ),
        ("households", "H001,東地区,東町1-1", ["東町1-1", "東地区"]),
        ("households", "H001,東町1-1,東町1-1", ["東町1-1"]),  # repeated values are no duplicated column
    ],
    ids=["persons", "romanised-name", "persons-tab", "households", "households-repeated"],
)
def test_file_without_header_never_echoes_values(conn, tmp_path, file, first_row, secrets):
    headerless = "".join(BASE[f"{file}.csv"].splitlines(keepends=True)[2:])
    folder = write_town(tmp_path / "in", **{file: first_row + "\n" + headerless})
    with pytest.raises(ImportRefused) as e:
        run(conn, folder)
    message = str(e.value)
    assert f"{file}.csv: missing required column(s)" in message
    assert "Line 1 looks like data rather than a header" in message and "Found:" not in message
    assert f"the first line must be the header: {','.join(importer.COLUMNS[f'{file}.csv'])}" in message
    for secret in secrets:
        assert secret not in message
    assert counts(conn)["imports"] == 0


def test_header_with_typos_lists_only_column_like_cells(tmp_path):
    path = tmp_path / "persons.csv"
    path.write_text(
        "person_id,houshold_id,name,kana,birth_date,sex,relationship,nationality,山田太郎\n", encoding="utf-8"
    )
    with pytest.raises(FileRefused) as e:
        read_csv(path, importer.COLUMNS["persons.csv"])
    message = str(e.value)
    assert "Found: 'person_id', 'houshold_id', 'name'," in message and "山田太郎" not in message
    assert "column 'houshold_id' — did you mean 'household_id'?" in message


def test_tab_separated_header_is_recognised(tmp_path):
    path = tmp_path / "households.csv"
    path.write_text("household_id\tarea\taddress\nH001\t東地区\t東町1-1\n", encoding="utf-8")
    with pytest.raises(FileRefused) as e:
        read_csv(path, importer.COLUMNS["households.csv"])
    assert "Found: 'household_id', 'area', 'address'." in str(e.value) and "tab- or semicolon-separated" in str(e.value)


# --- 続柄 and nationality normalised at import

VARIANTS = [
    ("本人", "世帯主"), ("長男", "子"), ("次女", "子"), ("養子", "子"), ("子供", "子"), ("妻(未届)", "妻"),
    ("妻（未届）", "妻"), ("未届の夫", "夫"), ("実父", "父"), ("義母", "母"), ("兄", "兄弟姉妹"), ("妹", "兄弟姉妹"),
    ("孫", "孫"), ("祖母", "祖母"), ("子の妻", "その他"), ("同居人", "その他"), ("叔父", "その他"), (" 姪 ", "その他"),
    ("", None), ("叔父の妻", "叔父の妻"), ("内縁", "内縁"), ("叔父の妻", "叔父の妻"),
]  # fmt: skip
NATIONALITIES = [
    ("Japan", "日本"), ("JAPAN", "日本"), ("jp", "日本"), ("JP", "日本"), ("JPN", "日本"), ("Jpn", "日本"), ("日本国", "日本"),
    ("ニホン", "日本"), ("ＪＰ", "日本"), (" 日本 ", "日本"), ("ベトナム", "ベトナム"), ("Vietnam", "Vietnam"), ("", None),
]  # fmt: skip


def variant_town(tmp_path):
    rows = [f"R{i:02d},H001,x,x,2000-01-01,M,{rel},日本\n" for i, (rel, _) in enumerate(VARIANTS)]
    rows += [f"N{i:02d},H002,x,x,2000-01-01,F,子,{nat}\n" for i, (nat, _) in enumerate(NATIONALITIES)]
    return write_town(tmp_path / "in", persons=header(PERSONS) + "".join(rows), records=header(RECORDS))


def test_relationship_and_nationality_normalised(conn, tmp_path):
    result = run(conn, variant_town(tmp_path))
    assert result.total_rejected == 0
    stored = dict(conn.execute("SELECT person_id, relationship FROM persons WHERE person_id LIKE 'R%'"))
    assert stored == {f"R{i:02d}": want for i, (_, want) in enumerate(VARIANTS)}
    stored = dict(conn.execute("SELECT person_id, nationality FROM persons WHERE person_id LIKE 'N%'"))
    assert stored == {f"N{i:02d}": want for i, (_, want) in enumerate(NATIONALITIES)}


def test_unknown_relationship_kept_with_one_warning(conn, tmp_path):
    result = run(conn, variant_town(tmp_path))
    line = 2 + [rel for rel, _ in VARIANTS].index("叔父の妻")
    assert result.warnings == [
        f"persons.csv: 3 rows have a 続柄 the rules do not know (e.g. line {line}: '叔父の妻');"
        " rules about 続柄 will not match them — use one of 世帯主, 妻, 夫, 子, 父, 母, 孫, 兄弟姉妹, 祖父, 祖母, その他"
    ]
    one = write_town(
        tmp_path / "one", persons=header(PERSONS) + "P001,H001,x,x,2000-01-01,M,内縁,日本\n", records=header(RECORDS)
    )
    assert (
        run(conn, one)
        .warnings[0]
        .startswith("persons.csv: 1 row has a 続柄 the rules do not know (e.g. line 2: '内縁')")
    )


def test_normalised_reimport_is_unchanged(conn, tmp_path):
    folder = variant_town(tmp_path)
    run(conn, folder)
    again = run(conn, folder)
    assert again.files["persons.csv"].unchanged == len(VARIANTS) + len(NATIONALITIES)
    assert again.total_inserted == again.total_updated == 0 and again.changed_households == 0


def test_unclosed_quote_closed_far_below_by_a_stray_quote_loses_no_row(tmp_path):
    """The value of an unclosed quote runs on until a stray quote 1,000 lines below closes it: the
    row grows past the length limit, so it is taken for the unclosed quote it is — only its first
    line is rejected and every row in between is read."""
    lines = ["household_id,area,address", 'H0,中央,"open quote']
    lines += [f"H{i},中央,addr{i}" + "x" * 30 for i in range(1, 1000)]
    lines += ['stray"', "H1001,中央,ok"]
    (tmp_path / "households.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    f = read_csv(tmp_path / "households.csv", ["household_id", "area", "address"])
    ids = [row[0] for _, row in f.tuples()]
    assert ids == [f"H{i}" for i in range(1, 1000)] + ["H1001"]
    assert f.rejects[0].line == 2 and "never closed" in f.rejects[0].reason
