"""--workspace (engine/support/private_files.py own_folder, used by engine/store/db.py connect): the
engine keeps personal data in it, so it refuses a folder that others could change — group- or
world-writable (a 1777 shared folder), someone else's, or holding files it did not make — with one
line naming --workspace, and never chmods an existing folder. A link is judged by the folder it
points to. The engine's own workspace (it holds engine.db) keeps working."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli.main import app
from engine.store.db import connect
from tests.helpers.paths import ROOT

EXTRACT = ROOT / "tests" / "reliability" / "hostile" / "csv" / "base"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def engine(*argv: str):
    ran = CliRunner().invoke(app, list(argv), env={"COLUMNS": "250"})
    assert ran.exception is None or isinstance(ran.exception, SystemExit), ran.output
    assert "Traceback" not in ran.output
    return ran


def refused(folder: Path, phrase: str) -> None:
    ran = engine("import", str(EXTRACT), "--workspace", str(folder))
    assert ran.exit_code == 2, ran.output
    (line,) = [x for x in ran.output.splitlines() if x.strip()]
    assert line.startswith(f"error: --workspace {folder}") and phrase in line, line


@pytest.mark.parametrize("bits", [0o1777, 0o777, 0o770, 0o2775], ids=lambda b: f"{b:o}")
def test_a_folder_others_can_write_to_is_refused_and_left_as_it_is(tmp_path, bits):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, bits)
    refused(shared, "other users can write")
    assert mode(shared) == bits and list(shared.iterdir()) == []


def test_a_folder_with_files_the_engine_did_not_make_is_refused(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    (home / "notes.txt").write_text("mine\n", encoding="utf-8")
    refused(home, "files the engine did not make")
    assert mode(home) == 0o755 and [p.name for p in home.iterdir()] == ["notes.txt"]


@pytest.mark.skipif(os.getuid() != 0, reason="making a folder of another user needs root")
def test_a_folder_of_another_user_is_refused(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 4242, 4242)
    refused(theirs, "belongs to another user")


def test_a_link_is_judged_by_the_folder_it_points_to(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    link = tmp_path / "ws-link"
    link.symlink_to(shared)
    refused(link, "other users can write")
    assert mode(shared) == 0o1777 and not (shared / "engine.db").exists()
    # a link to the engine's own workspace is that workspace
    own = tmp_path / "own"
    connect(own).close()
    good = tmp_path / "good-link"
    good.symlink_to(own)
    assert engine("import", str(EXTRACT), "--workspace", str(good)).exit_code == 0
    assert mode(own) == 0o700


def test_an_empty_folder_of_your_own_is_used_and_never_chmodded(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o750)
    os.chmod(mine, 0o750)
    assert engine("import", str(EXTRACT), "--workspace", str(mine)).exit_code == 0
    assert mode(mine) == 0o750 and mode(mine / "engine.db") == 0o600


def test_the_engines_own_workspace_is_made_owner_only_and_keeps_working(tmp_path):
    ws = tmp_path / "new" / "ws"
    assert engine("import", str(EXTRACT), "--workspace", str(ws)).exit_code == 0
    assert mode(ws) == mode(ws.parent) == 0o700
    assert engine("import", str(EXTRACT), "--workspace", str(ws)).exit_code == 0
    assert engine("cases", "--workspace", str(ws)).exit_code == 0


def test_the_demo_refuses_a_shared_folder_before_removing_anything(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    ran = engine("demo", "--households", "20", "--days", "0", "--workspace", str(shared))
    assert ran.exit_code == 2 and "other users can write" in ran.output, ran.output
    assert shared.is_dir() and mode(shared) == 0o1777
