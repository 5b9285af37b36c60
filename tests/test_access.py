"""Issue 5, access: who may receive what, file modes, and recipients only from the registry.

1. Property tests over generated households (hypothesis): an agency's agenda holds exactly its
   own silo's facts; 支援会議 papers and routing notices reach registered members only (also when
   the registry changes between queueing and sending); a DV-locked household is never detailed in
   an e-mail; no 重層的支援会議 without the consent of every person concerned, lasting until the
   meeting. The oracles (which silo a record belongs to, whose consent counts) are written here
   from README / domain.md, not taken from the engine.
2. File modes under umask 022: database, workspace, outbox, agendas, reports are owner-only.
3. Recipients: against a real SMTP server on loopback, every envelope recipient and every
   To/Cc/Bcc header is a registry address, whatever a queued row, a template or a configuration
   tries; an unusable message is marked failed with a clear reason.
4. DV over the lifecycle: the wording of a lead request after a decline.

The four engine bugs this file found (agendas/ folder mode, the demo's files, a line break in a
header, a decline naming the DV centre) are fixed and kept by its tests.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import stat
import tempfile
from collections import Counter
from datetime import date, timedelta
from email.utils import getaddresses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from engine.cli.main import app
from engine.config.files import ConfigInvalid, load_config
from engine.outbox.mail import FileTransport, send_pending
from engine.papers.write import queue
from engine.rules.loader import load_rules
from engine.store.db import connect
from engine.support.vocabulary import CODES
from engine.workflows.cycle import dispatch, nightly_cycle
from tests.casework import decide
from tests.conftest import ROOT
from tests.test_smtp import sink, smtp_config  # noqa: F401 - `sink` is a fixture (loopback aiosmtpd)
from tests.town import ON, add_household, born, person

RULES = load_rules(ROOT / "configs" / "rules")
CFG = load_config(ROOT / "configs", RULES)  # module constants: hypothesis would print fixtures in every report
AREAS = ("中央", "港", "北部", "山手", "南部", "川辺", "東部", "西部")
NIGHT2 = ON + timedelta(days=3)  # Monday 2026-11-30
DV_WORDS = ("配偶者暴力", "DV", "ＤＶ", "安全確保", "連絡先・住所")


# --- the oracle: which silo a record belongs to (README "Record codes", agencies.yaml `silo`) ---------
def silo_of(code: str, value: str) -> str | None:
    fixed = {
        "care_level": "介護",
        "dementia": "介護",
        "disability_certificate": "障害",
        "public_assistance": "保護",
        "arrears": "困窮",
        "health_check_missed": "子ども",
        "specific_pregnancy": "子ども",
        "yotaikyo_registered": "子ども",
        "dv_support_measure": "DV",
    }
    if code == "service_use":
        return value  # the value names the silo of the service
    if code == "school_absence_days":
        return "教育" if int(value) >= 30 else None  # a school matter from 30 days of absence
    return fixed.get(code)  # income, consultation, consent, enrolment, waiting list: no silo's facts


def current(rec: tuple, day: date) -> bool:
    _, _, start, end = rec
    return start <= day.isoformat() and (end is None or end >= day.isoformat())


# --- strategies --------------------------------------------------------------------------------------
PAST = st.integers(20, 2500).map(lambda d: (ON - timedelta(days=d)).isoformat())
# an end date never falls in the two nights' window (ON .. ON+10), so the facts are the same both nights
END = st.one_of(
    st.none(),
    st.none(),
    st.integers(1, 3000).map(lambda d: (ON - timedelta(days=d)).isoformat()),
    st.integers(30, 400).map(lambda d: (ON + timedelta(days=d)).isoformat()),
)
VALUES = {
    "care_level": st.sampled_from(CODES["care_level"].values),
    "dementia": st.sampled_from(("IIa", "IIIa", "M")),
    "disability_certificate": st.sampled_from(("身体", "療育", "精神")),
    "public_assistance": st.just("生活扶助"),
    "earned_income": st.sampled_from(("0", "1800000", "4200000")),
    "service_use": st.sampled_from(("介護", "障害", "子ども", "困窮", "保護", "DV", "教育")),
    "arrears": st.tuples(
        st.sampled_from(("resident_tax", "kokuho", "water", "rent", "school_fee")), st.integers(1, 9)
    ).map(lambda t: f"{t[0]}:{t[1]}"),
    "school_absence_days": st.sampled_from(("5", "29", "30", "45")),
    "school_enrollment": st.sampled_from(("小学校", "中学校", "高校")),
    "health_check_missed": st.sampled_from(("連絡なし", "連絡あり")),
    "specific_pregnancy": st.just("該当"),
    "yotaikyo_registered": st.just("要支援児童"),
    "consultation": st.sampled_from(("DV", "就労", "ごみ", "家計", "セルフネグレクト")),
    "dv_support_measure": st.just("住民票等の閲覧制限"),
    "consent": st.just("重層的支援会議"),
    "waiting_list": st.sampled_from(("保育所", "特養")),
}
record = st.sampled_from(sorted(VALUES)).flatmap(lambda code: st.tuples(st.just(code), VALUES[code], PAST, END))
member = st.fixed_dictionaries(
    {
        "age": st.integers(0, 95),
        "rel": st.sampled_from(("妻", "夫", "子", "子", "父", "母", "孫", "その他")),
        "sex": st.sampled_from("MF"),
        "nat": st.sampled_from(("日本", "日本", "日本", "ベトナム")),
        "records": st.lists(record, max_size=4, unique_by=lambda r: (r[0], r[1], r[2])),
    }
)
# consent of every member of a household ("no": only the per-record draws above): open-ended, or
# ending on a day before or after the meeting the case would get
ALL_CONSENT = st.sampled_from(["no", "no", None, *[(ON + timedelta(days=d)).isoformat() for d in (5, 12, 60)]])
household = st.fixed_dictionaries(
    {"area": st.sampled_from(AREAS), "members": st.lists(member, min_size=1, max_size=4), "all_consent": ALL_CONSENT}
)
S = (ON - timedelta(days=400)).isoformat()
PATTERNS = {  # planted so that every path is reached often: 8050, DV, 要対協 routing, young carer
    "8050": [(82, "世帯主", [("care_level", "要介護2", S, None)]), (52, "子", [])],
    "dv": [
        (
            34,
            "世帯主",
            [
                ("dv_support_measure", "住民票等の閲覧制限", S, None),
                ("arrears", "kokuho:4", S, None),
                ("arrears", "water:4", S, None),
            ],
        ),
        (6, "子", []),
    ],
    "yotaikyo": [
        (30, "世帯主", [("earned_income", "2000000", S, None)]),
        (1, "子", [("health_check_missed", "連絡なし", S, None), ("yotaikyo_registered", "要支援児童", S, None)]),
    ],
    "young_carer": [
        (
            45,
            "世帯主",
            [
                ("disability_certificate", "精神", S, None),
                ("earned_income", "0", S, None),
                ("public_assistance", "生活扶助", S, None),
            ],
        ),
        (14, "子", [("school_absence_days", "45", S, None), ("school_enrollment", "中学校", S, None)]),
    ],
}


def planted(name: str):
    """A pattern's members, plus random extra records on each."""
    return st.fixed_dictionaries(
        {
            "area": st.sampled_from(AREAS),
            "members": st.tuples(
                *[st.lists(record, max_size=2, unique_by=lambda r: (r[0], r[1], r[2])) for _ in PATTERNS[name]]
            ).map(
                lambda extra: [
                    {
                        "age": age,
                        "rel": rel,
                        "sex": "F",
                        "nat": "日本",
                        "records": recs
                        + [r for r in more if (r[0], r[1], r[2]) not in {(x[0], x[1], x[2]) for x in recs}],
                    }
                    for (age, rel, recs), more in zip(PATTERNS[name], extra)
                ]
            ),
            "all_consent": ALL_CONSENT,
        }
    )


