"""The outcome file of `engine outcome MEETING CASE --file outcome.yaml`, and its checks.

    decision: plan          # plan（支援方針・役割分担）| close（終結）| suspend（中断）| continue（継続審議）
    lead: houkatsu_kita     # 主担当機関 (agency id); plan and close
    consent: pending        # 本人同意: obtained | pending | refused
    roles:                  # 役割分担: who does what by when (plan: at least one)
      - {agency: houkatsu_kita, action: 介護サービスの利用調整, due: 2026-12-15}
    next_evaluation: 2027-03-01   # optional (plan): default lifecycle.yaml evaluation_months after acceptance
    review_on: 2027-02-01         # suspend: when the case comes back
    reason: 本人が支援を希望しないため   # suspend and close: why (no names)
    participation:                # 参加支援 (plan, close): a need per member, and a place or why not
      - {member: 世帯員2, need: social_contact, place: ibasho_kita, consent: true}

Free text is refused when it contains a name, kana, address or birth date of the household: it
is sent to agencies by e-mail.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from engine.config import Config
from engine.participation.outcome import Entry as ParticipationEntry
from engine.participation.outcome import check_entries
from engine.policy.members import may_share_with
from engine.policy.personal_data import holds_personal_data, personal_tokens
from engine.rules.problems import RuleProblem, RulesInvalid
from engine.store.chronology import too_far_ahead
from engine.support.dates import Day
from engine.support.errors import did_you_mean
from engine.support.vocabulary import code_of, names_of
from engine.support.yamlfile import YamlFile, read_yaml, validate

DECISIONS_JA = {
    "支援方針": "plan",
    "プラン": "plan",
    "役割分担": "plan",
    "終結": "close",
    "中断": "suspend",
    "継続": "continue",
    "継続審議": "continue",
}


DECISION_LABELS = {  # what the console's form offers
    "plan": "支援方針・役割分担",
    "close": "終結（主担当機関へ引継ぎ）",
    "suspend": "中断",
    "continue": "継続審議",
}
CONSENT_LABELS = {"obtained": "取得済", "pending": "未取得", "refused": "拒否"}  # 本人同意


def _decision(v):
    return DECISIONS_JA.get(v.strip(), v) if isinstance(v, str) else v


Text = Annotated[str, Field(min_length=1, max_length=300)]


class Role(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agency: str
    action: Text
    due: Day


class Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Annotated[
        Literal["plan", "close", "suspend", "continue"],
        BeforeValidator(_decision),
        WithJsonSchema({"enum": [*DECISION_LABELS, *DECISIONS_JA]}),
    ]  # 終結 etc. also accepted
    lead: str | None = None
    consent: Annotated[
        Literal["obtained", "pending", "refused"] | None,
        BeforeValidator(lambda v: code_of(v, CONSENT_LABELS)),  # 取得済 = obtained
        WithJsonSchema({"enum": [*names_of(CONSENT_LABELS), None]}),
    ] = None
    roles: list[Role] = []
    next_evaluation: Day | None = None
    review_on: Day | None = None
    reason: Text | None = None
    participation: list[ParticipationEntry] = []  # 参加支援 (engine/participation/outcome.py)


def decision_problems(doc: YamlFile, outcome: Outcome) -> list[RuleProblem]:
    """The fields each decision needs (or must not have), located in the file."""
    out = []
    if outcome.decision == "plan" and not outcome.lead:
        out.append(doc.problem(("lead",), "decision plan needs `lead:` (the agency id of the 主担当機関)"))
    if outcome.decision == "plan" and not outcome.roles:
        out.append(doc.problem(("roles",), "decision plan needs `roles:` (at least one agency, action and due date)"))
    if outcome.decision == "suspend" and not outcome.review_on:
        out.append(doc.problem(("review_on",), "decision suspend needs `review_on:` (when to look at the case again)"))
    if outcome.decision == "suspend" and not outcome.reason:
        out.append(doc.problem(("reason",), "decision suspend needs `reason:` (why support is paused; no names)"))
    if outcome.decision != "suspend" and outcome.review_on:
        out.append(
            doc.problem(
                ("review_on",), "`review_on:` is for decision suspend; a plan's next review is `next_evaluation:`"
            )
        )
    return out


class OutcomeInvalid(RulesInvalid):
    """The outcome file has problems (each with file, line, field)."""


def check_outcome(
    conn: sqlite3.Connection,
    config: Config,
    doc: YamlFile,
    outcome: Outcome,
    *,
    household_id: str,
    held_on: date,
    conference_type: str,
    case_id: str = "",
) -> list[RuleProblem]:
    problems: list[RuleProblem] = []
    agencies = config.agencies
    if outcome.lead and outcome.lead not in agencies:
        problems.append(
            doc.problem(
                ("lead",),
                f"unknown agency '{outcome.lead}'",
                suggestion=did_you_mean(outcome.lead, agencies) or "agency ids are in agencies.yaml",
            )
        )
    elif outcome.lead and not may_share_with(agencies[outcome.lead], conference_type):
        problems.append(
            doc.problem(
                ("lead",),
                f"'{outcome.lead}' is not a registered member of the {config.name_of('support')}: it cannot be told of the case without consent",
                suggestion="choose a member agency, or obtain consent and decide at the 重層的支援会議",
            )
        )
    for i, role in enumerate(outcome.roles):
        if role.agency not in agencies:
            problems.append(
                doc.problem(
                    ("roles", i, "agency"),
                    f"unknown agency '{role.agency}'",
                    suggestion=did_you_mean(role.agency, agencies) or "agency ids are in agencies.yaml",
                )
            )
        if role.agency in agencies and not may_share_with(agencies[role.agency], conference_type):
            problems.append(
                doc.problem(
                    ("roles", i, "agency"),
                    f"'{role.agency}' is not a registered member of the {config.name_of('support')}: it cannot be given a role (or e-mailed) without consent",
                    suggestion="give the role to a member agency, or obtain consent and decide at the 重層的支援会議",
                )
            )
        if role.due < held_on:
            problems.append(
                doc.problem(
                    ("roles", i, "due"),
                    f"due date {role.due} is before the meeting ({held_on})",
                    suggestion="give the date the action should be done by",
                )
            )
        elif far := too_far_ahead(held_on, role.due):
            problems.append(doc.problem(("roles", i, "due"), f"due date {far}"))
    for field in ("next_evaluation", "review_on"):
        value = getattr(outcome, field)
        if value and value <= held_on:
            problems.append(doc.problem((field,), f"{value} is not after the meeting ({held_on})"))
        elif value and (far := too_far_ahead(held_on, value)):
            problems.append(doc.problem((field,), far))
    problems += check_entries(
        conn,
        config,
        doc,
        outcome.participation,
        decision=outcome.decision,
        case_id=case_id,
        household_id=household_id,
        conference_type=conference_type,
        on=held_on,
    )
    tokens = personal_tokens(conn, household_id)
    texts = [(("reason",), outcome.reason)] + [(("roles", i, "action"), r.action) for i, r in enumerate(outcome.roles)]
    for path, text in texts:
        if text and holds_personal_data(text, tokens):
            problems.append(
                doc.problem(
                    path,
                    "contains personal data of the household (a name, kana, address or birth date): this text is e-mailed to agencies",
                    suggestion="write 本人, 世帯員, 長男… instead; details stay in the meeting",
                )
            )
    return problems


def read_outcome(path: Path) -> tuple[YamlFile, Outcome]:
    problems: list[RuleProblem] = []
    doc = read_yaml(Path(path), problems)
    if doc is not None and doc.data is not None and not isinstance(doc.data, dict):
        raise OutcomeInvalid(
            [
                RuleProblem(
                    file=str(path),
                    line=1,
                    field="decision",
                    message="the outcome must be fields (`decision: plan`, `lead: …`), not a list or a single value",
                    suggestion="start the file with `decision: plan` (see docs/lifecycle.md, 'Recording an outcome')",
                )
            ]
        )
    if doc is None:  # unreadable: read_yaml said why
        raise OutcomeInvalid(problems)
    return doc, outcome_of(doc, problems)


def outcome_of(doc: YamlFile, problems: list[RuleProblem] | None = None) -> Outcome:
    """The outcome in `doc` (a file read, or the console's form as a YamlFile): the model and the
    fields each decision needs; OutcomeInvalid with every problem (and those given) otherwise."""
    problems = list(problems or [])
    outcome = validate(doc, Outcome, problems)
    if outcome is not None:
        problems += decision_problems(doc, outcome)
    if problems or outcome is None:
        raise OutcomeInvalid(
            problems or [RuleProblem(file=doc.file, line=1, message="the file is empty: write at least `decision:`")]
        )
    return outcome
