"""The conference slice without Prefect: cases, conference type, booking, lead, agendas, outbox."""

from __future__ import annotations

import email
import json
from datetime import date
from pathlib import Path

import pytest

from engine.casework.listing import agenda, meetings, outbox
from engine.conference.booking import Booker
from engine.conference.convene import convene
from engine.conference.lead import propose_lead
from engine.config.files import load_config
from engine.outbox.mail import FileTransport, send_pending
from engine.papers.agenda import meeting_papers
from engine.screening.screen import screen
from engine.support.vocabulary import CODES
from engine.workflows.cycle import dispatch, nightly_cycle
from tests.conftest import ROOT
from tests.town import ON, add_household, person

CONSENT = ("consent", "重層的支援会議", "2026-01-10")


def elder_and_son(consent: bool = False):
    extra = (CONSENT,) if consent else ()
    return (person(82, "世帯主", ("care_level", "要介護2"), *extra, sex="M"), person(52, "子", *extra, sex="M"))


@pytest.fixture
def town(conn):
    add_household(conn, "H8050", *elder_and_son(), area="中央")
    add_household(conn, "HAGREED", *elder_and_son(consent=True), area="北部")
    add_household(
        conn, "HDV", person(34, "世帯主", ("dv_support_measure", "住民票等の閲覧制限")), person(6, "子"), area="南部"
    )
    add_household(
        conn,
        "HYOTAI",
        person(30, "世帯主", ("earned_income", "2000000")),
        person(1, "子", ("health_check_missed", "連絡なし"), ("yotaikyo_registered", "要支援児童")),
        area="東部",
    )
    add_household(conn, "HOK", person(45, "世帯主", ("earned_income", "5000000")), area="中央")
    return conn


def cycle(conn, workspace, rules, cfg, on=ON):
    result = nightly_cycle(conn, workspace, rules, cfg, on)
    sent = dispatch(conn, cfg, workspace, on, transport=FileTransport(workspace / "outbox"), force=True).send
    return result, sent


def case_of(conn, hid):
    row = conn.execute(
        "SELECT case_id, status, conference_type, conference_basis, lead_agency_id, lead_reason, meeting_id FROM cases WHERE household_id = ?",
        (hid,),
    ).fetchone()
    return dict(zip(("case_id", "status", "type", "basis", "lead", "reason", "meeting"), row)) if row else None


def emails(workspace: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted((workspace / "outbox").glob("*.eml"))
    ]


def body(msg) -> str:
    return "\n".join(part.get_content() for part in msg.walk() if part.get_content_maintype() == "text")


