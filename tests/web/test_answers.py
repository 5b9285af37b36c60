"""The pages an agency opens from the link in its e-mail (engine/web/answers.py), driven with the
real engine: the conference's plans ask agencies to lead, the 08:00 dispatch writes the e-mails
through the file transport, and the links are taken from the .eml files in WORKSPACE/outbox/."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date, datetime

import pytest
from fastapi.testclient import TestClient

from engine.outbox import FileTransport
from engine.support import clock
from engine.web import answers
from engine.web.security import HEADERS
from engine.workflows.cycle import dispatch
from tests.helpers.casework import DAY, LEAD, MEETING_DAY, plan_text, status_of
from tests.helpers.mail import messages
from tests.helpers.privacy import Scan, engine_vocabulary, town_secrets, trie_pattern

OTHER = "jiritsu_soudan"  # the lead asked for the second case
MORNING = datetime(2026, 12, 7, 9, 0, tzinfo=clock.TOKYO)  # the Monday after the 支援会議 of 2026-12-04
LINK = re.compile(r"/a/([A-Za-z0-9_\-]{20,})")
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')
# the households as the privacy scan knows them: written into the database before any page is made
PEOPLE = (("鷹取 源之丞", "タカトリ ゲンノジョウ"), ("鷹取 秀一郎", "タカトリ シュウイチロウ"))
ADDRESS = "みどり市中央3丁目21-8"


@dataclass
class Asked:
    town: object
    links: dict[str, str]  # case id -> the token of the lead request sent for it
    scan: Scan

    @property
    def conn(self):
        return self.town.conn


def _name_the_households(conn, tmp) -> Scan:
    """Distinct names, kana and addresses in the database, and the scanner that looks for them."""
    households = [h for (h,) in conn.execute("SELECT household_id FROM households ORDER BY household_id")]
    persons = []
    for hid in households:
        conn.execute("UPDATE households SET address = ? WHERE household_id = ?", (ADDRESS, hid))
        members = conn.execute("SELECT person_id, birth_date FROM persons WHERE household_id = ? ORDER BY 1", (hid,))
        for (pid, birth), (name, kana) in zip(members.fetchall(), PEOPLE, strict=False):
            conn.execute("UPDATE persons SET name = ?, kana = ? WHERE person_id = ?", (name, kana, pid))
            persons.append((pid, hid, name, kana, birth))
    conn.commit()
    town = tmp / "town"
    town.mkdir()
    with open(town / "persons.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["person_id", "household_id", "name", "kana", "birth_date"])
        w.writerows(persons)
    with open(town / "households.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["household_id", "area", "address"])
        w.writerows((hid, "中央", ADDRESS) for hid in households)
    secrets = town_secrets(town, {date(2026, 11, 27), MEETING_DAY, DAY})
    return Scan(secrets, trie_pattern(secrets.kinds), trie_pattern(engine_vocabulary(secrets.kinds)))


def send(town, on: date = DAY) -> None:
    """The 08:00 dispatch of `on`, through the file transport (.eml files in WORKSPACE/outbox/)."""
    dispatch(town.conn, town.cfg, town.workspace, on, transport=FileTransport(town.workspace / "outbox"), force=True)


def tokens(workspace, kind: str = "lead_request") -> dict[str, str]:
    """Case id (meeting id and agency for an agenda) -> the answer link's token, from the .eml files."""
    found = {}
    for msg in messages(workspace / "outbox").values():
        if not str(msg["X-Engine-Key"]).startswith(kind + ":"):
            continue
        text = msg.get_body(("plain",)).get_content()
        link = LINK.search(text)
        if kind == "agenda":
            found[str(msg["X-Engine-Key"])] = link[1]
        else:
            found[re.search(r"C-\d{4}-\d{5}", text)[0]] = link[1]
    return found


@pytest.fixture
def scan(convened, tmp_path) -> Scan:
    return _name_the_households(convened.conn, tmp_path)


@pytest.fixture
def asked(convened, scan) -> Asked:
    """Plans decided on 2026-12-07: case 1 asks houkatsu_chuo to lead, case 2 asks jiritsu_soudan;
    the requests are e-mailed (file transport) and the clock stands at 09:00 that day."""
    clock.pin(MORNING)
    convened.outcome(plan_text())
    convened.outcome(
        plan_text(lead=OTHER, roles=((OTHER, "就労準備支援の調整", "2027-01-29"),)),
        case=convened.cases[1],
        name="2.yaml",
    )
    send(convened)
    links = tokens(convened.workspace)
    assert set(links) == set(convened.cases[:2])
    return Asked(convened, links, scan)


@pytest.fixture
def agency(asked, client) -> TestClient:
    return client


def everything(conn) -> dict[str, list]:
    """Every row of every table."""
    tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {t: conn.execute(f"SELECT * FROM {t}").fetchall() for t in tables}  # noqa: S608 - names from sqlite_master


