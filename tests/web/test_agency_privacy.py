"""The privacy scan over every HTTP response an agency can get (issue 13): a demo town (600
households, seed 11: a DV-locked household among its cases) lives 30 days, its simulated agencies
answering from their links; then every link of every e-mail in its outbox is opened — open,
answered, expired and revoked pages — every open one is answered (the answered page), and the
error pages are provoked: a refused answer (400), a missing CSRF token (403), a tampered token
(404), a replay (409), an expired link (410) and the rate limit (429). Each response, headers and
body, is scanned for the town's names, kana, addresses and birth dates (tests/helpers/privacy.py,
the scanner of tests/reliability/test_privacy_scan.py, read back from the town's CSVs): 0 hits."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from engine.cli.main import app as cli_app
from engine.links.tokens import TOKEN_TEXT
from engine.support import clock
from engine.web import answers
from engine.web.app import create_app
from engine.web.security import RateLimiter
from tests.helpers.mail import messages
from tests.helpers.paths import CONFIG_DIR, RULES_DIR
from tests.helpers.privacy import Scan, engine_vocabulary, town_secrets, trie_pattern
from tests.reliability.test_privacy_scan import event_dates

DAYS = 30
START = datetime(2026, 11, 27, 9, 0, tzinfo=clock.TOKYO)
END = START + timedelta(days=DAYS, hours=1)  # the demo's last day, 10:00
TOKEN = re.compile(r"/a/(" + TOKEN_TEXT + ")")
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')
CHOICE = re.compile(r'name="choice" value="([^"]*)"')


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    ws = tmp_path_factory.mktemp("agency-privacy") / "ws"
    args = ["demo", "--households", "600", "--seed", "11", "--days", str(DAYS), "--workspace", str(ws)]
    r = CliRunner().invoke(cli_app, [*args, "--rules", str(RULES_DIR), "--config", str(CONFIG_DIR)])
    assert r.exit_code == 0, r.output
    secrets = town_secrets(ws / "town", event_dates(ws / "town"))
    return ws, Scan(secrets, trie_pattern(secrets.kinds), trie_pattern(engine_vocabulary(secrets.kinds)))


def tokens(ws) -> list[str]:
    """Every link of every e-mail sent, in the order sent."""
    found = []
    for msg in messages(ws / "outbox").values():
        found += [t for t in TOKEN.findall(msg.get_body(("plain",)).get_content()) if t not in found]
    return found


def test_no_personal_data_in_any_response_an_agency_can_get(town):
    ws, known = town
    scan = Scan(known.secrets, known.pattern, known.vocabulary)
    clock.pin(END)
    app = create_app(ws, RULES_DIR, CONFIG_DIR)
    app.state.answer_limits = answers.Limits(RateLimiter(10**6, 60), RateLimiter(10**6, 60))  # the 429 comes last
    seen: Counter = Counter()

    def got(r):
        seen[(r.request.method, r.status_code)] += 1
        head = "\n".join(f"{k}: {v}" for k, v in r.headers.items())
        scan.text(f"{r.request.method} {r.request.url.path[:12]}… → {r.status_code}", head + "\n" + r.text, "web")
        return r

    with TestClient(app, base_url="http://127.0.0.1:8300") as client:
        links = tokens(ws)
        pages = {t: got(client.get(f"/a/{t}")) for t in links}
        states = Counter(
            "open"
            if 'name="choice"' in p.text
            else "answered"
            if "回答済み" in p.text
            else "expired"
            if "回答期限を過ぎています" in p.text
            else "revoked"
            if "取り下げ" in p.text
            else "?"
            for p in pages.values()
        )
        assert set(states) == {"open", "answered", "expired", "revoked"}, states
        opened = [t for t, p in pages.items() if 'name="choice"' in p.text]
        kinds = Counter(re.search(r"<h1>(.*?)</h1>", pages[t].text)[1] for t in opened)
        assert len(kinds) >= 2, kinds  # lead requests and actions are open
        first = opened[0]
        form = {"csrf_token": CSRF.search(pages[first].text)[1]}
        got(client.post(f"/a/{first}", data=form))  # no choice: 400, the form again with the problem
        got(client.post(f"/a/{first}", data={"choice": CHOICE.search(pages[first].text)[1]}))  # no CSRF: 403
        got(client.get(f"/a/{first[:-1]}{'A' if first[-1] != 'A' else 'B'}"))  # tampered: 404
        for t in opened:  # every open question answered, then its answered page
            page = pages[t]
            done = got(
                client.post(
                    f"/a/{t}",
                    data={"csrf_token": CSRF.search(page.text)[1], "choice": CHOICE.search(page.text)[1]},
                    follow_redirects=False,
                )
            )
            assert done.status_code == 303, done.text[:500]
            got(client.get(f"/a/{t}"))
            got(
                client.post(
                    f"/a/{t}", data={"csrf_token": CSRF.search(page.text)[1], "choice": CHOICE.search(page.text)[1]}
                )
            )  # replay: 409
        expired = next(t for t, p in pages.items() if "回答期限を過ぎています" in p.text)
        got(client.post(f"/a/{expired}", data={"csrf_token": "0" * 64, "choice": "attend"}))  # 403 before anything
        app.state.answer_limits = answers.Limits(RateLimiter(1, 60), RateLimiter(10, 60))
        got(client.get(f"/a/{first}"))
        got(client.get(f"/a/{first}"))  # 429
    codes = {code for _, code in seen}
    assert {200, 303, 400, 403, 404, 409, 429} <= codes, seen
    print(f"\nagency responses scanned: {sum(seen.values())} {dict(seen)}; pages {dict(states)}; hits {len(scan.hits)}")
    assert len(known.secrets.kinds) >= 3000 and sum(seen.values()) >= 100
    probe = Scan(known.secrets, known.pattern, known.vocabulary)  # the scanner sees a name where there is one
    probe.text(
        "probe", f"<p>{next(s for s, k in known.secrets.kinds.items() if k == {'name'} and len(s) > 3)}</p>", "probe"
    )
    assert probe.hits
    assert scan.hits == [], "\n".join(f"{s!r} in {w}: …{c}…" for s, w, c in scan.hits[:30])
