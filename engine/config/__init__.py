"""The municipality's configuration files: agencies, conference, lead rules, mail, lifecycle.

models.py holds the settings as pydantic models, load.py reads and cross-checks the files;
callers import from here: `from engine.config import Config, load_config`.
"""

from engine.config.load import ConfigInvalid, load_config
from engine.config.models import (
    ALL_AREAS,
    CONFERENCE_NAMES,
    SEVERITY_ORDER,
    WEEKDAYS,
    Agency,
    Conference,
    ConferenceType,
    Config,
    ExtraMeeting,
    LeadRule,
    LeadTarget,
    Letterhead,
    Lifecycle,
    Mail,
    Routing,
    Slot,
    Smtp,
    Web,
    lead_matches,
    parse_closed_day,
)

__all__ = [
    "ALL_AREAS",
    "CONFERENCE_NAMES",
    "SEVERITY_ORDER",
    "WEEKDAYS",
    "Agency",
    "Conference",
    "ConferenceType",
    "Config",
    "ConfigInvalid",
    "ExtraMeeting",
    "LeadRule",
    "LeadTarget",
    "Letterhead",
    "Lifecycle",
    "Mail",
    "Routing",
    "Slot",
    "Smtp",
    "Web",
    "lead_matches",
    "load_config",
    "parse_closed_day",
]
