"""Decoding an extract: UTF-8 (with or without BOM) and cp932, detected or named; other encodings
refused; an undecodable byte or a NUL located by file and line; 和暦 dates stored as ISO."""

from __future__ import annotations

import pytest

from engine.intake.importer import ImportRefused
from tests.helpers.extracts import BASE, HOUSEHOLDS, PERSONS, counts, run, write_town


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


@pytest.mark.parametrize("stray", [0x80, 0xA0, 0xFD, 0xFE, 0xFF])
def test_a_byte_cp932_leaves_unassigned_is_refused_with_its_line(conn, tmp_path, stray):
    """Python's cp932 decodes 0x80, 0xA0 and 0xFD-0xFF to U+0080 and private-use characters instead
    of failing (as Windows does); in an extract they are stray bytes, refused like any other
    undecodable byte, detected or named. ム (0x83 0x80) and 唖 (0x88 0xA0) hold the same bytes as
    their second byte and are imported."""
    folder = write_town(tmp_path / "in", encoding="cp932", persons=PERSONS + "P007,H001,唖ム,アム,H2.2.2,女,孫,日本\n")
    lines = (folder / "persons.csv").read_bytes().split(b"\n")
    lines[6] = lines[6].replace(b",", b"," + bytes([stray]), 1)  # line 7, column 6
    (folder / "persons.csv").write_bytes(b"\n".join(lines))
    for encoding in (None, "cp932"):
        with pytest.raises(ImportRefused) as e:
            run(conn, folder, encoding=encoding)
        message = str(e.value)
        assert "persons.csv" in message and f"byte 0x{stray:02x} at line 7, column 6" in message, message
    assert counts(conn) == {"households": 0, "persons": 0, "records": 0, "imports": 0}
    lines[6] = lines[6].replace(b"," + bytes([stray]), b",", 1)
    (folder / "persons.csv").write_bytes(b"\n".join(lines))
    assert run(conn, folder).total_rejected == 0
    assert conn.execute("SELECT name FROM persons WHERE person_id = 'P007'").fetchone() == ("唖ム",)


def test_a_stray_byte_past_the_first_chunk_is_located(conn, tmp_path, monkeypatch):
    """The file is decoded in chunks: the stray byte's line is counted across them, with a
    two-byte character cut by a chunk's end before it."""
    from engine.intake import encoding

    monkeypatch.setattr(encoding, "CHUNK", 7)
    folder = write_town(tmp_path / "in", encoding="cp932")
    data = (folder / "households.csv").read_bytes()
    bad = data + "H009,東地区,東町ム".encode("cp932") + b"\xfd\n"
    (folder / "households.csv").write_bytes(bad)
    line = bad.count(b"\n")
    with pytest.raises(ImportRefused, match=rf"byte 0xfd at line {line}, byte offset {len(bad) - 2};"):
        run(conn, folder, encoding="cp932")


def test_a_line_without_end_is_refused_before_it_is_read_whole(conn, tmp_path, monkeypatch):
    """A file whose line runs on without a line break for longer than any reader should hold
    (binary data, an export that lost its line breaks; 64 MiB, here 2 MiB) is refused by the check
    of its bytes, naming the line; nothing is imported. A shorter long line stays one rejected
    row (tests/intake/test_csv_files.py: a value beyond the csv module's limit of 16 MiB)."""
    from engine.intake import csvio, encoding

    assert encoding.MAX_LINE_BYTES > csvio._CSV_FIELD_LIMIT and encoding.MAX_LINE_BYTES >= encoding.CHUNK
    monkeypatch.setattr(encoding, "MAX_LINE_BYTES", 2 << 20)
    folder = write_town(tmp_path / "in")
    data = (folder / "households.csv").read_bytes()
    (folder / "households.csv").write_bytes(data + b"H9," + b"a" * (2 << 20) + b"\nH10,x,y\n")
    line = data.count(b"\n") + 1
    with pytest.raises(ImportRefused, match=rf"households\.csv: line {line} runs on for more than 2,097,152 bytes"):
        run(conn, folder)
    assert counts(conn) == {"households": 0, "persons": 0, "records": 0, "imports": 0}


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
@pytest.mark.parametrize("last", [False, True])
def test_long_lines_are_measured_across_chunks(conn, tmp_path, monkeypatch, ending, last):
    """With small chunks: a line of exactly the limit passes, one byte more is refused, wherever
    the chunks cut it and whatever ends it (or the end of the file)."""
    from engine.intake import encoding

    monkeypatch.setattr(encoding, "CHUNK", 7)
    monkeypatch.setattr(encoding, "MAX_LINE_BYTES", 40)
    path = tmp_path / "x.csv"
    head = b"a,b" + ending + b"1,2" + ending
    for extra, refused in ((0, False), (1, True)):
        path.write_bytes(head + b"x" * (40 + extra) + (b"" if last else ending + b"3,4" + ending))
        if refused:
            with pytest.raises(encoding.FileRefused, match="line 3 runs on for more than 40 bytes"):
                encoding.check_bytes(path, None)
        else:
            assert encoding.check_bytes(path, None) == "utf-8"


def test_a_stray_byte_before_an_undecodable_one_is_named_first(conn, tmp_path):
    """The first problem of the file is named: a stray byte on line 3, then a broken character on
    line 5, in one chunk."""
    folder = write_town(tmp_path / "in", encoding="cp932")
    lines = (folder / "persons.csv").read_bytes().split(b"\n")
    assert b"," in lines[2] and b"," in lines[4]
    lines[2] = lines[2].replace(b",", b",\xfd", 1)
    lines[4] = lines[4].replace(b",", b"\x81,", 1)
    (folder / "persons.csv").write_bytes(b"\n".join(lines))
    with pytest.raises(ImportRefused, match="byte 0xfd at line 3, column 6"):
        run(conn, folder, encoding="cp932")
