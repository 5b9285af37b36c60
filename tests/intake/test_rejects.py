"""What the importer refuses: each rejected row named by file, line and field (never echoing a private
value) while the valid rows are imported; whole files refused (missing or duplicated column, empty,
missing, binary, no header line) as located EngineErrors; the rejects report."""

from __future__ import annotations

import csv
import stat

import pytest

import engine.intake.importer as importer
from engine.intake.csvio import FileRefused, read_csv
from engine.intake.importer import ImportRefused
from engine.support.errors import EngineError
from tests.helpers.extracts import (
    BAD_ROWS,
    BASE,
    BASE_COUNTS,
    HOUSEHOLDS,
    PERSONS,
    RECORDS,
    changed_seqs,
    counts,
    header,
    run,
    write_town,
)


# --- rejected rows -----------------------------------------------------------------------------------
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


def test_unknown_column_is_a_warning(conn, tmp_path):
    households = "household_id,area,address,memo,adress\nH001,東地区,x,,y\nH002,西地区,y,memo,z\n"
    folder = write_town(tmp_path / "in", households=households, persons=header(PERSONS), records=header(RECORDS))
    result = run(conn, folder)
    assert result.total_rejected == 0 and result.files["households.csv"].inserted == 2
    assert result.warnings == [
        "households.csv: column 'memo' is not used and was ignored",
        "households.csv: column 'adress' is not used and was ignored",
    ]


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


# --- refused files -----------------------------------------------------------------------------------
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
    assert counts(conn) == before  # nothing was written (the CLI says so before the message: errors.py)


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


def test_refusals_are_engine_errors_with_located_problems(conn, tmp_path):
    folder = write_town(tmp_path / "in")
    (folder / "persons.csv").write_bytes(PERSONS.encode() + b"P007,H001,\x82 x,x,2000-01-01,M,,\n")
    with pytest.raises(ImportRefused) as e:
        run(conn, folder)
    assert isinstance(e.value, EngineError) and e.value.exit_code == 2
    [problem] = e.value.problems
    assert (problem.file, problem.line) == (str(folder / "persons.csv"), 8)
    assert str(e.value) == f"{folder / 'persons.csv'}: {problem.message}"  # the CLI says "import refused" once
    (folder / "persons.csv").write_text(PERSONS.replace("household_id", "houshold_id"), encoding="utf-8")
    with pytest.raises(FileRefused) as e:
        read_csv(folder / "persons.csv", importer.COLUMNS["persons.csv"])
    assert isinstance(e.value, EngineError)
    assert [(p.line, p.field) for p in e.value.problems] == [(1, "household_id")]
    (folder / "persons.csv").unlink()
    with pytest.raises(ImportRefused) as e:
        run(conn, folder)
    assert [p.file for p in e.value.problems] == [str(folder / "persons.csv")]


# --- files without a header line: line 1 is data and must never be echoed ----------------------------
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


def test_a_folder_in_a_files_place_or_a_file_for_the_folder_is_told_so(conn, tmp_path):
    folder = write_town(tmp_path / "in")
    (folder / "persons.csv").unlink()
    (folder / "persons.csv").mkdir()
    with pytest.raises(ImportRefused, match="persons.csv: is a folder, not a file") as e:
        run(conn, folder)
    assert "did you mean" not in str(e.value)
    with pytest.raises(ImportRefused, match="households.csv: a file, not a folder; give the folder holding"):
        run(conn, folder / "households.csv")
