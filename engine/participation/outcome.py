"""The conference decides 参加支援 in its outcome (`participation:` of the outcome file, or the
console's form): for a member, a need, and either the place to introduce them to, or why not.

    participation:
      - member: 世帯員2            # or 2: the numbering of the agenda
        need: social_contact       # or 人とのつながり・居場所 (NEED_LABELS)
        place: ibasho_kita         # resources.yaml; omit with `reason:` when no place is chosen
        consent: true              # the person agreed that the place be told of them
        introduced_by: houkatsu_kita   # default: the lead
      - member: 1
        need: daily_activity
        reason: 本人が当面は自宅で過ごすことを希望

A need with neither place nor reason is recorded too: the gap audit then asks for a referral
(`engine refer`) or a reason. Without consent nothing about the person goes to a place that is
not a member of the 支援会議: the introducer goes with them (engine/policy/members.py).
"""

from __future__ import annotations

import sqlite3
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from engine.config import Config
from engine.participation.directory import Need
from engine.participation.persons import member_of
from engine.policy.members import may_share_with
from engine.policy.personal_data import holds_personal_data, personal_tokens
from engine.rules.problems import RuleProblem
from engine.store.lifecycle import Log
from engine.support.errors import did_you_mean
from engine.support.yamlfile import YamlFile


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member: Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v)]
    need: Need
    place: str | None = None
    consent: bool | None = None
    introduced_by: str | None = None
    reason: Annotated[str, Field(min_length=1, max_length=300)] | None = None


def check_entries(
    conn: sqlite3.Connection,
    config: Config,
    doc: YamlFile,
    entries: list[Entry],
    *,
    decision: str,
    case_id: str,
    household_id: str,
    conference_type: str,
    on,
) -> list[RuleProblem]:
    from engine.support.vocabulary import NEED_LABELS

    problems: list[RuleProblem] = []
    if entries and decision not in ("plan", "close"):
        problems.append(
            doc.problem(
                ("participation",),
                "participation is decided with decision plan or close",
                suggestion="record it with the plan (or `engine refer` later)",
            )
        )
    places = config.participation.places
    tokens = personal_tokens(conn, household_id)
    for i, e in enumerate(entries):
        at = ("participation", i)
        if e.need not in NEED_LABELS:
            problems.append(
                doc.problem(
                    at + ("need",),
                    f"unknown need '{e.need}'",
                    suggestion=did_you_mean(e.need, NEED_LABELS) or "needs: " + ", ".join(NEED_LABELS),
                )
            )
        if member_of(conn, case_id, on, e.member) is None:
            problems.append(
                doc.problem(
                    at + ("member",),
                    f"no member '{e.member}' in the household",
                    suggestion="write 世帯員N (or N) as the agenda numbers them",
                )
            )
        if e.place is None and e.consent is not None:
            problems.append(
                doc.problem(at + ("consent",), "consent is for a referral: give `place:` too, or remove consent")
            )
        if e.place is not None:
            place = places.get(e.place)
            if place is None:
                problems.append(
                    doc.problem(
                        at + ("place",),
                        f"unknown place '{e.place}'",
                        suggestion=did_you_mean(e.place, places)
                        or "place ids are in resources.yaml (`engine resources list`)",
                    )
                )
            elif place.status != "active":
                problems.append(
                    doc.problem(
                        at + ("place",),
                        f"'{e.place}' is {place.status} in resources.yaml",
                        suggestion="choose another place",
                    )
                )
            elif place.consent_required and e.consent is not True:
                problems.append(
                    doc.problem(
                        at + ("consent",),
                        f"'{e.place}' takes a person only with their consent (consent_required)",
                        suggestion="write `consent: true` once the person has agreed, or choose a drop-in place",
                    )
                )
            if e.consent is None:
                problems.append(
                    doc.problem(
                        at + ("consent",),
                        "a referral needs `consent: true` or `consent: false` (did the person agree that the place be told?)",
                    )
                )
            if e.reason:
                problems.append(
                    doc.problem(at + ("reason",), "`reason:` is why no place was chosen: remove it, or remove `place:`")
                )
        if e.introduced_by is not None:
            agency = config.agencies.get(e.introduced_by)
            if agency is None:
                problems.append(
                    doc.problem(
                        at + ("introduced_by",),
                        f"unknown agency '{e.introduced_by}'",
                        suggestion=did_you_mean(e.introduced_by, config.agencies) or "agency ids are in agencies.yaml",
                    )
                )
            elif not may_share_with(agency, conference_type):
                problems.append(
                    doc.problem(
                        at + ("introduced_by",),
                        f"'{e.introduced_by}' cannot introduce: it is not a registered member of the {config.name_of('support')}",
                        suggestion="the lead (a member) introduces",
                    )
                )
        if e.reason and holds_personal_data(e.reason, tokens):
            problems.append(
                doc.problem(
                    at + ("reason",),
                    "contains personal data of the household (a name, kana, address or birth date)",
                    suggestion="write 本人, 世帯員 … instead",
                )
            )
    return problems


def record_entries(
    log: Log, config: Config, case_id: str, meeting_id: str, entries: list[Entry], lead: str | None
) -> list[int]:
    """The needs and referrals the conference decided (checked by check_entries); the referrals' numbers."""
    from engine.participation.answers import record_need  # referrals queue e-mails: papers import this module
    from engine.participation.referrals import refer

    made = []
    for e in entries:
        person = member_of(log.conn, case_id, log.on, e.member)
        need_id = record_need(
            log, case_id, meeting_id, person, e.need, None if e.place else e.reason, for_referral=bool(e.place)
        )
        if e.place:
            made.append(
                refer(
                    log,
                    config,
                    case_id,
                    person,
                    e.place,
                    introduced_by=e.introduced_by or lead or "",
                    consent=bool(e.consent),
                    need_id=need_id,
                )
            )
    return made