towns = st.lists(st.one_of(household, *[planted(n) for n in PATTERNS]), min_size=1, max_size=5)
NON_MEMBER_CANDIDATES = (
    "kodomo_center",
    "kikan_soudan",
    "fukushi_jimusho",
    "kyoiku_iinkai",
    "houkatsu_chuo",
    "houkatsu_kita",
    "dv_center",
)
# the same examples every run (a CI run must not fail by luck); PROPERTY_RANDOM=1 for a random hunt
RANDOM = bool(os.environ.get("PROPERTY_RANDOM"))
PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=not RANDOM,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def build(conn, town: list[dict]) -> dict[str, list[dict]]:
    """Insert the town; return each household's members (pid, records) in person-id order."""
    out = {}
    for h, hh in enumerate(town):
        members = []
        for m, spec in enumerate(hh["members"]):
            recs = list(spec["records"])
            if hh["all_consent"] != "no":
                recs.append(("consent", "重層的支援会議", "2026-01-10", hh["all_consent"]))
            recs = list(
                {(r[0], r[1], r[2]): r for r in recs}.values()
            )  # one record per (code, value, start), as the importer keys them
            members.append(
                {
                    "pid": f"P{h:02d}{m:02d}",
                    "birth": born(spec["age"]),
                    "rel": "世帯主" if m == 0 else spec["rel"],
                    "sex": spec["sex"],
                    "nat": spec["nat"],
                    "records": recs,
                }
            )
        add_household(conn, f"H{h:02d}", *members, area=hh["area"])
        out[f"H{h:02d}"] = members
    return out


def with_members(cfg, updates: dict[str, bool], removed: tuple[str, ...] = ()):
    agencies = {
        k: (a.model_copy(update={"member": updates[k]}) if k in updates else a)
        for k, a in cfg.agencies.items()
        if k not in removed
    }
    return cfg.model_copy(update={"agencies": agencies})


