"""Running the engine: check the rule files and the configuration, serve the schedules, show the demo."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import typer

from engine.cli.errors import fail, report_problems
from engine.cli.options import CONFIG, DATE, DEFAULTS, RULES, WORKSPACE, Inputs, folder_for_output
from engine.cli.progress import progress_bar
from engine.store.db import DB_FILENAME, DEMO_MARK, connect, db_path
from engine.support import clock
from engine.support.private_files import own_folder, private_dir

commands = typer.Typer()
rules_app = typer.Typer(help="Check and inspect the rule files.", no_args_is_help=True)
config_app = typer.Typer(
    help="Check the conference configuration (agencies, meetings, lead rules, mail, lifecycle).", no_args_is_help=True
)


@rules_app.command("check")
def rules_check(
    rules: Path = RULES,
    workspace: Path | None = typer.Option(
        None,
        "--workspace",
        "-w",
        help="Warn about free-text values (consultation topics, …) no record of this workspace holds; "
        "default: the workspace of ENGINE_WORKSPACE (./workspace) when it exists. Nothing is written.",
    ),
) -> None:
    """Check every rule file; list each problem with file, line, rule id, field and a suggestion,
    then warnings (a rule check passes with warnings), among them the free-text values the workspace's
    records never hold, with the nearest values that do occur.

    Example: engine rules check --rules configs/rules --workspace workspace
    """
    from engine.rules.loader import check_rules, load_rules

    problems = check_rules(rules)
    if problems:
        report_problems(problems, f"{len(problems)} problem(s) in {rules}; no rule was changed")
    rs = load_rules(rules)
    from engine.rules.lint import unseen_value_warnings, values_in_records, warnings

    found = warnings(rs, str(rules))
    if workspace is not None and not db_path(workspace).exists():
        fail(f"--workspace {workspace}: no database there; run `engine import` first, or leave --workspace out")
    workspace = workspace or DEFAULTS.workspace
    if db_path(workspace).exists():
        conn = connect(workspace, readonly=True)
        try:
            found += unseen_value_warnings(rs, values_in_records(conn))
        finally:
            conn.close()
    for w in found:
        typer.echo(f"warning: {w}")
    typer.echo(f"ok: {len(rs.indicators)} indicators, {len(rs.flags)} flags (rules hash {rs.hash})")


@rules_app.command("test")
def rules_test(
    rules: Path = RULES,
    examples: Path = typer.Option(
        None, "--examples", help="Folder of example households (default: the rules folder's examples/)."
    ),
    config: Path = CONFIG,
) -> None:
    """Screen the example households and check the flags each must and must not get, and its lead.

    A failing example is printed with the Japanese explanation of why a rule did or did not fire.
    Nothing is written anywhere. Example: engine rules test --rules configs/rules
    """
    from engine.config import load_config
    from engine.rules.example_run import report, run_examples, summary
    from engine.rules.examples import example_files, read_examples
    from engine.rules.loader import load_rules

    rs = load_rules(rules)
    cfg = load_config(config, rs)
    folder = examples or Path(rules) / "examples"
    found, problems = read_examples(folder, rs, cfg)
    if problems:
        report_problems(problems, f"{len(problems)} problem(s) in {folder}; no example was run")
    results = run_examples(found, rs, cfg)
    counts = summary(results, len(example_files(folder)))
    failed = [r for r in results if not r.ok]
    if failed:
        for line in report(results):
            typer.echo(line)
        fail(f"{len(failed)} of {len(results)} examples failed ({counts})", 1)
    typer.echo(f"ok: {counts} (rules hash {rs.hash})")


@rules_app.command("vocabulary")
def rules_vocabulary() -> None:
    """List the record codes rules may use, with their values.

    Example: engine rules vocabulary
    """
    from engine.support.vocabulary import CODES

    for c in CODES.values():
        values = ", ".join(c.values) if c.values else ("number" if c.value_type == "amount" else "any text")
        typer.echo(f"{c.code:<24} {c.value_type:<9} {c.title}  [{values}]")


@config_app.command("check")
def config_check(
    config: Path = CONFIG,
    rules: Path = RULES,
    workspace: Path | None = typer.Option(
        None,
        "--workspace",
        "-w",
        help="Warn when the cases this workspace opened over the last 3 months exceed the meeting slots; "
        "default: the workspace of ENGINE_WORKSPACE (./workspace) when it exists. Nothing is written.",
    ),
) -> None:
    """Check every configuration file against the others and the rules, report.yaml included.

    agencies.yaml, conference.yaml, lead_rules.yaml and mail.yaml, and the optional files beside them
    (lifecycle, web, letterhead, resources, matching_rules, triage_rules, report).

    Then warn, and still pass, when the workspace's cases of the last 3 months exceed the meeting slots.

    The warning names the slots per week that would meet the demand.

    Example: engine config check --config configs --workspace workspace
    """
    from engine.conference.capacity import capacity_warnings
    from engine.config import ConfigInvalid, load_config
    from engine.report.model import ReportInvalid, load_report
    from engine.rules.loader import load_rules

    rs = load_rules(rules)
    problems = []
    try:
        cfg = load_config(config, rs)
    except ConfigInvalid as err:
        problems += err.problems
    try:  # read by `engine report` alone, but checked here with the rest: one check before any command
        report = load_report(config)
    except ReportInvalid as err:
        problems += err.problems
    if problems:  # the check's result, not a refusal: each problem, then the count
        report_problems(problems, f"{len(problems)} problem(s) in {config}; nothing was changed")
    if workspace is not None and not db_path(workspace).exists():
        fail(f"--workspace {workspace}: no database there; run `engine import` first, or leave --workspace out")
    workspace = workspace or DEFAULTS.workspace
    if db_path(workspace).exists():
        conn = connect(workspace, readonly=True)
        try:
            for w in capacity_warnings(conn, cfg.conference, clock.today()):
                typer.echo(f"warning: {w}")
        finally:
            conn.close()
    members = sum(a.member for a in cfg.agencies.values())
    typer.echo(
        f"ok: {len(cfg.agencies)} agencies ({members} 支援会議 members), {len(cfg.lead_rules)} lead rules, {len(cfg.triage.rules)} triage rules, {len(report.figures)} report figures, transport {cfg.mail.transport} (config hash {cfg.hash})"
    )


@commands.command("schema")
def schema(
    out: Path = typer.Option(
        DEFAULTS.config / "schemas",
        "--out",
        help="Folder to write the schemas into (default: schemas/ of the configuration folder, which the shipped files name).",
    ),
) -> None:
    """Write the JSON Schema of every YAML file (rules, agencies, conference, lead rules, mail, lifecycle,
    web, letterhead, resources, matching rules, outcome) for an editor's completion and checks.

    Example: engine schema --out configs/schemas
    """
    from engine.config.schemas import write_schemas

    folder_for_output(out, "--out")
    written = write_schemas(out)
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo(
        f"ok: {len(written)} schemas; a YAML file names its own on its first line: # yaml-language-server: $schema=…"
    )


@commands.command("serve")
def serve_(
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(4200, "--port", min=1, max=65535),
    allow_remote: bool = typer.Option(
        False,
        "--allow-remote",
        help="Accept a --host other than loopback: every machine that reaches it can try Prefect's API and UI, and its password travels in plain HTTP.",
    ),
) -> None:
    """Start a local Prefect server (UI at http://127.0.0.1:4200) and run the schedules: nightly cycle
    02:00, daily sweep 07:00 and agenda dispatch 08:00 on business days, Asia/Tokyo. Stop with Ctrl-C.

    Example: engine serve --workspace workspace
    """
    from engine.workflows.serve import is_loopback, secret_names, serve

    if not is_loopback(host) and not allow_remote:
        fail(
            f"--host {host} is not loopback: every machine that reaches it could try Prefect's API and UI, "
            "whose password travels in plain HTTP; serve on 127.0.0.1, or pass --allow-remote to accept this"
        )
    given = Inputs(workspace, rules, config)
    cfg = given.config  # refuse to schedule a broken configuration
    given.db().close()
    serve(workspace, rules, config, host=host, port=port, hidden=secret_names(cfg))


def _is_demo_workspace(workspace: Path) -> bool:
    """Empty or absent, or made by `engine demo` and holding only its own town's imports."""
    if not workspace.exists() or not any(workspace.iterdir()):
        return True
    if not (workspace / ".demo").exists():
        return False
    if not db_path(workspace).exists():
        return True
    town = (workspace / "town").resolve()
    conn = connect(workspace, readonly=True)
    try:
        sources = [Path(s).resolve() for (s,) in conn.execute("SELECT source_dir FROM imports")]
    finally:
        conn.close()
    sim = (workspace / "sim").resolve()  # the simulated year's extracts (engine simulate)
    return all(s == town or sim in s.parents for s in sources)


def fresh_demo_workspace(workspace: Path) -> None:
    """Remove a demo's (or simulation's) workspace and make it again, empty and owner-only; refuse
    any folder holding other data, or one others could change."""
    folder_for_output(workspace, "--workspace")
    if not _is_demo_workspace(workspace):
        fail(f"{workspace} holds data that is not from a demo; pass another --workspace (the demo starts from scratch)")
    if os.path.lexists(workspace):
        own_folder(workspace, "--workspace", (DB_FILENAME, DEMO_MARK))  # refused if others could change it
        if workspace.is_symlink():
            fail(
                f"--workspace {workspace} is a link: the demo removes and re-creates its folder; give the folder itself"
            )
        shutil.rmtree(workspace)
    private_dir(workspace)
    (workspace / DEMO_MARK).touch(mode=0o600)


@commands.command()
def demo(
    households: int = typer.Option(5000, "--households", "-n", min=1),
    seed: int = typer.Option(42, "--seed"),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DATE,
    bad_rows: int = typer.Option(5, "--bad-rows", min=0, help="Broken rows to show the rejects report."),
    days: int = typer.Option(
        120,
        "--days",
        min=0,
        max=1000,
        help="Days simulated after the first night (fake clock): outcomes, answers, reminders, watch, relapses. 0: only the first night.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Generate a synthetic town, import it, screen it, convene cases, write agendas and e-mail them to the outbox folder,
    then simulate --days days of the case lifecycle on a fake clock and end with the gap audit.

    Example: engine demo --households 5000 --seed 42 --json
    """
    from engine.demo.run import run_demo

    given = Inputs(workspace, rules, config, on)
    rs, cfg, day = given.rules, given.config, given.day  # every input checked before the old demo is removed
    fresh_demo_workspace(workspace)
    started = clock.monotonic()
    with progress_bar(quiet=as_json) as progress:
        result = run_demo(
            workspace,
            rs,
            cfg,
            households=households,
            seed=seed,
            on=day,
            bad_rows=bad_rows,
            days=days,
            progress=progress,
        )
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        typer.echo(result["text"])
    typer.echo(f"(demo took {clock.monotonic() - started:.1f} s; database: {workspace / 'engine.db'})", err=as_json)
