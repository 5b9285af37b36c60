"""A small 参加支援 directory written for a test (resources.yaml and matching_rules.yaml in a copy of
the shipped configs/), so that tests do not depend on the shipped 40 places' fixed dates."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import yaml

from engine.config import load_config
from tests.helpers.configs import configs
from tests.helpers.town import ON

FRESH = ON - timedelta(days=30)  # verified a month before ON
STALE = date(ON.year - 2, ON.month, 1)  # verified two years before: stale for 12 months

# a hikikomori son (52, 世帯員2) and his father (82, 世帯員1) in 中央: the 8050 household of the tests
RULES_YAML = {
    "match_rules": [
        {
            "id": "withdrawn_to_ibasho",
            "when": {"indicators": ["hikikomori"], "needs": ["social_contact"]},
            "ages": {"min": 15, "max": 64},
            "categories": ["ibasho"],
            "reason": "家の外に安心して過ごせる場所をつくるため",
        },
        {
            "id": "carer_respite",
            "when": {"flags": ["8050"], "needs": ["respite"]},
            "ages": {"min": 65},
            "categories": ["salon"],
            "reason": "通いの場で日中の活動と見守りの目を増やすため",
        },
        {
            "id": "role_for_elder",
            "when": {"needs": ["role"]},
            "categories": ["volunteer"],
            "reason": "経験を生かせる役割のある活動につなぐため",
        },
    ]
}


def place(
    pid: str,
    category: str = "ibasho",
    *,
    area: str = "中央",
    ages: dict | None = None,
    needs: tuple[str, ...] = (),
    indicators: tuple[str, ...] = (),
    available: int = 2,
    updated_on: date = FRESH,
    assured_on: date = FRESH,
    consent_required: bool = False,
    status: str = "active",
    rrule: str = "FREQ=WEEKLY;BYDAY=TU",
) -> dict:
    eligibility: dict = {}
    if ages:
        eligibility["ages"] = ages
    if needs:
        eligibility["needs"] = list(needs)
    if indicators:
        eligibility["indicators"] = list(indicators)
    return {
        "id": pid,
        "name": f"場所{pid}",
        "organisation": f"運営{pid}",
        "category": category,
        "area": area,
        "address": "本市中央地区センター 1階",
        "for": eligibility,
        "schedule": {"rrule": rrule, "start": "13:00", "end": "16:00"},
        "capacity": {"available": available, "maximum": 10, "updated_on": updated_on.isoformat()},
        "email": f"{pid}@resources.example.org",
        "consent_required": consent_required,
        "assured_on": assured_on.isoformat(),
        "status": status,
    }


def write_directory(config_dir: Path, places: list[dict], match_rules: dict = RULES_YAML, stale_months: int = 12):
    (config_dir / "resources.yaml").write_text(
        yaml.safe_dump({"settings": {"stale_months": stale_months}, "places": places}, allow_unicode=True),
        encoding="utf-8",
    )
    (config_dir / "matching_rules.yaml").write_text(yaml.safe_dump(match_rules, allow_unicode=True), encoding="utf-8")


def config_with(tmp_path: Path, rules, places: list[dict], match_rules: dict = RULES_YAML):
    """A copy of configs/ whose directory holds only `places` (and the test's matching rules): (dir, Config)."""
    d = configs(tmp_path, under="configs-matching")
    write_directory(d, places, match_rules)
    return d, load_config(d, rules)
