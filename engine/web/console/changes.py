"""/changes (変更の影響): before a change goes live, the coordinator picks one of the candidate
folders configured in configs/web.yaml (`candidate_dirs`) and sees what `engine rules diff` and
`engine config diff` would show against the live configuration (the one `engine web` was started
with): the households that would gain or lose each flag, and the open and coming cases whose lead,
participants, conference type or meeting would change, each with its reason.

A candidate is chosen by its position or its folder name among the configured ones, never by a
path the request gives. A candidate folder is a configuration folder (agencies.yaml, …) with its
rules in rules/ (the live rules when it has none), or a folder of rule files only (compared with
the live configuration). A folder that is missing or invalid shows its located problems. The
workspace is read through a read-only connection; the config diff replays the night on in-memory
copies (engine/impact)."""

from __future__ import annotations

import re
import sqlite3
import threading
from datetime import date
from pathlib import Path

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from engine.config import load_config
from engine.impact.config_diff import ConfigDiff, config_diff
from engine.impact.evaluate import NothingScreened, last_screening_date
from engine.impact.rules_diff import RulesDiff, rules_diff
from engine.impact.text import CHANGE_JA, WHAT_JA, version_text
from engine.rules.loader import load_rules
from engine.rules.problems import RulesInvalid
from engine.store.db import connect
from engine.store.lifecycle import STATE_LABELS
from engine.support.dates import wareki_with_weekday
from engine.web.app import Ctx, WebContext
from engine.web.console.forms import japanese
from engine.web.session import Coordinator, User, page

router = APIRouter()

SHOWN = 200  # households (or cases) shown per flag and per list; the count says how many there are
# durable_rules is not thread-safe (engine-notes.md): one diff at a time in this server
_ONE_AT_A_TIME = threading.Lock()
ISO_DAY = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")


class Candidate(BaseModel):
    index: int  # its position in candidate_dirs, from 0
    name: str  # its folder name
    written: str  # as configs/web.yaml writes it
    path: str  # resolved (relative to the configuration folder)


class Located(BaseModel):
    """A problem of a candidate folder, where it is."""

    file: str
    line: int | None
    field: str
    message: str
    suggestion: str | None


class Impact(BaseModel):
    candidate: Candidate
    problems: list[Located] = []
    unavailable: str | None = None  # why nothing could be compared (the workspace was never screened)
    rules: RulesDiff | None = None
    rules_note: str | None = None  # why there is no rules diff
    config: ConfigDiff | None = None
    config_note: str | None = None  # what the config diff compared, when not a whole configuration


def candidates(ctx: WebContext) -> list[Candidate]:
    """The candidate folders of configs/web.yaml, in their order."""
    out = []
    for i, written in enumerate(ctx.config.web.candidate_dirs):
        path = (Path(ctx.config_dir) / written).resolve()  # an absolute path stays as it is
        out.append(Candidate(index=i, name=Path(written).name, written=written, path=str(path)))
    return out


def pick(configured: list[Candidate], chosen: str) -> Candidate:
    """The candidate `chosen` names: its position (digits) or its folder name. LookupError if none."""
    chosen = chosen.strip()
    if chosen.isdecimal() and int(chosen) < len(configured):
        return configured[int(chosen)]
    for c in configured:
        if c.name == chosen:
            return c
    raise LookupError(chosen)


def _located(problems, folder: Path) -> list[Located]:
    out = []
    for p in problems:
        file = Path(p.file or "")
        try:
            shown = file.relative_to(folder).as_posix()
        except ValueError:
            shown = str(file)
        out.append(
            Located(
                file=shown,
                line=p.line or None,
                field=p.field,
                message=japanese(p.message),
                suggestion=p.suggestion,
            )
        )
    return out


def impact(conn: sqlite3.Connection, ctx: WebContext, cand: Candidate) -> Impact:
    """The rules diff and the config diff of `cand` against the live rules and configuration, on the
    last screening date; the located problems instead when the folder is missing or invalid."""
    folder = Path(cand.path)
    out = Impact(candidate=cand)
    if not folder.is_dir():
        where = "ファイルです" if folder.exists() else "ありません"
        out.problems = [
            Located(
                file=str(folder),
                line=None,
                field="candidate_dirs",
                message=f"候補のフォルダが{where}。",
                suggestion=f"configs/web.yaml の candidate_dirs の「{cand.written}」を、候補の設定フォルダ"
                "（設定フォルダからの相対パスか絶対パス）に直すか、そのフォルダを作ってください。",
            )
        ]
        return out
    is_config = (folder / "agencies.yaml").exists()
    rules_dir = folder / "rules" if (folder / "rules").is_dir() else None if is_config else folder
    live_rules, live_config = ctx.rules, ctx.config
    try:
        cand_rules = load_rules(rules_dir) if rules_dir else live_rules
        # a folder of rule files only: the live configuration files, checked against the candidate rules
        cand_config = load_config(folder if is_config else ctx.config_dir, cand_rules)
    except RulesInvalid as err:  # ConfigInvalid too
        out.problems = _located(err.problems, folder)
        return out
    try:
        last_screening_date(conn)
    except NothingScreened:
        out.unavailable = (
            "この作業領域はまだスクリーニングしていないため、比較できません。"
            "`engine screen`（または `engine run`）のあとに開いてください。"
        )
        return out
    if rules_dir is None:
        out.rules_note = "候補のフォルダに規則（rules/）がないため、規則は現在のままです。"
    else:
        out.rules = rules_diff(conn, live_rules, cand_rules)
    if not is_config:
        out.config_note = "候補は規則だけのフォルダです: 設定は現在のもののまま、候補の規則で夜間処理を再現しました。"
    out.config = in_wareki(config_diff(conn, live_rules, live_config, cand_config, candidate_rules=cand_rules))
    return out


def in_wareki(d: ConfigDiff) -> ConfigDiff:
    """The meetings' days in 和暦 with the weekday, as everywhere in the console."""
    for case in d.cases:
        for ch in case.changes:
            if ch.what == "meeting":
                for side in ("before", "after"):
                    day = ISO_DAY.sub(lambda m: wareki_with_weekday(date.fromisoformat(m.group(1))), getattr(ch, side))
                    setattr(ch, side, day)
    return d


def titles(ctx: WebContext, d: RulesDiff | None) -> dict[str, str]:
    """Each flag id of the diff by its title (the candidate's title when both have the flag)."""
    out = {k: f.title for k, f in ctx.rules.flags.items()}
    if d is not None:
        out.update({f.rule_id: f.title for f in d.flags})
    return out


@router.get("/changes")
def changes_page(
    request: Request,
    candidate: str = Query("", max_length=100),
    user: User = Coordinator,
    ctx: WebContext = Ctx,
) -> Response:
    configured = candidates(ctx)
    result = None
    if candidate.strip():
        try:
            chosen = pick(configured, candidate)
        except LookupError:
            raise HTTPException(
                status_code=400,
                detail="その候補は configs/web.yaml の candidate_dirs にありません。一覧から選んでください。",
            ) from None
        conn = connect(ctx.workspace, readonly=True, any_thread=True)
        try:
            with _ONE_AT_A_TIME:
                result = impact(conn, ctx, chosen)
        finally:
            conn.close()
    return page(
        request,
        user,
        "console/changes.html.j2",
        configured=configured,
        result=result,
        flag_titles=titles(ctx, result.rules if result else None),
        change_labels=CHANGE_JA,
        what_labels=WHAT_JA,
        states=STATE_LABELS,
        version_text=version_text,
        config_dir=str(ctx.config_dir),
        shown=SHOWN,
    )
