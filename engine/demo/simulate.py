"""A simulated span of days for the demo: the engine's own jobs run on a fake clock, and simulated
people (the coordinator and the agencies) answer — on time, late, or never.

Every day, in the order of the real schedule:
  02:00 nightly cycle (screen, convene, agendas)   07:00 daily sweep   08:00 dispatch (business days)
  during the day: the coordinator records outcomes; agencies accept or decline, do their actions,
  answer watch checkpoints and log contacts; on one day a new silo extract is imported in which
  some closed households fall into arrears again (a relapse the nightly screen must catch);
  参加支援 (engine/demo/participation.py): some plans refer members to places, places answer
  referrals, the lead and the place answer follow-ups, the coordinator refers needs left open.
Behaviour is drawn from a random generator seeded per case, so a seed gives the same story.
Everything goes through the same functions the CLI calls (outcome files are real YAML files).
An agency answers from the link in the e-mail that asked it, read from the sent .eml file in the
outbox folder as a real agency would (engine/links); without such an e-mail (a role done before
its reminder, a request the members-only rule kept from going) it tells the coordinator, who
records the answer with the CLI's functions.
"""

from __future__ import annotations

import csv
import email
import email.policy
import random
import re
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel

from engine.casework.escalations import escalations, record_act
from engine.casework.handshake import accept, action_done, decline, record_contact
from engine.casework.outcome import record_outcome
from engine.casework.steps import owed_outcomes
from engine.casework.sweep import daily_sweep
from engine.casework.watch import WatchError, answer_checkpoint
from engine.config import Config
from engine.demo import participation
from engine.intake.importer import import_dir
from engine.links import AnswerRefused, LinkNotFound, lookup
from engine.links import answer as answer_by_link
from engine.links.tokens import TOKEN_TEXT
from engine.rules.model import RuleSet
from engine.support import clock
from engine.support.business_days import Calendar
from engine.support.private_files import open_private, write_private
from engine.support.progress import Progress, report
from engine.triage.assessment import answer_assessment
from engine.workflows.cycle import dispatch, nightly_cycle

ACTIONS = {
    "介護": "介護サービスの利用調整と訪問",
    "障害": "障害福祉サービスの利用相談",
    "子ども": "子どもの状況確認と学校との連携",
    "困窮": "家計改善と就労の相談",
    "保護": "生活保護の要否の確認",
    "DV": "安全確保の確認",
    "教育": "就学状況の確認",
}
PROGRESS_LABEL = "模擬期間"


class Story(BaseModel):
    days: int
    outcomes: int = 0
    outcomes_late: int = 0
    accepted: int = 0
    accepted_late: int = 0
    declined: int = 0
    never_answered: int = 0
    actions_done: int = 0
    actions_late: int = 0
    actions_never: int = 0
    watch_answers: int = 0
    assessments_answered: int = 0
    escalations_followed: int = (
        0  # the coordinator's acts on escalations (engine escalation KEY)  # triage: agencies' answers to assessments
    )
    link_answers: int = 0  # of the answers above (accepted, declined, actions done, watch): through the e-mail's link
    contacts: int = 0
    relapse_households: int = 0
    referral_answers: int = 0  # 参加支援: places' (or introducers') answers to referrals
    followup_answers: int = 0  # the lead's and the place's answers to follow-ups
    referrals_made_later: int = 0  # by the coordinator after the conference (a need left open, a decline)
    needs_settled: int = 0  # needs no place in the town could take: the coordinator recorded why (engine need)
    reminders_queued: int = 0
    sweep_escalations: int = 0
    seconds: dict[str, float] = {}  # per step, summed over the span: nightly, sweep, dispatch, people