def csrf(page) -> str:
    return CSRF.search(page.text)[1]


def post(client, token: str, **form):
    return client.post(f"/a/{token}", data=form, follow_redirects=False)


def lead_confirmed(conn, case_id) -> str | None:
    return conn.execute("SELECT lead_confirmed_on FROM cases WHERE case_id = ?", (case_id,)).fetchone()[0]


def assert_private(asked: Asked | Scan, *responses) -> None:
    """No name, kana, address or birth date of any household in what the agency got."""
    known = asked.scan if isinstance(asked, Asked) else asked
    scan = Scan(known.secrets, known.pattern, known.vocabulary)
    for r in responses:
        scan.text(f"{r.request.method} {r.request.url.path} → {r.status_code}", r.text, "web")
    assert scan.hits == []


def assert_headers(*responses) -> None:
    for r in responses:
        for name, value in HEADERS.items():
            assert r.headers.get(name) == value, (r.request.url.path, r.status_code, name)


# --- looking ----------------------------------------------------------------------------------------
def test_the_page_shows_what_is_asked_and_opening_it_changes_nothing(asked, agency):
    case, token = asked.town.case, asked.links[asked.town.case]
    before = everything(asked.conn)
    pages = [agency.get(f"/a/{token}") for _ in range(3)]  # a mail scanner, a preview, the person
    assert everything(asked.conn) == before
    page = pages[-1]
    assert page.status_code == 200
    assert "主担当機関の受諾のお願い" in page.text and "中央地域包括支援センター 御中" in page.text
    assert case in page.text and "受諾" in page.text and "辞退" in page.text
    assert re.search(r"回答期限: 令和\d+年\d+月\d+日（[月火水木金土日]）", page.text)
    assert page.text.count("回答期限") == 1 and not re.search(r"\d{4}-\d{2}-\d{2}", page.text)  # once, in 和暦
    assert "社会福祉法第106条の6" in page.text  # the agendas' notice: a 支援会議 case
    assert 'type="radio" name="choice"' in page.text and csrf(page)
    assert LEAD not in page.text and "lead_request" not in page.text  # names and labels, not codes
    assert_headers(*pages)
    assert_private(asked, *pages)


def test_the_page_carries_no_link_out_and_no_script(asked, agency):
    token = asked.links[asked.town.case]
    page = agency.get(f"/a/{token}")
    targets = re.findall(r'(?:href|src|action)="([^"]*)"', page.text)
    assert targets and all(t.startswith("/static/") for t in targets), targets  # the form posts to the page itself
    assert "<script" not in page.text.lower() and " style=" not in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"


# --- answering --------------------------------------------------------------------------------------
def test_accepting_moves_the_case_and_the_link_then_shows_answered(asked, agency):
    case, token = asked.town.case, asked.links[asked.town.case]
    page = agency.get(f"/a/{token}")
    done = post(agency, token, choice="accept", csrf_token=csrf(page))
    assert done.status_code == 303 and done.headers["location"] == f"/a/{token}"
    assert status_of(asked.conn, case) == "active" and lead_confirmed(asked.conn, case) == DAY.isoformat()
    again = agency.get(f"/a/{token}")
    assert again.status_code == 200 and "回答済み（令和8年12月7日（月）9時00分）" in again.text
    assert 'name="choice"' not in again.text  # no form any more
    before = everything(asked.conn)
    replay = post(agency, token, choice="decline", note="担当地区外のため", csrf_token=csrf(page))
    assert replay.status_code == 409 and "回答済み" in replay.text
    assert everything(asked.conn) == before  # used once
    assert_headers(page, done, again, replay)
    assert_private(asked, page, done, again, replay)


def test_a_decline_without_a_reason_is_shown_again_beside_the_field(asked, agency):
    case, token = asked.town.case, asked.links[asked.town.case]
    page = agency.get(f"/a/{token}")
    before = everything(asked.conn)
    refused = post(agency, token, choice="decline", note="  ", csrf_token=csrf(page))
    assert refused.status_code == 400 and 'class="field-problem"' in refused.text
    assert 'value="decline" checked' in refused.text  # the choice is kept
    nothing = post(agency, token, csrf_token=csrf(page))
    assert nothing.status_code == 400 and "回答を選んでください" in nothing.text
    assert everything(asked.conn) == before and status_of(asked.conn, case) == "lead_pending"
    assert_headers(refused, nothing)
    assert_private(asked, refused, nothing)


