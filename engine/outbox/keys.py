"""Message keys: each queued e-mail's primary key in the outbox, one kind of message per prefix.

    agenda:MEETING:AGENCY:vN             a meeting's agenda for one agency, version N
    routing:CASE:OWNER:vN                the notice to the owner of a silo conference, version N
                                         (routing:CASE:OWNER, without :vN: queued before notices had versions)
    lead_request:N   lead_withdrawn:N    a lead request (lead_requests.request_id), its withdrawal
    reminder:N:due|overdue[:locked]      a reminder of an action (case_actions.action_id); `locked`:
                                         the household is locked (DV), the action's wording stays out
    checkpoint:N                         a watch or check-back question (checkpoints.checkpoint_id)
    referral:N   referral_reminder:N[:vYYYYMMDD]
                                         参加支援: a referral to a place (or to its introducer), its reminder
                                         (:v… the round asked again after a waitlist: its answer date)
    followup:N                           参加支援: a follow-up question after a match (followups.followup_id)
    digest:YYYY-MM-DD                    the coordinator's daily digest
    KIND:TEXT                            any other notice (notice:…): TEXT is free

The text is what the database holds, what an .eml file is named after, the X-Engine-Key header
and what `engine outbox --retry` takes: it never changes, and `str(MessageKey.parse(text)) == text`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

Stage = Literal["due", "overdue"]

VERSIONED = ("agenda", "routing")  # a newer version replaces an older one not sent yet
LIFECYCLE = (  # about one case, to its agency (or, for 参加支援, to a place)
    "lead_request",
    "lead_withdrawn",
    "reminder",
    "checkpoint",
    "referral",
    "referral_reminder",
    "followup",
)
FORMS = {
    "agenda": "agenda:MEETING:AGENCY:vN",
    "routing": "routing:CASE:OWNER:vN",
    "lead_request": "lead_request:N",
    "lead_withdrawn": "lead_withdrawn:N",
    "reminder": "reminder:N:due|overdue[:locked]",
    "checkpoint": "checkpoint:N",
    "referral": "referral:N",
    "referral_reminder": "referral_reminder:N[:vYYYYMMDD]",
    "followup": "followup:N",
    "digest": "digest:YYYY-MM-DD",
}
NUMBER = re.compile(r"0|[1-9][0-9]*")
KIND = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True, slots=True)
class MessageKey:
    kind: str
    ref: str  # the meeting, case, request, action or checkpoint id, the digest's day, or a notice's text
    agency_id: str | None = None  # agenda: the agency; routing: the owner of the silo conference
    version: int | None = None  # agenda, routing
    stage: Stage | None = None  # reminder
    locked: bool = False  # reminder: sent without the action's wording (DV)

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(f"not a message key: {problem}")

    # one constructor per kind

    @classmethod
    def agenda(cls, meeting_id: str, agency_id: str, version: int) -> MessageKey:
        return cls("agenda", meeting_id, agency_id=agency_id, version=version)

    @classmethod
    def routing(cls, case_id: str, owner_id: str, version: int) -> MessageKey:
        return cls("routing", case_id, agency_id=owner_id, version=version)

    @classmethod
    def lead_request(cls, request_id: int) -> MessageKey:
        return cls("lead_request", str(request_id))

    @classmethod
    def lead_withdrawn(cls, request_id: int) -> MessageKey:
        return cls("lead_withdrawn", str(request_id))

    @classmethod
    def reminder(cls, action_id: int, *, overdue: bool, locked: bool = False) -> MessageKey:
        return cls("reminder", str(action_id), stage="overdue" if overdue else "due", locked=locked)

    @classmethod
    def checkpoint(cls, checkpoint_id: int) -> MessageKey:
        return cls("checkpoint", str(checkpoint_id))

    @classmethod
    def referral(cls, referral_id: int, *, reminder: bool = False, round_on: date | None = None) -> MessageKey:
        """A referral's request, or its reminder; `round_on`: the answer date of a round asked again
        after a waitlist (each round its own reminder)."""
        if round_on is not None:
            return cls("referral_reminder", str(referral_id), version=int(round_on.strftime("%Y%m%d")))
        return cls("referral_reminder" if reminder else "referral", str(referral_id))

    @classmethod
    def followup(cls, followup_id: int) -> MessageKey:
        return cls("followup", str(followup_id))

    @classmethod
    def digest(cls, day: date) -> MessageKey:
        return cls("digest", day.isoformat())

    @classmethod
    def notice(cls, text: str) -> MessageKey:
        return cls("notice", text)

    # text

    @classmethod
    def parse(cls, text: str) -> MessageKey:
        """The key written as `text`; ValueError naming the expected form if it is malformed."""
        kind, colon, rest = text.partition(":")
        if not colon:
            raise ValueError(f"'{text}' is not a message key: a key is KIND:… ({', '.join(FORMS.values())})")
        parts = rest.split(":")
        fields: dict = {}
        if kind in VERSIONED and len(parts) in (2, 3):
            fields["agency_id"] = parts[1]
            if len(parts) == 3:
                if not (parts[2].startswith("v") and NUMBER.fullmatch(parts[2][1:])):
                    raise ValueError(f"'{text}' is not a message key: {kind} keys end in :vN ({FORMS[kind]})")
                fields["version"] = int(parts[2][1:])
        elif kind == "referral_reminder" and len(parts) == 2:
            if not (parts[1].startswith("v") and NUMBER.fullmatch(parts[1][1:])):
                raise ValueError(f"'{text}' is not a message key: {FORMS[kind]}")
            fields["version"] = int(parts[1][1:])
        elif kind == "reminder" and len(parts) in (2, 3):
            if parts[1] not in ("due", "overdue") or parts[2:] not in ([], ["locked"]):
                raise ValueError(f"'{text}' is not a message key: {FORMS[kind]}")
            fields.update(stage=parts[1], locked=len(parts) == 3)
        elif kind in FORMS and len(parts) != 1:
            raise ValueError(f"'{text}' is not a message key: {FORMS[kind]}")
        try:
            return cls(kind, parts[0] if kind in FORMS else rest, **fields)
        except ValueError as err:
            raise ValueError(f"'{text}' is {err}") from None

    @classmethod
    def read(cls, text: str) -> MessageKey | None:
        """The key written as `text`, or None if it is malformed (a row the engine did not write)."""
        try:
            return cls.parse(text)
        except ValueError:
            return None

    def __str__(self) -> str:
        if self.kind in VERSIONED:
            return f"{self.kind}:{self.ref}:{self.agency_id}" + ("" if self.version is None else f":v{self.version}")
        if self.kind == "reminder":
            return f"reminder:{self.ref}:{self.stage}" + (":locked" if self.locked else "")
        if self.kind == "referral_reminder" and self.version is not None:
            return f"referral_reminder:{self.ref}:v{self.version}"
        return f"{self.kind}:{self.ref}"

    def _problem(self) -> str | None:
        """Why these fields would not write a text that reads back as the same key."""
        if not KIND.fullmatch(self.kind or ""):
            return f"'{self.kind}' is not a kind (letters, digits and _, then a colon)"
        if not self.ref:
            return f"nothing after '{self.kind}:'"
        form = FORMS.get(self.kind, f"{self.kind}:TEXT")
        versioned, reminder = self.kind in VERSIONED, self.kind == "reminder"
        rounds = self.kind == "referral_reminder" and self.agency_id is None  # :vYYYYMMDD
        if (
            (self.agency_id, self.version) != (None, None)
            and not versioned
            and not rounds
            or (self.stage or self.locked)
            and not reminder
        ):
            return f"a {self.kind} key has no agency, version or stage ({form})"
        if self.kind not in FORMS:  # any other notice: free text
            return None
        if ":" in self.ref:
            return f"'{self.ref}' holds a colon ({form})"
        if versioned:
            if not self.agency_id or ":" in self.agency_id:
                return f"no agency id ({form})"
            if self.version is None and self.kind == "agenda" or self.version is not None and self.version < 0:
                return f"no version ({form})"
        elif self.kind == "digest":
            try:
                day = date.fromisoformat(self.ref).isoformat()
            except ValueError:
                day = None
            if day != self.ref:
                return f"'{self.ref}' is not a day ({form})"
        elif not NUMBER.fullmatch(self.ref):
            return f"'{self.ref}' is not a number ({form})"
        if reminder and self.stage not in ("due", "overdue"):
            return f"no stage ({form})"
        return None

    # what the outbox needs to know

    @property
    def lifecycle(self) -> bool:
        """A lead request, reminder or checkpoint question: about one case, sent to its agency."""
        return self.kind in LIFECYCLE

    @property
    def number(self) -> int | None:
        """The id of the row a lifecycle message is about (request, action, checkpoint)."""
        return int(self.ref) if self.kind in LIFECYCLE else None

    @property
    def version_prefix(self) -> str | None:
        """What every version of this agenda or routing notice starts with (…:v), or None."""
        if self.kind not in VERSIONED or self.version is None:
            return None
        return f"{self.kind}:{self.ref}:{self.agency_id}:v"

    def next_version(self) -> MessageKey:
        return dataclasses.replace(self, version=(self.version or 0) + 1)

    @staticmethod
    def agenda_prefix(meeting_id: str) -> str:
        """What the keys of every agenda of a meeting start with."""
        return f"agenda:{meeting_id}:"


PREFIXED = "message_key >= ? AND message_key < ?"  # SQL: the keys that start with a prefix (prefixed())


def prefixed(prefix: str) -> tuple[str, str]:
    """The parameters of PREFIXED: the range of the outbox's primary key holding exactly the keys
    that start with `prefix` (every such text sorts at or after it and before the prefix with its
    last character raised by one). A range, not substr(): the primary key's index answers it
    instead of a scan of the whole outbox, which grows every day (issue 19)."""
    if not prefix:
        raise ValueError("an empty prefix is every key")
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)
