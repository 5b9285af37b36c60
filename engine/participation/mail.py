"""What the outbox must know about 参加支援's e-mails, checked just before each is sent:

- a place is a recipient only of the referral (and its follow-ups) it is asked about, and only
  while that referral's channel is `place` (the person agreed that it be told, or it is a member:
  engine/policy/members.py may_tell_place) and the household is not DV-locked (checked again at
  send time, as for every kind: a DV support measure may be imported in between);
- a referral e-mail is withheld once the referral is no longer awaiting an answer, a follow-up
  once it is answered or cancelled.
"""

from __future__ import annotations

import sqlite3

from engine.config import Agency, Config
from engine.outbox.keys import MessageKey
from engine.participation.directory import Place
from engine.policy.dv import household_locked
from engine.policy.members import may_tell_place

LOCKED = "the household is locked (DV)"  # engine/outbox/withhold.py's LOCKED: the same start
SENDER = "多機関協働事業 参加支援 担当"  # signs what places receive: no conference is named to a place


def place_recipient(place: Place) -> Agency:
    """A place as the outbox's recipient entry (its e-mail; a member or not)."""
    return Agency.model_construct(
        id=place.id,
        name=place.name,
        kind=place.category_label,
        silo="",
        areas=(place.area,),
        email=place.email,
        member=place.member,
        capacity=1,
    )


def _referral_of(conn: sqlite3.Connection, key: MessageKey) -> sqlite3.Row | None:
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row
    if key.kind == "followup":
        return cur.execute(
            "SELECT r.*, f.status AS followup_status, f.agency_id AS asked, f.side FROM followups f "
            "JOIN referrals r ON r.referral_id = f.referral_id WHERE f.followup_id = ?",
            (key.number,),
        ).fetchone()
    return cur.execute(
        "SELECT *, NULL AS followup_status, NULL AS asked, NULL AS side FROM referrals WHERE referral_id = ?",
        (key.number,),
    ).fetchone()


def place_refusal(
    conn: sqlite3.Connection, config: Config, key: MessageKey | None, place_id: str, day: str
) -> str | None:
    """Why a message may not go to the place `place_id` at all (it is failed, shown to the coordinator)."""
    if key is None or key.kind not in ("referral", "referral_reminder", "followup"):
        return f"{place_id} is a place of the resource directory: it receives only its referrals and their follow-ups"
    row = _referral_of(conn, key)
    if row is None or row["place_id"] != place_id or (key.kind == "followup" and row["asked"] != place_id):
        return f"{place_id} is not the place this referral is about"
    place = config.participation.places.get(place_id)
    if place is None:
        return f"place '{place_id}' is no longer in resources.yaml: nobody to send to"
    # the DV lock is stale_reason's: such a message is withheld and the coordinator told, not failed
    if row["channel"] != "place" or not may_tell_place(member=place.member, consent=bool(row["consent"]), locked=False):
        return f"{place_id} may not be told of the person (no consent recorded, not a member of the 支援会議): the introducer goes with them"
    return None


def _still_the_lead(conn: sqlite3.Connection, key: MessageKey) -> bool:
    """The agency a lead's follow-up was asked of is still the one to answer (followups.LEAD_NOW)."""
    from engine.participation.followups import LEAD_NOW

    return bool(
        conn.execute(
            f"SELECT f.agency_id IS {LEAD_NOW} FROM followups f JOIN referrals r ON r.referral_id = f.referral_id "
            "JOIN cases c ON c.case_id = r.case_id WHERE f.followup_id = ?",
            (key.number,),
        ).fetchone()[0]
    )


def _still_asks(key: MessageKey, row: sqlite3.Row) -> bool:
    """A request or reminder asks about the state it was written for: the request and a reminder
    while the referral waits for its first answer (requested), a waitlist round's reminder (its
    version is the round's answer date, engine/participation/requests.py) while that round waits."""
    if key.kind == "referral_reminder" and key.version:
        return row["status"] == "waitlisted" and row["answer_due"].replace("-", "") == str(key.version)
    return row["status"] == "requested"


def stale_reason(conn: sqlite3.Connection, config: Config, key: MessageKey, day: str) -> str | None:
    """Why a queued 参加支援 message must no longer go out."""
    row = _referral_of(conn, key)
    if row is None:
        return "the referral is gone"
    if key.kind in ("referral", "referral_reminder") and not _still_asks(key, row):
        return "the referral has been answered or cancelled since the message was written"
    if key.kind == "followup" and row["followup_status"] != "asked":
        return "the follow-up has been answered or cancelled"
    if key.kind == "followup" and row["side"] == "lead" and not _still_the_lead(conn, key):
        return "the case's lead has changed since it was asked: the next sweep asks the new lead"
    to_place = row["channel"] == "place" and (key.kind != "followup" or row["asked"] == row["place_id"])
    household = conn.execute("SELECT household_id FROM cases WHERE case_id = ?", (row["case_id"],)).fetchone()[0]
    if household_locked(conn, config, household, day):
        if to_place:
            return f"{LOCKED}: nothing goes to a place"
        # an agency's message queued before the lock says where and when the person goes: withheld;
        # one queued under the lock carries the fixed wording (engine/participation/requests.py)
        from engine.participation.requests import LOCKED_WORDING

        queued = conn.execute("SELECT parts FROM outbox WHERE message_key = ?", (str(key),)).fetchone()
        if queued is None or LOCKED_WORDING not in queued[0]:
            return f"{LOCKED}: the message says where the person goes; the coordinator tells the agency"
    return None
