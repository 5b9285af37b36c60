"""What a place of the resource directory (参加支援) may receive, as properties over generated
households and referrals (hypothesis), after the dispatch that sends the referral e-mails and the
one that sends the follow-ups.

The oracles are written here from docs/participation.md, resources.yaml's header and
engine/policy/members.py's docstring, not taken from the engine:
- a place is told of a person only when the person agreed (consent) or when the place is itself a
  registered member of the 支援会議, and never while the household is DV-locked (also when the lock
  appears between queueing and sending); otherwise the introducer goes with the person;
- a place that takes only persons who consented (consent_required) is not referred to without it;
- a place receives only its own referrals' messages and their follow-ups (side place), never the
  case id, a name, kana, address or birth date, the word 支援会議 (outside the fixed footer: the
  contact line and 「この通知は…から自動送信しています」) or a DV word;
- the page behind a place's link shows no case id and no personal data either.
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine import links
from engine.casework.handshake import accept
from engine.casework.sweep import daily_sweep
from engine.config import load_config
from engine.links.tokens import TOKEN_TEXT
from engine.outbox import FileTransport
from engine.participation.answers import answer_referral, refer_case
from engine.participation.states import ReferralRefused
from engine.rules.loader import load_rules
from engine.store.db import connect
from engine.support.business_days import Calendar
from engine.support.dates import to_wareki
from engine.workflows.cycle import dispatch, nightly_cycle
from tests.helpers.casework import DAY, MEETING_DAY, add_8050, decide, plan_text
from tests.helpers.mail import DV_WORDS, messages, part
from tests.helpers.paths import ROOT
from tests.helpers.town import ON

RULES = load_rules(ROOT / "configs" / "rules")
CFG = load_config(ROOT / "configs", RULES)  # module constants: hypothesis would print fixtures in every report
# places of 中央 (the 8050 households' area) and one of 北部; ibasho_chuo takes a person only with consent
PLACES = ("ibasho_chuo", "salon_chuo", "shokudo_chuo", "salon_kita")
FIRST_FOLLOWUP = Calendar.of(CFG.conference).add(DAY, CFG.participation.settings.followup_business_days[0])
# when a household's DV support measure starts: before the conference decides, between queueing and
# sending the referral e-mails, between the acceptance and the follow-ups, or never
DV = {"before": MEETING_DAY, "between": DAY, "later": DAY + timedelta(days=1), "none": None}
FOOTER = "――――"
LINK = f"/a/({TOKEN_TEXT})"

RANDOM = bool(os.environ.get("PROPERTY_RANDOM"))  # the same examples every run; PROPERTY_RANDOM=1 to hunt
referral = st.tuples(st.sampled_from((1, 2)), st.sampled_from(PLACES), st.booleans(), st.booleans())
household = st.fixed_dictionaries(
    {
        "dv": st.sampled_from(("none", "none", "before", "between", "later")),
        # (member, place, consent, decided in the outcome file — else `engine refer` afterwards)
        "referrals": st.lists(referral, min_size=1, max_size=3, unique_by=lambda r: (r[0], r[1])),
    }
)


def with_place_members(cfg, members: set[str]):
    places = {k: p.model_copy(update={"member": k in members}) for k, p in cfg.participation.places.items()}
    return cfg.model_copy(update={"participation": cfg.participation.model_copy(update={"places": places})})


def locked_on(spec: dict, day: date) -> bool:
    start = DV[spec["dv"]]
    return start is not None and start <= day


def secrets(conn) -> list[str]:
    """Every name, kana, address and birth date of the town (ISO and 和暦)."""
    out = [a for (a,) in conn.execute("SELECT address FROM households")]
    for name, kana, birth in conn.execute("SELECT name, kana, birth_date FROM persons"):
        out += [name, kana, birth, to_wareki(date.fromisoformat(birth))]
    return out


def build(conn, ws: Path, cfg, town: list[dict]) -> dict[str, str]:
    """The 8050 households of 中央 with names, kana and addresses of their own; their cases booked."""
    for h, _ in enumerate(town):
        hid = f"H{h}"
        add_8050(conn, hid)
        conn.execute("UPDATE households SET address = ? WHERE household_id = ?", (f"架空市秘匿町{h}丁目{h + 3}番", hid))
        for m, (pid,) in enumerate(
            conn.execute("SELECT person_id FROM persons WHERE household_id = ? ORDER BY person_id", (hid,)).fetchall()
        ):
            conn.execute(
                "UPDATE persons SET name = ?, kana = ? WHERE person_id = ?",
                (f"蓬莱{h}{m} 藤五郎", f"ホウライ{h}{m} トウゴロウ", pid),
            )
    conn.commit()
    nightly_cycle(conn, ws, RULES, cfg, ON)
    return {hid: case_id for case_id, hid in conn.execute("SELECT case_id, household_id FROM cases")}


def lock(conn, hid: str, start: date) -> None:
    """A DV support measure arrives for the household's head, from `start`."""
    (pid,) = conn.execute(
        "SELECT person_id FROM persons WHERE household_id = ? AND relationship = '世帯主'", (hid,)
    ).fetchone()
    conn.execute(
        "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
        (f"{pid}|t|dv|{start}", pid, "t", "dv_support_measure", "住民票等の閲覧制限", start.isoformat(), None),
    )
    conn.commit()


