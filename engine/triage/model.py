"""Triage rules (configs/triage_rules.yaml) as pydantic models: which pathway a new case takes.

Read top to bottom: the first rule whose `when` holds for the case chooses its pathway. A case no
rule takes goes to a conference, as every case did before triage existed. Some choices are not the
rules' to make (engine/triage/decide.py): an urgent flag always goes to an urgent conference, a
DV-locked household and a household flagged again after an archived case always to a conference.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from engine.config.fields import LeadTarget, Strict
from engine.rules.loader import ID_PATTERN
from engine.support.vocabulary import SeverityCode

Pathway = Literal["urgent_conference", "conference", "assessment", "served", "watch"]
PATHWAYS: tuple[str, ...] = ("urgent_conference", "conference", "assessment", "served", "watch")
PATHWAY_LABELS = {
    "urgent_conference": "緊急の会議",
    "conference": "会議（支援会議・重層的支援会議）",
    "assessment": "一機関によるアセスメント（訪問・アウトリーチ）",
    "served": "支援中の機関による確認",
    "watch": "経過観察（期日に再確認）",
}
PATHWAY_SHORT = {
    "urgent_conference": "緊急の会議",
    "conference": "会議",
    "assessment": "アセスメント",
    "served": "支援中の機関の確認",
    "watch": "経過観察",
}


def mix_text(pathways: dict[str, int]) -> str:
    """The pathway mix in one line: 振り分け: 会議 12・アセスメント 40・… (none: 振り分けなし)."""
    parts = [f"{PATHWAY_SHORT[p]} {pathways[p]:,}" for p in PATHWAYS if pathways.get(p)]
    return "振り分け: " + ("・".join(parts) if parts else "なし")


class When(Strict):
    """Conditions on the case, all of which must hold (an empty `when` holds for every case)."""

    flags: tuple[str, ...] = ()  # the case has at least one of these flags
    only_flags: tuple[str, ...] = ()  # every flag of the case is one of these
    min_severity: SeverityCode | None = None  # the case's highest severity is at least this
    max_severity: SeverityCode | None = None  # … and at most this
    min_silos: int | None = Field(default=None, ge=1, le=20)  # silos the case's flags touch
    max_silos: int | None = Field(default=None, ge=1, le=20)
    min_flags: int | None = Field(default=None, ge=1, le=50)
    max_flags: int | None = Field(default=None, ge=1, le=50)
    consent: Literal["all", "not_all"] | None = None  # every person concerned has consented, or not
    served: Literal["all", "some", "none"] | None = None  # the flags' silos already serve the household


class TriageRule(Strict):
    id: str = Field(pattern=ID_PATTERN)
    when: When = When()
    pathway: Pathway
    by: LeadTarget | None = None  # assessment, watch: who assesses; served: which serving agencies
    due_business_days: int | None = Field(default=None, ge=1, le=120)  # overrides the settings' interval
    reason: str = Field(min_length=1)  # Japanese, stored with the case

    @model_validator(mode="after")
    def _assessor(self):
        if self.pathway in ("assessment", "watch") and self.by is None:
            raise ValueError(
                f"pathway {self.pathway} needs `by`: the agency that assesses the household, "
                "e.g. by: {kind: 地域包括支援センター}"
            )
        if self.pathway in ("urgent_conference", "conference") and self.by is not None:
            raise ValueError("a conference's lead comes from lead_rules.yaml: remove `by` from this rule")
        return self


class TriageSettings(Strict):
    """The intervals of the pathways, in business days, and the pace of the backlog plan."""

    assessment_business_days: int = Field(default=10, ge=1, le=60)  # an agency's answer to an assessment
    assessment_attempts: int = Field(default=3, ge=1, le=10)  # 'could not reach' this often → escalation, conference
    retry_business_days: int = Field(default=3, ge=1, le=30)  # the next attempt after 'could not reach'
    served_check_business_days: int = Field(default=10, ge=1, le=60)  # the serving agency's check-back
    watch_business_days: int = Field(default=60, ge=5, le=250)  # watch only: the re-screen date
    assessments_per_week: int = Field(default=10, ge=1, le=1000)  # per agency: new assessments asked a week
    # a conference case that finds no meeting within conference.max_business_days_to_conference
    # is first assessed by the agency the lead rules propose (conference: it waits for a slot)
    conference_overflow: Literal["assessment", "conference"] = "assessment"


class Triage(Strict):
    settings: TriageSettings = TriageSettings()
    rules: tuple[TriageRule, ...] = ()  # none: every case goes to a conference (as before triage)
