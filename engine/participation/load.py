"""Reading resources.yaml and matching_rules.yaml into a Directory, with every problem located
(file, line, field, did-you-mean), as engine/config/load.py does for the other files. A place's
area is checked against the workspace's households by `engine resources check` (the configuration
alone does not know the town's areas)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from engine.participation.directory import Directory, MatchRule, Place, Settings, Strict
from engine.rules.model import RuleSet
from engine.rules.problems import RuleProblem
from engine.support.errors import did_you_mean
from engine.support.yamlfile import YamlFile, read_yaml, validate

RESOURCES = "resources.yaml"
MATCHING = "matching_rules.yaml"


class _Resources(Strict):
    settings: Settings = Settings()
    places: tuple[Place, ...] = Field(min_length=1)


class _Matching(Strict):
    match_rules: tuple[MatchRule, ...] = Field(min_length=1)


def load_directory(
    config_dir: Path, rules: RuleSet, agencies: dict, problems: list[RuleProblem], docs: dict[str, YamlFile]
) -> Directory:
    """The directory of `config_dir` (empty without resources.yaml); problems appended; the files
    read are added to `docs` (they count in the configuration's hash)."""
    path = Path(config_dir) / RESOURCES
    if not path.exists():
        return Directory()
    doc = read_yaml(path, problems)
    resources = validate(doc, _Resources, problems) if doc else None
    match_rules: tuple[MatchRule, ...] = ()
    mpath = Path(config_dir) / MATCHING
    mdoc = read_yaml(mpath, problems) if mpath.exists() else None
    matching = validate(mdoc, _Matching, problems) if mdoc else None
    if doc:
        docs["resources"] = doc
    if mdoc:
        docs["matching_rules"] = mdoc
    places: dict[str, Place] = {}
    if resources:
        for i, place in enumerate(resources.places):
            where = ("places", i)
            if place.id in places:
                problems.append(doc.problem(where + ("id",), f"duplicate place id '{place.id}'", entry_id=place.id))
            if place.id in agencies or place.id == "coordinator":
                problems.append(
                    doc.problem(
                        where + ("id",),
                        f"'{place.id}' is already an agency id in agencies.yaml",
                        entry_id=place.id,
                        suggestion="give the place its own id (e-mails and answers are kept apart by it)",
                    )
                )
            for j, ind in enumerate(place.eligibility.indicators):
                if ind not in rules.indicators:
                    problems.append(
                        doc.problem(
                            where + ("for", "indicators", j),
                            f"unknown indicator '{ind}'",
                            entry_id=place.id,
                            suggestion=did_you_mean(ind, rules.indicators)
                            or "indicator ids are in rules/indicators.yaml",
                        )
                    )
            places[place.id] = place
    if matching:
        seen: set[str] = set()
        for i, rule in enumerate(matching.match_rules):
            where = ("match_rules", i)
            if rule.id in seen:
                problems.append(
                    mdoc.problem(where + ("id",), f"duplicate matching rule id '{rule.id}'", entry_id=rule.id)
                )
            seen.add(rule.id)
            for field, known, hint in (
                ("indicators", rules.indicators, "rules/indicators.yaml"),
                ("flags", rules.flags, "rules/flags.yaml"),
            ):
                for j, ref in enumerate(getattr(rule.when, field)):
                    if ref not in known:
                        problems.append(
                            mdoc.problem(
                                where + ("when", field, j),
                                f"unknown {field[:-1]} '{ref}'",
                                entry_id=rule.id,
                                suggestion=did_you_mean(ref, known) or f"ids are in {hint}",
                            )
                        )
        match_rules = matching.match_rules
    if not resources:
        return Directory()
    return Directory(places=places, settings=resources.settings, match_rules=match_rules)
