"""Reading and cross-checking the conference configuration: agencies, conference settings,
lead-agency rules and mail.

Four files (and an optional fifth) in the configuration folder (configs/ by default), each checked like the rules:
every problem names file, line and field, with a suggestion, and nothing runs until all are fixed.

- agencies.yaml    the agency registry (the only source of e-mail recipients)
- conference.yaml  local conference names, meeting slots, lead times, closed days, routing
- lead_rules.yaml  ordered rules choosing the lead agency (主担当機関) per flag
- mail.yaml        transport: file (outbox folder) or smtp
- lifecycle.yaml   after the conference: hand-shake, reminders, evaluation, post-closure watch
                   (optional: the defaults of models.Lifecycle apply when it is absent)
- web.yaml         the address agencies reach `engine web` at, and the answer links' grace
                   (optional: the defaults of models.Web apply when it is absent)
- letterhead.yaml  how the papers are issued: 発出者, document numbers, contact block, paper
                   handling, the meetings' length (optional: models.Letterhead's defaults)
- resources.yaml   参加支援: the places of the resource directory and the referral loop's settings;
  matching_rules.yaml  which needs lead to which kinds of place (both optional: engine/participation)
- triage_rules.yaml  the pathway of each new case (optional: engine/triage; without it every case
                   goes to a conference)
"""

from __future__ import annotations

import hashlib
import json
import ssl
from pathlib import Path

from pydantic import Field

from engine.config.models import (
    ALL_AREAS,
    Agency,
    Conference,
    Config,
    LeadRule,
    LeadTarget,
    Letterhead,
    Lifecycle,
    Mail,
    Strict,
    Web,
    lead_matches,
)
from engine.participation.load import load_directory
from engine.rules.model import RuleSet
from engine.rules.problems import RuleProblem, RulesInvalid
from engine.support.errors import did_you_mean
from engine.support.vocabulary import CODE_NAMES, CODES, SILOS, names_of
from engine.support.yamlfile import YamlFile, read_yaml, validate
from engine.triage.load import load_triage


class _Agencies(Strict):
    agencies: tuple[Agency, ...] = Field(min_length=1)


class _LeadRules(Strict):
    lead_rules: tuple[LeadRule, ...] = Field(min_length=1)


class ConfigInvalid(RulesInvalid):
    """The configuration files have problems (each with file, line, field); nothing runs until all are fixed."""


def load_config(config_dir: Path, rules: RuleSet) -> Config:
    """Read and cross-check the files (lifecycle.yaml if present); raise ConfigInvalid listing every problem."""
    config_dir = Path(config_dir)
    problems: list[RuleProblem] = []
    docs = {
        name: read_yaml(config_dir / f"{name}.yaml", problems)
        for name in ("agencies", "conference", "lead_rules", "mail")
    }
    agencies_doc, conference_doc, lead_doc, mail_doc = docs.values()
    agencies = validate(agencies_doc, _Agencies, problems) if agencies_doc else None
    conference = validate(conference_doc, Conference, problems) if conference_doc else None
    lead = validate(lead_doc, _LeadRules, problems) if lead_doc else None
    mail = validate(mail_doc, Mail, problems) if mail_doc else None
    lifecycle_doc = (
        read_yaml(config_dir / "lifecycle.yaml", problems) if (config_dir / "lifecycle.yaml").exists() else None
    )
    lifecycle = validate(lifecycle_doc, Lifecycle, problems) if lifecycle_doc else Lifecycle()
    if lifecycle_doc:
        docs["lifecycle"] = lifecycle_doc
    web_doc = read_yaml(config_dir / "web.yaml", problems) if (config_dir / "web.yaml").exists() else None
    web = validate(web_doc, Web, problems) if web_doc else Web()
    if web_doc:
        docs["web"] = web_doc
    letterhead_doc = (
        read_yaml(config_dir / "letterhead.yaml", problems) if (config_dir / "letterhead.yaml").exists() else None
    )
    letterhead = validate(letterhead_doc, Letterhead, problems) if letterhead_doc else Letterhead()
    if letterhead_doc:
        docs["letterhead"] = letterhead_doc
        if conference and letterhead:
            _check_end_time(letterhead_doc, letterhead, conference, problems)
    registry: dict[str, Agency] = {}
    if agencies:
        for i, a in enumerate(agencies.agencies):
            if a.id in registry:
                problems.append(
                    agencies_doc.problem(
                        ("agencies", i, "id"),
                        f"duplicate agency id '{a.id}'",
                        entry_id=a.id,
                        suggestion="give each agency its own id",
                    )
                )
            registry[a.id] = a
    # cross-checks run even when agencies.yaml has problems, so that every problem shows at once;
    # the checks that need the registry are skipped while it is broken
    if conference:
        _check_conference(conference_doc, conference, registry, rules, problems, registry_ok=bool(agencies))
    if lead:
        _check_lead_rules(lead_doc, lead.lead_rules, registry, rules, problems, registry_ok=bool(agencies))
    if mail:
        mail = _check_mail(mail_doc, mail, config_dir, problems)
    participation = load_directory(config_dir, rules, registry, problems, docs)
    triage = load_triage(config_dir, rules, registry, problems, docs, registry_ok=bool(agencies))
    if problems:
        raise ConfigInvalid(problems)
    templates = config_dir / "templates"
    canonical = json.dumps([d.data for d in docs.values()], sort_keys=True, ensure_ascii=False, default=str)
    return Config(
        agencies=registry,
        conference=conference,
        lead_rules=lead.lead_rules,
        mail=mail,
        lifecycle=lifecycle,
        web=web,
        letterhead=letterhead,
        participation=participation,
        triage=triage,
        templates_dir=templates if templates.is_dir() else None,
        hash=hashlib.sha256(canonical.encode()).hexdigest()[:16],
    )


