"""engine/support/sheets.py: CSV for Excel (BOM, CRLF, no formula runs) and XLSX read back by openpyxl."""

from __future__ import annotations

import openpyxl

from engine.support.sheets import csv_text, sheet_name, write_csv, write_xlsx

TABLE = [["地区", "件数", "率"], ["中央", 12, 1.5], ['=HYPERLINK("x")', None, -2]]


def test_csv_has_a_bom_crlf_and_never_a_formula(tmp_path):
    path = write_csv(tmp_path / "a.csv", TABLE)
    raw = path.read_bytes()
    assert raw.startswith("\ufeff".encode()) and b"\r\n" in raw
    assert "'=HYPERLINK" in csv_text(TABLE) and ",-2\r\n" in csv_text(TABLE)  # a number stays a number
    assert path.stat().st_mode & 0o777 == 0o600


def test_xlsx_holds_the_same_cells_numbers_as_numbers_and_no_formula(tmp_path):
    path = write_xlsx(tmp_path / "a.xlsx", {"地区別: 3月/集計": TABLE, "空": []})
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["地区別_ 3月_集計", "空"]
    rows = [list(r) for r in book["地区別_ 3月_集計"].iter_rows(values_only=True)]
    assert rows == [["地区", "件数", "率"], ["中央", 12, 1.5], ['=HYPERLINK("x")', None, -2]]
    assert book["地区別_ 3月_集計"]["A3"].data_type == "s"  # text, not a formula
    assert path.stat().st_mode & 0o777 == 0o600 and not list(tmp_path.glob(".*"))


def test_sheet_names_excel_accepts():
    assert sheet_name("a" * 40) == "a" * 31 and sheet_name("") == "sheet" and sheet_name("x?y") == "x_y"
