"""JSON Schemas of every YAML file a municipality writes, generated from the models that read them
(`engine schema`). Shipped in configs/schemas/, beside the files they describe, so that a copy of
configs/ keeps them; each shipped file names its schema on its first line, for yaml-language-server
(VS Code's YAML extension and others):

    # yaml-language-server: $schema=./schemas/agencies.schema.json

The schemas describe the files' shape (keys, types, the codes and their Japanese names) for an
editor's completion and checks; `engine rules check` and `engine config check` stay the authority
(cross-references, the rule language's limits). docs/rules.md "Editor schemas".
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

SCHEMA_DIR = "schemas"  # under the configuration folder
DIALECT = "https://json-schema.org/draft/2020-12/schema"
HEADER = "# yaml-language-server: $schema="
DESCRIPTIONS = {
    "rules": "Rule file (configs/rules/*.yaml): indicators and flags. docs/rules.md",
    "agencies": "agencies.yaml: the agency registry. docs/conferences.md",
    "conference": "conference.yaml: names, meeting slots, lead times, closed days, routing. docs/conferences.md",
    "lead_rules": "lead_rules.yaml: ordered rules choosing the lead agency per flag. docs/conferences.md",
    "mail": "mail.yaml: transport (file or smtp). docs/conferences.md",
    "lifecycle": "lifecycle.yaml: deadlines and intervals after the conference. docs/lifecycle.md",
    "web": "web.yaml: the address agencies reach `engine web` at. docs/web.md",
    "letterhead": "letterhead.yaml: how the papers are issued. docs/papers-style.md",
    "resources": "resources.yaml: the places of 参加支援 and the referral loop's settings. docs/participation.md",
    "matching_rules": "matching_rules.yaml: which needs lead to which kinds of place. docs/participation.md",
    "triage_rules": "triage_rules.yaml: the pathway of each new case (conference, assessment, …). docs/triage.md",
    "report": "report.yaml: the national figures' form, population and targets (目安値). docs/report.md",
    "outcome": "An outcome file of `engine outcome MEETING CASE --file outcome.yaml`. docs/lifecycle.md",
}


def file_models() -> dict[str, type[BaseModel]]:
    """The model of each file's whole content (the loaders' own, so the schema follows them)."""
    from engine.casework.outcome_file import Outcome
    from engine.config.load import _Agencies, _LeadRules  # the loader's models of the files' top level
    from engine.config.models import Conference, Letterhead, Lifecycle, Mail, Web
    from engine.participation.load import _Matching, _Resources
    from engine.report.model import ReportSettings
    from engine.rules.file_schema import RuleFile
    from engine.triage.load import _TriageFile

    return {
        "rules": RuleFile,
        "agencies": _Agencies,
        "conference": Conference,
        "lead_rules": _LeadRules,
        "mail": Mail,
        "lifecycle": Lifecycle,
        "web": Web,
        "letterhead": Letterhead,
        "resources": _Resources,
        "matching_rules": _Matching,
        "triage_rules": _TriageFile,
        "report": ReportSettings,
        "outcome": Outcome,
    }


def schema_of(name: str, model: type[BaseModel]) -> dict:
    """The JSON Schema of one file, titled by the file it describes."""
    schema = model.model_json_schema(mode="validation")
    return {
        "$schema": DIALECT,
        "title": "rules/*.yaml" if name == "rules" else f"{name}.yaml",
        "description": DESCRIPTIONS[name],
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }


def schema_texts() -> dict[str, str]:
    """File name (agencies.schema.json) → its text, as shipped."""
    return {
        f"{name}.schema.json": json.dumps(schema_of(name, model), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        for name, model in file_models().items()
    }


def write_schemas(out: Path) -> list[Path]:
    """Write every schema into `out` (created if needed); the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in schema_texts().items():
        path = out / file_name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def schema_for(yaml_file: Path) -> str:
    """The schema a shipped YAML file names, relative to it: a rule file's, or its own name's."""
    yaml_file = Path(yaml_file)
    if yaml_file.parent.name == "rules":
        return f"../{SCHEMA_DIR}/rules.schema.json"
    return f"./{SCHEMA_DIR}/{yaml_file.stem}.schema.json"