class Simulation:
    def __init__(
        self,
        conn: sqlite3.Connection,
        workspace: Path,
        rules: RuleSet,
        config: Config,
        start: date,
        days: int,
        seed: int,
        transport,
    ):
        self.conn, self.workspace, self.rules, self.config = conn, Path(workspace), rules, config
        self.start, self.days, self.seed, self.transport = start, days, seed, transport
        self.end = start + timedelta(days=days)
        self.cal = Calendar.of(config.conference)
        self.story = Story(days=days)
        self.seen: set[str] = set()
        self.noticed: dict[str, date] = {}  # 参加支援: when the coordinator first saw an open need
        self.before_day = None  # a callable(day) run before each day's night (engine/demo/year.py)
        self.swept: list[tuple[date, object]] = []  # each day's SweepResult (its audit by kind, the gaps)

    def rng(self, key: str) -> random.Random:
        return random.Random(f"{self.seed}:{key}")

    def once(self, key: str) -> bool:
        """True the first time a decision about `key` is counted."""
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def run(self, progress: Progress | None = None) -> Story:
        """Simulate the span day by day; `progress` hears each day done."""
        spent = {"nightly": 0.0, "sweep": 0.0, "dispatch": 0.0, "people": 0.0}

        def timed(step: str, fn, *args, **kwargs):
            t = clock.monotonic()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[step] += clock.monotonic() - t

        report(progress, 0, self.days, PROGRESS_LABEL)
        for i in range(1, self.days + 1):
            on = self.start + timedelta(days=i)
            if self.before_day:  # the simulated year's new extracts: households moving in, relapses
                timed("people", self.before_day, on)
            timed("nightly", nightly_cycle, self.conn, self.workspace, self.rules, self.config, on)
            swept = timed("sweep", daily_sweep, self.conn, self.rules, self.config, on)
            self.swept.append((on, swept))
            self.story.reminders_queued += swept.reminders
            self.story.sweep_escalations += swept.escalations
            timed("dispatch", dispatch, self.conn, self.config, self.workspace, on, transport=self.transport)
            if i == self.days * 5 // 8:
                timed("people", self.relapse, on)
            timed("people", self.coordinator, on)
            timed("people", self.agencies, on)
            timed("people", participation.places, self, on)
            timed("people", participation.followups, self, on)
            report(progress, i, self.days, PROGRESS_LABEL)
        self.story.seconds = {k: round(v, 2) for k, v in spent.items()}
        return self.story

    # --- the coordinator ----------------------------------------------------------------------
    def coordinator(self, on: date) -> None:
        for case_id, meeting_id, held_on in owed_outcomes(self.conn, on.isoformat(), inclusive=True):
            status, lead, kind = self.conn.execute(
                "SELECT status, lead_agency_id, conference_type FROM cases WHERE case_id = ?", (case_id,)
            ).fetchone()
            r = self.rng(f"outcome:{case_id}:{meeting_id}")
            held = date.fromisoformat(held_on)
            late = r.random() < 0.15 and held < self.end - timedelta(days=14)
            if on < (self.cal.add(held, 3) if late else held):
                continue
            self.story.outcomes_late += late
            body = decide(self.conn, self.config, r, case_id, status, lead, on)
            if body["decision"] in ("plan", "close") and (
                entries := participation.entries(self, case_id, meeting_id, on)
            ):
                body["participation"] = entries
            path = self.workspace / "sim" / "outcomes" / f"{case_id}_{meeting_id}.yaml"
            write_private(path, yaml.safe_dump(body, allow_unicode=True, sort_keys=False))
            record_outcome(self.conn, self.rules, self.config, meeting_id, case_id, path, on, "coordinator(sim)")
            self.story.outcomes += 1
        participation.refer_needs(self, on)
        follow_escalations(self, on)

    # --- the agencies -------------------------------------------------------------------------
    def agencies(self, on: date) -> None:
        for request_id, case_id, agency, requested_on in self.conn.execute(
            "SELECT request_id, case_id, agency_id, requested_on FROM lead_requests WHERE status = 'pending' ORDER BY request_id"
        ).fetchall():
            r = self.rng(f"request:{request_id}")
            x = r.random()
            asked = date.fromisoformat(requested_on)
            if x < 0.05:  # never answers: the sweep escalates it to the coordinator
                self.story.never_answered += self.once(f"never:{request_id}")
                continue
            late = x > 0.83
            when = self.cal.add(asked, r.randint(7, 9) if late else r.randint(1, 3))
            if on < when:
                continue
            reason = "担当件数が上限に達しているため"
            if 0.05 <= x < 0.15:
                if not self.by_link(on, [f"lead_request:{request_id}"], "decline", reason):
                    decline(self.conn, self.rules, self.config, case_id, reason, on, f"{agency}(sim)", agency)
                self.story.declined += 1
            else:
                if not self.by_link(on, [f"lead_request:{request_id}"], "accept"):
                    accept(self.conn, self.config, case_id, on, f"{agency}(sim)", agency)
                self.story.accepted += 1
                self.story.accepted_late += late
        for action_id, due_on in self.conn.execute(
            "SELECT action_id, due_on FROM case_actions WHERE status = 'open' ORDER BY action_id"
        ).fetchall():
            r = self.rng(f"action:{action_id}")
            x = r.random()
            due = date.fromisoformat(due_on)
            if x < 0.08:
                self.story.actions_never += self.once(f"never-action:{action_id}")
                continue
            when = due + timedelta(days=r.randint(2, 10)) if x > 0.78 else due - timedelta(days=r.randint(0, 5))
            if on >= when:
                reminders = [
                    f"reminder:{action_id}:{stage}{lock}" for stage in ("overdue", "due") for lock in (":locked", "")
                ]
                if not self.by_link(on, reminders, "done"):
                    action_done(self.conn, self.config, action_id, on, "agency(sim)")
                self.story.actions_done += 1
                self.story.actions_late += on > due
        for checkpoint_id, case_id, asked_on, kind in self.conn.execute(
            "SELECT checkpoint_id, case_id, asked_on, kind FROM checkpoints WHERE status = 'asked' ORDER BY checkpoint_id"
        ).fetchall():
            r = self.rng(f"checkpoint:{checkpoint_id}")
            (still,) = self.conn.execute(
                "SELECT status FROM checkpoints WHERE checkpoint_id = ?", (checkpoint_id,)
            ).fetchone()
            if still != "asked":  # an earlier answer today moved the case on (a concern sends it to a conference)
                continue
            if kind == "assessment":
                assess(self, on, r, checkpoint_id, case_id, date.fromisoformat(asked_on))
                continue
            x = r.random()
            if x < 0.2:  # no answer: escalated; a lead that never logs contact also triggers the 90-day reopen
                continue
            if on < self.cal.add(date.fromisoformat(asked_on), r.randint(1, 3)):
                continue
            result = "stable" if x < 0.75 else ("concern" if x < 0.93 else "lost_contact")
            note = {"concern": "本人の体調が悪化し、家計の管理が難しくなっている"}.get(result)
            if not self.by_link(on, [f"checkpoint:{checkpoint_id}"], result, note):
                try:  # by telephone; the link's answer may have been given to an earlier checkpoint of the case
                    answer_checkpoint(self.conn, self.rules, self.config, case_id, result, on, "agency(sim)")
                except WatchError:
                    continue
            self.story.watch_answers += 1
        # leads that keep in touch with a closed household log a contact about once a month
        for case_id, lead, closed_on in self.conn.execute(
            "SELECT case_id, lead_agency_id, closed_on FROM cases WHERE status = 'closed' ORDER BY case_id"
        ).fetchall():
            r = self.rng(f"contact:{case_id}:{closed_on}")
            if (
                r.random() < 0.55
                and (on - date.fromisoformat(closed_on)).days % 30 == 29
                and self.cal.is_business_day(on)
            ):
                record_contact(self.conn, self.config, case_id, lead, on, f"{lead}(sim)")
                self.story.contacts += 1

    def by_link(self, on: date, keys: list[str], choice: str, note: str | None = None) -> bool:
        """Answer from the link of the latest of these e-mails the agency received (its .eml file in the
        outbox folder); False when it received none that can still be answered."""
        link = re.compile(re.escape(self.config.web.base_url) + r"/a/(" + TOKEN_TEXT + ")")
        for key in keys:
            path = self.workspace / "outbox" / (key.replace(":", "_") + ".eml")
            if not path.exists():
                continue
            text = email.message_from_bytes(path.read_bytes(), policy=email.policy.default).get_body(("plain",))
            found = link.search(text.get_content()) if text else None
            try:
                if found is None or lookup(self.conn, self.config, found[1], on).state != "open":
                    continue
            except LinkNotFound:
                continue
            try:
                answer_by_link(self.conn, self.config, self.rules, found[1], choice, note, on)
            except AnswerRefused:  # e.g. an earlier checkpoint of the case is open: the coordinator is told
                return False
            self.story.link_answers += 1
            return True
        return False

    def relapse(self, on: date) -> None:
        self.story.relapse_households = relapse(self.conn, self.workspace, on)


