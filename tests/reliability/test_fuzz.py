"""Property-based fuzzing (hypothesis) of the two ways hostile text enters the engine: the CSV
importer (engine.intake.importer.import_dir) and the rule loader (engine.rules.loader.load_rules).

Importer: whatever the bytes, import_dir returns an ImportResult or raises ImportRefused (its own
documented refusal) and nothing else; every reject names its file, a physical line and a field of
that file (or none, for a whole-row problem); the counts add up; valid rows — in the same file or in
the other files of the extract — are always imported with their values.

Rule loader: whatever the text, load_rules returns a RuleSet or raises RulesInvalid whose every problem
names a rule file (or the folder), a line inside it and a message — never a raw KeyError, TypeError…

The runs are derandomised (the same examples every time, no example database) so that the suite is
deterministic; crashes found this way are pinned in tests/reliability/test_hostile.py (the corpus) as xfail.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import sqlite3
from datetime import date
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.intake.importer import COLUMNS, ImportRefused, import_dir
from engine.rules.loader import RulesInvalid, load_rules
from engine.store.db import SCHEMA, migrate
from engine.support.dates import DateError, parse_date
from tests.helpers.paths import ROOT

TODAY = date(2026, 11, 27)
BASE = ROOT / "tests" / "reliability" / "hostile" / "csv" / "base"
RULES = ROOT / "configs" / "rules"
LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what Python's newline="" iteration (and so the csv module) counts
FUZZ = settings(  # FUZZ_EXAMPLES=5000 FUZZ_RANDOM=1 pytest tests/reliability/test_fuzz.py: a longer, randomised hunt
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "120")),
    deadline=None,
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def memory_db() -> sqlite3.Connection:
    """A workspace database in memory (the schema of engine.db.connect, without a file)."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    migrate(conn)
    return conn


class Folders:
    """A fresh extract folder per example (hypothesis runs many examples in one test)."""

    def __init__(self, root: Path):
        self.root, self.n = root, 0

    def extract(self, **files: bytes) -> Path:
        self.n += 1
        d = self.root / f"x{self.n}"
        shutil.copytree(BASE, d)
        for name, data in files.items():
            (d / f"{name}.csv").write_bytes(data)
        return d

    def rules(self, **files: str | bytes) -> Path:
        self.n += 1
        d = self.root / f"r{self.n}"
        shutil.copytree(RULES, d)
        for name, text in files.items():
            (d / name).write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
        return d


@pytest.fixture
def folders(tmp_path):
    return Folders(tmp_path)


def imported(folder: Path):
    """import_dir into a new database; (result or None if refused, connection)."""
    conn = memory_db()
    try:
        return import_dir(conn, folder, today=TODAY), conn
    except ImportRefused as refusal:
        assert str(refusal).strip(), "a refusal without a message"
        assert conn.execute("SELECT count(*) FROM imports").fetchone()[0] == 0, "a refused import wrote something"
        return None, conn


def check_result(result, conn) -> None:
    """Invariants of every ImportResult."""
    db = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("households", "persons", "records")}
    for name, f in result.files.items():
        assert f.read == f.inserted + f.updated + f.unchanged + f.rejected, (name, f)
        assert db[name.removesuffix(".csv")] == f.inserted, (name, f, db)  # a new database: everything is new
    for r in result.rejects:
        assert r.file in COLUMNS, r
        assert r.line >= 1 and r.reason.strip(), r
        assert r.field is None or r.field in COLUMNS[r.file], r
    for name, f in result.files.items():  # each rejected row has its reasons on its own (first) line
        lines = {r.line for r in result.rejects if r.file == name}
        assert len(lines) == f.rejected, (name, sorted(lines), f)


HOUSEHOLDS = ("H001", "H002", "H003")
PERSONS = {"P001": "H001", "P002": "H001", "P003": "H002", "P004": "H002", "P005": "H003"}
cell_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
interesting = st.sampled_from(
    [
        "",
        " ",
        "H001",
        "H999",
        "P001",
        "P005",
        "1990-01-01",
        "R1.5.1",
        "H31.5.1",
        "令和元年5月1日",
        "平成31年5月1日",
        "昭和64年1月8日",
        "Ｒ２．４．１",
        "２０２０－０２－３０",
        "2099-01-01",
        "1899-12-31",
        "M",
        "F",
        "男",
        "女",
        "X",
        "世帯主",
        "長男",
        "妻（未届）",
        "日本",
        "JPN",
        "care_level",
        "要介護2",
        "arrears",
        "kokuho:4",
        "rent:x",
        "earned_income",
        "-1",
        "１０",
        "1_000",
        "9" * 30,
        '"',
        '""',
        "a,b",
        "a\nb",
        "a\rb",
        "\ufeff",
        "\u2028",
        "=cmd|' /C calc'!A0",
    ]
)
cell = st.one_of(interesting, cell_text)


