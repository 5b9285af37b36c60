"""Names, kana, addresses and birth dates stay in the database: never in an e-mail, an agency's agenda,
the lifecycle's mail and audit text, what the CLI prints (demo output, explanations, rejects report,
flag evidence); free text naming a member or the address is refused however it is written."""

from __future__ import annotations

import csv
import email
import json
from datetime import date

import pytest
from typer.testing import CliRunner

from engine.casework.handshake import HandshakeError, accept, decline
from engine.casework.outcome import OutcomeInvalid
from engine.casework.sweep import daily_sweep
from engine.cli.main import app
from engine.outbox import FileTransport, send_pending
from engine.store.db import connect
from tests.helpers.casework import (
    LEAD,
    MEETING_DAY,
    case,
    d,
    decide,
    morning,
    open_cases,
    plan_text,
)
from tests.helpers.conference import cycle
from tests.helpers.mail import body, sent_texts
from tests.helpers.paths import ROOT


def test_no_personal_data_in_any_email_or_agency_agenda(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    births = [b for (b,) in town.execute("SELECT birth_date FROM persons")]
    secrets = (
        ["試験", "太郎", "シケン", "タロウ", "テスト町"]
        + births
        + [f"{int(b[:4])}年{int(b[5:7])}月{int(b[8:])}日" for b in births]
    )
    files = list((workspace / "outbox").glob("*.eml")) + [
        p for p in (workspace / "agendas").rglob("*") if p.is_file() and not p.name.startswith("coordinator")
    ]
    assert files
    for path in files:
        raw = path.read_bytes()
        text = raw.decode("utf-8", "replace")
        if path.suffix == ".eml":
            text = body(email.message_from_bytes(raw, policy=email.policy.default))
        for s in secrets:
            assert s not in text, f"{s} found in {path.name}"
    parts = " ".join(p for (p,) in town.execute("SELECT parts || subject FROM outbox"))
    assert not any(s in parts for s in secrets)


def test_no_personal_data_in_lifecycle_mail_or_audit_text(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        MEETING_DAY,
        plan_text(roles=((LEAD, "介護サービスの利用調整", "2026-12-10"),)),
    )
    accept(conn, cfg, cid, MEETING_DAY, "tester")
    for day in ("2026-12-07", "2026-12-11", "2026-12-14"):
        daily_sweep(conn, rules, cfg, d(day))
    m2 = case(conn, cid)["meeting_id"]
    send_pending(conn, cfg, workspace, transport=FileTransport(workspace / "outbox"), now=morning("2026-12-14"))
    personal = set()
    for name, kana, birth in conn.execute("SELECT name, kana, birth_date FROM persons WHERE household_id = 'H1'"):
        personal |= {name, kana, birth, *name.split(), *kana.split()}
    personal.add(conn.execute("SELECT address FROM households WHERE household_id = 'H1'").fetchone()[0])
    texts = [r for (r,) in conn.execute("SELECT parts FROM outbox WHERE kind != 'agenda'")]
    texts += [f"{r} {dt}" for r, dt in conn.execute("SELECT reason, detail FROM audit_log")]
    texts += [t for (t,) in conn.execute("SELECT detail FROM escalations")]
    texts += list(sent_texts(workspace).values())
    leaks = [(t[:60], p) for t in texts for p in personal if p and p in (t or "")]
    assert leaks == []
    assert m2 is not None


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


# --- free text of outcomes and declines --------------------------------------------------------------
def test_neutral_free_text_is_accepted(convened):
    result = convened.outcome(
        "decision: plan\nlead: houkatsu_chuo\nreason: 本人と長男の生活を支える\nroles:\n  - {agency: houkatsu_chuo, action: 本人宅を訪問し長男と面談, due: 2026-12-20}\n"
    )
    assert result.status == "lead_pending"


LEAKS = {  # birth dates written the way the engine itself accepts dates (engine/support/dates.py), and a full-width address
    "slash-unpadded": lambda d: f"{d.year}/{d.month}/{d.day}",
    "dots": lambda d: f"{d.year}.{d.month}.{d.day}",
    "digits8": lambda d: d.strftime("%Y%m%d"),
    "kanji-zero-padded": lambda d: f"{d.year}年{d.month:02d}月{d.day:02d}日",
    "fullwidth-address": lambda d: "テスト町１－１",
}


@pytest.mark.parametrize("fmt", list(LEAKS))
def test_personal_data_is_refused_however_it_is_written(convened, fmt):
    birth = date.fromisoformat(
        convened.conn.execute("SELECT MIN(birth_date) FROM persons WHERE household_id = 'H1'").fetchone()[0]
    )
    before = convened.snapshot()
    with pytest.raises(OutcomeInvalid) as err:
        convened.outcome(f'decision: close\nreason: "{LEAKS[fmt](birth)} の件で施設入所"\n')
    assert [p.field for p in err.value.problems] == ["reason"]
    assert convened.snapshot() == before


@pytest.mark.regression("review of the case lifecycle")
@pytest.mark.parametrize(
    "text",
    ["楓さんの登校状況を確認", "港4丁目16-7の自宅を訪問", "かえでさんと面談"],
    ids=["one_kanji_given_name", "street_address", "hiragana_kana"],
)
def test_free_text_with_a_member_name_or_the_street_address_is_refused(conn, workspace, rules, cfg, text):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    conn.execute(
        "UPDATE persons SET name = '池田 楓', kana = 'イケダ カエデ' WHERE household_id = 'H1' AND relationship = '子'"
    )
    conn.execute("UPDATE households SET address = 'みどり市港4丁目16-7' WHERE household_id = 'H1'")
    conn.commit()
    with pytest.raises(OutcomeInvalid):
        decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, plan_text(roles=((LEAD, text, "2027-01-29"),)))


@pytest.mark.regression("review of the case lifecycle")
def test_a_decline_reason_naming_the_household_is_refused(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, plan_text())
    name = conn.execute("SELECT name FROM persons WHERE household_id = 'H1' LIMIT 1").fetchone()[0]
    try:
        decline(conn, rules, cfg, cid, f"{name}さん宅は担当地区外のため", d("2026-12-07"), "tester")
    except HandshakeError:
        pass
    leaked = conn.execute(
        "SELECT event FROM audit_log WHERE reason LIKE ? OR detail LIKE ?", (f"%{name}%", f"%{name}%")
    ).fetchall()
    assert leaked == []
