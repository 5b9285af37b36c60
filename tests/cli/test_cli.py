"""The engine CLI end to end: the conference commands, import errors, bad arguments, README coverage,
settings, progress bars."""

import json
import re
import sqlite3

from engine.cli.main import app
from tests.helpers.cli import runner
from tests.helpers.demo import assert_no_personal_data_mailed, demo
from tests.helpers.paths import ROOT, RULES_DIR

RULES = str(RULES_DIR)


def test_conference_commands_end_to_end(tmp_path):
    ws = tmp_path / "ws"
    out = demo(ws)
    listed = runner.invoke(app, ["meetings", "--workspace", str(ws), "--date", "2026-11-27", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert sum(len(r["cases"]) for r in rows) == out["cases_opened"]
    meeting, agency = rows[0]["meeting_id"], rows[0]["cases"][0]["lead_agency_id"]
    shown = runner.invoke(app, ["agenda", meeting, "--agency", agency, "--workspace", str(ws)])
    assert shown.exit_code == 0 and f"会議番号: {meeting}" in shown.output and "開催について（通知）" in shown.output
    missing = runner.invoke(app, ["agenda", "M-19990101-1400-S", "--workspace", str(ws)])
    assert missing.exit_code == 2 and "no meeting" in missing.output
    box = runner.invoke(app, ["outbox", "--workspace", str(ws), "--json"])
    assert json.loads(box.output)["counts"]["sent"] == out["emails_sent"]
    again = runner.invoke(app, ["run", "--workspace", str(ws), "--date", "2026-11-27", "--json"])
    assert again.exit_code == 0, again.output
    result = json.loads(again.output)
    assert result["cycle"]["convene"]["cases_opened"] == 0 and result["dispatch"]["send"]["sent"] == 0
    # privacy scan of everything e-mailed, against the synthetic town's names, kana, addresses, birth dates

    assert_no_personal_data_mailed(ws)
    check = runner.invoke(app, ["config", "check"])
    assert check.exit_code == 0 and "12 agencies" in check.output


def test_import_refused_file_gives_message_not_traceback(tmp_path):
    src = tmp_path / "extract"
    src.mkdir()
    (src / "households.csv").write_text("household_id,area\nH1,中央\n", encoding="utf-8")
    (src / "persons.csv").write_text(
        "person_id,household_id,name,kana,birth_date,sex,relationship,nationality\n", encoding="utf-8"
    )
    (src / "records.csv").write_text("person_id,source,code,value,start_date,end_date\n", encoding="utf-8")
    result = runner.invoke(app, ["import", str(src), "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 2
    assert "import refused" in result.output and "address" in result.output and "Traceback" not in result.output
    assert result.output.count("nothing was written") == 1, result.output  # said once, not twice


def test_bad_date_argument(tmp_path):
    result = runner.invoke(app, ["screen", "--workspace", str(tmp_path / "ws"), "--rules", RULES, "--date", "R6.13.1"])
    assert result.exit_code == 2 and "--date" in result.output


def test_every_command_is_in_the_readme():
    """Each command is explained in README.md or a hand-written page of docs/ (not only in the generated
    docs/commands.md, which tests/cli/test_commands_doc.py checks)."""
    pages = [ROOT / "README.md", *(p for p in (ROOT / "docs").glob("*.md") if p.name != "commands.md")]
    text = "\n".join(p.read_text(encoding="utf-8") for p in pages)
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    names += [f"{g.name} {c.name}" for g in app.registered_groups for c in g.typer_instance.registered_commands]
    for name in names:
        written = rf"(?:`|^[ \t]*(?:\S*/)?)engine {name}\b"  # in a code span, or a command line of a code block
        assert re.search(written, text, re.M), f"engine {name} is not documented in README.md or docs/"


def test_paths_and_encodings_are_checked(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases = [
        (["generate", str(a_file)], "is a file"),
        (["generate", str(tmp_path / "t"), "--encoding", "latin1"], "use utf-8 or cp932"),
        (["import", str(tmp_path), "--workspace", str(a_file)], "is a file"),
        (["demo", "--workspace", str(a_file), "--rules", RULES], "is a file"),
        (["screen", "--workspace", str(tmp_path / "typo"), "--rules", RULES], "no database at"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    assert not (tmp_path / "typo").exists()


# --- settings, errors, progress bars -----------------------------------------------------------------
def engine_process(argv, tmp_path, env=(), tty=False):
    """`python -m engine.cli argv` with stderr on a pseudo-terminal (tty) or a pipe: (exit code, stdout, stderr)."""
    import os
    import pty
    import subprocess
    import sys

    environ = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")} | {"TERM": "xterm", **dict(env)}
    master, slave = pty.openpty() if tty else (None, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=slave if tty else subprocess.PIPE,
        cwd=tmp_path,
        env=environ | {"PYTHONPATH": str(ROOT)},
    )
    err = b""
    if tty:
        os.close(slave)
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            err += chunk
        os.close(master)
    out, piped = proc.communicate(timeout=120)
    return proc.returncode, out.decode(), (err if tty else piped).decode(errors="replace")


def test_settings_precedence(tmp_path, monkeypatch):
    """An explicit value wins over the ENGINE_* variable, the variable over the default."""
    from pathlib import Path

    from engine.support.settings import PACKAGE_ROOT, Settings

    for name in ("ENGINE_WORKSPACE", "ENGINE_RULES", "ENGINE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no ./configs here: the example configs beside the package
    s = Settings()
    assert (s.workspace, s.rules, s.config) == (
        Path("workspace"),
        PACKAGE_ROOT / "configs" / "rules",
        PACKAGE_ROOT / "configs",
    )
    monkeypatch.chdir(ROOT)  # ./configs and ./configs/rules of the working directory
    assert (Settings().rules, Settings().config) == (Path("configs/rules"), Path("configs"))
    monkeypatch.setenv("ENGINE_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("ENGINE_RULES", str(tmp_path / "rules"))
    monkeypatch.setenv("ENGINE_CONFIG", "")  # empty: as if unset
    s = Settings()
    assert (s.workspace, s.rules, s.config) == (tmp_path / "ws", tmp_path / "rules", Path("configs"))
    assert Settings(workspace=tmp_path / "given").workspace == tmp_path / "given"


def test_cli_options_over_environment(tmp_path):
    """ENGINE_WORKSPACE and ENGINE_RULES are the defaults of --workspace and --rules; an option wins."""
    env = {"ENGINE_WORKSPACE": str(tmp_path / "from_env"), "ENGINE_RULES": str(tmp_path / "rules_env")}
    code, _, err = engine_process(["cases"], tmp_path, env)
    assert code == 2 and f"no database at {tmp_path / 'from_env' / 'engine.db'}" in err
    code, _, err = engine_process(["cases", "--workspace", str(tmp_path / "given")], tmp_path, env)
    assert code == 2 and f"no database at {tmp_path / 'given' / 'engine.db'}" in err
    code, _, err = engine_process(["rules", "check"], tmp_path, env)
    assert code == 1 and "rules_env" in err and "Traceback" not in err
    code, out, _ = engine_process(["rules", "check", "--rules", RULES], tmp_path, env)
    assert code == 0 and out.startswith("ok:")


def test_every_refusal_named_is_an_engine_class():
    """errors.REFUSALS names classes (importing them would load Prefect): each must still exist."""
    from engine.cli.errors import REFUSALS

    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "engine").rglob("*.py"))
    for name in REFUSALS:
        if name not in (
            "KeyError",
            "RuntimeError",
            "FileNotFoundError",
            "OSError",
            "OperationalError",
            "DatabaseError",
        ):
            assert re.search(rf"^class {name}\(", sources, re.M), f"no class {name} in engine/ (moved or renamed?)"


def test_progress_bar_on_a_terminal_only(tmp_path):
    """A bar on stderr when it is a terminal; none when piped or with --json; stdout the same either way."""
    town, ws = str(tmp_path / "town"), str(tmp_path / "ws")
    generate = ["generate", town, "--households", "300", "--date", "2026-11-27"]
    code, out, err = engine_process(generate, tmp_path, tty=True)
    assert code == 0 and "━" in err and "300/300" in err, err
    piped = engine_process(generate, tmp_path)
    assert piped == (0, out, "")
    code, _, err = engine_process(["import", town, "--workspace", ws], tmp_path, tty=True)
    assert code == 0 and "━" in err, err
    screen = ["screen", "--full", "--workspace", ws, "--rules", RULES, "--date", "2026-11-27"]
    code, _, err = engine_process(screen, tmp_path, tty=True)
    assert code == 0 and "━" in err, err
    code, out, err = engine_process([*screen, "--json"], tmp_path, tty=True)
    assert code == 0 and "━" not in err and json.loads(out)["mode"] == "full", err


def test_export_writes_owner_only_files_without_personal_data(tmp_path):
    ws = tmp_path / "ws"
    demo(ws)
    out = tmp_path / "exports"
    result = runner.invoke(app, ["export", str(out), "--workspace", str(ws), "--table", "cases", "--excel"])
    assert result.exit_code == 0, result.output
    data = (out / "cases.csv").read_bytes()
    assert data.startswith("\ufeffcase_id,household_id,status".encode())  # Excel reads the BOM as UTF-8
    rows = data.decode("utf-8-sig").splitlines()
    assert f"{out / 'cases.csv'}: {len(rows) - 1} 行" in result.output and len(rows) > 1
    assert (out / "cases.csv").stat().st_mode & 0o077 == 0 and not (out / "flags.csv").exists()
    json_run = runner.invoke(app, ["export", str(out), "--workspace", str(ws), "--format", "json"])
    assert json_run.exit_code == 0 and {p.name for p in out.iterdir()} >= {"flags.json", "outbox.json", "meetings.json"}
    db = sqlite3.connect(ws / "engine.db")
    secrets = {
        v
        for row in db.execute(
            "SELECT p.name, p.kana, h.address, p.birth_date FROM persons p JOIN households h USING (household_id)"
        )
        for v in row
        if v
    }
    texts = [f.read_text(encoding="utf-8-sig") for f in (out / "cases.csv", *out.glob("*.json"))]
    assert len(secrets) > 1000 and not [s for s in secrets for t in texts if s in t]


def test_export_refuses_unknown_tables_and_formats(tmp_path):
    ws = tmp_path / "ws"
    demo(ws)
    for args, phrase in ((["--format", "xml"], "use csv or json"), (["--table", "persons"], "choose from cases")):
        result = runner.invoke(app, ["export", str(tmp_path / "x"), "--workspace", str(ws), *args])
        assert result.exit_code == 2 and phrase in result.output and "Traceback" not in result.output
