"""What changed since the version of an agenda the agency last received.

Each version's model is kept beside its rendered files (<agency>.vN.json, owner-only). The version
an agency last received is the newest one whose e-mail was sent (or may have been): an unsent
version that a newer one superseded never reached it, so the summary compares with the one before.

A case that leaves an agency's list is counted, not named (it may leave because its consent was
withdrawn); when the count of cases not detailed by e-mail (DV lock) grows at the same time, one
vague sentence says both: "one case removed" next to "one more locked case" would tell which.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from engine.outbox.keys import PREFIXED, MessageKey, prefixed
from engine.support.private_files import write_private


def model_path(workspace: Path, folder: str, agency_id: str, version: int) -> Path:
    return Path(workspace) / folder / f"{agency_id}.v{version}.json"


def keep(workspace: Path, folder: str, agenda) -> None:
    write_private(model_path(workspace, folder, agenda.agency_id, agenda.version), agenda.model_dump_json())


def last_received(conn: sqlite3.Connection, workspace: Path, meeting_id: str, agency_id: str) -> dict | None:
    """The model of the newest version the agency was sent, or None (none sent, or its file is gone)."""
    prefix = MessageKey.agenda_prefix(meeting_id)
    versions = sorted(
        (
            MessageKey.parse(key).version
            for (key,) in conn.execute(
                f"SELECT message_key FROM outbox WHERE agency_id = ? AND {PREFIXED} "
                "AND (status IN ('sent', 'sending') OR possible_duplicate = 1)",
                (agency_id, *prefixed(prefix)),
            )
        ),
        reverse=True,
    )
    for version in versions:
        row = conn.execute(
            "SELECT folder FROM agendas WHERE meeting_id = ? AND agency_id = ? AND version = ?",
            (meeting_id, agency_id, version),
        ).fetchone()
        path = model_path(workspace, row[0], agency_id, version) if row else None
        if path and path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
    return None


def _when(a: dict) -> str:
    return f"{a['held_on_wareki']} {a['start_time']}〜{a.get('end_time', '')}"


def summary(previous: dict, current) -> list[str]:
    """Sentences saying what differs from `previous` (a stored model) in `current` (an Agenda)."""
    out = []
    now = current.model_dump()
    if (previous["held_on"], previous["start_time"], previous.get("end_time")) != (
        now["held_on"],
        now["start_time"],
        now["end_time"],
    ):
        out.append(f"日時を変更しました（変更前: {_when(previous)}）。")
    if previous["place"] != now["place"]:
        out.append(f"場所を変更しました（変更前: {previous['place']}）。")
    before = {c["case_id"]: c for c in previous["cases"]}
    after = {c["case_id"]: c for c in now["cases"]}
    out += [f"事案 {c} を追加しました。" for c in after if c not in before]
    removed = [c for c in before if c not in after]
    hidden = bool(removed) and now["locked_count"] > previous["locked_count"]
    if hidden:
        out.append("前の版に記載した事案の一部は、この版には記載していません。詳細は会議の場でお伝えします。")
    elif removed:  # by count: a case may leave because its consent was withdrawn, which is not the agency's to know
        out.append(f"前の版に記載した事案のうち{len(removed)}件は、この会議では協議しないことになりました。")
    for c, item in after.items():
        if c in before and before[c]["lead_name"] != item["lead_name"]:
            out.append(f"事案 {c} の主担当機関の案を、{before[c]['lead_name']}から{item['lead_name']}に変更しました。")
    if now["locked_count"] != previous["locked_count"] and not hidden:
        out.append(
            f"詳細を記載しない事案の件数が {previous['locked_count']}件から{now['locked_count']}件になりました。"
        )
    if not out:
        out.append("記載内容（貴機関の分野の情報、協議事項など）を更新しました。")
    return out