def _check_end_time(doc: YamlFile, letterhead: Letterhead, conference: Conference, problems: list) -> None:
    """A fixed end time must come after every meeting's start."""
    if letterhead.end_time is None:
        return
    starts = [s.time for slots in conference.slots.values() for s in slots] + [conference.extra_meeting.time]
    late = max(starts)
    if late >= letterhead.end_time:
        problems.append(
            doc.problem(
                ("end_time",),
                f"end_time {letterhead.end_time:%H:%M} is not after the start of every meeting (one starts at {late:%H:%M})",
                suggestion="write a later end_time, or remove it and set duration_minutes",
            )
        )


def _check_mail(doc: YamlFile, mail: Mail, config_dir: Path, problems: list) -> Mail:
    """No login without TLS; a CA file that can be read. Returns mail with ca_file made absolute
    (relative to the configuration folder)."""
    smtp = mail.smtp
    if smtp.login_without_tls:
        named = " and ".join(f"smtp.{f}" for f in ("username_env", "password_env") if getattr(smtp, f))
        problems.append(
            doc.problem(
                ("smtp", "starttls"),
                f"TLS is off but a login is configured ({named}): the password would cross the network unencrypted",
                suggestion="set `starttls: true` (port 587) or `implicit_tls: true` (port 465); "
                "remove username_env and password_env only for a server that needs no login",
            )
        )
    if smtp.ca_file is None:
        return mail
    smtp = smtp.model_copy(update={"ca_file": config_dir / smtp.ca_file})  # an absolute path stays as it is
    try:
        smtp.tls_context()
    except ssl.SSLError as err:  # an OSError too: checked first
        problems.append(
            doc.problem(
                ("smtp", "ca_file"),
                f"the CA file {smtp.ca_file} holds no usable PEM certificate ({err.reason or err})",
                suggestion="give the CA certificate (-----BEGIN CERTIFICATE-----) that signed the mail server's certificate",
            )
        )
    except OSError as err:
        problems.append(
            doc.problem(
                ("smtp", "ca_file"),
                f"cannot read the CA file {smtp.ca_file}: {err.strerror or err}",
                suggestion="give the path of the CA certificate (PEM), absolute or relative to the configuration folder, or remove ca_file",
            )
        )
    return mail.model_copy(update={"smtp": smtp})


