"""`engine rules diff` and `engine config diff`: what a candidate would change, before it goes live
(engine/impact). Registered onto the `rules` and `config` groups of engine/cli/operations.py."""

from __future__ import annotations

from pathlib import Path

import typer

from engine.cli.errors import report_problems
from engine.cli.operations import config_app, rules_app
from engine.cli.options import CONFIG, JSON, RULES, WORKSPACE, Inputs

AGAINST = typer.Option(
    ...,
    "--against",
    help="The candidate: a folder, or a git revision (HEAD~1, a branch, a commit) of the live folder.",
)

ON = typer.Option(None, "--date", help="The day compared, ISO or 和暦 (R8.11.27); default the last screening date.")


def _candidate_rules(folder: Path, against: str):
    from engine.impact.sources import rules_folder
    from engine.rules.loader import load_rules
    from engine.rules.problems import RulesInvalid

    try:
        return load_rules(rules_folder(folder))
    except RulesInvalid as err:
        report_problems(
            err.problems,
            f"the candidate rules (--against {against}) have {len(err.problems)} problem(s); nothing was compared",
        )


@rules_app.command("diff")
def rules_diff_(
    against: str = AGAINST,
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    on: str | None = ON,
    as_json: bool = JSON,
) -> None:
    """Show which households would gain or lose each flag under the candidate rules, each with its
    explanation, and the open cases left with no open flag. Both rule sets are evaluated on the
    same date (default: the last screening date) over the workspace's data; nothing is written.

    Example: engine rules diff --against candidate/rules   (or --against HEAD~1)
    """
    from engine.impact.rules_diff import rules_diff
    from engine.impact.sources import candidate_folder
    from engine.impact.text import rules_diff_text

    given = Inputs(workspace, rules, None, on)
    live = given.rules
    with candidate_folder(against, rules) as folder:
        candidate = _candidate_rules(folder, against)
    conn = given.db(readonly=True)
    try:
        d = rules_diff(conn, live, candidate, given.day if on else None)
    finally:
        conn.close()
    typer.echo(d.model_dump_json(indent=2) if as_json else rules_diff_text(d))


@config_app.command("diff")
def config_diff_(
    against: str = AGAINST,
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = ON,
    as_json: bool = JSON,
) -> None:
    """Show the open and upcoming cases whose lead, participants, conference type or meeting would
    change under the candidate configuration folder (with its rules/ when it has them), with the
    reason. The night is replayed on in-memory copies of the database; nothing is written.

    Example: engine config diff --against candidate   (or --against HEAD~1)
    """
    from engine.config import ConfigInvalid, load_config
    from engine.impact.config_diff import config_diff
    from engine.impact.sources import candidate_folder

    given = Inputs(workspace, rules, config, on)
    live_rules, live_config = given.rules, given.config
    with candidate_folder(against, config) as folder:
        cand_rules = _candidate_rules(folder, against) if (folder / "rules").is_dir() else live_rules
        try:
            candidate = load_config(folder, cand_rules)
        except ConfigInvalid as err:
            report_problems(
                err.problems,
                f"the candidate configuration (--against {against}) has {len(err.problems)} problem(s); nothing was compared",
            )
    conn = given.db(readonly=True)
    try:
        d = config_diff(conn, live_rules, live_config, candidate, given.day if on else None, candidate_rules=cand_rules)
    finally:
        conn.close()
    from engine.impact.text import config_diff_text

    typer.echo(d.model_dump_json(indent=2) if as_json else config_diff_text(d))
