"""Hostile and broken input (issue 5): the corpus in tests/reliability/hostile/ through the real CLI.

Every file of tests/reliability/hostile/{csv,rules,config,outcome}/ is an entry of tests/reliability/hostile/manifest*.yaml,
and every bad argument vector one of tests/reliability/hostile/cli*.yaml (one file per theme). Each entry is run through `engine.cli.app`
(typer's CliRunner; a few as a real `python -m engine.cli` process) and must give:

- the documented exit code, and no uncaught exception and no traceback in stdout or stderr;
- each expected message on one output line naming the file, the line (where there is one) and the
  field, with the key phrase;
- for an import: every valid row in the database (a refused file: nothing written), the rejected
  rows counted per file, and the values stored as expected;
- for a command on a workspace: nothing changed in it.

Known engine bugs are kept as entries marked `xfail` in the manifest (strict: a fix makes them fail
as XPASS, so the mark must then be removed).
"""

from __future__ import annotations

import collections
import gzip
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from engine.cli.main import app
from tests.helpers.paths import ROOT

HOSTILE = ROOT / "tests" / "reliability" / "hostile"


def corpus(pattern: str) -> list[dict]:
    """The entries of every corpus file matching `pattern` (manifest.yaml, manifest-imports.yaml, …)."""
    return [e for f in sorted(HOSTILE.glob(pattern)) for e in yaml.safe_load(f.read_text(encoding="utf-8"))["entries"]]


MANIFEST = corpus("manifest*.yaml")
CLI = corpus("cli*.yaml")
RULES = ROOT / "configs" / "rules"
CONFIGS = ROOT / "configs"
CASE, MEETING = "C-2026-00001", "M-20261204-1000-S"
ENV = {"COLUMNS": "250"}  # rich error boxes of typer: one message per line
RUNNER = CliRunner()


def params(entries):
    out = []
    for e in entries:
        marks = [pytest.mark.xfail(strict=True, reason=e["xfail"])] if e.get("xfail") else []
        out.append(pytest.param(e, id=e["id"], marks=marks))
    return out


@pytest.fixture(scope="module")
def convened_ws(tmp_path_factory):
    """A workspace whose 8050 household H1 has case C-2026-00001 on the 支援会議 of 2026-12-04."""
    from engine.config import load_config
    from engine.rules.loader import load_rules
    from engine.store.db import connect
    from tests.helpers.casework import open_cases

    ws = tmp_path_factory.mktemp("convened") / "ws"
    conn = connect(ws)
    rules = load_rules(RULES)
    assert open_cases(conn, ws, rules, load_config(CONFIGS, rules), "H1") == [(CASE, MEETING)]
    conn.close()
    return ws


@pytest.fixture(scope="module")
def empty_ws(tmp_path_factory):
    """An empty workspace database: copied for each import, so that the schema is not created (with
    one fsync per statement) 80 times over; the import itself still runs through the CLI."""
    from engine.store.db import connect

    ws = tmp_path_factory.mktemp("empty") / "ws"
    connect(ws).close()
    return ws


def fingerprint(ws: Path) -> dict:
    """Row counts of every table and the cases as they are: what any command may have changed."""
    conn = sqlite3.connect(f"file:{ws / 'engine.db'}?mode=ro", uri=True)
    try:
        tables = [
            t
            for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        ]
        out = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
        out["cases"] = conn.execute("SELECT * FROM cases ORDER BY case_id").fetchall()
        return out
    finally:
        conn.close()


def counts(ws: Path) -> dict:
    db = ws / "engine.db"
    if not db.exists():
        return {"households": 0, "persons": 0, "records": 0}
    conn = sqlite3.connect(db)
    try:
        return {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("households", "persons", "records")
        }
    finally:
        conn.close()


def place(src: Path, dest: Path) -> None:
    """Copy a corpus file to dest, unpacking *.gz."""
    if src.suffix == ".gz":
        dest.write_bytes(gzip.decompress(src.read_bytes()))
    else:
        shutil.copyfile(src, dest)


class Ran:
    def __init__(self, code: int, stdout: str, stderr: str, exception: BaseException | None):
        self.code, self.stdout, self.stderr, self.exception = code, stdout, stderr, exception
        self.output = stdout + ("\n" if stdout and stderr else "") + stderr


