"""The assessment pathway after it starts, and the re-screen of a watched case.

An agency asked to assess a household (a visit or outreach) answers, through its e-mail's link or
by telephone to the coordinator (`engine assess CASE --result …`):

resolved          → its own silo's support covers it: the case is closed with that agency as its
                    lead, and the usual watch after closure follows (見守り, もどし if it fails)
needs_conference  → with what it found (a note, checked for personal data): the case goes to a
                    conference, booked by priority like any other
could_not_reach   → another attempt after retry_business_days; after assessment_attempts
                    attempts the coordinator is told (escalation) and the case goes to a conference

A household DV-locked since the agency was asked is never left with one agency: whatever the
answer, it is recorded and the case goes to a conference, where the DV centre takes part.

A watched case's re-screen day: with its flags gone the case ends (archived); with a flag still open
it is triaged again, without the watch rules, so that it gets an owner.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from typing import Literal

from pydantic import BaseModel

from engine.casework.steps import cancel_checkpoints, close_case
from engine.conference.choose import concerned_persons
from engine.config import Config
from engine.outbox.keys import MessageKey
from engine.papers.agenda import silo_facts
from engine.papers.notices import Notice, answer_by_link, queue_notice, recipient_name
from engine.policy import consent
from engine.policy.dv import household_locked, locked_among
from engine.policy.members import may_share_with
from engine.rules.model import RuleSet
from engine.store.chronology import AS_GIVEN, Dating, check_event, note_backdate
from engine.store.db import write_transaction
from engine.store.lifecycle import STATE_LABELS, Log
from engine.support.business_days import Calendar
from engine.support.dates import wareki_with_weekday
from engine.support.errors import EngineError
from engine.support.vocabulary import ASSESSMENT_RESULT_LABELS

Result = Literal["resolved", "needs_conference", "could_not_reach"]


class AssessmentError(EngineError):
    pass


class AssessmentResult(BaseModel):
    case_id: str
    checkpoint_id: int
    result: str
    attempt: int  # the attempt this answer closes (1: the first request)
    status: str  # the case's state afterwards


def attempts(conn: sqlite3.Connection, case_id: str) -> int:
    """The 'could not reach' answers the case's assessment has had."""
    return conn.execute(
        "SELECT COUNT(*) FROM checkpoints WHERE case_id = ? AND kind = 'assessment' AND result = 'could_not_reach'",
        (case_id,),
    ).fetchone()[0]


def attempt_no(result: str, unreachable: int) -> int:
    """The attempt an answer closes (1: the first request), given the 'could not reach' answers
    counted after recording it."""
    return unreachable if result == "could_not_reach" else unreachable + 1


def ask_assessment(c, checkpoint_id: int, case_id: str, agency: str) -> bool:
    """The day an assessment starts: the agency gets the request with its answer link (`c`: the
    sweep's Convener). What it may be told is decided again today: a household DV-locked meanwhile is
    not told of (the night takes it to a conference, engine/triage/pathways.py); an agency that is no
    支援会議 member hears only of the persons concerned who consented, and only while they all do —
    else the case goes to a conference now. Returns True when the request was queued."""
    conn, rules, config, log = c.conn, c.rules, c.config, c.log
    on, cal = log.on, Calendar.of(config.conference)
    hid, opened_on = conn.execute("SELECT household_id, opened_on FROM cases WHERE case_id = ?", (case_id,)).fetchone()
    if household_locked(conn, config, hid, on.isoformat()):
        return False
    _, cand, hh = c.load_case(case_id)
    concerned = concerned_persons(cand, hh)
    consented = concerned <= consent.consenting(hh, on.isoformat())
    assessor = config.agencies.get(agency)
    if assessor is None or not may_share_with(assessor, "multi" if consented else "support"):
        why = f"{recipient_name(config, agency)}は支援会議の構成員でなく、対象者全員の本人同意が確認できない"
        _to_conference(c, case_id, "consent", 0, recipient_name(config, agency), why)
        return False
    (answer_due,) = conn.execute(
        "SELECT answer_due FROM checkpoints WHERE checkpoint_id = ?", (checkpoint_id,)
    ).fetchone()
    due = (
        max(date.fromisoformat(answer_due), cal.add(on, 1))
        if answer_due
        else cal.add(on, config.triage.settings.assessment_business_days)
    )
    conn.execute(
        "UPDATE checkpoints SET status = 'asked', asked_on = ?, answer_due = ? WHERE checkpoint_id = ?",
        (on.isoformat(), due.isoformat(), checkpoint_id),
    )
    name = recipient_name(config, agency)
    tried = attempts(conn, case_id)
    log.event(
        "checkpoint_asked",
        case_id=case_id,
        reason=f"アセスメントを{name}に依頼（{tried + 1}回目）、回答期限 {due}",
        kind="assessment",
        checkpoint_id=checkpoint_id,
        agency=agency,
    )
    flags = sorted(
        {
            r
            for (r,) in conn.execute(
                "SELECT f.rule_id FROM case_flags c JOIN flags f ON f.flag_id = c.flag_id WHERE c.case_id = ? AND f.status = 'open'",
                (case_id,),
            )
        }
    )
    # a member hears its silo's facts of the household (as in a 支援会議); a non-member, with consent,
    # only those of the persons concerned, who consented (as in a 重層的支援会議's agenda)
    only = None if assessor.member else concerned
    facts = silo_facts(hh, assessor.silo, on.isoformat(), only, age_iso=opened_on)
    labels = ASSESSMENT_RESULT_LABELS
    queue_notice(
        conn,
        config,
        Notice(
            key=str(MessageKey.checkpoint(checkpoint_id)),
            kind="checkpoint",
            recipient=agency,
            case_id=case_id,
            title="世帯のアセスメント（訪問・アウトリーチ）のお願い",
            issued_on=on,
            lines=[
                f"分野横断のスクリーニングで、事案 {case_id} の世帯に次の課題が見つかりました。",
                "課題: " + "／".join(rules.flags[f].title for f in flags if f in rules.flags),
                *(
                    ["貴機関の分野の情報:"]
                    + [f"  - {f.member}: {f.title}" + (f" {f.value}" if f.value else "") for f in facts]
                ),
                "会議に先立ち、貴機関に世帯の状況の確認（訪問・電話などのアウトリーチ）をお願いします。"
                + (f"これまで{tried}回、接触できていません（{tried + 1}回目のお願いです）。" if tried else ""),
                f"「{labels['resolved']}」の場合は貴機関を主担当として終結し、見守りの時期にご様子を伺います。",
                f"「{labels['needs_conference']}」の場合は、見立てをメモに添えてください（氏名・住所は書かないでください）。",
                f"「{labels['could_not_reach']}」の場合は、日を改めて再度お願いします"
                f"（{config.triage.settings.assessment_attempts}回接触できなければ会議で検討します）。",
                f"ご回答の期限: {wareki_with_weekday(due)}",
            ],
            answer=answer_by_link("次のリンクから結果を選び、ご回答ください。"),
        ),
    )
    return True


