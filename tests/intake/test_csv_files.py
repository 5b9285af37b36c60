"""CSV as the silos write it: quoted newlines keep physical line numbers, mixed newlines and blank
lines, an unclosed quote loses no row, a trailing comma in the header; and csvio on its own."""

from __future__ import annotations

import pytest

from engine.intake.csvio import FileRefused, read_csv
from tests.helpers.extracts import HOUSEHOLDS, PERSONS, counts, header, run, write_town


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


# --- csvio on its own --------------------------------------------------------------------------------
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
