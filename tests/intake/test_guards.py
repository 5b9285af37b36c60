"""What an import may not do unless told to (issue 12): import an extract older than the last one,
re-open ended records, empty a filled column for many rows; a refused import writes nothing; a dry
run says what an import would do and writes nothing; the extract's date is said and kept."""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli.main import app
from engine.intake.guards import BLANK_MIN_ROWS
from engine.intake.importer import Allow, ImportRefused
from engine.support import clock
from tests.helpers.extracts import PERSONS, RECORDS, TODAY, run, write_town

ENDED = RECORDS.replace("要介護2,R5.4.1,", "要介護2,R5.4.1,R6.3.31")  # P001's care level ended 2024-03-31
# the extract the issue saw: name, kana and nationality left empty for everyone
EMPTIED = "\n".join(
    ",".join(c if i not in (2, 3, 7) else "" for i, c in enumerate(row.split(","))) if n else row
    for n, row in enumerate(PERSONS.splitlines())
) + "\n"  # fmt: skip


def snapshot(conn) -> list[str]:
    """Every table's schema and rows."""
    return list(conn.iterdump())


def written_on(folder: Path, day: str, hour: int = 12) -> Path:
    """Date the extract's files (their modification time) `day` at `hour` in Japan."""
    at = datetime.fromisoformat(f"{day}T{hour:02d}:00:00").replace(tzinfo=clock.TOKYO).timestamp()
    for name in ("households.csv", "persons.csv", "records.csv"):
        os.utime(folder / name, (at, at))
    return folder


def test_extract_date_is_said_and_kept(conn, tmp_path):
    # the day in Japan its newest file was written: 2024-05-20 00:30 in Japan is 2024-05-19 in UTC
    folder = written_on(write_town(tmp_path / "in"), "2024-05-10")
    os.utime(folder / "persons.csv", (t := datetime(2024, 5, 20, 0, 30, tzinfo=clock.TOKYO).timestamp(), t))
    result = run(conn, folder)
    assert (result.extract_date, result.extract_dated_by) == ("2024-05-20", "the date of its files")
    assert result.last_extract_date is None
    stated = run(conn, folder, as_of=date(2024, 5, 25))
    assert (stated.extract_date, stated.extract_dated_by, stated.last_extract_date) == (
        "2024-05-25",
        "--as-of",
        "2024-05-20",
    )
    # files written after the import day (a machine's clock ahead) date the extract the import day
    assert run(conn, written_on(folder, "2024-07-01")).extract_date == TODAY.isoformat()
    summaries = [json.loads(s) for (s,) in conn.execute("SELECT summary FROM imports ORDER BY import_seq")]
    assert [(s["extract_date"], s["extract_dated_by"]) for s in summaries] == [
        ("2024-05-20", "the date of its files"),
        ("2024-05-25", "--as-of"),
        ("2024-06-01", "the date of its files"),
    ]


def test_older_extract_refused_and_nothing_written(conn, tmp_path):
    run(conn, written_on(write_town(tmp_path / "new"), "2024-05-31"))
    before = snapshot(conn)
    old = written_on(write_town(tmp_path / "old"), "2024-04-30")
    with pytest.raises(ImportRefused) as refused:
        run(conn, old)
    [problem] = refused.value.problems
    assert (problem.file, problem.field) == (str(old), "")
    assert "dated 2024-04-30 (the date of its files)" in problem.message and "(2024-05-31)" in problem.message
    assert "--allow-older" in problem.message and "\n" not in str(problem)
    assert snapshot(conn) == before
    # stated older than the last: refused too, naming --as-of
    with pytest.raises(ImportRefused, match=r"\[--as-of\] the extract is dated 2024-05-30 \(--as-of\)"):
        run(conn, write_town(tmp_path / "new"), as_of=date(2024, 5, 30))
    # told to: imported
    assert run(conn, old, allow=Allow(older=True)).import_seq == 2
    # the last extract stays the newest one imported
    with pytest.raises(ImportRefused, match="older than the last imported extract \\(2024-05-31\\)"):
        run(conn, written_on(old, "2024-05-01"))


def test_same_extract_again_is_not_older(conn, tmp_path):
    run(conn, write_town(tmp_path / "in"))
    assert run(conn, write_town(tmp_path / "in")).import_seq == 2


def test_reopening_ended_records_refused(conn, tmp_path):
    run(conn, write_town(tmp_path / "first", records=ENDED))
    before = snapshot(conn)
    with pytest.raises(ImportRefused) as refused:
        run(conn, write_town(tmp_path / "second"))  # the care level open again
    [problem] = refused.value.problems
    assert (problem.file, problem.field) == ("records.csv", "end_date")
    assert problem.message.startswith("1 record(s) the workspace has ended would be re-opened")
    assert "--allow-reopen" in problem.message
    assert snapshot(conn) == before
    # an end moved from before the import day to after it re-opens the record too
    later = RECORDS.replace("要介護2,R5.4.1,", "要介護2,R5.4.1,2024-12-31")
    with pytest.raises(ImportRefused, match="re-opened"):
        run(conn, write_town(tmp_path / "third", records=later))
    result = run(conn, write_town(tmp_path / "second"), allow=Allow(reopen=True))
    assert result.changes["records.csv"].reopened == 1
    assert conn.execute("SELECT end_date FROM records WHERE person_id = 'P001'").fetchone() == (None,)


def test_ending_records_is_not_refused(conn, tmp_path):
    run(conn, write_town(tmp_path / "first"))
    result = run(conn, write_town(tmp_path / "second", records=ENDED))
    assert (result.changes["records.csv"].ended, result.changes["records.csv"].reopened) == (1, 0)


