"""No internal code reaches an agency in an agenda: every agenda (text, HTML) and invitation (.ics)
of nights with both conference types, arrears of every kind, a DV case, a case back for review and a
void version is read for ASCII words. Allowed: case and meeting ids, URLs, e-mail addresses, the
answer link's mark, and in an .ics the RFC 5545 names and values; every other ASCII word must be in
ALLOWED (words of names people chose, such as NPO). A record code, an arrears kind, a watch result,
a decision code, a rule id or an agency id fails. (test_agency_words.py scans a demo's whole outbox.)"""

from __future__ import annotations

import re
from datetime import date

from engine.casework.handshake import action_done
from engine.casework.outcome_file import DECISION_LABELS
from engine.support.vocabulary import ARREARS_KINDS, CODES, WATCH_RESULT_LABELS
from tests.helpers.casework import LEAD, actions, add_arrears, d, open_cases, plan
from tests.helpers.conference import cycle
from tests.helpers.town import add_household, person

IDS = re.compile(r"\b[CM]-[0-9A-Z-]+|https?://\S+|[\w.+-]+@[\w.-]+|\[\[回答用リンク\]\]")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ALLOWED = {"DV", "NPO"}  # the DV silo's name, a word in the registry's agency names
ICS_WORDS = {
    *"BEGIN END VCALENDAR VERSION PRODID engine shien kaigi JA METHOD REQUEST CANCEL VTIMEZONE TZID Asia Tokyo".split(),
    *"STANDARD DTSTART TZOFFSETFROM TZOFFSETTO TZNAME JST VEVENT UID SEQUENCE DTSTAMP DTEND SUMMARY LOCATION".split(),
    *"ORGANIZER CN mailto ATTENDEE CUTYPE GROUP ROLE REQ PARTICIPANT DESCRIPTION STATUS CANCELLED T Z".split(),
}


def forbidden(rules, cfg) -> set[str]:
    return (
        set(CODES)
        | set(ARREARS_KINDS)
        | set(WATCH_RESULT_LABELS)
        | set(DECISION_LABELS)
        | set(rules.flags)
        | {r.id for r in cfg.lead_rules}
        | set(cfg.agencies)
    )


def words(text: str, ics: bool) -> set[str]:
    if ics:
        text = text.replace("\r\n ", "")  # unfold
    found = {w for w in WORD.findall(IDS.sub(" ", text)) if not re.fullmatch(r"T?\d+T?\d*Z?", w)}
    return found - ALLOWED - (ICS_WORDS if ics else set())


def test_no_code_or_id_in_any_agenda_or_invitation(town, workspace, rules, cfg):
    add_household(
        town,
        "HARREARS",
        person(45, "世帯主", ("arrears", "resident_tax:11"), ("arrears", "kokuho:12"), ("public_assistance", "")),
        person(12, "子", ("arrears", "school_fee:9"), ("school_absence_days", "45")),
        area="中央",
    )
    ((cid, mid),) = open_cases(town, workspace, rules, cfg, "HREVIEW")  # the night of ON, every household
    cycle(town, workspace, rules, cfg)  # sent
    town.execute("UPDATE records SET end_date = '2026-11-28' WHERE code = 'consent'")  # a void version too
    town.commit()
    cycle(town, workspace, rules, cfg, date(2026, 11, 30))
    roles = ((LEAD, "調整", "2026-12-18"), ("jiritsu_soudan", "相談", "2027-01-15"))
    plan(town, workspace, rules, cfg, cid, mid, roles=roles)
    action_done(town, cfg, actions(town, cid)[0], d("2026-12-15"), "tester")
    add_arrears(town, "HREVIEW", 1, "2027-01-20")
    cycle(town, workspace, rules, cfg, date(2027, 1, 20))
    bad = forbidden(rules, cfg)
    files = [p for ext in ("txt", "html", "ics") for p in (workspace / "agendas").rglob(f"*.v*.{ext}")]
    files = [p for p in files if not p.name.startswith("coordinator")]
    assert len(files) >= 15
    seen = "".join(p.read_text(encoding="utf-8") for p in files)
    for needed in ("住民税 11か月の滞納", "学校徴収金", "期限超過", "事案はなくなりました", "詳細を記載しない事案"):
        assert needed in seen, needed
    for p in files:
        text = p.read_bytes().decode("utf-8")
        if p.suffix == ".html":
            text = re.sub(r"<[^>]*>|&\w+;", " ", text)
        found = words(text, p.suffix == ".ics")
        assert not found & bad, (p.name, sorted(found & bad))
        assert not found, (p.name, sorted(found))
