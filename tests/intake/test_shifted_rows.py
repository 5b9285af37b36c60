"""Rows shifted by an unquoted comma (found by a security review): the value in a column without a
name is not dropped without a word, and a reject never echoes what shifted into a column (a birth
date, a name)."""

from __future__ import annotations

import pytest

from engine.intake import importer
from tests.helpers.extracts import PERSONS, RECORDS, run, write_town


def test_a_value_in_an_unnamed_column_is_rejected_not_dropped(conn, tmp_path):
    households = (
        "household_id,area,address,\n"
        "H001,東地区,東町1-1, 101号室\n"  # the address cut at the comma, the rest in the unnamed column
        "H002,西地区,西町2-2,\n"
        "H003,南地区,南町3-3,\n"
        "H004,北地区,北町4-4,\n"
    )
    result = run(conn, write_town(tmp_path / "in", households=households))
    rejected = [(r.file, r.line) for r in result.rejects]
    assert ("households.csv", 2) in rejected
    assert any("without a name" in r.reason and "quoted" in r.reason for r in result.rejects)
    assert conn.execute("SELECT COUNT(*) FROM households WHERE household_id = 'H001'").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM households WHERE household_id = 'H002'").fetchone()[0] == 1


def test_a_shifted_row_never_echoes_a_birth_date(conn, tmp_path):
    persons = (
        "person_id,household_id,name,kana,birth_date,sex,relationship,nationality,\n"
        + "".join(line + ",\n" for line in PERSONS.splitlines()[1:])
        + "P007,H001,SMITH, JOHN,スミス ジョン,1980-01-01,M,世帯主\n"  # an unquoted comma in a romanised name
    )
    result = run(conn, write_town(tmp_path / "in", persons=persons), report_dir=tmp_path / "reports")
    reasons = [r.reason for r in result.rejects]
    assert reasons and not any("1980-01-01" in r or "スミス" in r or "JOHN" in r for r in reasons), reasons
    report = result.report_path.read_text(encoding="utf-8")
    assert "1980-01-01" not in report and "スミス" not in report


NEXT_RECORDS = RECORDS + "P001,介護,care_level,要介護3,R6.4.1,\n"  # the next extract: one more row


def _rewritten_after_the_checks(monkeypatch, data: bytes) -> None:
    """records.csv is overwritten with `data` once every file has been checked (a silo's transfer
    job writing the next extract over it)."""
    checked = importer._open_files

    def then_rewritten(source_dir, encoding):
        files = checked(source_dir, encoding)
        (source_dir / "records.csv").write_bytes(data)
        return files

    monkeypatch.setattr(importer, "_open_files", then_rewritten)


def test_an_extract_rewritten_during_the_import_is_refused_and_nothing_is_written(conn, tmp_path, monkeypatch):
    """A silo's transfer job wrote the next extract over records.csv after the checks (found by a
    security review): a refusal naming the file, not a UnicodeDecodeError, and no mix of the two."""
    folder = write_town(tmp_path / "in")
    _rewritten_after_the_checks(monkeypatch, NEXT_RECORDS.encode("cp932"))
    with pytest.raises(importer.ImportRefused) as refused:
        run(conn, folder)
    assert "records.csv" in str(refused.value) and "changed while it was read" in str(refused.value)
    assert conn.execute("SELECT COUNT(*) FROM households").fetchone()[0] == 0


def test_an_extract_replaced_by_one_that_decodes_is_refused_too(conn, tmp_path, monkeypatch):
    folder = write_town(tmp_path / "in")
    _rewritten_after_the_checks(monkeypatch, NEXT_RECORDS.encode("utf-8"))
    with pytest.raises(importer.ImportRefused, match="changed while it was read"):
        run(conn, folder)


def test_a_rewritten_extract_is_refused_also_by_the_records_worker(conn, tmp_path, monkeypatch):
    """A big records.csv is checked in a second process: it refuses the same way."""
    monkeypatch.setattr(importer, "PARALLEL_MIN_BYTES", 0)
    started = []
    worker = importer.RecordsWorker
    monkeypatch.setattr(importer, "RecordsWorker", lambda *a: started.append(1) or worker(*a))
    folder = write_town(tmp_path / "in")
    _rewritten_after_the_checks(monkeypatch, NEXT_RECORDS.encode("utf-8"))
    with pytest.raises(importer.ImportRefused, match="records.csv: the file changed while it was read"):
        run(conn, folder)
    assert started == [1]