def messages(folder: Path) -> dict[str, email.message.EmailMessage]:
    return {
        p.name: email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted(folder.glob("*.eml"))
    }


def part(msg, subtype: str) -> str:
    return next((p.get_content() for p in msg.walk() if p.get_content_type() == f"text/{subtype}"), "")


FACT_LINE = re.compile(r"^\s*-\s*世帯員(\d+)（[^）]*）: (.*)（\d+年\d+月〜）$")
FACT_LI = re.compile(r"<li>世帯員(\d+)（[^）]*）: (.*?)（\d+年\d+月〜）</li>")
TITLES = sorted((c.title for c in CODES.values()), key=len, reverse=True)


def title_of(text: str) -> str:
    return next(t for t in TITLES if text.startswith(t))


def agenda_sections(text: str) -> dict[str, list[tuple[int, str]]]:
    """case id -> facts (member number, record title) of an agency agenda's text part."""
    out: dict[str, list[tuple[int, str]]] = {}
    current_case = None
    for line in text.splitlines():
        m = re.match(r"^■ 事案 (C-\d{4}-\d{5})（", line)
        if m:
            current_case = m[1]
            out[current_case] = []
        elif line.startswith("■"):
            current_case = None
        elif current_case and (f := FACT_LINE.match(line)):
            out[current_case].append((int(f[1]), title_of(f[2])))
    return out


def expected_facts(members: list[dict], silo: str, night: date, multi: bool) -> Counter:
    consenting = {m["pid"] for m in members if any(r[0] == "consent" and current(r, night) for r in m["records"])}
    return Counter(
        (i, CODES[code].title)
        for i, m in enumerate(sorted(members, key=lambda m: m["pid"]), start=1)
        for (code, value, start, end) in m["records"]
        if silo_of(code, value) == silo
        and current((code, value, start, end), night)
        and (not multi or m["pid"] in consenting)
    )


def check_night(conn, ws: Path, town: dict, cfg_queue, cfg_send, night: date, files: set[str]) -> None:
    """Every property, on the e-mails of one night (`files`) and the database after it."""
    registry = {a.email: a for a in cfg_send.agencies.values()}
    case_rows = {
        r[0]: r for r in conn.execute("SELECT case_id, household_id, conference_type, meeting_id, status FROM cases")
    }
    flags_of = {}
    for case_id, rule_id, evidence in conn.execute(
        "SELECT c.case_id, f.rule_id, f.evidence FROM case_flags c JOIN flags f ON f.flag_id = c.flag_id"
    ):
        flags_of.setdefault(case_id, []).append((rule_id, set(json.loads(evidence).get("members", []))))
    records_of = {hid: [(m["pid"], r) for m in ms for r in m["records"]] for hid, ms in town.items()}
    locked_households = {
        hid
        for hid, recs in records_of.items()
        if any(r[0] == "dv_support_measure" and current(r, night) for _, r in recs)
    }
    locked_households |= {case_rows[c][1] for c, fl in flags_of.items() if any(rule == "dv" for rule, _ in fl)}
    locked_cases = {c for c, row in case_rows.items() if row[1] in locked_households}
    kinds = dict(conn.execute("SELECT meeting_id, conference_type FROM meetings"))
    held = dict(conn.execute("SELECT meeting_id, held_on FROM meetings"))

    # without consent no 重層的支援会議: every person concerned consents from the night through the meeting
    for case_id, (_, hid, kind, meeting, status) in case_rows.items():
        if meeting is None or held[meeting] < night.isoformat() or status in ("routed", "archived"):
            continue
        assert kinds[meeting] == kind, (case_id, meeting, kind)
        event(f"case booked: {kind}")
        if kind == "multi":
            concerned = set().union(*(mem for _, mem in flags_of[case_id])) or {m["pid"] for m in town[hid]}
            for pid in concerned:
                recs = next(m["records"] for m in town[hid] if m["pid"] == pid)
                assert any(
                    r[0] == "consent" and r[2] <= night.isoformat() and (r[3] is None or r[3] >= held[meeting])
                    for r in recs
                ), (case_id, pid, held[meeting])

    mails = messages(ws / "outbox")
    for name in sorted(files):
        msg = mails[name]
        key, to = msg["X-Engine-Key"], msg["To"]
        assert to in registry, (name, to)  # recipients only from the registry at send time
        agency = registry[to]
        text, html = part(msg, "plain"), part(msg, "html")
        body = msg["Subject"] + text + html
        # DV: a locked household's case is only counted, and no DV wording reaches another silo
        for case_id in locked_cases:
            assert case_id not in body, (name, case_id)
        if agency.silo != "DV":
            assert not [w for w in DV_WORDS if w in body], (name, [w for w in DV_WORDS if w in body])
        kind, meeting = key.split(":")[0], key.split(":")[1]
        if kind == "routing" or (kind == "agenda" and kinds[meeting] == "support"):
            # 支援会議 papers and routing notices: registered members only, as the registry says when sending
            assert agency.member, (name, agency.id)
            assert cfg_queue.agencies[agency.id].member, (name, agency.id)
        event(f"e-mail: {kind}" + (f" ({kinds[meeting]})" if kind == "agenda" else ""))
        if kind != "agenda":
            continue
        sections = agenda_sections(text)
        html_facts = Counter((int(i), title_of(t)) for i, t in FACT_LI.findall(html))
        assert html_facts == sum((Counter(v) for v in sections.values()), Counter()), name
        for case_id, facts in sections.items():
            _, hid, ckind, _, _ = case_rows[case_id]
            event("agenda case with facts" if facts else "agenda case without facts")
            assert Counter(facts) == expected_facts(town[hid], agency.silo, night, ckind == "multi"), (
                name,
                case_id,
                agency.silo,
            )
        m = re.search(r"詳細を記載しない事案: (\d+)件（詳細は会議にて）", text)
        invited_locked = {
            c
            for (c,) in conn.execute("SELECT case_id FROM case_agencies WHERE agency_id = ?", (agency.id,))
            if c in locked_cases and case_rows[c][3] == meeting
        }
        assert (int(m[1]) if m else 0) == len(invited_locked), (name, invited_locked)
        if invited_locked:
            event("agenda counting a DV-locked case")

    # a queued paper the send-time registry no longer allows was not sent: marked failed with the
    # reason (or withdrawn by a later night as superseded)
    for key, agency_id, status, error, members_only in conn.execute(
        "SELECT message_key, agency_id, status, last_error, members_only FROM outbox"
    ):
        agency = cfg_send.agencies.get(agency_id)
        if status == "failed":
            event("message refused at send time")
        if agency_id != "coordinator" and agency is None:
            assert status in ("failed", "superseded") and (
                status != "failed" or "no longer in agencies.yaml" in error
            ), (key, status, error)
        elif members_only and agency is not None and not agency.member:
            assert status in ("failed", "superseded") and (status != "failed" or "not a registered member" in error), (
                key,
                status,
                error,
            )