def answer_assessment(
    conn: sqlite3.Connection,
    rules: RuleSet,
    config: Config,
    case_id: str,
    result: str,
    on: date,
    actor: str,
    agency_id: str | None = None,
    note: str | None = None,
    *,
    dating: Dating = AS_GIVEN,
) -> AssessmentResult:
    """Record an assessment's result (see the module's docstring), in one transaction."""
    from engine.casework.notes import check_note
    from engine.conference.convene import Convener

    if result not in ASSESSMENT_RESULT_LABELS:
        raise AssessmentError(f"--result: '{result}' is not one of {', '.join(ASSESSMENT_RESULT_LABELS)}")
    log = Log(conn, on, actor, rules_hash=rules.hash, config_hash=config.hash)
    with write_transaction(conn):
        status = log.status(case_id)
        row = conn.execute(
            "SELECT p.checkpoint_id, p.due_on, c.routed_to FROM checkpoints p JOIN cases c ON c.case_id = p.case_id "
            "WHERE p.case_id = ? AND p.kind = 'assessment' AND (p.status = 'asked' OR (p.status = 'pending' AND p.due_on <= ?)) "
            "ORDER BY p.due_on LIMIT 1",
            (case_id, on.isoformat()),
        ).fetchone()
        if status != "assessing" or row is None:
            raise AssessmentError(
                f"事案 {case_id}（{STATE_LABELS.get(status, status)}）に回答を待つアセスメントはありません"
            )
        checkpoint_id, due_on, assessor = row
        if agency_id and agency_id != assessor:
            raise AssessmentError(
                f"--agency {agency_id}: 事案 {case_id} のアセスメントを依頼したのは {recipient_name(config, assessor)} です"
            )
        if result == "needs_conference" and not (note or "").strip():
            raise AssessmentError(
                "「会議での検討が必要」の場合は、見立てを --note に書いてください（氏名・住所は書かない）"
            )
        note = check_note(conn, case_id, note) if (note or "").strip() else None
        check_event(conn, on, dating, answers=due_on, what=f"assessment {checkpoint_id}", case_id=case_id)
        note_backdate(log, dating, case_id=case_id)
        conn.execute(
            "UPDATE checkpoints SET status = 'done', result = ?, done_on = ? WHERE checkpoint_id = ?",
            (result, on.isoformat(), checkpoint_id),
        )
        tried = attempts(conn, case_id)
        name = recipient_name(config, assessor)
        log.event(
            "assessment_answered",
            case_id=case_id,
            reason=f"{name}のアセスメント: {ASSESSMENT_RESULT_LABELS[result]}"
            + (f"（見立て: {note}）" if note else ""),
            result=result,
            checkpoint_id=checkpoint_id,
            agency=assessor,
            attempt=attempt_no(result, tried),
            note=note,
        )
        if result != "could_not_reach":
            log.contact(case_id, assessor, "assessment")
        if result != "needs_conference" and _locked_since(conn, rules, config, on, log, case_id):
            pass  # the answer is kept, and the case went to a conference (never one agency alone)
        elif result == "resolved":
            conn.execute(
                "UPDATE cases SET lead_agency_id = ?, lead_rule_id = 'assessment', lead_reason = ?, lead_reason_shared = ?, "
                "lead_confirmed_on = ?, routed_to = NULL WHERE case_id = ?",
                (
                    assessor,
                    f"アセスメントを行った{name}が所管の支援で対応",
                    f"{name}が所管の支援で対応。",
                    on.isoformat(),
                    case_id,
                ),
            )
            conn.execute(
                "UPDATE case_agencies SET role = 'lead' WHERE case_id = ? AND agency_id = ?", (case_id, assessor)
            )
            close_case(log, config, case_id, f"{name}のアセスメントで所管の支援により対応できると判断")
        elif result == "needs_conference" or tried >= config.triage.settings.assessment_attempts:
            if result == "could_not_reach":
                log.escalate(
                    f"assessment:{case_id}",
                    "assessment_unreachable",
                    f"事案 {case_id}: {name}が{tried}回アウトリーチを試みても世帯に接触できないため会議に付議",
                    case_id=case_id,
                )
            _to_conference(Convener(conn, rules, config, on, log=log), case_id, result, tried, name, note)
        else:
            settings, cal = config.triage.settings, Calendar.of(config.conference)
            again = cal.add(on, settings.retry_business_days)
            conn.execute(
                "INSERT INTO checkpoints (case_id, kind, due_on, status, answer_due) VALUES (?, 'assessment', ?, 'pending', ?)",
                (case_id, again.isoformat(), cal.add(again, settings.assessment_business_days).isoformat()),
            )
            log.event(
                "checkpoint_scheduled",
                case_id=case_id,
                reason=f"{name}へのアセスメントの再依頼 {again}（{tried + 1}回目）",
                kind="assessment",
                due_on=again,
            )
        return AssessmentResult(
            case_id=case_id,
            checkpoint_id=checkpoint_id,
            result=result,
            attempt=attempt_no(result, tried),
            status=log.status(case_id),
        )


