"""Record what a conference decided for one case: `engine outcome MEETING CASE --file outcome.yaml`.

    decision: plan          # plan（支援方針・役割分担）| close（終結）| suspend（中断）| continue（継続審議）
    lead: houkatsu_kita     # 主担当機関 (agency id); plan and close
    consent: pending        # 本人同意: obtained | pending | refused
    roles:                  # 役割分担: who does what by when (plan: at least one)
      - {agency: houkatsu_kita, action: 介護サービスの利用調整, due: 2026-12-15}
    next_evaluation: 2027-03-01   # optional (plan): default lifecycle.yaml evaluation_months after acceptance
    review_on: 2027-02-01         # suspend: when the case comes back
    reason: 本人が支援を希望しないため   # suspend and close: why (no names)

plan and close ask the lead to accept (the hand-shake, engine/casework/handshake.py) unless that agency
already is the case's confirmed lead. Free text is refused when it contains a name, kana,
address or birth date of the household: it is sent to agencies by e-mail.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from engine.casework.handshake import request_lead
from engine.casework.steps import (
    begin_reopen,
    cancel_actions,
    cancel_checkpoints,
    close_case,
    schedule_evaluation,
    withdraw_requests,
)
from engine.conference.convene import Convener
from engine.config.files import Config
from engine.policy.personal_data import holds_personal_data, personal_tokens
from engine.rules.loader import RuleProblem, RulesInvalid, did_you_mean
from engine.rules.model import RuleSet
from engine.store.lifecycle import Log
from engine.support.business_days import Calendar
from engine.support.dates import DateError, parse_date
from engine.support.yamlfile import YamlFile, read_yaml, validate


def _date(v):
    if isinstance(v, str):
        try:
            return parse_date(v.strip())
        except DateError as err:
            raise ValueError(str(err)) from err
    return v


Day = Annotated[date, BeforeValidator(_date)]
DECISIONS_JA = {
    "支援方針": "plan",
    "プラン": "plan",
    "役割分担": "plan",
    "終結": "close",
    "中断": "suspend",
    "継続": "continue",
    "継続審議": "continue",
}


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
        Literal["plan", "close", "suspend", "continue"], BeforeValidator(_decision)
    ]  # 終結 etc. also accepted
    lead: str | None = None
    consent: Literal["obtained", "pending", "refused"] | None = None
    roles: list[Role] = []
    next_evaluation: Day | None = None
    review_on: Day | None = None
    reason: Text | None = None


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


class OutcomeRefused(Exception):
    """The outcome cannot be recorded for this meeting and case (said why)."""


class OutcomeResult(BaseModel):
    case_id: str
    decision: str
    status: str  # the case's state afterwards
    lead_request: int | None = None  # the hand-shake request sent, if any
    actions: int = 0
    meeting_id: str | None = None  # continue: the meeting the case is booked into
    history_only: bool = False  # a later meeting had decided already: recorded, nothing changed


def check_outcome(
    conn: sqlite3.Connection,
    config: Config,
    doc: YamlFile,
    outcome: Outcome,
    *,
    household_id: str,
    held_on: date,
    conference_type: str,
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
    elif outcome.lead and conference_type == "support" and not agencies[outcome.lead].member:
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
        if conference_type == "support" and role.agency in agencies and not agencies[role.agency].member:
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
    for field in ("next_evaluation", "review_on"):
        value = getattr(outcome, field)
        if value and value <= held_on:
            problems.append(doc.problem((field,), f"{value} is not after the meeting ({held_on})"))
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
                    suggestion="start the file with `decision: plan` (see README 'Recording an outcome')",
                )
            ]
        )
    outcome = validate(doc, Outcome, problems) if doc else None
    if outcome is not None:
        problems += decision_problems(doc, outcome)
    if problems or outcome is None:
        raise OutcomeInvalid(
            problems or [RuleProblem(file=str(path), line=1, message="the file is empty: write at least `decision:`")]
        )
    return doc, outcome


def record_outcome(
    conn: sqlite3.Connection,
    rules: RuleSet,
    config: Config,
    meeting_id: str,
    case_id: str,
    path: Path,
    on: date,
    actor: str,
) -> OutcomeResult:
    """Validate the outcome file and apply the decision, in one transaction."""
    doc, outcome = read_outcome(path)
    meeting = conn.execute(
        "SELECT held_on, conference_type FROM meetings WHERE meeting_id = ?", (meeting_id,)
    ).fetchone()
    if meeting is None:
        raise OutcomeRefused(f"会議 {meeting_id} はありません（`engine meetings --all` で確認してください）")
    row = conn.execute(
        "SELECT household_id, status, meeting_id, lead_agency_id, lead_confirmed_on, conference_type FROM cases WHERE case_id = ?",
        (case_id,),
    ).fetchone()
    if row is None:
        raise OutcomeRefused(
            f"事案 {case_id} はありません（`engine meetings --all` または `engine cases` で事案番号を確認してください）"
        )
    household_id, status, case_meeting, lead, confirmed_on, conference_type = row
    held_on = date.fromisoformat(meeting[0])
    if not conn.execute(
        "SELECT 1 FROM case_meetings WHERE case_id = ? AND meeting_id = ?", (case_id, meeting_id)
    ).fetchone():
        raise OutcomeRefused(
            f"事案 {case_id} は会議 {meeting_id} に付議されていません（現在の付議先: {case_meeting or 'なし'}）"
        )
    if held_on > on:
        raise OutcomeRefused(f"会議 {meeting_id} は {held_on} に開かれます: 結果はその日以降に記録してください")
    if conn.execute("SELECT 1 FROM outcomes WHERE case_id = ? AND meeting_id = ?", (case_id, meeting_id)).fetchone():
        raise OutcomeRefused(
            f"事案 {case_id} の会議 {meeting_id} の結果は記録済みです（記録は追記のみ。`engine history {case_id}` を参照）"
        )
    problems = check_outcome(
        conn, config, doc, outcome, household_id=household_id, held_on=held_on, conference_type=meeting[1]
    )
    if problems:
        raise OutcomeInvalid(problems)
    log = Log(conn, on, actor, config_hash=config.hash)
    labels = {
        "plan": "支援方針と役割分担を決定",
        "close": "終結（主担当機関へ引継ぎ）",
        "suspend": "中断",
        "continue": "継続審議",
    }
    later = conn.execute(
        "SELECT o.meeting_id FROM outcomes o JOIN meetings m ON m.meeting_id = o.meeting_id WHERE o.case_id = ? AND m.held_on > ? ORDER BY m.held_on DESC LIMIT 1",
        (case_id, held_on.isoformat()),
    ).fetchone()
    if later:  # a later conference has decided already: this one is kept as history and changes nothing
        with conn:
            conn.execute(
                "INSERT INTO outcomes VALUES (?,?,?,?,?,?,?,?)",
                (
                    case_id,
                    meeting_id,
                    held_on.isoformat(),
                    on.isoformat(),
                    outcome.decision,
                    outcome.lead,
                    outcome.consent,
                    outcome.model_dump_json(),
                ),
            )
            log.event(
                "outcome",
                case_id=case_id,
                meeting_id=meeting_id,
                reason=f"{labels[outcome.decision]}（後の会議 {later[0]} の決定が優先のため記録のみ）",
                decision=outcome.decision,
                history_only=True,
            )
        return OutcomeResult(case_id=case_id, decision=outcome.decision, status=status, history_only=True)
    if status in ("closed", "suspended"):  # the conference takes the case up again (もどし)
        log.check(case_id, "reopened")
    decision_status = {"plan": "lead_pending", "close": "closed", "suspend": "suspended", "continue": status}[
        outcome.decision
    ]
    if status not in ("closed", "suspended"):
        log.check(
            case_id,
            decision_status if not (outcome.decision == "plan" and outcome.lead == lead and confirmed_on) else "active",
        )
    result = OutcomeResult(case_id=case_id, decision=outcome.decision, status=status)
    with conn:
        if status in ("closed", "suspended"):
            begin_reopen(log, config, case_id, f"会議 {meeting_id} で再び検討（{labels[outcome.decision]}）")
            log.move(case_id, "convened", f"会議 {meeting_id} の決定による再開", meeting_id=meeting_id)
            lead, confirmed_on = conn.execute(
                "SELECT lead_agency_id, lead_confirmed_on FROM cases WHERE case_id = ?", (case_id,)
            ).fetchone()
        conn.execute(
            "INSERT INTO outcomes VALUES (?,?,?,?,?,?,?,?)",
            (
                case_id,
                meeting_id,
                held_on.isoformat(),
                on.isoformat(),
                outcome.decision,
                outcome.lead,
                outcome.consent,
                outcome.model_dump_json(),
            ),
        )
        if outcome.consent:
            conn.execute("UPDATE cases SET consent_state = ? WHERE case_id = ?", (outcome.consent, case_id))
        log.event(
            "outcome",
            case_id=case_id,
            meeting_id=meeting_id,
            reason=labels[outcome.decision] + (f"（{outcome.reason}）" if outcome.reason else ""),
            decision=outcome.decision,
            lead=outcome.lead,
            consent=outcome.consent,
            roles=len(outcome.roles),
            late=on > Calendar.of(config.conference).add(held_on, config.lifecycle.outcome_business_days),
        )
        if outcome.decision in ("plan", "suspend"):
            cancel_actions(log, case_id, f"会議 {meeting_id} の新しい決定")
        agreed = []
        for role in outcome.roles:
            action_id = conn.execute(
                "INSERT INTO case_actions (case_id, meeting_id, agency_id, action, due_on, status) VALUES (?,?,?,?,?, 'open')",
                (case_id, meeting_id, role.agency, role.action, role.due.isoformat()),
            ).lastrowid
            agreed.append({"action_id": action_id, "agency": role.agency, "due": role.due})
            result.actions += 1
        if outcome.roles:  # the numbers `engine done` takes are in the history
            log.event(
                "actions_agreed",
                case_id=case_id,
                meeting_id=meeting_id,
                roles=agreed,
                reason=f"役割分担 {len(agreed)}件: "
                + "、".join(f"役割 {a['action_id']}（{a['agency']}、{a['due']}まで）" for a in agreed),
            )
        if outcome.decision in ("plan", "close"):
            target = outcome.lead or lead
            then = "active" if outcome.decision == "plan" else "closed"
            if target == lead and confirmed_on:
                withdraw_requests(log, config, case_id, f"会議 {meeting_id} で確定済みの主担当機関が継続")
                if then == "active":
                    log.move(case_id, "active", "確定済みの主担当機関がプランを継続", meeting_id=meeting_id)
                    schedule_evaluation(log, config, case_id, outcome.next_evaluation)
                else:
                    close_case(log, config, case_id, "会議で終結を決定（主担当機関へ引継ぎ済み）")
            else:
                result.lead_request = request_lead(
                    log,
                    config,
                    case_id,
                    target,
                    then_status=then,
                    rule_id="conference",
                    why=f"会議 {meeting_id} の決定（{labels[outcome.decision]}）により",
                )
        elif outcome.decision == "suspend":
            withdraw_requests(log, config, case_id, f"会議 {meeting_id} で中断を決定")
            cancel_checkpoints(log, case_id, "中断")
            log.move(case_id, "suspended", f"中断: {outcome.reason}", meeting_id=meeting_id)
            review = Calendar.of(config.conference).add(outcome.review_on, 0)
            conn.execute(
                "INSERT INTO checkpoints (case_id, kind, due_on, status) VALUES (?, 'review', ?, 'pending')",
                (case_id, review.isoformat()),
            )
            log.event(
                "checkpoint_scheduled", case_id=case_id, reason=f"中断の見直し {review}", kind="review", due_on=review
            )
        else:  # continue: the next meeting
            c = Convener(conn, rules, config, on, log=log)
            if case_meeting == meeting_id:  # this meeting has been held: book the next (a later booking is kept)
                conn.execute("UPDATE cases SET meeting_id = NULL WHERE case_id = ?", (case_id,))
            c.convene_case(*c.load_case(case_id), note="継続審議。")
            result.meeting_id = conn.execute("SELECT meeting_id FROM cases WHERE case_id = ?", (case_id,)).fetchone()[
                0
            ]  # None: waits for a slot
        result.status = conn.execute("SELECT status FROM cases WHERE case_id = ?", (case_id,)).fetchone()[0]
    return result