def test_emptied_columns_refused_and_kept(conn, tmp_path):
    run(conn, write_town(tmp_path / "first"))
    before = snapshot(conn)
    with pytest.raises(ImportRefused) as refused:
        run(conn, write_town(tmp_path / "emptied", persons=EMPTIED))
    problems = refused.value.problems
    assert [(p.file, p.field) for p in problems] == [
        ("persons.csv", "name"),
        ("persons.csv", "kana"),
        ("persons.csv", "nationality"),
    ]
    assert all("6 of the 6 rows" in p.message and "--allow-blank" in p.message for p in problems)
    assert len(str(refused.value).splitlines()) == 3
    assert snapshot(conn) == before
    assert conn.execute("SELECT count(*) FROM persons WHERE name IS NULL OR nationality IS NULL").fetchone() == (0,)
    result = run(conn, write_town(tmp_path / "emptied", persons=EMPTIED), allow=Allow(blank=True))
    assert result.changes["persons.csv"].blanked == {"name": 6, "kana": 6, "nationality": 6}


def test_a_few_emptied_values_are_imported(conn, tmp_path):
    """Up to BLANK_MIN_ROWS emptied values are ordinary corrections; so is sex back to unknown."""
    run(conn, write_town(tmp_path / "first"))
    rows = PERSONS.splitlines()
    for n in range(1, BLANK_MIN_ROWS + 1):
        rows[n] = rows[n].replace(",日本", ",")
    persons = "\n".join(rows).replace(
        "P006,H004,グエン・ミン,グエンミン,19950310,2,", "P006,H004,グエン・ミン,グエンミン,19950310,,"
    )
    result = run(conn, write_town(tmp_path / "second", persons=persons + "\n"))
    assert result.changes["persons.csv"].blanked == {"sex": 1, "nationality": BLANK_MIN_ROWS}
    assert conn.execute("SELECT count(*) FROM persons WHERE nationality IS NULL").fetchone() == (BLANK_MIN_ROWS,)


def test_dry_run_says_what_would_change_and_writes_nothing(conn, workspace, tmp_path):
    run(conn, write_town(tmp_path / "first", records=ENDED))
    conn.close()
    db = workspace / "engine.db"
    files = {p.name: p.read_bytes() for p in workspace.iterdir() if p.is_file()}
    from engine.store.db import connect

    conn = connect(workspace)
    before = snapshot(conn)
    records = RECORDS + "P006,困窮,arrears,water:3,2024-05-01,\n"  # one new record; P001's re-opened
    folder = write_town(tmp_path / "second", persons=EMPTIED + "P010,H999,x,x,2000-01-01,M,,\n", records=records)
    result = run(conn, folder, dry_run=True, report_dir=tmp_path / "reports")
    assert result.dry_run and result.files["records.csv"].inserted == 1 and result.files["persons.csv"].updated == 6
    assert result.changes["records.csv"].reopened == 1
    assert result.changes["persons.csv"].blanked == {"name": 6, "kana": 6, "nationality": 6}
    assert len(result.refusals) == 4 and result.total_rejected == 1
    assert snapshot(conn) == before
    assert not (tmp_path / "reports").exists()
    conn.close()
    assert db.read_bytes() == files["engine.db"]


def run_cli(*args: str):
    return CliRunner().invoke(app, ["import", *args], env={"COLUMNS": "250"})


def test_cli_dry_run_prints_counts_and_refusals(workspace, tmp_path):
    assert run_cli(str(write_town(tmp_path / "first", records=ENDED)), "--workspace", str(workspace)).exit_code == 0
    ran = run_cli(str(write_town(tmp_path / "second", persons=EMPTIED)), "--workspace", str(workspace), "--dry-run")
    assert ran.exit_code == 0, ran.output
    lines = ran.stdout.splitlines()
    assert (
        "persons.csv: read 6, new 0, updated 6, unchanged 0, rejected 0; blanked name 6 row(s), kana 6 row(s), nationality 6 row(s)"
        in lines
    )
    assert "records.csv: read 5, new 0, updated 1, unchanged 4, rejected 0; re-opened 1" in lines
    assert "dry run, nothing was written; a real import would be refused:" in lines
    assert any(line.startswith("  persons.csv: [kana] kana would be emptied in 6 of the 6 rows") for line in lines)
    # the real import: refused, one line each naming file, field, count and the flag
    ran = run_cli(str(tmp_path / "second"), "--workspace", str(workspace))
    assert ran.exit_code == 2
    refusals = [line for line in ran.stderr.splitlines() if line.startswith(("persons.csv", "records.csv"))]
    assert len(refusals) == 4 and all("--allow-" in line for line in refusals)
    flags = ["--allow-blank", "--allow-reopen"]
    assert run_cli(str(tmp_path / "second"), "--workspace", str(workspace), *flags).exit_code == 0


def test_cli_dry_run_creates_no_workspace(tmp_path):
    ws = tmp_path / "nows"
    ran = run_cli(str(written_on(write_town(tmp_path / "in"), "2026-11-20")), "--workspace", str(ws), "--dry-run")
    assert ran.exit_code == 0, ran.output
    assert "households.csv: read 4, new 4, updated 0, unchanged 0, rejected 0" in ran.stdout
    assert "extract dated 2026-11-20 (the date of its files)" in ran.stdout
    assert not ws.exists()


@pytest.mark.parametrize(
    "value, phrase", [("2027-01-01", "is after today (2026-11-27)"), ("R8.2.30", "--as-of:"), ("", "--as-of:")]
)
def test_cli_as_of_checked(tmp_path, value, phrase):
    ws = tmp_path / "ws"
    ran = run_cli(str(write_town(tmp_path / "in")), "--workspace", str(ws), "--as-of", value)
    assert ran.exit_code == 2 and phrase in ran.stderr, ran.output
    assert not ws.exists()
