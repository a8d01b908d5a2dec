"""Migrations are a deliberate step: the embedded SQLite database migrates itself on first use;
on PostgreSQL only ``brandloop db upgrade`` migrates, and a server, a worker or a command that
finds the schema outdated refuses to start with one line naming that command."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient

from brandloop.api.app import create_app
from brandloop.api.cli import main
from brandloop.api.config import ApiSettings
from brandloop.errors import SchemaOutdatedError
from brandloop.registry.db import _MIGRATION_LOCK, Database, alembic_config, head_revisions
from brandloop.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
BRANDLOOP = [sys.executable, "-c", "from brandloop.api.cli import main; main()"]
HEADS = sorted(head_revisions())


def previous_revision() -> str:
    """The revision just before this release's head: an outdated, but real, schema."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    down = script.get_revision(HEADS[0]).down_revision
    assert down, "the head migration has a parent"
    return down if isinstance(down, str) else sorted(down)[0]


def migrate_to(url: str, revision: str) -> None:
    """Bring a database to an older revision, as the previous release left it."""
    db = Database(url)
    cfg = alembic_config(url)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    db.dispose()


def current(url: str) -> set[str]:
    db = Database(url)
    try:
        return db.current_revisions()
    finally:
        db.dispose()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- SQLite

#: These look at the embedded SQLite file itself; PostgreSQL has its own tests below.
SQLITE_ONLY = pytest.mark.databases("sqlite")


@SQLITE_ONLY
def test_an_older_sqlite_schema_migrates_itself_on_first_use(settings: Settings) -> None:
    url = settings.resolved_database_url
    migrate_to(url, previous_revision())
    db = Database(url)
    assert db.current_revisions() == {previous_revision()}
    with db.session() as session:
        session.execute(sa.text("SELECT 1"))
    assert db.current_revisions() == set(HEADS)
    db.dispose()


@SQLITE_ONLY
def test_a_server_on_an_older_sqlite_schema_starts_and_migrates_it(settings: Settings) -> None:
    url = settings.resolved_database_url
    migrate_to(url, previous_revision())
    with TestClient(create_app(settings, ApiSettings(workers=0))) as client:
        assert client.get("/healthz").status_code == 200
    assert current(url) == set(HEADS)


#: the CLI in a process that imports everything, says it is ready, and starts the command
#: only when the test opens the gate: the processes reach the database together
GATED = [
    sys.executable,
    "-c",
    "import sys, time, pathlib\n"
    "from brandloop.api.cli import main\n"
    "ready, gate = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])\n"
    "ready.touch()\n"
    "while not gate.exists(): time.sleep(0.002)\n"
    "main(sys.argv[3:])\n",
]