def send(conn, cfg, ws: Path, on: date) -> set[str]:
    before = set(messages(ws / "outbox"))
    dispatch(conn, cfg, ws, on, transport=FileTransport(ws / "outbox"), force=True)
    return set(messages(ws / "outbox")) - before


def check_mails(conn, ws, cfg, files: set[str], made: dict[int, tuple], day: date) -> None:
    """Every property on the e-mails of one dispatch (`files`, sent on `day`)."""
    places = {p.email: p for p in cfg.participation.places.values()}
    case_ids = [c for (c,) in conn.execute("SELECT case_id FROM cases")]
    personal = secrets(conn)
    mails = messages(ws / "outbox")
    told = {}  # place id -> the referral numbers of what it received
    for name in sorted(files):
        msg = mails[name]
        place = places.get(msg["To"])
        if place is None:
            continue
        kind, number = msg["X-Engine-Key"].split(":")[:2]
        assert kind in ("referral", "referral_reminder", "followup"), name
        if kind == "followup":
            rid, side, asked = conn.execute(
                "SELECT referral_id, side, agency_id FROM followups WHERE followup_id = ?", (int(number),)
            ).fetchone()
            assert (side, asked) == ("place", place.id), name
        else:
            rid = int(number)
        spec, consent, _ = made[rid]
        assert made[rid][2] == place.id, (name, "another place's referral")
        assert consent or place.member, (name, "a person who did not consent, to a place that is no member")
        assert not locked_on(spec, day), (name, "a DV-locked household")
        told.setdefault(place.id, []).append((kind, rid))
        text, html = part(msg, "plain"), part(msg, "html")
        everything = msg["Subject"] + text + html
        for secret in case_ids + personal:
            assert secret not in everything, (name, secret)
        assert not [w for w in DV_WORDS if w in everything], name
        head, footer = text.split(FOOTER)
        assert "支援会議" not in msg["Subject"] + head, name
        contact, signed = footer.strip().splitlines()
        assert contact.startswith("問合せ先: ") and signed.startswith("この通知は多機関協働事業 参加支援 担当から"), (
            name
        )
        event(f"place e-mail: {kind}" + (" (member place)" if place.member else ""))
        for token in set(re.findall(LINK, text)):
            page = links.lookup(conn, cfg, token, day)
            shown = " ".join([page.agency_name, *page.facts, *(c.label for c in page.choices)])
            assert page.case_id is None and not [s for s in case_ids + personal if s in shown], (name, shown)
    # every referral the place may be told of reached it, once
    for rid, (spec, consent, place_id) in made.items():
        place = cfg.participation.places[place_id]
        status = conn.execute("SELECT status FROM outbox WHERE message_key = ?", (f"referral:{rid}",)).fetchone()
        if day == DAY and (consent or place.member) and not locked_on(spec, DV["before"]):
            sent = told.get(place_id, []).count(("referral", rid))
            assert sent == (0 if locked_on(spec, day) else 1), (rid, spec, told)
            assert (status[0] == "sent") == (not locked_on(spec, day)), (rid, status)
            event("referral told, then locked" if locked_on(spec, day) else "referral told to the place")


