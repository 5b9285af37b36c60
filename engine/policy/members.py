"""Members only (社会福祉法106条の6): a 支援会議 shares what it knows without consent, so its papers
and the notices about its cases go only to its registered members (agencies.yaml `member: true`),
who are bound to secrecy by the law. An agency that is not a member hears of a case only when
everyone the case concerns has consented (consent.py): a 重層的支援会議's papers, and lifecycle
messages (lead requests, reminders, checkpoint questions) while the consent is current.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.config import Agency, ConferenceType


def members_only(conference_type: ConferenceType) -> bool:
    """The papers of this conference go to registered members only."""
    return conference_type == "support"


def may_share_with(agency: Agency, conference_type: ConferenceType) -> bool:
    """A conference of this type may tell this agency of its cases (papers, roles, the lead)."""
    return agency.member or not members_only(conference_type)


def refusal(
    agency: Agency, agency_id: str, *, restricted: bool, lifecycle: bool, consented: Callable[[], bool]
) -> str | None:
    """Why a queued message may not go to this agency at send time, or None. `restricted`: it was
    queued members only (a 支援会議's papers, routing notices); `lifecycle`: it is about a case (lead
    request, reminder, checkpoint question); `consented`: everyone the case concerns has a current
    consent (asked only for a non-member)."""
    if agency.member:
        return None
    if restricted:
        return f"{agency_id} is not a registered member of the 支援会議 in agencies.yaml: 支援会議 papers are not sent to it"
    if lifecycle and not consented():
        return f"{agency_id} is not a registered member of the 支援会議 and the household's consent is not current: nothing about the case may be sent to it (社会福祉法106条の6)"
    return None


def may_tell_place(*, member: bool, consent: bool, locked: bool) -> bool:
    """参加支援: a place (resources.yaml) is told of a person by e-mail only when the person agreed
    that it be told, or when the place is itself a registered member of the 支援会議; never while the
    household is DV-locked. Otherwise the introducer goes with the person (in_person) and answers
    for the referral, and the place hears nothing from the engine."""
    return not locked and (consent or member)
