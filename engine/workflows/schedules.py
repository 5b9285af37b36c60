"""The schedules, declared in one version-controlled place.

nightly-cycle   02:00 every day, Asia/Tokyo
daily-sweep     07:00 every day, Asia/Tokyo (reminders, escalations, watch, audit; the digest on business days)
agenda-dispatch 08:00 Monday to Friday, Asia/Tokyo (the flow itself skips holidays and 年末年始)
"""

from __future__ import annotations

from pathlib import Path

from prefect.schedules import Cron

from engine.workflows.flows import dispatch_flow, nightly_flow, sweep_flow

TIMEZONE = "Asia/Tokyo"
SCHEDULES = {
    "nightly-cycle": ("0 2 * * *", nightly_flow),
    "daily-sweep": ("0 7 * * *", sweep_flow),
    "agenda-dispatch": ("0 8 * * 1-5", dispatch_flow),
}


def deployments(workspace: Path, rules_dir: Path, config_dir: Path) -> list:
    """RunnerDeployments for `serve` (no API call is made here)."""
    params = {
        "workspace": str(Path(workspace).resolve()),
        "rules_dir": str(Path(rules_dir).resolve()),
        "config_dir": str(Path(config_dir).resolve()),
    }
    return [
        fl.to_deployment(name=name, schedule=Cron(cron, timezone=TIMEZONE), parameters=params, tags=["engine"])
        for name, (cron, fl) in SCHEDULES.items()
    ]