@PROPERTY_SETTINGS
@given(
    town=towns,
    non_members=st.sets(st.sampled_from(NON_MEMBER_CANDIDATES), max_size=2),
    revoked=st.sets(st.sampled_from(NON_MEMBER_CANDIDATES), max_size=2),
    removed=st.sets(st.sampled_from(("houkatsu_minami", "kyoiku_iinkai", "hikikomori_npo")), max_size=1),
    withdraw=st.sets(st.integers(0, 4), max_size=3),
)
def test_papers_reach_only_whom_the_rules_allow(town, non_members, revoked, removed, withdraw):
    """One town, two nights, a registry that changes between queueing and sending."""
    rules, cfg = RULES, CFG
    cfg_queue = with_members(cfg, {a: False for a in non_members})
    cfg_send = with_members(cfg_queue, {a: False for a in revoked}, tuple(removed))
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        conn = connect(ws)
        try:
            spec = build(conn, town)
            nightly_cycle(conn, ws, rules, cfg_queue, ON)
            dispatch(conn, cfg_send, ws, ON, transport=FileTransport(ws / "outbox"), force=True)
            first = set(messages(ws / "outbox"))
            check_night(conn, ws, spec, cfg_queue, cfg_send, ON, first)
            # consent withdrawn by some households before night 2 (the silo sends an end date)
            for h in withdraw:
                hid = f"H{h:02d}"
                if hid in spec:
                    conn.execute(
                        "UPDATE records SET end_date = ? WHERE code = 'consent' AND person_id IN (SELECT person_id FROM persons WHERE household_id = ?)",
                        ((ON + timedelta(days=1)).isoformat(), hid),
                    )
                    for m in spec[hid]:
                        m["records"] = [
                            (c, v, s, (ON + timedelta(days=1)).isoformat() if c == "consent" else e)
                            for c, v, s, e in m["records"]
                        ]
            conn.commit()
            nightly_cycle(conn, ws, rules, cfg_send, NIGHT2)
            dispatch(conn, cfg_send, ws, NIGHT2, transport=FileTransport(ws / "outbox"), force=True)
            check_night(conn, ws, spec, cfg_send, cfg_send, NIGHT2, set(messages(ws / "outbox")) - first)
        finally:
            conn.close()


def town_from_csv(folder: Path) -> dict[str, list[dict]]:
    """The oracle's view of a generated extract (dates parsed as the importer would: ISO or 和暦)."""
    import csv

    from engine.support.dates import parse_date

    def rows(name):
        with open(folder / name, encoding="utf-8-sig", newline="") as f:
            return list(csv.DictReader(f))

    town = {r["household_id"]: [] for r in rows("households.csv")}
    by_pid = {}
    for r in rows("persons.csv"):
        by_pid[r["person_id"]] = {"pid": r["person_id"], "records": []}
        town[r["household_id"]].append(by_pid[r["person_id"]])
    for r in rows("records.csv"):
        by_pid[r["person_id"]]["records"].append(
            (
                r["code"],
                r["value"],
                parse_date(r["start_date"]).isoformat(),
                parse_date(r["end_date"]).isoformat() if r["end_date"] else None,
            )
        )
    return town