def run(argv: list[str], how: str | None, timeout: float | None, cwd: Path) -> Ran:
    if how == "subprocess":
        env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")} | ENV
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "engine.cli", *argv],
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=timeout or 120,
                cwd=cwd,
                env=env,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"`engine {' '.join(argv[:2])} …` did not finish within {timeout} s")
        return Ran(proc.returncode, proc.stdout, proc.stderr, None)
    result = RUNNER.invoke(app, argv, env=ENV)
    return Ran(result.exit_code, result.stdout, result.stderr, result.exception)


def line_matches(text: str, m: dict) -> bool:
    file, line, field, phrase = m.get("file"), m.get("line"), m.get("field"), m.get("phrase")
    if file and file not in text:
        return False
    if line is not None:
        where = rf"{re.escape(file)}:{line}\b" if file else rf":{line}\b"
        if not re.search(rf"{where}|\b(?i:line) {line}\b", text):
            return False
    if field and f"[{field}]" not in text and not re.search(rf"(?<![\w.\[]){re.escape(field)}(?![\w\]])", text):
        return False
    return not phrase or phrase in text


def check_run(entry: dict, ran: Ran, fill) -> None:
    shown = f"exit {ran.code}, output:\n{ran.output[-3000:]}"
    assert ran.exception is None or isinstance(ran.exception, SystemExit), f"uncaught {ran.exception!r}; {shown}"
    assert "Traceback" not in ran.stdout and "Traceback" not in ran.stderr, shown
    assert ran.code == entry["exit"], shown
    lines = ran.output.splitlines()
    for m in entry.get("expect") or []:
        m = {k: fill(v) if isinstance(v, str) else v for k, v in m.items()}
        assert any(line_matches(text, m) for text in lines), f"no output line with {m}; {shown}"


@pytest.mark.parametrize("entry", params(MANIFEST))
def test_corpus_file(entry, tmp_path, convened_ws, empty_ws):
    kind, src = entry["kind"], HOSTILE / entry["file"]
    slots = {"rules": str(RULES), "config": str(CONFIGS), "case": CASE, "meeting": MEETING, "tmp": str(tmp_path)}
    uses_ws = False
    if kind == "csv":
        extract = tmp_path / "extract"
        shutil.copytree(HOSTILE / "csv" / "base", extract)
        place(src, extract / entry["as"])
        shutil.copytree(empty_ws, tmp_path / "ws")
        if entry.get("imported_first"):  # the workspace already holds csv/base/ (manifest-imports.yaml)
            first = run(
                ["import", str(HOSTILE / "csv" / "base"), "--workspace", str(tmp_path / "ws")], None, None, tmp_path
            )
            assert first.code == 0, first.output
            before_import = fingerprint(tmp_path / "ws")
        slots |= {"extract": str(extract), "new_ws": str(tmp_path / "ws")}
        default = ["import", "{extract}", "--workspace", "{new_ws}"]
    elif kind == "rules":
        rules_dir = tmp_path / "rules"
        shutil.copytree(RULES, rules_dir)
        place(src, rules_dir / entry["as"])
        slots["rules_dir"] = str(rules_dir)
        default = ["rules", "check", "--rules", "{rules_dir}"]
    elif kind == "config":
        config_dir = tmp_path / "configs"
        shutil.copytree(CONFIGS, config_dir)
        place(src, config_dir / entry["as"])
        slots["config_dir"] = str(config_dir)
        default = ["config", "check", "--config", "{config_dir}", "--rules", "{rules}"]
    else:
        assert kind == "outcome", kind
        place(src, tmp_path / src.name)
        slots["file"] = str(tmp_path / src.name)
        default = [
            "outcome",
            "{meeting}",
            "{case}",
            "--file",
            "{file}",
            "--workspace",
            "{ws}",
            "--rules",
            "{rules}",
            "--config",
            "{config}",
            "--date",
            entry.get("date", "2026-12-04"),
            "--by",
            "tester",
        ]
    command = entry.get("command") or default
    if "{ws}" in command:
        uses_ws = True
        shutil.copytree(convened_ws, tmp_path / "convened")
        slots["ws"] = str(tmp_path / "convened")
        before = fingerprint(tmp_path / "convened")

    def fill(text: str) -> str:
        return text.format(**slots)

    ran = run([fill(a) for a in command], entry.get("runner"), entry.get("timeout"), tmp_path)
    check_run(entry, ran, fill)
    if uses_ws:
        assert fingerprint(tmp_path / "convened") == before, "the workspace changed"
    if kind == "csv":
        ws = tmp_path / "ws"
        assert counts(ws) == entry["survive"], ran.output[-2000:]
        if entry.get("imported_first") and ran.code != 0:
            assert fingerprint(ws) == before_import, "a refused import changed the workspace"
        if entry.get("rejected"):
            conn = sqlite3.connect(ws / "engine.db")
            (summary,) = conn.execute("SELECT summary FROM imports ORDER BY import_seq DESC LIMIT 1").fetchone()
            files = json.loads(summary)["files"]
            assert {f: files[f]["rejected"] for f in entry["rejected"]} == entry["rejected"], files
            conn.close()
        for table, rows in (entry.get("stored") or {}).items():
            conn = sqlite3.connect(ws / "engine.db")
            key = {"persons": "person_id", "households": "household_id"}[table]
            for ident, values in rows.items():
                got = conn.execute(f"SELECT {', '.join(values)} FROM {table} WHERE {key} = ?", (ident,)).fetchone()
                assert got == tuple(values.values()), (ident, got, values)
            conn.close()


