"""The diffs as the coordinator reads them on the command line, in Japanese (pseudonymous
household ids and explanations only, as `engine explain`)."""

from __future__ import annotations

from engine.impact.config_diff import ConfigDiff
from engine.impact.rules_diff import RulesDiff

CHANGE_JA = {
    "added": "新しい規則",
    "removed": "削除される規則",
    "changed": "変更される規則",
    "indicators": "使用する指標が変更",
    "same": "変更なし",
}
WHAT_JA = {
    "pathway": "振り分け",
    "lead": "主担当機関",
    "participants": "招集する機関",
    "conference_type": "会議の種類",
    "meeting": "会議",
    "status": "扱い",
}


def version_text(f) -> str:
    if f.current_version == f.candidate_version:
        return f"第{f.candidate_version}版"
    old = f"第{f.current_version}版" if f.current_version else "なし"
    new = f"第{f.candidate_version}版" if f.candidate_version else "なし"
    return f"{old} → {new}"


def rules_diff_text(d: RulesDiff) -> str:
    lines = [
        f"規則の変更の影響（{d.on.isoformat()} 時点、対象となりうる {d.households_evaluated} 世帯を両方の規則で判定。"
        f"規則 {d.current_hash} → {d.candidate_hash}）"
    ]
    if not d.flags:
        lines.append("該当する世帯が変わるフラグはありません。")
    for f in d.flags:
        lines.append(
            f"■ {f.rule_id} {f.title}［{CHANGE_JA[f.change]}・{version_text(f)}］"
            f" +{len(f.gained)} 世帯 / −{len(f.lost)} 世帯（{f.current_count} → {f.candidate_count} 世帯）"
        )
        for sign, rows in (("+", f.gained), ("−", f.lost)):
            for h in rows:
                case = f"、事案 {h.case_id}" if h.case_id else ""
                lines.append(f"  {sign} {h.household_id}（地区: {h.area}{case}）")
                lines += [f"      {x}" for x in h.explanation]
    if d.orphaned_cases:
        lines.append(f"開いているフラグがなくなる事案: {len(d.orphaned_cases)}件")
        for c in d.orphaned_cases:
            lines.append(f"  {c.case_id}（世帯 {c.household_id}）— 外れるフラグ: {'、'.join(c.lost)}")
    if d.unchanged_rules_pending:
        lines.append(
            f"（参考）現在の規則のままでも、次のスクリーニングで {d.unchanged_rules_pending} 世帯のフラグが変わります"
            "（前回のスクリーニング後のデータの取込み・日付の経過によるもので、上の差分には含めていません）。"
        )
    lines.append("何も書き込んでいません。")
    return "\n".join(lines)


def config_diff_text(d: ConfigDiff) -> str:
    lines = [
        f"設定の変更の影響（{d.on.isoformat()} の夜間処理を両方の設定で再現し、事案 {d.cases_compared} 件を比較。"
        f"設定 {d.current_hash} → {d.candidate_hash}）"
    ]
    if d.rules_changed:
        lines.append("候補のフォルダの規則は現在の規則と異なります: 新しい事案はその規則による判定を含みます。")
    if not d.cases:
        lines.append("主担当機関・招集する機関・会議の種類・会議が変わる事案はありません。")
    new = [c for c in d.cases if c.new_case]
    if new:
        lines.append(f"次の夜間処理で開始される事案: {len(new)}件（変更の影響あり）")
    if len(d.cases) > len(new):
        lines.append(
            f"継続中の事案: {len(d.cases) - len(new)}件（会議前の事案を再検討するときに変わるもの。"
            "受諾された主担当機関は変わりません）"
        )
    for c in d.cases:
        head = f"事案 {c.case_id}" if c.case_id else "新しい事案"
        lines.append(f"■ {head}（世帯 {c.household_id}）")
        for ch in c.changes:
            lines.append(f"  {WHAT_JA[ch.what]}: {ch.before} → {ch.after}")
            if ch.reason:
                lines.append(f"      理由: {ch.reason}")
    lines.append("何も書き込んでいません。")
    return "\n".join(lines)