def test_a_reason_with_personal_data_is_refused_and_nothing_is_recorded(asked, agency):
    token = asked.links[asked.town.case]
    page = agency.get(f"/a/{token}")
    before = everything(asked.conn)
    refused = post(agency, token, choice="decline", note="鷹取 源之丞さんは担当地区外のため", csrf_token=csrf(page))
    assert refused.status_code == 400 and 'class="field-problem"' in refused.text
    after = everything(asked.conn)  # nothing of the answer; the refusal itself, in the audit log
    assert {t: r for t, r in after.items() if t not in ("audit_log", "sqlite_sequence")} == {
        t: r for t, r in before.items() if t not in ("audit_log", "sqlite_sequence")
    }
    assert after["audit_log"][: len(before["audit_log"])] == before["audit_log"]
    assert [row[4] for row in after["audit_log"][len(before["audit_log"]) :]] == ["link_note_refused"]


def test_a_hostile_reason_is_shown_escaped_and_goes_no_further(asked, agency):
    case, token = asked.town.case, asked.links[asked.town.case]
    page = agency.get(f"/a/{token}")
    hostile = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
    echoed = post(agency, token, note=hostile, csrf_token=csrf(page))  # no choice: the form comes back with the text
    assert echoed.status_code == 400 and "&lt;script&gt;alert(1)&lt;/script&gt;" in echoed.text
    declined = post(agency, token, choice="decline", note=hostile, csrf_token=csrf(page))
    assert declined.status_code == 303 and status_of(asked.conn, case) == "lead_pending"  # the next candidate is asked
    send(asked.town)
    nxt = tokens(asked.town.workspace)[case]
    assert nxt != token
    pages = [echoed, agency.get(f"/a/{token}"), agency.get(f"/a/{nxt}")]
    for p in pages:
        assert "<script" not in p.text and "<img" not in p.text
    assert "alert(1)" not in pages[2].text  # the reason is not passed on to the agency asked next
    assert_private(asked, *pages)


# --- refusals ---------------------------------------------------------------------------------------
def test_a_post_without_the_links_csrf_token_is_refused(asked, agency):
    case, token = asked.town.case, asked.links[asked.town.case]
    other = agency.get(f"/a/{asked.links[asked.town.cases[1]]}")
    good = csrf(agency.get(f"/a/{token}"))
    before = everything(asked.conn)
    refusals = [
        post(agency, token, choice="accept"),
        post(agency, token, choice="accept", csrf_token="0" * 64),
        post(agency, token, choice="accept", csrf_token=csrf(other)),  # another link's form
        agency.post(
            f"/a/{token}",
            data={"choice": "accept", "csrf_token": good},
            headers={"Origin": "http://evil.example"},
            follow_redirects=False,
        ),
    ]
    assert [r.status_code for r in refusals] == [403] * 4
    assert everything(asked.conn) == before and status_of(asked.conn, case) == "lead_pending"
    assert_headers(*refusals)
    assert_private(asked, *refusals)


def test_another_agencys_link_answers_only_its_own_question(asked, agency):
    mine, theirs = asked.town.cases[:2]
    page = agency.get(f"/a/{asked.links[theirs]}")
    assert "自立相談支援機関" in page.text and theirs in page.text and mine not in page.text
    done = post(agency, asked.links[theirs], choice="accept", csrf_token=csrf(page))
    assert done.status_code == 303
    assert status_of(asked.conn, theirs) == "active"
    assert status_of(asked.conn, mine) == "lead_pending" and lead_confirmed(asked.conn, mine) is None


def test_an_unknown_or_tampered_token_gets_the_same_plain_404(asked, agency):
    token = asked.links[asked.town.case]
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    before = everything(asked.conn)
    pages = [
        agency.get(f"/a/{flipped}"),
        agency.get(f"/a/{token[:-4]}"),
        agency.get("/a/" + "x" * 300),
        post(agency, flipped, choice="accept", csrf_token="0" * 64),
    ]
    assert [p.status_code for p in pages] == [404] * 4
    assert len({p.text for p in pages}) == 1  # one page, whatever was asked
    for p in pages:
        assert "C-2026" not in p.text and "事案" not in p.text and "回答済み" not in p.text
    assert everything(asked.conn) == before
    assert_headers(*pages)
    assert_private(asked, *pages)


def test_the_link_routes_are_rate_limited_per_link_and_per_address(asked, agency):
    token = asked.links[asked.town.case]
    codes = [agency.get(f"/a/{token}").status_code for _ in range(answers.PER_LINK + 1)]
    assert codes == [200] * answers.PER_LINK + [429]
    limited = post(agency, token, choice="accept", csrf_token="x")
    assert limited.status_code == 429 and status_of(asked.conn, asked.town.case) == "lead_pending"
    guesses = [agency.get(f"/a/guess{i:040d}").status_code for i in range(answers.PER_ADDRESS)]
    assert guesses[-1] == 429 and set(guesses) == {404, 429}  # guessing tokens from one address is slowed down
    assert_headers(limited)
    assert_private(asked, limited)