@settings(
    max_examples=30, deadline=None, database=None, derandomize=not RANDOM, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    seed=st.integers(0, 100_000),
    households=st.integers(100, 400),
    non_members=st.sets(st.sampled_from(NON_MEMBER_CANDIDATES), max_size=2),
    revoked=st.sets(st.sampled_from(NON_MEMBER_CANDIDATES), max_size=2),
)
def test_generated_towns_papers_reach_only_whom_the_rules_allow(seed, households, non_members, revoked):
    """The same properties on towns made by engine.demo.generate (its planted patterns, 和暦 dates),
    imported as a municipality would."""
    from engine.demo.generate import generate_town
    from engine.intake.importer import import_dir

    cfg_queue = with_members(CFG, {a: False for a in non_members})
    cfg_send = with_members(cfg_queue, {a: False for a in revoked})
    with tempfile.TemporaryDirectory() as tmp:
        extract, ws = Path(tmp) / "extract", Path(tmp) / "ws"
        generate_town(extract, households, seed, today=ON)
        conn = connect(ws)
        try:
            import_dir(conn, extract, today=ON)
            nightly_cycle(conn, ws, RULES, cfg_queue, ON)
            dispatch(conn, cfg_send, ws, ON, transport=FileTransport(ws / "outbox"), force=True)
            check_night(conn, ws, town_from_csv(extract), cfg_queue, cfg_send, ON, set(messages(ws / "outbox")))
        finally:
            conn.close()


# --- 2. file modes under umask 022 -------------------------------------------------------------------
@pytest.fixture
def umask022():
    old = os.umask(0o022)  # the usual default: anything not created owner-only would be world-readable
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def not_owner_only(paths) -> list[tuple[str, str]]:
    return [(str(p), mode(p)) for p in paths if stat.S_IMODE(p.stat().st_mode) & 0o077]


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (args, result.output)
    return result.output


@pytest.fixture
def cli_workspace(tmp_path, umask022) -> Path:
    """The production path, as a coordinator runs it: import an extract (with bad rows), run the
    night, send. The extract is written by `engine generate`, outside the workspace."""
    extract, ws = tmp_path / "extract", tmp_path / "ws"
    _cli("generate", str(extract), "--households", "120", "--seed", "3", "--bad-rows", "4", "--date", ON.isoformat())
    _cli("import", str(extract), "--workspace", str(ws))
    _cli(
        "run",
        "--workspace",
        str(ws),
        "--rules",
        str(ROOT / "configs" / "rules"),
        "--config",
        str(ROOT / "configs"),
        "--date",
        ON.isoformat(),
    )
    assert (
        list((ws / "agendas").rglob("*.txt"))
        and list((ws / "outbox").glob("*.eml"))
        and list((ws / "reports").glob("rejects-*.csv"))
    )
    return ws


@pytest.fixture
def demo_workspace(tmp_path, umask022) -> Path:
    ws = tmp_path / "demo"
    # 150 households, seed 1, 60 days: the span imports a relapse extract (sim/extract-2027-01-03/)
    _cli(
        "demo",
        "--households",
        "150",
        "--seed",
        "1",
        "--days",
        "60",
        "--date",
        ON.isoformat(),
        "--workspace",
        str(ws),
        "--rules",
        str(ROOT / "configs" / "rules"),
        "--config",
        str(ROOT / "configs"),
    )
    sim = list((ws / "sim").rglob("*"))
    assert any(p.name == "persons.csv" for p in sim) and any(p.suffix == ".yaml" for p in sim)
    return ws


def engine_files(ws: Path) -> list[Path]:
    """What the brief names: database, workspace, outbox folder and .eml, agendas (meeting folders
    and files), reports and rejects files."""
    out = [ws, ws / "engine.db", ws / "outbox", *(ws / "outbox").iterdir(), ws / "reports", *(ws / "reports").iterdir()]
    out += [p for p in (ws / "agendas").rglob("*")]
    return out


@pytest.mark.parametrize("which", ["cli_workspace", "demo_workspace"])
def test_database_outbox_agendas_and_reports_are_owner_only(which, request):
    ws = request.getfixturevalue(which)
    files = engine_files(ws)
    assert len(list((ws / "outbox").glob("*.eml"))) >= 5 and len(list((ws / "agendas").rglob("*.txt"))) >= 5
    assert list((ws / "reports").glob("rejects-*.csv"))
    # the -wal and -shm files exist while a connection is open: check them then
    conn = connect(ws)
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS mode_probe (x)")
        conn.execute("INSERT INTO mode_probe VALUES (1)")
        conn.commit()
        live = [ws / "engine.db-wal", ws / "engine.db-shm"]
        assert all(p.exists() for p in live)
        assert not_owner_only(files + live) == []
    finally:
        conn.close()


