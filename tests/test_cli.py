"""The engine CLI end to end: demo JSON, import errors, bad arguments, README coverage."""

import json
import re

from typer.testing import CliRunner

from engine.cli import app
from tests.conftest import ROOT

runner = CliRunner()
RULES = str(ROOT / "configs" / "rules")


def demo(workspace, *extra):
    result = runner.invoke(app, ["demo", "--households", "400", "--seed", "3", "--date", "2026-11-27", "--workspace", str(workspace), "--rules", RULES, "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_demo_json_summary(tmp_path, rules):
    out = demo(tmp_path / "ws")
    assert out["households"] == 400 and out["persons"] > 400 and out["records"] > 0
    assert out["rejected_rows"] == 5  # the demo's deliberately broken rows
    assert set(out["flags"]) == set(rules.flags)
    assert sum(out["flags"].values()) == out["screen"]["flags_opened"] > 0
    assert out["flagged_households"] <= out["households"]
    assert (tmp_path / "ws" / "engine.db").exists()


def test_demo_is_reproducible(tmp_path):
    a, b = demo(tmp_path / "a"), demo(tmp_path / "b")
    assert a["flags"] == b["flags"] and a["records"] == b["records"]


def test_demo_refuses_a_workspace_with_other_data(tmp_path):
    ws = tmp_path / "real"
    ws.mkdir()
    (ws / "engine.db").write_bytes(b"")
    result = runner.invoke(app, ["demo", "--households", "10", "--workspace", str(ws), "--rules", RULES])
    assert result.exit_code == 2 and "not from a demo" in result.output
    assert (ws / "engine.db").exists()


def test_import_refused_file_gives_message_not_traceback(tmp_path):
    src = tmp_path / "extract"
    src.mkdir()
    (src / "households.csv").write_text("household_id,area\nH1,中央\n", encoding="utf-8")
    (src / "persons.csv").write_text("person_id,household_id,name,kana,birth_date,sex,relationship,nationality\n", encoding="utf-8")
    (src / "records.csv").write_text("person_id,source,code,value,start_date,end_date\n", encoding="utf-8")
    result = runner.invoke(app, ["import", str(src), "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 2
    assert "import refused" in result.output and "address" in result.output and "Traceback" not in result.output


def test_bad_date_argument(tmp_path):
    result = runner.invoke(app, ["screen", "--workspace", str(tmp_path / "ws"), "--rules", RULES, "--date", "R6.13.1"])
    assert result.exit_code == 2 and "--date" in result.output


def test_every_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    names += [f"{g.name} {c.name}" for g in app.registered_groups for c in g.typer_instance.registered_commands]
    for name in names:
        assert re.search(rf"`engine {name}\b", readme), f"engine {name} is not documented in README.md"


def test_demo_never_wipes_an_import_of_real_data(tmp_path):
    ws = tmp_path / "ws"
    demo(ws)
    src = tmp_path / "extract"
    runner.invoke(app, ["generate", str(src), "--households", "5", "--seed", "1"])
    imported = runner.invoke(app, ["import", str(src), "--workspace", str(ws)])
    assert imported.exit_code == 0, imported.output
    again = runner.invoke(app, ["demo", "--households", "10", "--workspace", str(ws), "--rules", RULES])
    assert again.exit_code == 2 and "not from a demo" in again.output
    assert (ws / "engine.db").exists()


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
