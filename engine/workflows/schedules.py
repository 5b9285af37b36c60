"""The schedules, declared in one version-controlled place.

nightly-cycle   02:00 every day, Asia/Tokyo
daily-sweep     07:00 every day, Asia/Tokyo (reminders, escalations, watch, audit; the digest on business days)
agenda-dispatch 08:00 Monday to Friday, Asia/Tokyo (the flow itself skips holidays and 年末年始)
"""

from __future__ import annotations

from prefect.schedules import Cron
from prefect.utilities.callables import ParameterSchema

from engine.workflows.flows import dispatch_flow, nightly_flow, sweep_flow

TIMEZONE = "Asia/Tokyo"
SCHEDULES = {
    "nightly-cycle": ("0 2 * * *", nightly_flow),
    "daily-sweep": ("0 7 * * *", sweep_flow),
    "agenda-dispatch": ("0 8 * * 1-5", dispatch_flow),
}


class ClosedParameters(ParameterSchema):
    """The flows' parameter schema with `additionalProperties: false`: the API refuses a flow run
    with a parameter the flows do not take (a path, say) before it is created."""

    additionalProperties: bool = False


def deployments() -> list:
    """RunnerDeployments for `serve` (no API call is made here). They carry no parameter: the
    workspace, rules and configuration are bound by `engine serve` itself (settings.bind)."""
    made = []
    for name, (cron, fl) in SCHEDULES.items():
        dep = fl.to_deployment(name=name, schedule=Cron(cron, timezone=TIMEZONE), tags=["engine"])
        dep.enforce_parameter_schema = True
        dep._parameter_openapi_schema = ClosedParameters(
            **dep._parameter_openapi_schema.model_dump(exclude_unset=True), additionalProperties=False
        )
        made.append(dep)
    return made
