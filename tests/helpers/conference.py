"""The conference slice driven as the nightly cycle and the 08:00 dispatch drive it: a night with
every e-mail sent through the file transport, a case's conference, a new import, registry edits."""

from __future__ import annotations

from engine.casework.listing import outbox
from engine.outbox import FileTransport, send_pending
from engine.workflows.cycle import dispatch, nightly_cycle
from tests.helpers.town import ON


def cycle(conn, workspace, rules, cfg, on=ON):
    """The night of `on`, then a forced dispatch through the file transport: (night result, send result)."""
    result = nightly_cycle(conn, workspace, rules, cfg, on)
    sent = dispatch(conn, cfg, workspace, on, transport=FileTransport(workspace / "outbox"), force=True).send
    return result, sent


def send_by_file(conn, cfg, workspace, **kw):
    """Send the outbox through the file transport (.eml files in <workspace>/outbox/)."""
    return send_pending(conn, cfg, workspace, transport=FileTransport(workspace / "outbox"), **kw)


def case_of(conn, hid):
    row = conn.execute(
        "SELECT case_id, status, conference_type, conference_basis, lead_agency_id, lead_reason, meeting_id FROM cases WHERE household_id = ?",
        (hid,),
    ).fetchone()
    return dict(zip(("case_id", "status", "type", "basis", "lead", "reason", "meeting"), row)) if row else None


def new_import(conn, seq: int, hid: str, when: str):
    """An import on `when` that changed household `hid` (the night re-screens it)."""
    conn.execute("UPDATE households SET changed_seq = ? WHERE household_id = ?", (seq, hid))
    conn.execute("INSERT INTO imports VALUES (?, ?, 'x', 'utf-8', '{}')", (seq, when + "T00:00:00"))
    conn.commit()


def sent_keys(conn):
    return [r.message_key for r in outbox(conn, "sent")[1]]


def with_agency(cfg, agency_id, **update):
    """The configuration with one agency of the registry changed (agencies.yaml edited)."""
    agencies = dict(cfg.agencies)
    agencies[agency_id] = agencies[agency_id].model_copy(update=update)
    return cfg.model_copy(update={"agencies": agencies})


def conference_only(cfg):
    """The configuration without triage rules (engine/triage): every new case goes to a conference,
    as before triage. For the tests of the conference's own decisions (lead, participants, booking)."""
    from engine.triage.model import Triage

    return cfg.model_copy(update={"triage": Triage()})