def test_the_agendas_folder_itself_is_owner_only(cli_workspace):
    assert not_owner_only([cli_workspace / "agendas"]) == []


def test_the_demo_simulation_files_are_owner_only(demo_workspace):
    assert not_owner_only([demo_workspace / "sim", *(demo_workspace / "sim").rglob("*")]) == []


# --- 3. recipients only from the registry (real SMTP server on loopback) -------------------------------
EVIL = "evil@attacker.example"


def registry(cfg) -> set[str]:
    return {a.email for a in cfg.agencies.values()} | {cfg.lifecycle.coordinator_email}


def assert_only_registry(handler, cfg) -> None:
    allowed = registry(cfg)
    for rcpts, raw in handler.messages:
        assert set(rcpts) <= allowed, rcpts  # the SMTP envelope
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        for header in ("To", "Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc"):
            addresses = [addr for _, addr in getaddresses([str(v) for v in msg.get_all(header, [])])]
            assert set(addresses) <= allowed, (header, addresses, msg["X-Engine-Key"])
        assert msg.get_all("To") == [rcpts[0]] and not msg.get_all("Cc") and not msg.get_all("Bcc")
        head = raw.decode("ascii", "replace").split("\r\n\r\n", 1)[0].split("\r\n")
        address_lines = [line for line in head if re.match(r"(?i)(resent-)?(to|cc|bcc):", line)]
        assert address_lines == [f"To: {rcpts[0]}"], address_lines  # raw, before any parser's reading


@pytest.fixture
def night(conn, workspace):
    add_household(
        conn, "H8050", person(82, "世帯主", ("care_level", "要介護2"), sex="M"), person(52, "子", sex="M"), area="中央"
    )
    add_household(conn, "HHIKI", person(48, "世帯主", sex="M"), area="北部")
    nightly_cycle(conn, workspace, RULES, CFG, ON)
    return conn


def enqueue(conn, **row) -> None:
    """A row in the outbox as the engine's own writers put it there (papers.queue, committed)."""
    with conn:
        assert queue(conn, **row)


def status_of(conn, key: str) -> tuple[str, str | None]:
    return conn.execute("SELECT status, last_error FROM outbox WHERE message_key = ?", (key,)).fetchone()


SMUGGLED = (
    f"To: {EVIL}\r\nCc: {EVIL}\r\nBcc: {EVIL}\r\n\r\n本文\r\n.\r\nMAIL FROM:<a@attacker.example>\r\nRCPT TO:<{EVIL}>\r\nDATA\r\n"
    f"To: {EVIL}\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n.\r\nQUIT\r\n"
)


def test_a_queued_row_for_an_agency_not_in_the_registry_is_failed_not_sent(night, workspace, sink):
    handler, port = sink
    cfg = smtp_config(RULES, port)
    enqueue(
        night,
        key="notice:attack:unknown",
        kind="notice",
        agency_id="attacker",
        subject="x",
        parts={"text": "x", "html": "<p>x</p>"},
    )
    enqueue(
        night,
        key="notice:attack:injected-id",
        kind="notice",
        agency_id=f"houkatsu_chuo\r\nBcc: {EVIL}",
        subject="x",
        parts={"text": "x", "html": "x"},
    )
    result = send_pending(night, cfg, workspace)
    assert result.sent == len(handler.messages) > 0 and result.failed == 2
    for key in ("notice:attack:unknown", "notice:attack:injected-id"):
        status, error = status_of(night, key)
        assert status == "failed" and "agencies.yaml" in error, (key, status, error)
    assert_only_registry(handler, cfg)


def test_an_agency_removed_from_the_registry_after_queueing_gets_nothing(night, workspace, sink):
    handler, port = sink
    cfg = smtp_config(RULES, port)
    removed = cfg.model_copy(update={"agencies": {k: a for k, a in cfg.agencies.items() if k != "houkatsu_chuo"}})
    keys = [k for (k,) in night.execute("SELECT message_key FROM outbox WHERE agency_id = 'houkatsu_chuo'")]
    assert keys
    result = send_pending(night, removed, workspace)
    assert result.sent == len(handler.messages) > 0
    assert all(
        status_of(night, k)[0] == "failed" and "no longer in agencies.yaml" in status_of(night, k)[1] for k in keys
    )
    assert cfg.agencies["houkatsu_chuo"].email not in {r for rcpts, _ in handler.messages for r in rcpts}
    assert_only_registry(handler, removed)


def test_a_changed_address_is_read_from_the_registry_at_send_time(night, workspace, sink):
    handler, port = sink
    cfg = smtp_config(RULES, port)
    new = cfg.agencies["houkatsu_chuo"].model_copy(update={"email": "houkatsu-chuo-2@city.example.lg.jp"})
    moved = cfg.model_copy(update={"agencies": {**cfg.agencies, "houkatsu_chuo": new}})
    send_pending(night, moved, workspace)
    delivered = {r for rcpts, _ in handler.messages for r in rcpts}
    assert new.email in delivered and cfg.agencies["houkatsu_chuo"].email not in delivered
    assert_only_registry(handler, moved)


