"""Issue 14: the coordinator's commands print Japanese. A successful command's output carries no ASCII code word
(states, decisions, answers, severities, outbox states, …) nor an English summary; the ids a coordinator types
back (case, meeting and action numbers, an agency id in brackets after its name, message keys, paths) stay.
`engine outcome` prints the numbers of the roles it created, and `engine done N` takes them."""

from __future__ import annotations

import json
import re

from engine.casework.history import EVENT_LABELS
from engine.casework.outcome_file import CONSENT_LABELS, DECISION_LABELS
from engine.cli.main import app
from engine.rules.model import SEVERITY_JA
from engine.store.lifecycle import CHECKPOINT_LABELS, STATE_LABELS
from engine.support import vocabulary
from tests.helpers.casework import DAY, close, open_cases
from tests.helpers.cli import cli, runner

TWO_ROLES = (
    "decision: plan\nlead: houkatsu_chuo\nconsent: pending\nroles:\n"
    "  - {agency: houkatsu_chuo, action: 介護サービスの利用調整, due: 2026-12-18}\n"
    "  - {agency: jiritsu_soudan, action: 家計の相談, due: 2026-12-25}\n"
)
CODE_WORDS = (
    set(STATE_LABELS)
    | set(DECISION_LABELS)
    | set(CONSENT_LABELS)
    | set(SEVERITY_JA)
    | set(CHECKPOINT_LABELS)
    | set(EVENT_LABELS)
    | set(vocabulary.CODES)
    | set(vocabulary.ARREARS_KINDS)
    | set(vocabulary.WATCH_RESULT_LABELS)
    | set(vocabulary.ACTION_STATE_LABELS)
    | set(vocabulary.OUTBOX_STATE_LABELS)
)
LOANWORDS = {"ID"}  # 機関ID: as Japanese office software writes it
TYPED_BACK = [
    r"`[^`]*`",  # a command to type
    r"--[a-z-]+",  # an option
    r"\S*/\S*",  # a path
    r"C-\d{4}-\d{5}",  # a case id
    r"M-\d{8}-\d{4}-[A-Z]+",  # a meeting id
    r"世帯 \S+",  # a household id (the coordinator's own view)
    r"\b(?:agenda|routing|lead_request|lead_withdrawn|reminder|checkpoint|digest|notice):\S+",  # a message key
]


def ascii_words(output: str, agencies) -> set[str]:
    """The ASCII words left once what is typed back is taken out; an agency id only in brackets after its name."""
    text = re.sub("|".join(TYPED_BACK), " ", output)
    text = re.sub(r"（([a-z_]+)）", lambda m: " " if m.group(1) in agencies else m.group(0), text)
    return set(re.findall(r"[A-Za-z_]{2,}", text)) - LOANWORDS


def test_outcome_prints_the_action_numbers_that_done_accepts(conn, workspace, rules, cfg, tmp_path):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    conn.commit()
    f = tmp_path / "outcome.yaml"
    f.write_text(TWO_ROLES, encoding="utf-8")
    recorded = cli(workspace, "outcome", mid, cid, "--file", str(f), on=DAY)
    assert recorded.exit_code == 0, recorded.output
    shown = [int(n) for n in re.findall(r"役割 番号 (\d+):", recorded.output)]
    created = [a for (a,) in conn.execute("SELECT action_id FROM case_actions WHERE case_id = ? ORDER BY 1", (cid,))]
    assert shown == created and len(shown) == 2, recorded.output
    chuo = cfg.agencies["houkatsu_chuo"].name
    assert f"役割 番号 {shown[0]}: {chuo}（houkatsu_chuo）「介護サービスの利用調整」期日 令和8年12月18日（金）" in (
        recorded.output
    )
    assert cli(workspace, "accept", cid, "--agency", "houkatsu_chuo", on=DAY).exit_code == 0
    for n in shown:  # typed as printed, without looking at the history
        done = cli(workspace, "done", str(n), on=DAY)
        assert done.exit_code == 0 and f"役割 {n}（事案 {cid}）を完了として記録" in done.output, done.output
    again = cli(workspace, "done", str(shown[0]), on=DAY)
    assert again.exit_code == 1 and f"役割 {shown[0]} は既に完了です" in again.output, again.output


def test_the_coordinators_commands_print_no_code_words(conn, workspace, rules, cfg, tmp_path):
    (c1, m1), (c2, m2) = open_cases(conn, workspace, rules, cfg, "H1", "H2")
    close(conn, workspace, rules, cfg, c2, m2, DAY)
    conn.commit()
    f = tmp_path / "outcome.yaml"
    f.write_text(TWO_ROLES, encoding="utf-8")
    outputs = {}

    def run(*args: str, exits: tuple[int, ...] = (0,), plain: bool = False) -> str:
        """The command on DAY; `plain`: a command without --date (agenda, outbox, export)."""
        result = runner.invoke(app, [*args, "--workspace", str(workspace)]) if plain else cli(workspace, *args, on=DAY)
        assert result.exit_code in exits, (args, result.output)
        outputs[" ".join(args[:2])] = result.output
        return result.output

    run("run", "--no-send")
    actions = [int(n) for n in re.findall(r"役割 番号 (\d+):", run("outcome", m1, c1, "--file", str(f)))]
    asked = re.search(r"次の候補 .+?（([a-z_]+)） ?に依頼", run("decline", c1, "--reason", "担当地区外のため")).group(1)
    run("accept", c1, "--agency", asked)
    run("done", str(actions[0]))
    run("contact", c1, "--agency", "houkatsu_chuo")
    entries = json.loads(cli(workspace, "history", c1, "--json").output)
    (contact,) = [e["seq"] for e in entries if e["event"] == "contact"]
    run("correct", c1, str(contact), "--reason", "入力誤り")  # --date DAY
    run("watch", c2, "--result", "concern")
    run("sweep")
    run("audit", exits=(0, 1))
    run("cases")
    run("meetings", "--all")
    run("agenda", m1, plain=True)
    run("outbox", plain=True)
    run("outbox", "--status", "pending", plain=True)
    run("export", str(tmp_path / "exports"), plain=True)
    run("send", "--force")
    for command, output in outputs.items():
        left = ascii_words(output, cfg.agencies)
        assert not left & CODE_WORDS, f"`engine {command}` prints code words {left & CODE_WORDS}:\n{output}"
        assert not left, f"`engine {command}` prints English {left}:\n{output}"
    # the names come with the ids the coordinator types back
    name = cfg.agencies["houkatsu_chuo"].name
    assert f"{name}（houkatsu_chuo）" in outputs["contact " + c1] and f"{name}（houkatsu_chuo）" in outputs["cases"]


def test_history_names_agencies_not_ids(conn, workspace, rules, cfg, tmp_path):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    conn.commit()
    f = tmp_path / "outcome.yaml"
    f.write_text(TWO_ROLES, encoding="utf-8")
    assert cli(workspace, "outcome", mid, cid, "--file", str(f), on=DAY).exit_code == 0
    assert cli(workspace, "accept", cid, "--agency", "houkatsu_chuo", on=DAY).exit_code == 0
    shown = cli(workspace, "history", cid)
    assert shown.exit_code == 0, shown.output
    assert cfg.agencies["houkatsu_chuo"].name in shown.output
    assert not re.search(r"\bhoukatsu_\w+", shown.output), shown.output