def decide(
    conn: sqlite3.Connection, config: Config, r: random.Random, case_id: str, status: str, lead: str | None, on: date
) -> dict:
    """What the simulated conference decides for a case: suspend, continue, close or a plan with roles."""
    x = r.random()
    first = status == "convened"
    if first and x < 0.06:
        return {
            "decision": "suspend",
            "consent": "refused",
            "reason": "本人が現時点での支援を希望しないため",
            "review_on": (on + timedelta(days=r.randint(30, 60))).isoformat(),
        }
    if first and x < 0.14:
        return {"decision": "continue", "consent": "pending"}
    closing = (first and x < 0.40) or (not first and x < 0.5)
    invited = [
        a
        for (a,) in conn.execute(
            "SELECT agency_id FROM case_agencies WHERE case_id = ? ORDER BY role = 'lead' DESC, agency_id",
            (case_id,),
        )
    ]
    lead = lead or (invited[0] if invited else None)
    roles = []
    for agency in ([lead] + [a for a in invited if a != lead][:1]) if lead else []:
        silo = config.agencies[agency].silo
        roles.append(
            {
                "agency": agency,
                "action": ACTIONS.get(silo, "状況の確認"),
                "due": (on + timedelta(days=r.randint(7, 40))).isoformat(),
            }
        )
    body = {"decision": "close" if closing else "plan", "lead": lead, "consent": r.choice(["obtained", "pending"])}
    if closing:
        body["reason"] = "主担当機関による継続的な支援へ引継ぎ"
    else:
        body["roles"] = roles
    return body