RUN = settings(
    max_examples=30,
    deadline=None,
    database=None,
    derandomize=not RANDOM,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@RUN
@given(town=st.lists(household, min_size=1, max_size=3), members=st.sets(st.sampled_from(PLACES), max_size=2))
def test_a_place_hears_only_of_its_own_consenting_unlocked_referrals(town, members):
    cfg = with_place_members(CFG, members)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        conn = connect(ws)
        try:
            cases = build(conn, ws, cfg, town)
            made: dict[int, tuple] = {}  # referral id -> (household spec, consent, place id)
            for h, spec in enumerate(town):
                hid = f"H{h}"
                case_id = cases[hid]
                (meeting_id,) = conn.execute("SELECT meeting_id FROM cases WHERE case_id = ?", (case_id,)).fetchone()
                if spec["dv"] == "before":
                    lock(conn, hid, DV["before"])
                allowed = lambda r: r[2] or not cfg.participation.places[r[1]].consent_required  # noqa: E731
                in_file = [r for r in spec["referrals"] if r[3] and allowed(r)]
                entries = "".join(
                    f"  - {{member: {m}, need: social_contact, place: {p}, consent: {str(c).lower()}}}\n"
                    for m, p, c, _ in in_file
                )
                result = decide(
                    conn,
                    ws,
                    RULES,
                    cfg,
                    case_id,
                    meeting_id,
                    MEETING_DAY,
                    plan_text(extra="participation:\n" + entries if entries else ""),
                )
                made |= {rid: (spec, r[2], r[1]) for rid, r in zip(result.referrals, in_file, strict=True)}
                accept(conn, cfg, case_id, MEETING_DAY, "tester")
                for m, p, c, _ in [r for r in spec["referrals"] if r not in in_file]:
                    if not allowed((m, p, c, False)):
                        with pytest.raises(ReferralRefused, match="consent_required"):
                            refer_case(conn, cfg, case_id, str(m), p, DAY, "tester", consent=c)
                        event("consent_required without consent: refused")
                        continue
                    made[refer_case(conn, cfg, case_id, str(m), p, DAY, "tester", consent=c)] = (spec, c, p)
                if spec["dv"] == "between":
                    lock(conn, hid, DV["between"])
            check_mails(conn, ws, cfg, send(conn, cfg, ws, DAY), made, DAY)

            # the places (or introducers) accept; follow-ups go on the first follow-up day
            for rid in made:
                if (
                    conn.execute("SELECT status FROM referrals WHERE referral_id = ?", (rid,)).fetchone()[0]
                    == "requested"
                ):
                    answer_referral(conn, RULES, cfg, rid, "accept", DAY, "tester")
            for h, spec in enumerate(town):
                if spec["dv"] == "later":
                    lock(conn, f"H{h}", DV["later"])
            daily_sweep(conn, RULES, cfg, FIRST_FOLLOWUP)
            later = send(conn, cfg, ws, FIRST_FOLLOWUP)
            check_mails(conn, ws, cfg, later, made, FIRST_FOLLOWUP)
            # a place told of an unlocked person is asked how it goes; a locked household's place is not
            places = {p.email: p.id for p in cfg.participation.places.values()}
            got = {
                (places[m["To"]], int(m["X-Engine-Key"].split(":")[1]))
                for m in (messages(ws / "outbox")[n] for n in later)
                if m["To"] in places
            }
            for rid, (spec, consent, place_id) in made.items():
                may = (consent or cfg.participation.places[place_id].member) and not locked_on(spec, DV["before"])
                asked = {
                    f
                    for (f,) in conn.execute(
                        "SELECT followup_id FROM followups WHERE referral_id = ? AND side = 'place' AND due_on = ?",
                        (rid, FIRST_FOLLOWUP.isoformat()),
                    )
                }
                assert bool(asked) == may, (rid, spec, asked)
                assert bool({(place_id, f) for f in asked} & got) == (may and not locked_on(spec, FIRST_FOLLOWUP)), (
                    rid,
                    spec,
                )
        finally:
            conn.close()
