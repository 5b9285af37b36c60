"""Owner-only files under umask 022: the database, the workspace, the outbox, agendas, reports and the
demo's simulation files are readable by their owner only, on the production path (import, night,
send) and in the demo."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli.main import app
from engine.store.db import connect
from tests.helpers.conference import cycle
from tests.helpers.paths import ROOT
from tests.helpers.town import ON


# --- file modes under umask 022 ----------------------------------------------------------------------
@pytest.fixture
def umask022():
    old = os.umask(0o022)  # the usual default: anything not created owner-only would be world-readable
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def not_owner_only(paths) -> list[tuple[str, str]]:
    return [(str(p), mode(p)) for p in paths if stat.S_IMODE(p.stat().st_mode) & 0o077]


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (args, result.output)
    return result.output


@pytest.fixture
def cli_workspace(tmp_path, umask022) -> Path:
    """The production path, as a coordinator runs it: import an extract (with bad rows), run the
    night, send. The extract is written by `engine generate`, outside the workspace."""
    extract, ws = tmp_path / "extract", tmp_path / "ws"
    _cli("generate", str(extract), "--households", "120", "--seed", "3", "--bad-rows", "4", "--date", ON.isoformat())
    _cli("import", str(extract), "--workspace", str(ws))
    _cli(
        "run",
        "--workspace",
        str(ws),
        "--rules",
        str(ROOT / "configs" / "rules"),
        "--config",
        str(ROOT / "configs"),
        "--date",
        ON.isoformat(),
    )
    assert (
        list((ws / "agendas").rglob("*.txt"))
        and list((ws / "outbox").glob("*.eml"))
        and list((ws / "reports").glob("rejects-*.csv"))
    )
    return ws


@pytest.fixture
def demo_workspace(tmp_path, umask022) -> Path:
    ws = tmp_path / "demo"
    # 150 households, seed 1, 60 days: the span imports a relapse extract (sim/extract-2027-01-03/)
    _cli(
        "demo",
        "--households",
        "150",
        "--seed",
        "1",
        "--days",
        "60",
        "--date",
        ON.isoformat(),
        "--workspace",
        str(ws),
        "--rules",
        str(ROOT / "configs" / "rules"),
        "--config",
        str(ROOT / "configs"),
    )
    sim = list((ws / "sim").rglob("*"))
    assert any(p.name == "persons.csv" for p in sim) and any(p.suffix == ".yaml" for p in sim)
    return ws


def engine_files(ws: Path) -> list[Path]:
    """What the brief names: database, workspace, outbox folder and .eml, agendas (meeting folders
    and files), reports and rejects files."""
    out = [ws, ws / "engine.db", ws / "outbox", *(ws / "outbox").iterdir(), ws / "reports", *(ws / "reports").iterdir()]
    out += [p for p in (ws / "agendas").rglob("*")]
    return out


@pytest.mark.parametrize("which", ["cli_workspace", "demo_workspace"])
def test_database_outbox_agendas_and_reports_are_owner_only(which, request):
    ws = request.getfixturevalue(which)
    files = engine_files(ws)
    assert len(list((ws / "outbox").glob("*.eml"))) >= 5 and len(list((ws / "agendas").rglob("*.txt"))) >= 5
    assert list((ws / "reports").glob("rejects-*.csv"))
    # the -wal and -shm files exist while a connection is open: check them then
    conn = connect(ws)
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS mode_probe (x)")
        conn.execute("INSERT INTO mode_probe VALUES (1)")
        conn.commit()
        live = [ws / "engine.db-wal", ws / "engine.db-shm"]
        assert all(p.exists() for p in live)
        assert not_owner_only(files + live) == []
    finally:
        conn.close()


def test_the_agendas_folder_itself_is_owner_only(cli_workspace):
    assert not_owner_only([cli_workspace / "agendas"]) == []


def test_the_demo_simulation_files_are_owner_only(demo_workspace):
    assert not_owner_only([demo_workspace / "sim", *(demo_workspace / "sim").rglob("*")]) == []


def test_files_are_readable_by_the_owner_only(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    for path in list((workspace / "outbox").iterdir()) + [p for p in (workspace / "agendas").rglob("*")]:
        assert path.stat().st_mode & 0o077 == 0, path


# --- a link planted where the engine writes -----------------------------------------------------------
@pytest.mark.parametrize("planted", ["the name", "the temporary name"])
@pytest.mark.parametrize("durable", [False, True])
def test_a_link_at_a_file_s_name_is_replaced_never_written_through(tmp_path, umask022, planted, durable):
    """Someone who can write in a workspace folder plants a link where an agenda or an e-mail will be
    written (or at its temporary name): the engine's file replaces the link, and the file the link
    points to keeps its content and its mode."""
    from engine.support.private_files import write_private

    victim = tmp_path / "victim.txt"
    victim.write_text("元の内容", encoding="utf-8")
    victim.chmod(0o644)
    folder = tmp_path / "agendas" / "M-1"
    folder.mkdir(parents=True)
    path = folder / "A1.v1.txt"
    (path if planted == "the name" else Path(f"{path}.tmp")).symlink_to(victim)
    write_private(path, "議題", durable=durable)
    assert victim.read_text(encoding="utf-8") == "元の内容" and stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert not path.is_symlink() and path.read_text(encoding="utf-8") == "議題"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and not Path(f"{path}.tmp").exists()