# --- what the page shows ----------------------------------------------------------------------------
def facts_of(page) -> list[str]:
    section = page.text.split("<h2>ご確認いただく内容</h2>", 1)[1].split("</section>", 1)[0]
    return re.findall(r"<li>(.*?)</li>", section)


def test_a_dv_locked_case_shows_nothing_but_its_id(asked, agency):
    town = asked.town
    case = town.cases[2]
    (pid,) = asked.conn.execute(
        "SELECT p.person_id FROM persons p JOIN cases c ON c.household_id = p.household_id "
        "WHERE c.case_id = ? ORDER BY p.person_id LIMIT 1",
        (case,),
    ).fetchone()
    asked.conn.execute(
        "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
        (f"{pid}|dv", pid, "test", "dv_support_measure", "住民票等の閲覧制限", "2026-01-01", None),
    )
    asked.conn.commit()
    town.outcome(plan_text(), case=case, name="3.yaml")
    send(town)
    token = tokens(town.workspace)[case]
    page = agency.get(f"/a/{token}")
    assert page.status_code == 200 and facts_of(page) == [f"事案番号: {case}"]
    unlocked = agency.get(f"/a/{asked.links[town.case]}")
    assert len(facts_of(unlocked)) > 1  # the same question on an unlocked case says more
    assert "他の回答待ち" not in page.text and "ほかに" not in page.text  # not even the agency's other questions
    for word in ("8050", "介護", "DV", "配偶者", "閲覧制限", "主担当機関\n"):
        assert word not in page.text.split("<h2>ご確認いただく内容</h2>", 1)[1].split("</section>", 1)[0]
    assert_private(asked, page)


def test_an_answer_given_by_telephone_shows_answered_on_the_day(asked, agency):
    from engine.casework.handshake import accept

    case, token = asked.town.case, asked.links[asked.town.case]
    page = agency.get(f"/a/{token}")
    accept(asked.conn, asked.town.cfg, case, DAY, "tester")  # the coordinator records it (engine accept)
    again = agency.get(f"/a/{token}")
    assert "回答済み（令和8年12月7日（月））" in again.text  # the day only: the CLI records no time
    assert "受諾" in again.text.split("回答済み", 1)[1]  # and what was answered
    before = everything(asked.conn)
    late = post(agency, token, choice="decline", note="担当地区外のため", csrf_token=csrf(page))
    assert late.status_code == 409 and "回答済み" in late.text
    assert everything(asked.conn) == before


def test_an_expired_link_says_so_and_records_nothing(asked, agency):
    token = asked.links[asked.town.case]
    form = csrf(agency.get(f"/a/{token}"))
    clock.pin(datetime(2027, 2, 1, 9, 0, tzinfo=clock.TOKYO))
    page = agency.get(f"/a/{token}")
    assert (
        page.status_code == 200
        and "回答期限を過ぎています" in page.text
        and "支援会議事務局へご連絡ください" in page.text
    )
    assert 'name="choice"' not in page.text
    before = everything(asked.conn)
    late = post(agency, token, choice="accept", csrf_token=form)
    assert late.status_code == 410 and "回答期限を過ぎています" in late.text
    assert everything(asked.conn) == before
    assert_headers(page, late)
    assert_private(asked, page, late)


def test_a_revoked_link_says_so_and_records_nothing(asked, agency):
    token = asked.links[asked.town.case]
    form = csrf(agency.get(f"/a/{token}"))
    asked.conn.execute("UPDATE answer_links SET revoked_at = ?, revoked_why = 'resent'", (clock.stamp(),))
    asked.conn.commit()
    page = agency.get(f"/a/{token}")
    assert "取り下げられました" in page.text and "支援会議事務局へお問い合わせください" in page.text
    before = everything(asked.conn)
    late = post(agency, token, choice="accept", csrf_token=form)
    assert late.status_code == 410 and everything(asked.conn) == before
    assert_private(asked, page, late)


def test_attendance_is_answered_from_the_agenda(convened, scan, client):
    send(convened, date(2026, 11, 27))  # the agendas of the 支援会議 of 2026-12-04, sent the morning after the night
    key, token = sorted(tokens(convened.workspace, "agenda").items())[0]
    page = client.get(f"/a/{token}")
    assert page.status_code == 200 and "会議の出欠のご回答" in page.text and "社会福祉法第106条の6" in page.text
    assert "開催日: 令和8年12月4日（金）" in page.text and "出席" in page.text and "欠席" in page.text
    done = post(client, token, choice="absent", note="当日は別件の訪問があるため", csrf_token=csrf(page))
    assert done.status_code == 303
    again = client.get(f"/a/{token}")
    assert "回答済み" in again.text and "ご回答: 欠席" in again.text
    assert convened.conn.execute("SELECT answer FROM attendance").fetchall() == [("absent",)]
    assert_headers(page, done, again)
    assert_private(scan, page, done, again)