def _locked_since(conn: sqlite3.Connection, rules: RuleSet, config: Config, on: date, log: Log, case_id: str) -> bool:
    """A household DV-locked since the agency was asked goes to a conference whatever the answer, as
    the night would take it there (pathways.lock_to_conference): it is never left with one agency.
    True if the case went."""
    from engine.conference.convene import Convener
    from engine.triage.pathways import lock_to_conference

    (household,) = conn.execute("SELECT household_id FROM cases WHERE case_id = ?", (case_id,)).fetchone()
    locked = locked_among(conn, config, {household}, on.isoformat())
    return lock_to_conference(Convener(conn, rules, config, on, log=log), case_id, "assessing", household, locked)


def _to_conference(c, case_id: str, result: str, tried: int, name: str, note: str | None) -> None:
    from engine.triage.decide import Decision
    from engine.triage.pathways import record_pathway

    if result == "needs_conference":
        why = f"{name}のアセスメントで会議での検討が必要と判断（見立て: {note}）"
        then = f"{name}のアセスメントで会議での検討が必要と判断したため会議に付議（見立て: {note}）。"
    elif result == "consent":  # `note`: why the agency may not be asked
        why, then = note, note + "ため、アセスメントを依頼せず会議に付議。"
        cancel_checkpoints(c.log, case_id, "本人同意がなく一機関には依頼できない", ("assessment",))
    else:
        why = f"{name}が{tried}回試みても世帯に接触できない"
        then = why + "ため会議に付議。"
    rule = "consent" if result == "consent" else "assessment"
    record_pathway(c, case_id, Decision(pathway="conference", rule_id=rule, reason=why))
    c.convene_case(*c.load_case(case_id), note=then)


def rescreen(c, checkpoint_id: int, case_id: str, due: str) -> str:
    """A watched case's re-screen day: archived without open flags, else triaged again (no watch)."""
    from engine.triage.pathways import choose, start

    c.conn.execute(
        "UPDATE checkpoints SET status = 'done', done_on = ? WHERE checkpoint_id = ?", (c.on_iso, checkpoint_id)
    )
    found = list(
        c.recheck(
            "SELECT c.case_id, c.household_id, h.area FROM cases c JOIN households h ON h.household_id = c.household_id WHERE c.case_id = ?",
            (case_id,),
        )
    )
    _, cand, hh = found[0]
    if not cand.flags:
        c.log.move(case_id, "archived", f"経過観察の再確認日（{due}）に課題が解消していたため終了")
        cancel_checkpoints(c.log, case_id, "経過観察の終了")
        return "archived"
    d = choose(c, case_id, cand, hh, relinked=False, skip=frozenset({"watch"}))
    start(
        c,
        case_id,
        cand,
        hh,
        d,
        note=f"経過観察の再確認日（{due}）に課題が続いているため。",
        previous_lead=None,
        new=False,
    )
    return d.pathway
