"""Names, kana, addresses and birth dates of the town never appear in what the engine prints or
writes outside its database: demo output, explanations, rejects report, flag evidence."""

import csv
import json

from typer.testing import CliRunner

from engine.cli.main import app
from engine.store.db import connect
from tests.conftest import ROOT

RULES = str(ROOT / "configs" / "rules")


def secrets_of(town):
    out = set()
    with open(town / "persons.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out |= {row["name"], row["kana"], row["birth_date"]}
    with open(town / "households.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out.add(row["address"])
    return {s for s in out if s and len(s) >= 4}


def test_nothing_personal_leaves_the_database(tmp_path):
    ws = tmp_path / "ws"
    runner = CliRunner()
    demo = runner.invoke(
        app,
        [
            "demo",
            "--households",
            "300",
            "--seed",
            "11",
            "--date",
            "2026-11-27",
            "--workspace",
            str(ws),
            "--rules",
            RULES,
            "--json",
        ],
    )
    assert demo.exit_code == 0, demo.output
    secrets = secrets_of(ws / "town")
    assert len(secrets) > 300
    outputs = [demo.output]
    conn = connect(ws)
    flagged = [h for (h,) in conn.execute("SELECT DISTINCT household_id FROM flags")]
    assert flagged
    for hid in flagged[:40]:
        outputs.append(
            runner.invoke(
                app, ["explain", hid, "--workspace", str(ws), "--rules", RULES, "--date", "2026-11-27"]
            ).output
        )
    outputs.append(runner.invoke(app, ["summary", "--workspace", str(ws), "--rules", RULES]).output)
    outputs += [ev for (ev,) in conn.execute("SELECT evidence FROM flags")]
    outputs += [p.read_text(encoding="utf-8-sig") for p in (ws / "reports").glob("*.csv")]
    outputs += [r for (r,) in conn.execute("SELECT reason FROM rejects")]
    text = "\n".join(outputs)
    leaked = sorted(s for s in secrets if s in text)
    assert leaked == []
    # and the report and database are readable by their owner only
    for path in [ws / "engine.db", *(ws / "reports").glob("*.csv")]:
        assert path.stat().st_mode & 0o077 == 0, path
    assert json.loads(demo.stdout)["households"] == 300
