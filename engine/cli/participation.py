"""参加支援's referral loop from the command line: `engine refer` (a referral decided after the
conference), `engine referral N --answer …` and `engine followup N --result …` (answers given by
telephone), `engine referrals` (the list). A refusal records nothing (errors.py)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from engine.cli.options import BACKDATE, BY, CONFIG, DAY, JSON, RULES, WORKSPACE, Inputs, actor

commands = typer.Typer()

NOTE = typer.Option(None, "--note", help="A note (no names: 本人, 世帯員2 …); a reason where the answer needs one.")


@commands.command()
def refer(
    case: str = typer.Argument(..., help="Case id"),
    member: str = typer.Option(..., "--member", help="The member, as the agenda numbers them: 世帯員2 or 2."),
    place: str = typer.Option(..., "--place", help="The place's id in resources.yaml (engine resources list)."),
    consent: bool = typer.Option(
        ..., "--consent/--no-consent", help="Did the person agree that the place be told of them?"
    ),
    need: str | None = typer.Option(None, "--need", help="The need (social_contact … or its Japanese label)."),
    introduced_by: str | None = typer.Option(
        None, "--introduced-by", help="The introducing agency (default: the lead)."
    ),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
    backdate: str | None = BACKDATE,
) -> None:
    """Introduce a member to a place (参加支援の紹介) after the conference; the place (or, without
    consent, the introducer) is asked by e-mail.

    Example: engine refer C-2026-00001 --member 2 --place ibasho_kita --consent
    """
    from engine.participation.answers import refer_case
    from engine.support.vocabulary import NEED_LABELS, code_of

    given = Inputs(workspace, rules, config, on)
    cfg, conn = given.config, given.db()
    referral_id = refer_case(
        conn,
        cfg,
        case,
        member,
        place,
        given.day,
        actor(by),
        consent=consent,
        introduced_by=introduced_by,
        need=code_of(need, NEED_LABELS) if need else None,
        dating=given.dating(conn, backdate),
    )
    (channel,) = conn.execute("SELECT channel FROM referrals WHERE referral_id = ?", (referral_id,)).fetchone()
    name = cfg.participation.places[place].name
    typer.echo(
        f"事案 {case}: 紹介 {referral_id} を記録（{name}）、"
        + (
            "場所へ依頼のメールを送付予定"
            if channel == "place"
            else "紹介元の機関に同行での紹介を依頼（場所には連絡しない）"
        )
    )


@commands.command()
def need(
    case: str = typer.Argument(..., help="Case id"),
    member: str = typer.Option(..., "--member", help="The member, as the agenda numbers them: 世帯員2 or 2."),
    need_: str = typer.Option(..., "--need", help="The need (social_contact … or its Japanese label)."),
    reason: str = typer.Option(
        ..., "--reason", help="Why no place (no names): ends the audit's need_without_referral."
    ),
    no_place: bool = typer.Option(
        False, "--no-place", help="No place of the town can take the member: counted as an unmet need (地域づくり)."
    ),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
    backdate: str | None = BACKDATE,
) -> None:
    """Record why a member's 参加支援 need gets no place (紹介しない理由).

    Example: engine need C-2026-00001 --member 2 --need social_contact --no-place --reason 町内に受け入れられる場所がない
    """
    from engine.participation.answers import settle_need
    from engine.support.vocabulary import NEED_LABELS, code_of, need_label

    given = Inputs(workspace, rules, config, on)
    cfg, conn = given.config, given.db()
    code = code_of(need_, NEED_LABELS)
    need_id = settle_need(
        conn,
        cfg,
        case,
        member,
        code,
        reason,
        given.day,
        actor(by),
        no_place=no_place,
        dating=given.dating(conn, backdate),
    )
    what = "紹介できる場所がないこと" if no_place else "紹介しない理由"
    typer.echo(f"事案 {case}: ニーズ {need_id}（{need_label(code)}）に{what}を記録")


@commands.command()
def referral(
    number: int = typer.Argument(..., help="The referral's number (engine referrals)."),
    answer: str = typer.Option(
        ...,
        "--answer",
        help="accept | waitlist_lt1m | waitlist_1to3m | waitlist_gt3m | decline_at_capacity | decline_not_eligible | "
        "decline_could_not_contact | decline_other | attending | end_person_stopped | end_moved | end_needs_met | end_other | cancel",
    ),
    note: str | None = NOTE,
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
    backdate: str | None = BACKDATE,
) -> None:
    """Record a place's answer to a referral given by telephone (or attending, ended, cancelled).

    Example: engine referral 12 --answer accept
    """
    from engine.participation.answers import answer_referral
    from engine.support.vocabulary import REFERRAL_STATE_LABELS

    given = Inputs(workspace, rules, config, on)
    rs, cfg, conn = given.rules, given.config, given.db()
    r = answer_referral(conn, rs, cfg, number, answer, given.day, actor(by), note, dating=given.dating(conn, backdate))
    extra = ""
    if r.next_place:
        extra = f"、次の候補: {cfg.participation.places[r.next_place].name}（engine refer で紹介）"
    elif r.brought_back:
        extra = "、ほかに紹介できる場所がないため会議で検討（もどし）"
    elif r.followups:
        extra = f"、定着の確認 {r.followups} 件を予定"
    typer.echo(f"紹介 {r.referral_id}（事案 {r.case_id}）: {REFERRAL_STATE_LABELS[r.status]}{extra}")


@commands.command()
def followup(
    number: int = typer.Argument(..., help="The follow-up's number (engine referrals --followups)."),
    result: str = typer.Option(
        ..., "--result", help="lead: well | stopped_by_choice | stopped | concern; place: attending | not_attending"
    ),
    note: str | None = NOTE,
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    by: str | None = BY,
    backdate: str | None = BACKDATE,
) -> None:
    """Record the answer to a follow-up after a match (定着の確認), given by telephone.

    Example: engine followup 7 --result concern --note 最近休みがちで元気がない
    """
    from engine.participation.answers import answer_followup
    from engine.support.vocabulary import REFERRAL_STATE_LABELS

    given = Inputs(workspace, rules, config, on)
    rs, cfg, conn = given.rules, given.config, given.db()
    r = answer_followup(conn, rs, cfg, number, result, given.day, actor(by), note, dating=given.dating(conn, backdate))
    typer.echo(
        f"確認 {r.followup_id}（紹介 {r.referral_id}、事案 {r.case_id}）: 紹介は{REFERRAL_STATE_LABELS[r.referral_status]}"
        + ("、事案を会議で検討（もどし）" if r.brought_back else "")
    )


@commands.command()
def referrals(
    case: str | None = typer.Option(None, "--case", help="Only this case's referrals."),
    status: str | None = typer.Option(None, "--status", help="Only referrals in this state (requested, accepted, …)."),
    workspace: Path = WORKSPACE,
    rules: Path = RULES,
    config: Path = CONFIG,
    on: str | None = DAY,
    as_json: bool = JSON,
) -> None:
    """List referrals (参加支援の紹介) with their state, place and follow-ups (local only).

    Example: engine referrals --status requested
    """
    from engine.cli.errors import fail
    from engine.participation.listing import list_referrals
    from engine.support.vocabulary import REFERRAL_STATE_LABELS

    if status and status not in REFERRAL_STATE_LABELS:
        fail(f"--status: unknown state '{status}'; one of {', '.join(REFERRAL_STATE_LABELS)}")
    given = Inputs(workspace, rules, config, on)
    rows = list_referrals(given.db(), given.config, given.day, case_id=case, status=status)
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("該当する紹介はありません")
    for r in rows:
        typer.echo(
            f"紹介 {r.referral_id}  事案 {r.case_id}  {r.member}  → {r.place}（{r.category}）  {r.state}"
            f"  紹介元 {r.introduced_by}  回答期限 {r.answer_due}"
            + (f"  次の確認 {r.next_followup}" if r.next_followup else "")
        )