@SQLITE_ONLY
def test_commands_started_together_on_a_fresh_data_dir_all_work(
    settings: Settings, tmp_path: Path
) -> None:
    """The first use's migration is taken in turn (a lock file beside the database): four
    real processes started at once on a fresh data dir all answer, none says 'table ...
    already exists', and the schema ends at this release's heads."""
    url = settings.resolved_database_url
    assert not Path(url.split("///")[1]).exists()
    gate = tmp_path / "gate"
    procs = [
        subprocess.Popen(
            [*GATED, str(tmp_path / f"ready{i}"), str(gate), "runs", "list", "--json"],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    try:
        for i in range(4):
            for _ in range(6000):  # imports take a few seconds on a busy machine
                if (tmp_path / f"ready{i}").exists() or procs[i].poll() is not None:
                    break
                time.sleep(0.01)
        gate.touch()
        results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [(code, err) for _, err, code in results] == [(0, "")] * 4
    assert [json.loads(out) for out, _, _ in results] == [[]] * 4
    assert current(url) == set(HEADS)


@SQLITE_ONLY
def test_db_upgrade_on_sqlite_says_what_it_did(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    code, out, err = run_cli(capsys, "db", "upgrade", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "dialect": "sqlite",
        "before": [],
        "after": HEADS,
        "upgraded": True,
    }
    code, out, _ = run_cli(capsys, "db", "upgrade")
    assert code == 0
    assert out.strip() == f"sqlite schema already current at {', '.join(HEADS)}"


@SQLITE_ONLY
def test_db_upgrade_rejects_unknown_options(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    code, _, err = run_cli(capsys, "db", "upgrade", "--to", "0001")
    assert code == 2 and err.startswith("brandloop: error:") and err.count("\n") == 1
    assert not Path(settings.resolved_database_url.split("///")[1]).exists()


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg_settings(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings (and the environment the CLI reads) for a fresh, empty PostgreSQL database."""
    for key in list(os.environ):
        if key.startswith("BRANDLOOP_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("BRANDLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BRANDLOOP_DATABASE_URL", pg_url)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def process_env(pg_url: str, **extra: str) -> dict[str, str]:
    """The environment of a ``brandloop`` process on the test database (nothing else set)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANDLOOP_")}
    env.update(BRANDLOOP_DATABASE_URL=pg_url, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", **extra)
    return env


def one_line_naming_the_command(message: str) -> None:
    assert message.strip() and "\n" not in message.strip(), message
    assert "`brandloop db upgrade`" in message, message


@pytest.mark.server
def test_an_api_on_an_empty_postgres_refuses_to_start(pg_settings: Settings) -> None:
    with pytest.raises(SchemaOutdatedError) as exc:
        create_app(pg_settings, ApiSettings(workers=0))
    one_line_naming_the_command(str(exc.value))
    assert "no brandloop schema" in str(exc.value)
    assert current(pg_settings.resolved_database_url) == set()  # it did not migrate behind our back


@pytest.mark.server
def test_an_api_on_an_older_postgres_schema_refuses_to_start(pg_settings: Settings) -> None:
    url = pg_settings.resolved_database_url
    migrate_to(url, previous_revision())
    with pytest.raises(SchemaOutdatedError) as exc:
        create_app(pg_settings, ApiSettings(workers=0))
    one_line_naming_the_command(str(exc.value))
    assert previous_revision() in str(exc.value) and HEADS[0] in str(exc.value)
    assert current(url) == {previous_revision()}


@pytest.mark.server
def test_a_command_on_an_outdated_postgres_refuses_with_one_line(
    capsys: pytest.CaptureFixture[str], pg_settings: Settings
) -> None:
    code, out, err = run_cli(capsys, "brands", "list")
    assert code == 1 and out == ""
    assert err.startswith("brandloop: error: ")
    one_line_naming_the_command(err)


@pytest.mark.server
@pytest.mark.parametrize("verb", ["serve", "worker"])
def test_serve_and_worker_on_an_outdated_postgres_exit_with_one_line(
    pg_url: str, tmp_path: Path, verb: str
) -> None:
    migrate_to(pg_url, previous_revision())
    env = process_env(
        pg_url,
        BRANDLOOP_DATA_DIR=str(tmp_path / "data"),
        BRANDLOOP_QUEUE="celery",
        BRANDLOOP_REDIS_URL="redis://127.0.0.1:9/0",  # never reached: it stops before
    )
    args = ["serve", "--port", str(free_port())] if verb == "serve" else ["worker"]
    done = subprocess.run(
        [*BRANDLOOP, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert done.stderr.startswith("brandloop: error: the database schema is at ")
    one_line_naming_the_command(done.stderr)
    assert current(pg_url) == {previous_revision()}


@pytest.mark.server
def test_db_upgrade_on_postgres_then_the_api_starts(
    capsys: pytest.CaptureFixture[str], pg_settings: Settings
) -> None:
    code, out, err = run_cli(capsys, "db", "upgrade")
    assert (code, err) == (0, "")
    assert out.strip() == f"postgresql schema upgraded from empty to {', '.join(HEADS)}"
    assert current(pg_settings.resolved_database_url) == set(HEADS)
    with TestClient(create_app(pg_settings, ApiSettings(workers=0))) as client:
        assert client.get("/healthz").status_code == 200
    code, out, _ = run_cli(capsys, "brands", "list", "--json")
    assert (code, json.loads(out)) == (0, [])
    code, out, _ = run_cli(capsys, "db", "upgrade", "--json")
    assert code == 0 and json.loads(out)["upgraded"] is False


@pytest.mark.server
def test_db_upgrade_from_several_processes_at_once_takes_turns(pg_url: str, tmp_path: Path) -> None:
    migrate_to(pg_url, previous_revision())
    env = process_env(pg_url)
    procs = [
        subprocess.Popen(
            [*BRANDLOOP, "db", "upgrade", "--json"],
            cwd=ROOT,
            env={**env, "BRANDLOOP_DATA_DIR": str(tmp_path / f"d{i}")},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    assert [code for _, _, code in results] == [0, 0, 0], [err for _, err, _ in results]
    answers = [json.loads(out) for out, _, _ in results]
    assert {tuple(a["after"]) for a in answers} == {tuple(HEADS)}
    assert [a["upgraded"] for a in answers].count(True) == 1, answers
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    engine.dispose()
    assert sorted(rows) == HEADS


@pytest.mark.server
def test_an_upgrade_that_waited_for_anothers_says_it_migrated_nothing(pg_url: str) -> None:
    """Two upgrades read the schema's revision, then wait on the migration lock; the one that
    gets it second finds the schema migrated and reports that it did nothing (an outside
    tester's five `db upgrade` at once each said `upgraded from empty`)."""
    migrate_to(pg_url, previous_revision())
    engine = sa.create_engine(pg_url)
    answers: list[tuple[set[str], set[str]]] = []
    with engine.connect() as holder:
        holder.exec_driver_sql(f"SELECT pg_advisory_lock({_MIGRATION_LOCK})")
        databases = [Database(pg_url, migrate_on_first_use=False) for _ in range(2)]
        threads = [
            threading.Thread(target=lambda d=d: answers.append(d.upgrade())) for d in databases
        ]
        for thread in threads:
            thread.start()
        waiting = sa.text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        )
        deadline = time.monotonic() + 30
        while holder.execute(waiting).scalar_one() < 2:  # both read the revision, both wait
            assert time.monotonic() < deadline, "the upgrades never reached the lock"
            time.sleep(0.02)
        holder.exec_driver_sql(f"SELECT pg_advisory_unlock({_MIGRATION_LOCK})")
        holder.commit()
        for thread in threads:
            thread.join(timeout=120)
    for database in databases:
        database.dispose()
    engine.dispose()
    heads = set(HEADS)
    assert sorted(answers, key=lambda a: sorted(a[0])) == sorted(
        [({previous_revision()}, heads), (heads, heads)], key=lambda a: sorted(a[0])
    ), answers


@pytest.mark.parametrize("argv", [["brands", "list"], ["db", "upgrade"]])
def test_a_schema_newer_than_the_release_says_so_and_not_to_upgrade(
    capsys: pytest.CaptureFixture[str], settings: Settings, argv: list[str]
) -> None:
    """A release rolled back (or an old host) meets a schema a newer release migrated: the one
    line said `brandloop db upgrade`, which then failed as an internal error (``Can't locate
    revision``; outside tester). It says the schema is newer, and nothing is changed."""
    url = settings.resolved_database_url
    migrated = Database(url)
    migrated.upgrade()
    migrated.dispose()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    code, out, err = run_cli(capsys, *argv)
    assert (code, out) == (1, ""), err
    assert err.startswith("brandloop: error: the database schema is at 9999, newer than this "
                          "release knows"), err  # fmt: skip
    assert err.count("\n") == 1 and "cannot take a schema back" in err
    assert current(url) == {"9999"}


def test_a_database_that_cannot_be_reached_is_one_line_not_an_internal_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    """A PostgreSQL nobody listens on: `storage failed` naming the database and the reason
    (exit 8), never `internal error: OperationalError` (exit 1, which the README keeps for
    brandloop's own bugs), nor the URL (it may hold a password)."""
    url = f"postgresql+psycopg://brandloop:s3cret-pw@127.0.0.1:{free_port()}/brandloop"
    monkeypatch.setenv("BRANDLOOP_DATABASE_URL", url)
    get_settings.cache_clear()
    for argv in (["runs", "list"], ["gc", "--dry-run"], ["db", "upgrade"]):
        code, out, err = run_cli(capsys, *argv)
        assert (code, out) == (8, ""), (argv, err)
        assert err.startswith(
            "brandloop: error: storage failed: the registry's database could not be reached: "
        ), err
        assert err.count("\n") == 1 and "s3cret-pw" not in err, err
    get_settings.cache_clear()