def test_header_lines_and_smtp_commands_inside_the_parts_add_no_recipient(night, workspace, sink):
    handler, port = sink
    cfg = smtp_config(RULES, port)
    ascii_smuggle = SMUGGLED.replace("本文", "body")  # pure ASCII: stays 7bit, line for line, in the DATA stream
    enqueue(
        night,
        key="notice:attack:parts",
        kind="notice",
        agency_id="houkatsu_chuo",
        subject=f"To: {EVIL} Bcc: {EVIL}",
        parts={"text": ascii_smuggle, "html": SMUGGLED, "ics": SMUGGLED, "ics_method": "REQUEST"},
    )
    enqueue(
        night,
        key="notice:attack:parts-jp",
        kind="notice",
        agency_id="houkatsu_chuo",
        subject="x",
        parts={"text": SMUGGLED, "html": SMUGGLED},
    )
    pending = night.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
    result = send_pending(night, cfg, workspace)
    assert result.sent == pending == len(handler.messages)  # no smuggled second message
    assert status_of(night, "notice:attack:parts")[0] == "sent"
    assert_only_registry(handler, cfg)


def test_a_custom_templates_folder_cannot_add_recipients(conn, workspace, sink, tmp_path):
    handler, port = sink
    conf = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", conf)
    (conf / "templates").mkdir(exist_ok=True)
    for name in ("agenda.txt.j2", "agenda.html.j2", "notice.txt.j2", "routing.txt.j2"):
        (conf / "templates" / name).write_text(
            f"To: {EVIL}\nCc: {EVIL}\nBcc: {EVIL}\nSubject: 差し替え\n\n"
            + SMUGGLED.replace("\r\n", "\n")
            + "{{ 1 }}\n",
            encoding="utf-8",
        )
    (conf / "templates" / "agenda.ics.j2").write_text(
        f"BEGIN:VCALENDAR\nMETHOD:REQUEST\nATTENDEE:mailto:{EVIL}\nEND:VCALENDAR\n", encoding="utf-8"
    )
    local = load_config(conf, RULES)
    assert local.templates_dir == conf / "templates"
    cfg = local.model_copy(update={"mail": smtp_config(RULES, port).mail})
    add_household(
        conn, "H8050", person(82, "世帯主", ("care_level", "要介護2"), sex="M"), person(52, "子", sex="M"), area="中央"
    )
    add_household(
        conn,
        "HYOTAI",
        person(30, "世帯主", ("earned_income", "2000000")),
        person(1, "子", ("health_check_missed", "連絡なし"), ("yotaikyo_registered", "要支援児童")),
        area="東部",
    )
    nightly_cycle(conn, workspace, RULES, cfg, ON)
    result = send_pending(conn, cfg, workspace)
    assert result.sent == len(handler.messages) >= 3 and result.failed == 0
    bodies = [
        "".join(
            p.get_content()
            for p in email.message_from_bytes(raw, policy=email.policy.default).walk()
            if p.get_content_maintype() == "text"
        )
        for _, raw in handler.messages
    ]
    assert all(f"Bcc: {EVIL}" in b for b in bodies)  # the templates' text is in every body…
    assert_only_registry(handler, cfg)  # …and in no header, no envelope


@pytest.mark.parametrize(
    "field",
    [
        "email",  # agencies.yaml
        "coordinator_email",  # lifecycle.yaml
        "sender",  # mail.yaml: the From header
    ],
)
@pytest.mark.parametrize(
    "value",
    [f"houkatsu@city.example.lg.jp, {EVIL}", f"houkatsu@city.example.lg.jp\r\nBcc: {EVIL}", f"中央包括 <{EVIL}>"],
)
def test_a_configuration_cannot_name_a_second_recipient(field, value, tmp_path):
    import yaml

    conf = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", conf)
    file, path = {
        "email": ("agencies.yaml", ("agencies", 0, "email")),
        "coordinator_email": ("lifecycle.yaml", ("coordinator_email",)),
        "sender": ("mail.yaml", ("sender",)),
    }[field]
    doc = yaml.safe_load((conf / file).read_text(encoding="utf-8"))
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    (conf / file).write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigInvalid):
        load_config(conf, RULES)


HEADER_ATTACKS = ["subject", "ics_method", "conference_name"]


@pytest.fixture(params=HEADER_ATTACKS)
def injected(request, night, workspace, sink):
    """A message whose headers would carry a line break, queued with the night's agendas:
    (the SMTP sink, the configuration to send with, the message's key)."""
    handler, port = sink
    cfg, key = _inject(request.param, night, workspace, port)
    assert key and status_of(night, key)[0] == "pending"
    return handler, cfg, key