def header_of(name: str) -> bytes:
    return (",".join(COLUMNS[f"{name}.csv"]) + "\n").encode()


raw_bytes = st.one_of(
    st.binary(max_size=600),
    st.builds(lambda h, b: h + b, st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe"]), st.binary(max_size=600)),
)


@FUZZ
@given(name=st.sampled_from(["households", "persons", "records"]), data=raw_bytes, after_header=st.booleans())
def test_importer_arbitrary_bytes(folders, name, data, after_header):
    folder = folders.extract(**{name: (header_of(name) if after_header else b"") + data})
    result, conn = imported(folder)
    if result is None:
        return
    check_result(result, conn)
    if name != "households":  # the untouched files' valid rows are never lost
        assert conn.execute("SELECT count(*) FROM households").fetchone()[0] == 3


@FUZZ
@given(
    name=st.sampled_from(["households", "persons", "records"]),
    text=st.text(max_size=300),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp932"]),
    after_header=st.booleans(),
)
def test_importer_arbitrary_text(folders, name, text, encoding, after_header):
    data = text.encode(encoding, errors="replace")
    folder = folders.extract(**{name: (header_of(name) if after_header else b"") + data})
    result, conn = imported(folder)
    if result is None:
        return
    check_result(result, conn)


# per file: a valid row number i, the key column of the table, and the columns (and values) it must be stored with
VALID = {
    "households": (
        lambda i: [f"V{i}", "中央", "中央町1-1"],
        "household_id",
        lambda i: [f"V{i}", "中央"],
        "household_id, area",
    ),
    "persons": (
        lambda i: [f"V{i}", HOUSEHOLDS[i % 3], "試験 花子", "シケン ハナコ", "1980-04-01", "F", "子", "日本"],
        "person_id",
        lambda i: [f"V{i}", HOUSEHOLDS[i % 3], "1980-04-01", "F", "子"],
        "person_id, household_id, birth_date, sex, relationship",
    ),
    "records": (
        lambda i: [list(PERSONS)[i % 5], f"V{i}", "care_level", "要介護1", "R6.4.1", ""],
        "source",
        lambda i: [f"V{i}", list(PERSONS)[i % 5], "要介護1", "2024-04-01", None],
        "source, person_id, value, start_date, end_date",
    ),
}


@FUZZ
@given(
    name=st.sampled_from(["households", "persons", "records"]),
    rows=st.lists(st.one_of(st.none(), st.lists(cell, min_size=8, max_size=8)), min_size=1, max_size=12),
    line_end=st.sampled_from(["\r\n", "\n", "\r"]),
)
def test_importer_valid_rows_survive_arbitrary_cells(folders, name, rows, line_end):
    """One file interleaves valid rows (None) with rows of arbitrary cells: every valid row is imported
    with its values; every other row is imported or rejected with reasons on its own line; the valid
    rows of the other files are imported too."""
    make, key, expected, columns = VALID[name]
    width = len(COLUMNS[f"{name}.csv"])
    rows = [r if r is None else r[:width] for r in rows]
    valid_ids = {f"V{i}" for i, r in enumerate(rows) if r is None}
    for r in rows:  # an arbitrary row must not take a valid row's id (or, in records.csv, its source)
        assume(r is None or r[COLUMNS[f"{name}.csv"].index(key)].strip() not in valid_ids)
    buffer = io.StringIO()
    # csv.writer quotes a value holding a character of the line terminator only: with "\r" or "\n" alone
    # as terminator, every value is quoted so that a line break inside a value stays inside it
    writer = csv.writer(
        buffer, lineterminator=line_end, quoting=csv.QUOTE_MINIMAL if line_end == "\r\n" else csv.QUOTE_ALL
    )
    writer.writerow(COLUMNS[f"{name}.csv"])
    starts: list[tuple[int, list[str] | None, int]] = []
    for i, r in enumerate(rows):
        line = len(LINE_BREAK.findall(buffer.getvalue())) + 1
        writer.writerow(make(i) if r is None else r)
        starts.append((line, r, i))
    folder = folders.extract(**{name: buffer.getvalue().encode("utf-8")})
    result, conn = imported(folder)
    assert result is not None, "a CSV with a correct header must never be refused"
    check_result(result, conn)
    stored = {row[0]: list(row) for row in conn.execute(f"SELECT {columns} FROM {name}")}
    rejected_lines = {r.line for r in result.rejects if r.file == f"{name}.csv"}
    assert rejected_lines <= {line for line, r, _ in starts if r is not None}, (rejected_lines, starts)
    for line, r, i in starts:
        if r is None:
            assert stored.get(f"V{i}") == expected(i), (i, line, stored.get(f"V{i}"))
        elif any(v.strip() for v in r) and name != "records":  # (a blank row is skipped; whitespace only in the
            assert r[0].strip() in stored or line in rejected_lines, (line, r)  # first cell: rejected as empty id)
    # the other files' valid rows are not affected by whatever this one holds
    if name != "households":
        assert conn.execute("SELECT count(*) FROM households").fetchone()[0] == 3
    if name == "records":
        assert conn.execute("SELECT count(*) FROM persons").fetchone()[0] == 5


era_date = st.builds(
    lambda era, y, sep, m, d, width: (era + y + sep[0] + m + sep[1] + d + sep[2]).translate(width),
    st.sampled_from(["", "明治", "大正", "昭和", "平成", "令和", "M", "T", "S", "H", "R", "r", "㍻", "㋿"]),
    st.sampled_from(["元", "0", "1", "01", "15", "31", "45", "64", "99", "1926", "2019", "2099"]),
    st.sampled_from(
        [("年", "月", "日"), ("年", "月", ""), (".", ".", ""), ("/", "/", ""), ("-", "-", ""), ("", "", "")]
    ),
    st.integers(0, 13).map(str),
    st.integers(0, 32).map(str),
    st.sampled_from([{}, str.maketrans("0123456789RHS.-/", "０１２３４５６７８９ＲＨＳ．－／")]),
)


@FUZZ
@given(births=st.lists(st.one_of(era_date, cell_text), min_size=1, max_size=8))
def test_importer_birth_dates_agree_with_parse_date(folders, births):
    """A birth date is stored as parse_date reads it (1900-01-01 … today) or the row is rejected on its
    line with field birth_date; the rest of the file is imported."""
    text = (BASE / "persons.csv").read_text(encoding="utf-8") + "".join(
        f"B{i},H001,試験,シケン,{b},F,子,日本\n" for i, b in enumerate(births)
    )  # base: header and 5 persons
    assume(all("," not in b and '"' not in b and not LINE_BREAK.search(b) and "\x00" not in b for b in births))
    folder = folders.extract(persons=text.encode("utf-8"))
    result, conn = imported(folder)
    assert result is not None
    check_result(result, conn)
    stored = dict(conn.execute("SELECT person_id, birth_date FROM persons"))
    assert {p for p in PERSONS} <= set(stored)
    for i, b in enumerate(births):
        try:
            iso = parse_date(b.strip()).isoformat()
        except DateError:
            iso = None
        if iso is not None and "1900-01-01" <= iso <= TODAY.isoformat():
            assert stored.get(f"B{i}") == iso, (b, iso, stored.get(f"B{i}"))
        else:
            assert f"B{i}" not in stored, (b, stored.get(f"B{i}"))
            assert any(r.line == i + 7 and r.field == "birth_date" for r in result.rejects), (b, result.rejects)


@FUZZ
@given(text=st.one_of(st.text(max_size=40), era_date))
def test_parse_date_raises_only_date_error(text):
    try:
        d = parse_date(text)
    except DateError as err:
        assert text not in str(err) or not text.strip() or len(text) < 3  # never echoes the (private) input
        return
    assert isinstance(d, date)


def yaml_lines(path: Path) -> int:
    """Lines as YAML counts them (NEL and the Unicode line and paragraph separators end a line too)."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    return len(re.findall("\r\n|[\r\n\x85\u2028\u2029]", text)) + 1


def check_problems(folder: Path, err: RulesInvalid) -> None:
    files = {str(p): yaml_lines(p) for p in folder.glob("*.y*ml")}
    assert err.problems, "RulesInvalid without problems"
    for p in err.problems:
        assert p.file in files or p.file == str(folder), p
        assert 0 <= p.line <= files.get(p.file, 0) + 1, (p, files.get(p.file))
        assert p.message.strip(), p
        assert str(p).startswith(f"{p.file}:{p.line}:"), str(p)


def loads_or_located(folder: Path) -> None:
    try:
        load_rules(folder)
    except RulesInvalid as err:
        check_problems(folder, err)


TOKENS = [
    "flags:",
    "indicators:",
    "- ",
    "  ",
    "    ",
    "id: ",
    "title: ",
    "severity: ",
    "silos: ",
    "version: ",
    "when: ",
    "all:",
    "any:",
    "not:",
    "member: ",
    "record: ",
    "no_record: ",
    "age: ",
    "{min: 1}",
    "{max: -3}",
    "code: ",
    "care_level",
    "arrears",
    "value: ",
    "[",
    "]",
    "{",
    "}",
    ",",
    ": ",
    "\n",
    "\t",
    "'",
    '"',
    "&a ",
    "*a",
    "!!str ",
    "!!python/name:os.system ",
    "? ",
    "---\n",
    "...\n",
    "#",
    "null",
    "~",
    "true",
    "1e3",
    "0x1F",
    "2024-02-30",
    "8050",
    "high",
    "介護",
    "全角　",
    "elder_needing_care",
    "household_size: ",
    "distinct_values: ",
    "at_least: ",
    "relationship: ",
    "子",
    "sex: ",
    "M",
    "foreign_national: ",
    "within_months: ",
    "99999999999999999999",
    "<<: ",
]


@FUZZ
@given(parts=st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=5)), max_size=60))
def test_rule_loader_arbitrary_yamlish_text(folders, parts):
    loads_or_located(folders.rules(**{"flags.yaml": "".join(parts)}))


def mutate_lines(text: str, ops: list[tuple[int, int, int, str]]) -> str:
    lines = text.split("\n")
    for op, i, j, token in ops:
        if not lines:
            break
        i, j = i % len(lines), j % len(lines)
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(j, lines[i])
        elif op == 2:
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 3:  # replace the value after the first ': '
            head, sep, _ = lines[i].partition(": ")
            lines[i] = head + (sep or ": ") + token
        elif op == 4:
            lines[i] = " " * (j % 7) + lines[i].lstrip()
        elif op == 5:
            lines[i] = lines[i][: j % (len(lines[i]) + 1)] + token + lines[i][j % (len(lines[i]) + 1) :]
        else:
            lines = lines[: i + 1]
    return "\n".join(lines)


line_ops = st.lists(
    st.tuples(
        st.integers(0, 6), st.integers(0, 10_000), st.integers(0, 10_000), st.one_of(st.sampled_from(TOKENS), cell_text)
    ),
    min_size=1,
    max_size=6,
)


@FUZZ
@given(name=st.sampled_from(["flags.yaml", "indicators.yaml"]), ops=line_ops)
def test_rule_loader_mutated_shipped_files(folders, name, ops):
    text = mutate_lines((RULES / name).read_text(encoding="utf-8"), ops)
    loads_or_located(folders.rules(**{name: text}))


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True),
        st.dates(),
        st.sampled_from(TOKENS).map(str.strip),
        cell_text,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        "id",
                        "title",
                        "when",
                        "all",
                        "any",
                        "not",
                        "member",
                        "record",
                        "code",
                        "min",
                        "max",
                        "value",
                        "age",
                        "silos",
                        "severity",
                        "version",
                        "flags",
                        "indicators",
                    ]
                ),
                cell_text,
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, prefix + (i,))


def replace_at(node, path, value, op):
    if not path:
        return value
    parent = node
    for p in path[:-1]:
        parent = parent[p]
    last = path[-1]
    if op == "delete":
        del parent[last]
    elif op == "rename" and isinstance(parent, dict):
        parent[f"{last}_x" if isinstance(last, str) else "x"] = parent.pop(last)
    else:
        parent[last] = value
    return node


@FUZZ
@given(
    name=st.sampled_from(["flags.yaml", "indicators.yaml"]),
    pick=st.integers(0, 10_000),
    value=json_values,
    op=st.sampled_from(["replace", "replace", "delete", "rename"]),
)
def test_rule_loader_structurally_mutated_rules(folders, name, pick, value, op):
    data = yaml.safe_load((RULES / name).read_text(encoding="utf-8"))
    all_paths = list(paths(data))
    path = all_paths[pick % len(all_paths)]
    if op != "replace" and not path:
        op = "replace"
    data = replace_at(data, path, value, op)
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    loads_or_located(folders.rules(**{name: text}))
