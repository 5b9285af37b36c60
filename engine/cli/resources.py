"""参加支援's directory and matching from the command line: `engine resources check|list`, `engine match CASE`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from engine.cli.errors import fail, report_problems
from engine.cli.options import CONFIG, DATE, JSON, RULES, WORKSPACE, Inputs
from engine.store.db import db_path

commands = typer.Typer()
resources_app = typer.Typer(
    help="The 参加支援 resource directory (configs/resources.yaml): check it, list its places.", no_args_is_help=True
)
STATUS_JA = {"active": "", "temporarily_closed": "（休止中）", "inactive": "（廃止）"}


def _directory(given: Inputs):
    """The configuration, its problems told as `engine config check` tells them."""
    from engine.config import ConfigInvalid

    try:
        return given.config
    except ConfigInvalid as err:  # the check's result, not a refusal: each problem, then the count
        report_problems(err.problems, f"{len(err.problems)} problem(s) in {given.config_dir}; nothing was changed")


@resources_app.command("check")
def resources_check(
    config: Path = CONFIG, rules: Path = RULES, workspace: Path = WORKSPACE, on: str | None = DATE
) -> None:
    """Check resources.yaml and matching_rules.yaml (file, line, field, did-you-mean), and each place's
    area against the workspace's households when the workspace has a database.

    Example: engine resources check --config configs --workspace workspace
    """
    from engine.participation.directory import check_areas, stale_places

    given = Inputs(workspace, rules, config, on)
    cfg = _directory(given)
    directory = cfg.participation
    if not directory.present:
        typer.echo(f"ok: no resources.yaml in {config}: no places are proposed")
        return
    if db_path(workspace).exists():
        conn = given.db(readonly=True)
        try:
            problems = check_areas(conn, cfg)
        finally:
            conn.close()
        if problems:
            report_problems(problems, f"{len(problems)} problem(s) in {config / 'resources.yaml'}; nothing was changed")
    active = sum(p.status == "active" for p in directory.places.values())
    stale = stale_places(cfg, given.day)
    typer.echo(
        f"ok: {len(directory.places)} places ({active} active), {len(directory.match_rules)} matching rules, "
        f"{len(stale)} stale on {given.day.isoformat()} (not verified for {directory.settings.stale_months} months)"
    )


@resources_app.command("list")
def resources_list(
    area: str | None = typer.Option(None, "--area", help="Only places serving this area (全域 ones included)."),
    category: str | None = typer.Option(
        None, "--category", help="Only this category: its code (ibasho) or its label (居場所)."
    ),
    config: Path = CONFIG,
    rules: Path = RULES,
    workspace: Path = WORKSPACE,
    on: str | None = DATE,
    as_json: bool = JSON,
) -> None:
    """List the directory's places: name, organisation, category, area, schedule, free places now
    (less those taken since counted, when the workspace has a database) and the day last verified.

    Example: engine resources list --area 中央 --category 居場所
    """
    from engine.participation.directory import ALL_AREAS
    from engine.participation.place_day import capacity_now
    from engine.support.dates import to_wareki
    from engine.support.errors import did_you_mean
    from engine.support.vocabulary import PLACE_CATEGORY_LABELS, code_of

    given = Inputs(workspace, rules, config, on)
    cfg, day = _directory(given), given.day
    places = list(cfg.participation.places.values())
    if category is not None:
        code = code_of(category, PLACE_CATEGORY_LABELS)
        if code not in PLACE_CATEGORY_LABELS:
            known = [*PLACE_CATEGORY_LABELS, *PLACE_CATEGORY_LABELS.values()]
            hint = did_you_mean(code, known) or "one of " + ", ".join(
                f"{c} ({label})" for c, label in PLACE_CATEGORY_LABELS.items()
            )
            fail(f"--category: unknown category '{category}'; {hint}")
        places = [p for p in places if p.category == code]
    if area is not None:
        areas = {p.area for p in cfg.participation.places.values()} - {ALL_AREAS}
        if area != ALL_AREAS and area not in areas:
            hint = did_you_mean(area, sorted(areas))
            typer.echo(f"note: no place is listed for the area '{area}'" + (f" — {hint}" if hint else ""), err=True)
        places = [p for p in places if p.serves(area)]
    conn = given.db(readonly=True) if db_path(workspace).exists() else None
    try:
        free = {p.id: capacity_now(conn, p) if conn else p.capacity.available for p in places}
    finally:
        if conn:
            conn.close()
    months = cfg.participation.settings.stale_months
    rows = [
        dict(
            place_id=p.id,
            name=p.name,
            organisation=p.organisation,
            category=p.category,
            category_label=p.category_label,
            area=p.area,
            schedule=p.schedule.text(),
            capacity_now=free[p.id],
            capacity_max=p.capacity.maximum,
            assured_on=p.assured_on.isoformat(),
            stale=p.stale(day, months),
            status=p.status,
        )
        for p in sorted(places, key=lambda p: (p.category, p.area, p.id))
    ]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("該当する場所はありません")
        return
    typer.echo("名称  運営  種類  地区  日程  空き/定員  最終確認")
    for r in rows:
        assured = to_wareki(cfg.participation.places[r["place_id"]].assured_on)
        typer.echo(
            f"{r['name']}{STATUS_JA[r['status']]}  {r['organisation']}  {r['category_label']}  {r['area']}  "
            f"{r['schedule']}  {r['capacity_now']}/{r['capacity_max']}  "
            f"{assured}{' 「情報が古い」' if r['stale'] else ''}"
        )
    stale = sum(r["stale"] for r in rows)
    typer.echo(f"計 {len(rows)}か所" + (f"（うち情報が古いもの {stale}か所: {months}か月以上未確認）" if stale else ""))


@commands.command("match")
def match(
    case_id: str = typer.Argument(..., help="Case id, e.g. C-2026-00012."),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DATE,
    as_json: bool = JSON,
) -> None:
    """Propose places for each person a case concerns, each explained in Japanese (✔/✘ per criterion):
    the matching rules that fire, and per category the places ranked.

    Example: engine match C-2026-00012
    """
    from engine.participation.matching import propose, titles_of
    from engine.participation.matching_explain import render

    given = Inputs(workspace, rules, config, on)
    rs, cfg, day = given.rules, given.config, given.day
    conn = given.db(readonly=True)
    try:
        found = propose(conn, cfg, case_id, day, rules=rs)
    finally:
        conn.close()
    if as_json:
        typer.echo(json.dumps([m.model_dump(mode="json") for m in found], ensure_ascii=False, indent=2))
        return
    if not cfg.participation.present:
        typer.echo(f"resources.yaml がないため、提案できる場所はありません（{config}）。")
    typer.echo(render(case_id, day, found, titles_of(rs)))