def _inject(how: str, night, workspace, port):
    cfg = smtp_config(RULES, port)
    if how == "subject":
        enqueue(
            night,
            key="notice:attack:subject",
            kind="notice",
            agency_id="houkatsu_chuo",
            subject=f"議題\r\nBcc: {EVIL}",
            parts={"text": "x", "html": "x"},
        )
        return cfg, "notice:attack:subject"
    if how == "ics_method":
        enqueue(
            night,
            key="notice:attack:ics",
            kind="notice",
            agency_id="houkatsu_chuo",
            subject="議題",
            parts={
                "text": "x",
                "html": "x",
                "ics": "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
                "ics_method": f"REQUEST\r\nBcc: {EVIL}",
            },
        )
        return cfg, "notice:attack:ics"
    # conference.yaml: the local name of the 支援会議 (free text) goes into every agenda's Subject
    conference = cfg.conference.model_copy(
        update={"names": {"support": f"支援会議\nBcc: {EVIL}", "multi": "重層的支援会議"}}
    )
    bad = cfg.model_copy(update={"conference": conference})
    add_household(
        night,
        "H8050B",
        person(81, "世帯主", ("care_level", "要介護3"), sex="M"),
        person(50, "子", sex="M"),
        area="港",
        changed_seq=1,
    )
    night.execute("INSERT INTO imports VALUES (1, '2026-11-27T00:00:00', 'x', 'utf-8', '{}')")
    night.commit()
    nightly_cycle(night, workspace, RULES, bad, ON)
    key = night.execute(
        "SELECT message_key FROM outbox WHERE subject LIKE '%Bcc:%' ORDER BY message_key LIMIT 1"
    ).fetchone()[0]
    return bad, key


def test_a_line_break_in_a_header_never_adds_a_recipient(injected, night, workspace):
    handler, cfg, key = injected
    for _ in range(2):  # two dispatches
        send_pending(night, cfg, workspace)
    assert_only_registry(handler, cfg)


def test_a_message_with_a_line_break_in_a_header_is_failed_with_a_reason_and_the_rest_goes_out(
    injected, night, workspace
):
    handler, cfg, key = injected
    others = night.execute(
        "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND subject NOT LIKE '%Bcc:%' AND parts NOT LIKE '%Bcc:%'"
    ).fetchone()[0]
    result = send_pending(night, cfg, workspace)
    status, error = status_of(night, key)
    assert status == "failed" and error and ("line" in error.lower() or "改行" in error), (status, error)
    assert (
        result.sent == others == len(handler.messages)
        and not night.execute("SELECT 1 FROM outbox WHERE status IN ('pending', 'sending')").fetchone()
    )
    again = send_pending(night, cfg, workspace)
    assert again.sent == 0 and again.possible_duplicates == 0


# --- 4. DV over the lifecycle ---------------------------------------------------------------------------
@pytest.fixture
def dv_centre_declined(conn, workspace):
    """A DV household (support measure, two arrears): its case is led by the DV centre, closed at
    the conference with the DV centre as lead, and the DV centre declines; everything is sent."""
    from engine.casework.handshake import decline

    add_household(
        conn,
        "HDV",
        person(
            34, "世帯主", ("dv_support_measure", "住民票等の閲覧制限"), ("arrears", "kokuho:4"), ("arrears", "water:4")
        ),
        person(6, "子"),
        area="南部",
    )
    nightly_cycle(conn, workspace, RULES, CFG, ON)
    case_id, meeting_id, lead = conn.execute(
        "SELECT case_id, meeting_id, lead_agency_id FROM cases WHERE household_id = 'HDV'"
    ).fetchone()
    assert lead == "dv_center"
    held = date.fromisoformat(
        conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (meeting_id,)).fetchone()[0]
    )
    decide(
        conn, workspace, RULES, CFG, case_id, meeting_id, held, "decision: close\nlead: dv_center\nconsent: pending\n"
    )
    assert (
        decline(
            conn, RULES, CFG, case_id, "担当件数が上限のため", held + timedelta(days=1), "tester", "dv_center"
        ).next_agency
        == "jiritsu_soudan"
    )
    send_pending(conn, CFG, workspace, transport=FileTransport(workspace / "outbox"))
    dv_addresses = {a.email for a in CFG.agencies.values() if a.silo == "DV"}
    assert any(
        m["X-Engine-Key"].startswith("lead_request:") and m["To"] not in dv_addresses
        for m in messages(workspace / "outbox").values()
    )
    return case_id, dv_addresses


def test_a_lead_request_after_the_dv_centre_declines_does_not_say_dv(dv_centre_declined, workspace):
    case_id, dv_addresses = dv_centre_declined
    told = []
    for name, msg in messages(workspace / "outbox").items():
        body = msg["Subject"] + part(msg, "plain") + part(msg, "html")
        if msg["To"] not in dv_addresses and case_id in body:
            told += [(name, msg["To"], w) for w in DV_WORDS if w in body]
    assert told == [], told