def unknown_flag(doc: YamlFile, path: tuple, flag_id: str, rules: RuleSet, entry_id: str | None = None) -> RuleProblem:
    """A flag id that no rule file defines."""
    return doc.problem(
        path,
        f"unknown flag '{flag_id}'",
        entry_id=entry_id,
        suggestion=did_you_mean(flag_id, rules.flags) or f"known flags: {', '.join(rules.flags)}",
    )


def _check_conference(
    doc: YamlFile,
    conf: Conference,
    registry: dict[str, Agency],
    rules: RuleSet,
    problems: list,
    registry_ok: bool = True,
) -> None:
    for kind in ("support", "multi"):
        slots = conf.slots.get(kind) or ()
        if not slots:
            problems.append(
                doc.problem(
                    ("slots", kind),
                    f"slots.{kind}: list at least one meeting slot for the {conf.names.get(kind, kind)}",
                    suggestion='e.g. `- {weekday: 木, time: "14:00", place: 会議室}`',
                )
            )
        elif all(s.weekday_number >= 5 for s in slots):
            problems.append(
                doc.problem(
                    ("slots", kind),
                    f"slots.{kind}: every slot falls on a weekend, which is never a business day",
                    suggestion="use 月 火 水 木 or 金",
                )
            )
    kinds = {a.kind for a in registry.values()}
    for i, r in enumerate(conf.routing):
        if registry_ok and r.owner_kind not in kinds:
            problems.append(
                doc.problem(
                    ("routing", i, "owner_kind"),
                    f"no agency of kind '{r.owner_kind}' in agencies.yaml",
                    suggestion=did_you_mean(r.owner_kind, kinds),
                )
            )
    for flag_id in conf.discussion_by_flag:
        if flag_id not in rules.flags:
            problems.append(unknown_flag(doc, ("discussion_by_flag", flag_id), flag_id, rules))
    for i, flag_id in enumerate(conf.locked_flags):
        if flag_id not in rules.flags:
            problems.append(unknown_flag(doc, ("locked_flags", i), flag_id, rules))
    for i, code in enumerate(conf.locked_codes):
        if code not in CODES:
            problems.append(
                doc.problem(
                    ("locked_codes", i),
                    f"unknown record code '{code}'",
                    suggestion=did_you_mean(code, names_of(CODE_NAMES)),
                )
            )
    members = [a for a in registry.values() if a.member]
    if registry_ok and not members:
        problems.append(
            RuleProblem(
                file=str(Path(doc.file).with_name("agencies.yaml")),
                line=1,
                field="member",
                message="no agency is a registered member of the 支援会議: no 支援会議 could be held",
                suggestion="set `member: true` for the agencies registered under 社会福祉法106条の6",
            )
        )