def relapse(conn: sqlite3.Connection, workspace: Path, on: date) -> int:
    """A new extract: a few households of closed cases are in arrears again (two kinds, 4 months)."""
    hids = [
        h
        for (h,) in conn.execute(
            "SELECT c.household_id FROM cases c WHERE c.status IN ('closed', 'archived') AND NOT EXISTS "
            "(SELECT 1 FROM flags f WHERE f.household_id = c.household_id AND f.rule_id = 'multiple_arrears' AND f.status = 'open') ORDER BY c.case_id LIMIT 3"
        )
    ]
    if not hids:
        return 0
    folder = workspace / "sim" / f"extract-{on.isoformat()}"
    marks = ",".join("?" * len(hids))
    tables = {
        "households.csv": (
            "household_id,area,address",
            f"SELECT household_id, area, address FROM households WHERE household_id IN ({marks})",
        ),
        "persons.csv": (
            "person_id,household_id,name,kana,birth_date,sex,relationship,nationality",
            f"SELECT person_id, household_id, name, kana, birth_date, sex, relationship, nationality FROM persons WHERE household_id IN ({marks})",
        ),
    }
    for name, (header, sql) in tables.items():
        with open_private(folder / name, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(header.split(","))
            w.writerows(conn.execute(sql, hids))
    started = (on - timedelta(days=120)).isoformat()
    with open_private(folder / "records.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["person_id", "source", "code", "value", "start_date", "end_date"])
        for hid in hids:
            head = conn.execute(
                "SELECT person_id FROM persons WHERE household_id = ? ORDER BY relationship != '世帯主', person_id LIMIT 1",
                (hid,),
            ).fetchone()[0]
            w.writerow([head, "国保", "arrears", "kokuho:4", started, ""])
            w.writerow([head, "水道", "arrears", "water:4", started, ""])
    import_dir(conn, folder, today=on)
    return len(hids)


def follow_escalations(sim: Simulation, on: date) -> None:
    """The coordinator phones about an escalation nobody has acted on, mostly within 3 business
    days, some (20%) only after 8, and records it with a new due date a week on."""
    if not sim.cal.is_business_day(on):
        return
    for e in escalations(sim.conn, sim.config, on):
        if e.settled or e.age < (8 if sim.rng(f"esc:{e.key}:{e.since}").random() < 0.2 else 3):
            continue
        record_act(
            sim.conn,
            sim.config,
            e.key,
            on,
            "coordinator(sim)",
            due=sim.cal.add(on, 5),
            note="機関に電話で状況を確認し、期日を設定",
        )
        sim.story.escalations_followed += 1


def assess(sim: Simulation, on: date, r: random.Random, checkpoint_id: int, case_id: str, asked: date) -> None:
    """An agency's assessment (triage): 5% never answer, 20% late; of the answers about half are
    resolved within the agency's silo, a quarter need a conference, the rest could not reach."""
    x = r.random()
    if x < 0.05:
        sim.story.never_answered += sim.once(f"never-assessment:{checkpoint_id}")
        return
    late = x > 0.80
    if on < sim.cal.add(asked, r.randint(11, 15) if late else r.randint(2, 8)):
        return
    y = r.random()
    result = "resolved" if y < 0.5 else ("needs_conference" if y < 0.8 else "could_not_reach")
    note = {"needs_conference": "訪問で、介護と家計の両方に支援が必要な状況を確認した"}.get(result)
    if not sim.by_link(on, [f"checkpoint:{checkpoint_id}"], result, note):
        answer_assessment(sim.conn, sim.rules, sim.config, case_id, result, on, "agency(sim)", note=note)
    sim.story.assessments_answered += 1
