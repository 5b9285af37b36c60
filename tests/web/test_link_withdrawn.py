"""A link dies with what let it be asked. Found by a security review: a non-member agency kept its
lead request's link after the household's consent ended (every e-mail about the case to it was
withheld, yet its link made it the case's lead), and an agency whose agenda became 「協議する事案は
なくなりました」 could still answer 出席 from the earlier version's link."""

from __future__ import annotations

import re
from datetime import date, datetime

from engine.links.tokens import TOKEN_TEXT
from engine.support import clock
from tests.helpers.casework import decide, plan_text
from tests.helpers.conference import case_of, cycle
from tests.helpers.mail import messages
from tests.helpers.town import add_household, elder_and_son
from tests.links.conftest import send

LINK = re.compile(r"/a/(" + TOKEN_TEXT + ")")
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')
NPO = "hikikomori_npo"  # member: false in configs/agencies.yaml


def _pin(day: date, hour: int = 9) -> None:
    clock.pin(datetime(day.year, day.month, day.day, hour, tzinfo=clock.TOKYO))


def _token(workspace, prefix: str) -> str:
    (msg,) = [m for name, m in messages(workspace / "outbox").items() if name.startswith(prefix)]
    return LINK.search(msg.get_body(("plain",)).get_content())[1]


def _try(client, token: str, choice: str) -> str:
    """The page after trying to answer `choice` (the form may be gone)."""
    page = client.get(f"/a/{token}")
    if "csrf_token" in page.text:
        return client.post(f"/a/{token}", data={"choice": choice, "csrf_token": CSRF.search(page.text)[1]}).text
    return page.text


def test_a_non_members_link_dies_with_the_consent(conn, workspace, rules, cfg, client):
    assert not cfg.agencies[NPO].member
    add_household(conn, "HAGREED", *elder_and_son(consent=True), area="北部")
    cycle(conn, workspace, rules, cfg)
    case = case_of(conn, "HAGREED")
    assert case["type"] == "multi"  # everyone consented: a 重層的支援会議, where a non-member may be asked
    (held,) = conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (case["meeting"],)).fetchone()
    held = date.fromisoformat(held)
    _pin(held, 18)
    decide(conn, workspace, rules, cfg, case["case_id"], case["meeting"], held,
           plan_text(lead=NPO, roles=((NPO, "本人への訪問", "2027-01-29"),)))  # fmt: skip
    send(conn, cfg, workspace, held)
    token = _token(workspace, "lead_request_")
    assert "csrf_token" in client.get(f"/a/{token}").text  # while the consent holds, the NPO may answer
    conn.execute("UPDATE records SET end_date = ? WHERE code = 'consent'", (held.isoformat(),))  # withdrawn
    conn.commit()
    _pin(date(2026, 12, 11))
    page = _try(client, token, "accept")
    assert "取り下げられた" in page and "csrf_token" not in page
    (lead,) = conn.execute("SELECT lead_agency_id FROM cases WHERE case_id = ?", (case["case_id"],)).fetchone()
    assert lead != NPO


def test_an_attendance_link_dies_when_the_agencys_agenda_becomes_void(conn, workspace, rules, cfg, client):
    add_household(conn, "HAGREED", *elder_and_son(consent=True), area="北部")
    cycle(conn, workspace, rules, cfg)
    meeting = case_of(conn, "HAGREED")["meeting"]
    token = _token(workspace, f"agenda_{meeting}_{NPO}_v1")
    assert "csrf_token" in client.get(f"/a/{token}").text
    conn.execute("UPDATE records SET end_date = '2026-11-28' WHERE code = 'consent'")
    conn.commit()
    _pin(date(2026, 11, 30))
    cycle(conn, workspace, rules, cfg, date(2026, 11, 30))  # v2: 「協議する事案はなくなりました」, no link
    assert f"agenda_{meeting}_{NPO}_v2.eml" in messages(workspace / "outbox")
    page = _try(client, token, "attend")
    assert "取り下げられた" in page and "csrf_token" not in page
    assert (
        conn.execute("SELECT 1 FROM attendance WHERE meeting_id = ? AND agency_id = ?", (meeting, NPO)).fetchone()
        is None
    )