def _check_lead_rules(
    doc: YamlFile,
    rules_: tuple[LeadRule, ...],
    registry: dict[str, Agency],
    rules: RuleSet,
    problems: list,
    registry_ok: bool = True,
) -> None:
    covered: set[str] = set()
    member_areas: dict[str, set[str]] = {}  # flag -> areas served by a member some rule names for it
    non_member_leads: list = []
    always: set[str] = set()  # flags of earlier rules whose lead is a town-wide member: those never fall through
    seen_ids: dict[str, int] = {}
    for i, rule in enumerate(rules_):
        where = ("lead_rules", i)
        if rule.id in seen_ids:
            problems.append(
                doc.problem(
                    where + ("id",),
                    f"duplicate lead rule id '{rule.id}' (also rule {seen_ids[rule.id] + 1})",
                    entry_id=rule.id,
                )
            )
        seen_ids[rule.id] = i
        flags = set(rules.flags) if rule.flags == "any" else set(rule.flags)
        if rule.flags != "any":
            for j, f in enumerate(rule.flags):
                if f not in rules.flags:
                    problems.append(unknown_flag(doc, where + ("flags", j), f, rules, entry_id=rule.id))
        if rule.flags != "any" and flags and flags <= always:
            problems.append(
                doc.problem(
                    where,
                    "this rule is never used: earlier rules already choose a lead for all its flags",
                    entry_id=rule.id,
                    suggestion="move it above the rule that shadows it, or delete it",
                )
            )
        if rule.flags == ():
            problems.append(
                doc.problem(
                    where + ("flags",),
                    "flags is empty: this rule is never used",
                    entry_id=rule.id,
                    suggestion="list the flags it decides, or write `flags: any`",
                )
            )
        covered |= flags
        t = rule.lead
        members = [a for a in registry.values() if lead_matches(t, a) and a.member]
        for f in flags:
            member_areas.setdefault(f, set()).update(area for a in members for area in a.areas)
        if not members:
            non_member_leads.append((i, rule, flags))
        if any(lead_matches(t, a) and a.member and ALL_AREAS in a.areas for a in registry.values()):
            always |= flags
        if not registry_ok:
            continue
        check_agency_target(doc, where + ("lead",), t, registry, problems, entry_id=rule.id)
    missing = [f for f in rules.flags if f not in covered]
    if missing:
        problems.append(
            doc.problem(
                ("lead_rules",),
                f"no lead rule for flag(s) {', '.join(missing)}: their cases would have no lead",
                suggestion="add a last rule with `flags: any` as a fallback",
            )
        )
    if not (registry_ok and any(a.member for a in registry.values())):
        return  # no member at all: reported once, in agencies.yaml
    # a 支援会議 case (no consent yet) can only be led by a registered member serving its area
    members_missing = {f for f in rules.flags if f in covered and not member_areas.get(f)}
    for i, rule, flags in non_member_leads:
        if flags & members_missing:
            problems.append(
                doc.problem(
                    ("lead_rules", i, "lead"),
                    f"only agencies that are not registered members of the 支援会議 match this lead, and no rule names a member for flag(s) {', '.join(sorted(flags & members_missing))}: a 支援会議 case (no consent yet) would have no lead",
                    entry_id=rule.id,
                    suggestion="add a rule naming a member (member: true in agencies.yaml), e.g. a last rule `flags: any` to the 自立相談支援機関",
                )
            )
    town = {area for a in registry.values() for area in a.areas if area != ALL_AREAS}
    gaps: dict[tuple[str, ...], list[str]] = {}
    for f in rules.flags:
        served = member_areas.get(f)
        if served and ALL_AREAS not in served and town - served:
            gaps.setdefault(tuple(sorted(town - served)), []).append(f)
    for areas, flags in gaps.items():
        problems.append(
            doc.problem(
                ("lead_rules",),
                f"flag(s) {', '.join(flags)}: no registered member named by the lead rules serves {', '.join(areas)}, so a 支援会議 case there would have no lead",
                suggestion="name a member serving that area (or 全域), e.g. a last rule `flags: any` to the 自立相談支援機関",
            )
        )


def check_agency_target(
    doc: YamlFile, where: tuple, t: LeadTarget, registry: dict[str, Agency], problems: list, *, entry_id: str
) -> None:
    """An agency named by kind, silo and/or id (a lead rule's lead, a triage rule's `by`) names
    agencies that exist; `where` is the path of the target in the file."""
    kinds = {a.kind for a in registry.values()}
    if t.agency and t.agency not in registry:
        problems.append(
            doc.problem(
                where + ("agency",),
                f"unknown agency '{t.agency}'",
                entry_id=entry_id,
                suggestion=did_you_mean(t.agency, registry),
            )
        )
    if t.kind and t.kind not in kinds:
        problems.append(
            doc.problem(
                where + ("kind",),
                f"no agency of kind '{t.kind}' in agencies.yaml",
                entry_id=entry_id,
                suggestion=did_you_mean(t.kind, kinds) or f"kinds: {', '.join(sorted(kinds))}",
            )
        )
    if t.silo and t.silo not in SILOS:
        problems.append(
            doc.problem(
                where + ("silo",),
                f"unknown silo '{t.silo}'",
                entry_id=entry_id,
                suggestion=did_you_mean(t.silo, SILOS),
            )
        )
    elif (
        not any(lead_matches(t, a) for a in registry.values())
        and not (t.agency and t.agency not in registry)
        and not (t.kind and t.kind not in kinds)
    ):
        problems.append(doc.problem(where, "no agency matches kind, silo and agency together", entry_id=entry_id))