# --- which households, which conference ---------------------------------------------------------
def test_consent_of_everyone_concerned_decides_the_conference_type(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    no_consent, agreed = case_of(town, "H8050"), case_of(town, "HAGREED")
    assert no_consent["type"] == "support" and "同意 0人" in no_consent["basis"] and "106条の6" in no_consent["basis"]
    assert agreed["type"] == "multi" and "全員の本人同意あり" in agreed["basis"]
    assert (
        town.execute("SELECT conference_type FROM meetings WHERE meeting_id = ?", (agreed["meeting"],)).fetchone()[0]
        == "multi"
    )


def test_consent_of_only_one_person_concerned_is_not_enough(conn, workspace, rules, cfg):
    elder, son = elder_and_son()
    elder["records"].append(("consent", "重層的支援会議", "2026-01-10", None))
    add_household(conn, "HHALF", elder, son)
    cycle(conn, workspace, rules, cfg)
    case = case_of(conn, "HHALF")
    assert case["type"] == "support" and "2人中 同意 1人" in case["basis"]


def test_ended_consent_does_not_count(conn, workspace, rules, cfg):
    elder, son = elder_and_son()
    for m in (elder, son):
        m["records"].append(("consent", "重層的支援会議", "2025-01-10", "2026-06-30"))
    add_household(conn, "HWITHDRAWN", elder, son)
    cycle(conn, workspace, rules, cfg)
    assert case_of(conn, "HWITHDRAWN")["type"] == "support"


def test_non_member_agencies_never_receive_support_meeting_papers(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    non_members = {a.id for a in cfg.agencies.values() if not a.member}
    assert non_members, "the shipped registry should hold a non-member to test with"
    support = {m for (m,) in town.execute("SELECT meeting_id FROM meetings WHERE conference_type = 'support'")}
    for key, agency_id in town.execute("SELECT message_key, agency_id FROM outbox WHERE kind = 'agenda'"):
        if key.split(":")[1] in support:
            assert agency_id not in non_members, key
    support_case = case_of(town, "H8050")
    invited = {
        a for (a,) in town.execute("SELECT agency_id FROM case_agencies WHERE case_id = ?", (support_case["case_id"],))
    }
    assert "hikikomori_npo" not in invited and "構成員でないため招集しない機関" in support_case["basis"]
    # with consent the same kind of case may include the NPO (困窮 silo, serves 全域)
    agreed = case_of(town, "HAGREED")
    invited = {
        a for (a,) in town.execute("SELECT agency_id FROM case_agencies WHERE case_id = ?", (agreed["case_id"],))
    }
    assert "hikikomori_npo" in invited
    assert (
        town.execute(
            "SELECT COUNT(*) FROM outbox WHERE agency_id = 'hikikomori_npo' AND message_key LIKE ?",
            (f"agenda:{agreed['meeting']}:%",),
        ).fetchone()[0]
        == 1
    )


def test_flags_below_the_threshold_open_no_case(conn, workspace, rules, cfg):
    # parent with a disability and a minor child: severity low, below the shipped threshold (medium)
    add_household(
        conn,
        "HLOW",
        person(40, "世帯主", ("disability_certificate", "身体"), ("earned_income", "3000000")),
        person(10, "子"),
    )
    screen(conn, workspace, rules, ON)
    assert (
        conn.execute(
            "SELECT COUNT(*) FROM flags WHERE household_id = 'HLOW' AND rule_id = 'parent_disability_child'"
        ).fetchone()[0]
        == 1
    )
    convene(conn, rules, cfg, ON)
    assert case_of(conn, "HLOW") is None


# --- routing to a silo conference --------------------------------------------------------------
def test_household_known_to_yotaikyo_is_routed_not_given_a_parallel_case(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    case = case_of(town, "HYOTAI")
    assert case["status"] == "routed" and case["meeting"] is None and "要保護児童対策地域協議会" in case["basis"]
    keys = [k for (k,) in town.execute("SELECT message_key FROM outbox WHERE kind = 'routing'")]
    assert keys == [f"routing:{case['case_id']}:kodomo_center:v1"]
    notice = next(m for m in emails(workspace) if m["X-Engine-Key"] == keys[0])
    assert notice["To"] == cfg.agencies["kodomo_center"].email and "並行するケースは開始しません" in body(notice)


def test_routed_household_with_a_new_problem_outside_the_silo_is_escalated(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    # months later the mother is in arrears on two accounts: outside 要対協's remit
    pid = town.execute(
        "SELECT person_id FROM persons WHERE household_id = 'HYOTAI' AND relationship = '世帯主'"
    ).fetchone()[0]
    for kind in ("kokuho", "water"):
        town.execute(
            "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
            (f"{pid}|t|arrears|{kind}", pid, "t", "arrears", f"{kind}:4", "2026-09-01", None),
        )
    town.execute("UPDATE households SET changed_seq = 1 WHERE household_id = 'HYOTAI'")
    town.execute("INSERT INTO imports VALUES (1, '2026-12-01T00:00:00', 'x', 'utf-8', '{}')")
    town.commit()
    later = date(2026, 12, 1)
    result, _ = cycle(town, workspace, rules, cfg, later)
    case = case_of(town, "HYOTAI")
    assert result.convene.cases_escalated == 1 and case["status"] == "convened" and case["meeting"] is not None
    assert case["basis"].startswith("要対協等の範囲外の課題が加わったため会議に付議")


# --- DV lock and minimisation --------------------------------------------------------------------
def test_dv_household_never_appears_in_an_email_beyond_one_line(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    dv = case_of(town, "HDV")
    assert dv["lead"] == "dv_center"
    msgs = emails(workspace)
    assert msgs
    dv_title = rules.flags["dv"].title
    for m in msgs:
        text = body(m) + m["Subject"]
        assert dv["case_id"] not in text and dv_title not in text and "DV等支援措置" not in text
    to_dv_center = [m for m in msgs if m["To"] == cfg.agencies["dv_center"].email]
    assert to_dv_center and all("1件（詳細は会議にて）" in body(m) for m in to_dv_center)
    coordinator = next((workspace / "agendas" / dv["meeting"]).glob("coordinator.v*.html")).read_text(encoding="utf-8")
    assert dv["case_id"] in coordinator  # the coordinator's local version has it


def test_each_agency_sees_only_its_own_silos_facts(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    seen_titles = set()
    for (mid,) in town.execute("SELECT meeting_id FROM meetings").fetchall():
        for a in meeting_papers(town, rules, cfg, mid, ON).agendas:
            silo = cfg.agencies[a.agency_id].silo
            for item in a.cases:
                for fact in item.facts:
                    code = next(c for c in CODES.values() if c.title == fact.title)
                    assert code.silo == silo or (code.silo_from_value and fact.value == silo), (a.agency_id, fact)
                    seen_titles.add((a.agency_id, fact.title))
    assert ("houkatsu_chuo", "要介護・要支援認定") in seen_titles
    case = case_of(town, "H8050")
    text = agenda(town, workspace, case["meeting"], "jiritsu_soudan")
    assert case["case_id"] in text and "要介護・要支援認定" not in text


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


def test_agenda_has_the_106_notice_lead_reason_and_discussion_points(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    case = case_of(town, "H8050")
    text = agenda(town, workspace, case["meeting"], "houkatsu_chuo")
    assert "社会福祉法第106条の6" in text and "主担当機関（案）: 中央地域包括支援センター" in text
    shared = conn_reason = town.execute(
        "SELECT lead_reason_shared FROM cases WHERE case_id = ?", (case["case_id"],)
    ).fetchone()[0]
    assert shared in text and "主担当機関の決定" in text and "本人同意の取得方針" in text
    # the full reason (load, "already serves a member") stays with the coordinator
    assert "現在の主担当" in case["reason"] and "現在の主担当" not in text
    multi = case_of(town, "HAGREED")
    text = agenda(town, workspace, multi["meeting"], "houkatsu_kita")
    assert "106条の6" not in text and "支援プラン（案）の確認" in text and "本人同意の取得方針" not in text
    ics = next((workspace / "agendas" / case["meeting"]).glob("houkatsu_chuo.v1.ics")).read_text(encoding="utf-8")
    assert "DTSTART;TZID=Asia/Tokyo:" in ics and f"UID:{case['meeting']}@engine" in ics


def test_templates_can_be_overridden_from_the_config_folder(town, workspace, rules, tmp_path):
    import shutil

    conf = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", conf)
    (conf / "templates").mkdir(exist_ok=True)
    (conf / "templates" / "agenda.txt.j2").write_text(
        "町独自の様式 {{ a.meeting_id }} {{ a.cases | length }}件\n", encoding="utf-8"
    )
    local = load_config(conf, rules)
    cycle(town, workspace, rules, local)
    case = case_of(town, "H8050")
    assert agenda(town, workspace, case["meeting"], "houkatsu_chuo").startswith(f"町独自の様式 {case['meeting']}")


# --- booking -------------------------------------------------------------------------------------
def test_normal_case_skips_a_holiday_slot(conn, cfg):
    # 2026-10-26 (Mon) + 5 business days = 11-02 (Mon); Tue 11-03 is 文化の日 → Fri 11-06 10:00
    m = Booker(conn, cfg, date(2026, 10, 26)).book("support", urgent=False)
    assert (m.held_on, m.start_time) == (date(2026, 11, 6), "10:00")


def test_normal_case_skips_the_new_year_closure(conn, cfg):
    # 2026-12-22 (Tue) + 5 business days: 23, 24, 25, 28, then 12/29-1/3 closed → 2027-01-04; first slot Tue 01-05
    m = Booker(conn, cfg, date(2026, 12, 22)).book("support", urgent=False)
    assert m.held_on == date(2027, 1, 5) and m.meeting_id == "M-20270105-1400-S"


def test_meetings_fill_up_to_the_configured_number_of_cases(conn, cfg):
    b = Booker(conn, cfg, ON)
    ids = [b.book("support", urgent=False).meeting_id for _ in range(cfg.conference.cases_per_meeting + 1)]
    assert len(set(ids[:-1])) == 1 and ids[-1] != ids[0]


def test_urgent_case_takes_the_nearest_slot_within_two_business_days(conn, cfg):
    # Fri 2026-11-27: the window is Mon 11-30 and Tue 12-01; the Tuesday 14:00 支援会議 slot is in it
    m = Booker(conn, cfg, ON).book("support", urgent=True)
    assert m.meeting_id == "M-20261201-1400-S" and not m.added_for_urgent


def test_urgent_case_adds_a_meeting_when_no_slot_is_near(conn, cfg):
    # 重層的支援会議 meets on Thursdays: nothing in Mon 11-30..Tue 12-01 → a meeting is added on Monday 16:00
    b = Booker(conn, cfg, ON)
    m = b.book("multi", urgent=True)
    assert m.added_for_urgent and m.held_on == date(2026, 11, 30) and m.start_time == "16:00"
    for _ in range(cfg.conference.cases_per_meeting - 1):
        assert b.book("multi", urgent=True).meeting_id == m.meeting_id
    assert b.book("multi", urgent=True).held_on == date(2026, 12, 1)  # full → the next day in the window


def test_urgent_booking_over_new_year_stays_on_business_days(conn, cfg):
    b = Booker(conn, cfg, date(2026, 12, 28))
    m = b.book("support", urgent=True)  # 12/29-1/3 closed: window Mon 1/4, Tue 1/5 → the Tuesday slot
    assert m.meeting_id == "M-20270105-1400-S" and not m.added_for_urgent
    m = b.book("multi", urgent=True)  # no Thursday in the window → added on Monday 1/4
    assert m.held_on == date(2027, 1, 4) and m.added_for_urgent


# --- lead agency ---------------------------------------------------------------------------------
def lead(cfg, flags, area="中央", served=(), kind="multi", led=None):
    return propose_lead(
        cfg, area=area, flag_ids=set(flags), served_silos=set(served), conference_type=kind, led=led or {}
    )


def test_first_rule_naming_a_flag_chooses_and_the_reason_is_stored(cfg):
    p = lead(cfg, {"8050", "dv"})
    assert p.agency_id == "dv_center" and p.rule_id == "dv_safety" and "（規則 dv_safety）" in p.reason
    p = lead(cfg, {"8050"}, area="港")
    assert p.agency_id == "houkatsu_chuo" and "港地区を担当" in p.reason


def test_lead_load_balancing_and_tie_break_by_id(cfg):
    # hikikomori → silo 困窮: jiritsu_soudan (capacity 120) and hikikomori_npo (capacity 30)
    assert lead(cfg, {"hikikomori"}).agency_id == "hikikomori_npo"  # both idle: id order
    p = lead(cfg, {"hikikomori"}, led={"hikikomori_npo": 6, "jiritsu_soudan": 12})
    assert p.agency_id == "jiritsu_soudan" and "現在の主担当 12件／上限 120件" in p.reason  # 10% < 20%
    assert "候補 2 機関から選択" in p.reason


def test_an_agency_already_serving_a_member_is_preferred(cfg):
    p = lead(cfg, {"hikikomori"}, served={"困窮"}, led={"hikikomori_npo": 0, "jiritsu_soudan": 100})
    assert "既に世帯員を支援している" in p.reason


def test_support_meeting_lead_must_be_a_member(cfg):
    assert lead(cfg, {"hikikomori"}, kind="support").agency_id == "jiritsu_soudan"


def test_full_agency_yields_to_one_with_room(cfg):
    assert lead(cfg, {"hikikomori"}, led={"hikikomori_npo": 30}).agency_id == "jiritsu_soudan"


def test_cases_spread_over_agencies_in_one_run(conn, workspace, rules, cfg):
    for i in range(6):
        add_household(conn, f"HW{i}", person(48, "世帯主", sex="M"), area="西部")  # hikikomori (medium)
    cycle(conn, workspace, rules, cfg)
    leads = [l for (l,) in conn.execute("SELECT lead_agency_id FROM cases ORDER BY case_id")]
    assert len(leads) == 6 and set(leads) == {"jiritsu_soudan"}  # support meetings: the NPO is not a member
    assert [r for (r,) in conn.execute("SELECT lead_reason FROM cases ORDER BY case_id")][-1].count(
        "現在の主担当 5件"
    ) == 1


# --- idempotence and versions ---------------------------------------------------------------------
def test_rerun_books_nothing_twice_and_sends_nothing_twice(town, workspace, rules, cfg):
    first, sent = cycle(town, workspace, rules, cfg)
    assert first.convene.cases_opened == 3 and first.convene.cases_routed == 1 and sent.sent > 0
    counts = [
        town.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
        for t in ("cases", "meetings", "case_flags", "agendas", "outbox")
    ]
    files = sorted(p.name for p in (workspace / "outbox").iterdir())
    again, resent = cycle(town, workspace, rules, cfg)
    assert again.convene.cases_opened == 0 and again.papers.agendas == 0 and resent.sent == 0
    assert counts == [
        town.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
        for t in ("cases", "meetings", "case_flags", "agendas", "outbox")
    ]
    assert files == sorted(p.name for p in (workspace / "outbox").iterdir())


def test_a_case_added_later_sends_a_new_agenda_version(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    case = case_of(town, "H8050")
    add_household(town, "H8050B", *elder_and_son(), area="港", changed_seq=1)
    town.execute("INSERT INTO imports VALUES (1, '2026-11-27T00:00:00', 'x', 'utf-8', '{}')")
    town.commit()
    cycle(town, workspace, rules, cfg)
    second = case_of(town, "H8050B")
    assert second["meeting"] == case["meeting"]
    versions = [
        k
        for (k,) in town.execute(
            "SELECT message_key FROM outbox WHERE message_key LIKE ? ORDER BY message_key",
            (f"agenda:{case['meeting']}:houkatsu_chuo:%",),
        )
    ]
    assert versions == [f"agenda:{case['meeting']}:houkatsu_chuo:v1", f"agenda:{case['meeting']}:houkatsu_chuo:v2"]
    assert "第2版" in agenda(town, workspace, case["meeting"], "houkatsu_chuo")


def test_unsent_older_version_is_superseded_not_sent(town, workspace, rules, cfg):
    nightly_cycle(town, workspace, rules, cfg, ON)
    add_household(town, "H8050B", *elder_and_son(), area="港", changed_seq=1)
    town.execute("INSERT INTO imports VALUES (1, '2026-11-27T00:00:00', 'x', 'utf-8', '{}')")
    town.commit()
    nightly_cycle(town, workspace, rules, cfg, ON)
    counts, rows = outbox(town)
    assert counts.get("superseded", 0) >= 1
    send_pending(town, cfg, workspace, transport=FileTransport(workspace / "outbox"))
    sent = {r.message_key for r in outbox(town, "sent")[1]}
    assert not any(k.endswith(":v1") and k.split(":")[2] == "houkatsu_chuo" for k in sent)


def test_crash_between_send_and_mark_is_reported_not_hidden(town, workspace, rules, cfg):
    nightly_cycle(town, workspace, rules, cfg, ON)

    class Crash(Exception):
        pass

    class CrashAfterAccept:
        def __init__(self):
            self.inner, self.sent = FileTransport(workspace / "outbox"), 0

        def send(self, msg, recipient, key):
            self.inner.send(msg, recipient, key)
            raise Crash  # the process dies after the server accepted, before marking

        def close(self):
            pass

    with pytest.raises(Crash):
        send_pending(town, cfg, workspace, transport=CrashAfterAccept())
    assert outbox(town)[0].get("sending") == 1
    result = send_pending(town, cfg, workspace, transport=FileTransport(workspace / "outbox"))
    assert result.possible_duplicates == 1
    counts, rows = outbox(town)
    assert counts["possible_duplicate"] == 1 and "sending" not in counts
    dup = [r for r in rows if r.possible_duplicate]
    assert dup[0].status == "sent"
    # the file transport wrote that message once: its file name is the key
    assert len(list((workspace / "outbox").glob("*.eml"))) == counts["sent"]


def test_dispatch_waits_for_a_business_day(town, workspace, rules, cfg):
    nightly_cycle(town, workspace, rules, cfg, ON)
    closed = dispatch(town, cfg, workspace, date(2026, 12, 31), transport=FileTransport(workspace / "outbox"))
    assert not closed.business_day and closed.send is None and "年末年始" in closed.closed_reason
    assert not (workspace / "outbox").exists()
    opened = dispatch(town, cfg, workspace, date(2027, 1, 4), transport=FileTransport(workspace / "outbox"))
    assert opened.send.sent > 0


def test_meetings_listing_shows_cases_and_agencies(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    rows = meetings(town, cfg, ON)
    case = case_of(town, "H8050")
    row = next(r for r in rows if r.meeting_id == case["meeting"])
    item = next(c for c in row.cases if c.case_id == case["case_id"])
    assert (
        row.conference == "支援会議" and item.lead_agency_id == "houkatsu_chuo" and item.agencies[0] == "houkatsu_chuo"
    )
    assert json.dumps([r.model_dump() for r in rows], ensure_ascii=False).count("試験") == 0


def test_files_are_readable_by_the_owner_only(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    for path in list((workspace / "outbox").iterdir()) + [p for p in (workspace / "agendas").rglob("*")]:
        assert path.stat().st_mode & 0o077 == 0, path


def test_a_case_without_a_free_slot_waits_and_is_booked_later(conn, workspace, rules, cfg, monkeypatch):
    import engine.conference.booking

    add_household(conn, "H8050", *elder_and_son())
    add_household(
        conn, "HDV", person(34, "世帯主", ("dv_support_measure", "住民票等の閲覧制限")), person(6, "子"), area="南部"
    )
    monkeypatch.setattr(engine.conference.booking, "HORIZON_DAYS", 3)  # nothing within reach for a normal case
    screen(conn, workspace, rules, ON)
    first = convene(conn, rules, cfg, ON)
    assert first.cases_unbooked == 1 and first.cases_opened == 2  # the urgent one still got its meeting
    waiting = case_of(conn, "H8050")
    assert (
        waiting["status"] == "detected" and waiting["meeting"] is None and "会議に予約できていない" in waiting["basis"]
    )
    assert case_of(conn, "HDV")["meeting"] is not None
    monkeypatch.setattr(engine.conference.booking, "HORIZON_DAYS", 3 * 366)
    later = convene(conn, rules, cfg, date(2026, 11, 30))
    assert later.cases_rebooked == 1 and case_of(conn, "H8050")["status"] == "convened"


def test_withdrawn_consent_moves_a_booking_to_a_support_meeting(conn, workspace, rules, cfg):
    add_household(conn, "HAGREED", *elder_and_son(consent=True), area="北部")
    cycle(conn, workspace, rules, cfg)
    before = case_of(conn, "HAGREED")
    assert before["type"] == "multi"
    # the son withdraws his consent before the meeting (the silo sends an end date)
    conn.execute(
        "UPDATE records SET end_date = '2026-11-28' WHERE code = 'consent' AND person_id IN (SELECT person_id FROM persons WHERE household_id = 'HAGREED' AND relationship = '子')"
    )
    conn.commit()
    result, _ = cycle(conn, workspace, rules, cfg, date(2026, 11, 30))
    after = case_of(conn, "HAGREED")
    assert result.convene.consent_withdrawn == 1
    assert (
        after["type"] == "support"
        and after["meeting"] != before["meeting"]
        and after["basis"].startswith("本人同意が撤回された")
    )
    assert (
        conn.execute("SELECT conference_type FROM meetings WHERE meeting_id = ?", (after["meeting"],)).fetchone()[0]
        == "support"
    )
    invited = {a for (a,) in conn.execute("SELECT agency_id FROM case_agencies WHERE case_id = ?", (after["case_id"],))}
    assert not invited & {a.id for a in cfg.agencies.values() if not a.member}
    again, _ = cycle(conn, workspace, rules, cfg, date(2026, 11, 30))
    assert again.convene.consent_withdrawn == 0


def test_agency_left_without_cases_is_told_its_agenda_is_void(conn, workspace, rules, cfg):
    add_household(conn, "HAGREED", *elder_and_son(consent=True), area="北部")
    cycle(conn, workspace, rules, cfg)
    before = case_of(conn, "HAGREED")
    assert (
        conn.execute("SELECT COUNT(*) FROM outbox WHERE agency_id = 'hikikomori_npo' AND status = 'sent'").fetchone()[0]
        == 1
    )
    conn.execute("UPDATE records SET end_date = '2026-11-28' WHERE code = 'consent'")
    conn.commit()
    cycle(conn, workspace, rules, cfg, date(2026, 11, 30))
    text = agenda(conn, workspace, before["meeting"], "hikikomori_npo")
    assert "第2版" in text and "事案はなくなりました" in text and before["case_id"] not in text
    # the NPO is not a member: it gets nothing about the 支援会議 the case moved to
    after = case_of(conn, "HAGREED")
    assert (
        conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE agency_id = 'hikikomori_npo' AND message_key LIKE ?",
            (f"agenda:{after['meeting']}:%",),
        ).fetchone()[0]
        == 0
    )


def test_failed_messages_can_be_queued_again_from_the_cli(town, workspace, rules, cfg):
    from typer.testing import CliRunner

    from engine.cli.main import app

    nightly_cycle(town, workspace, rules, cfg, ON)
    town.execute(
        "UPDATE outbox SET status = 'failed', last_error = '550 mailbox unavailable' WHERE agency_id = 'jiritsu_soudan'"
    )
    town.commit()
    failed = [r.message_key for r in outbox(town, "failed")[1]]
    assert failed
    runner = CliRunner()
    shown = runner.invoke(app, ["outbox", "--workspace", str(workspace)])
    assert "failed" in shown.output and "550 mailbox unavailable" in shown.output
    bad = runner.invoke(app, ["outbox", "--workspace", str(workspace), "--retry", "agenda:nothing:v1"])
    assert bad.exit_code == 1 and "not failed messages" in bad.output
    ok = runner.invoke(app, ["outbox", "--workspace", str(workspace), "--retry-failed"])
    assert ok.exit_code == 0 and f"{len(failed)} failed message(s) queued again" in ok.output
    assert send_pending(town, cfg, workspace, transport=FileTransport(workspace / "outbox")).sent >= len(failed)
    assert not outbox(town, "failed")[1]


def test_extra_meetings_of_both_types_do_not_share_the_room_at_the_same_time(conn, cfg):
    b = Booker(conn, cfg, date(2026, 12, 28))  # window 1/4, 1/5: no Thursday, and Tuesday's slot is filled first
    for _ in range(cfg.conference.cases_per_meeting):
        b.book("support", urgent=True)  # fills Tue 1/5 14:00
    s = b.book("support", urgent=True)  # → an added meeting on Mon 1/4 16:00
    m = b.book("multi", urgent=True)  # → added on Mon 1/4, but not at 16:00 in the same room
    assert (s.held_on, s.start_time, s.added_for_urgent) == (date(2027, 1, 4), "16:00", True)
    assert m.held_on == date(2027, 1, 4) and m.start_time == "17:30" and m.added_for_urgent


def test_retry_does_not_queue_a_failed_version_that_a_newer_one_replaced(town, workspace, rules, cfg):
    from engine.outbox.mail import retry

    cycle(town, workspace, rules, cfg)
    meeting = case_of(town, "H8050")["meeting"]
    v1 = f"agenda:{meeting}:houkatsu_chuo:v1"
    town.execute("UPDATE outbox SET status = 'failed', last_error = '550' WHERE message_key = ?", (v1,))
    add_household(town, "H8050B", *elder_and_son(), area="港", changed_seq=1)
    town.execute("INSERT INTO imports VALUES (1, '2026-11-27T00:00:00', 'x', 'utf-8', '{}')")
    town.commit()
    cycle(town, workspace, rules, cfg)  # v2 for 中央包括, sent
    assert retry(town) == (0, 1)
    assert town.execute("SELECT status FROM outbox WHERE message_key = ?", (v1,)).fetchone()[0] == "superseded"


def test_engine_send_says_so_when_another_dispatch_is_running(town, workspace, rules, cfg):
    import os
    import socket

    from typer.testing import CliRunner

    from engine.cli.main import app

    nightly_cycle(town, workspace, rules, cfg, ON)
    from engine.papers.write import now_iso

    town.execute(
        "INSERT INTO dispatch_lock VALUES ('outbox', ?, ?, 'other', ?)", (socket.gethostname(), os.getppid(), now_iso())
    )
    town.commit()
    result = CliRunner().invoke(app, ["send", "--workspace", str(workspace), "--date", "2026-11-27"])
    assert result.exit_code == 1 and "another dispatch is sending" in result.output
    assert not (workspace / "outbox").exists()