@pytest.mark.parametrize("entry", params(CLI))
def test_bad_arguments(entry, tmp_path, convened_ws, empty_ws):
    ws = tmp_path / "convened"
    shutil.copytree(convened_ws, ws)
    (tmp_path / "a_file.txt").write_text("not a folder\n", encoding="utf-8")
    extract = tmp_path / "extract"
    shutil.copytree(HOSTILE / "csv" / "base", extract)
    typo = tmp_path / "extract_typo"
    shutil.copytree(extract, typo)
    (typo / "records.csv").rename(typo / "record.csv")
    outcome_ok = tmp_path / "outcome-ok.yaml"
    outcome_ok.write_text("decision: continue\n", encoding="utf-8")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    shutil.copytree(empty_ws, tmp_path / "new_ws")
    slots = {
        "ws": str(ws),
        "case": CASE,
        "meeting": MEETING,
        "rules": str(RULES),
        "config": str(CONFIGS),
        "nows": str(tmp_path / "no-workspace"),
        "a_file": str(tmp_path / "a_file.txt"),
        "tmp": str(scratch),
        "extract": str(extract),
        "extract_typo": str(typo),
        "new_ws": str(tmp_path / "new_ws"),
        "outcome_ok": str(outcome_ok),
    }

    def fill(text: str) -> str:
        return text.format(**slots)

    before = fingerprint(ws)
    ran = run([fill(a) for a in entry["argv"]], entry.get("runner"), entry.get("timeout"), tmp_path)
    check_run(entry, ran, fill)
    assert fingerprint(ws) == before, "the workspace changed"
    assert not (tmp_path / "no-workspace").exists(), "a missing --workspace was created"
    if "survive" in entry:
        assert counts(tmp_path / "new_ws") == entry["survive"]


def test_corpus_is_complete_and_big_enough():
    """Every corpus file is in the manifest (and exists), ids are unique, and there are at least 60 inputs."""
    listed = {e["file"] for e in MANIFEST}
    on_disk = {
        str(p.relative_to(HOSTILE))
        for sub in ("csv", "rules", "config", "outcome")
        for p in (HOSTILE / sub).glob("*")
        if p.is_file()
    }
    assert on_disk == listed, (on_disk - listed, listed - on_disk)
    ids = [e["id"] for e in MANIFEST] + [e["id"] for e in CLI]
    assert len(ids) == len(set(ids)), [i for i, n in collections.Counter(ids).items() if n > 1]
    kinds = collections.Counter(e["kind"] for e in MANIFEST) | {"cli": len(CLI)}
    assert min(kinds.values()) >= 15 and sum(kinds.values()) >= 60, kinds
    for e in MANIFEST + CLI:
        assert e["exit"] in (0, 1, 2) and (e["expect"] or e["exit"] == 0), e["id"]
        if e.get("kind") == "csv":
            assert set(e["survive"]) == {"households", "persons", "records"}, e["id"]


def test_reliability_page_counts_the_corpus_as_it_is():
    """docs/reliability.md states the corpus's size per kind: kept true here."""
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    found = re.search(
        r"(\d+) bad inputs \((\d+) CSV files, (\d+) rule files, (\d+) config files, (\d+) outcome files, "
        r"(\d+) CLI argument vectors",
        text,
    )
    assert found, "docs/reliability.md: the hostile-input line is missing"
    kinds = collections.Counter(e["kind"] for e in MANIFEST)
    told = [int(n) for n in found.groups()]
    assert told == [len(MANIFEST) + len(CLI), kinds["csv"], kinds["rules"], kinds["config"], kinds["outcome"], len(CLI)]
