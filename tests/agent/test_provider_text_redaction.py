"""What a provider says back (its revised prompt above all) is redacted before anything stores
it: the configured key, any 8-character run of it, key shapes and personal data never reach
the receipt, the PNG, the artifact copy or a table (docs/providers.md, docs/provenance.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from brandloop.api.cli import main
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.agent.helpers import ROOT
from tests.fakes.provider_server import FakeImagesApp, serve

KEY = "sk-proj-T3fakeKEYabcdefghijklmnopqrstuvwxyz0123456789"
EMAIL = "eve.rev@example.com"
PHONE = "+1 415 555 0188"
#: the key whole, a 12-character tail and a 10-character run from its middle
ECHOED = f"revised for {EMAIL} {PHONE} and key {KEY}; tail {KEY[-12:]}; middle {KEY[20:30]}"
NEEDLES = (KEY, KEY[-12:], KEY[20:30], EMAIL, "eve.rev", PHONE, "555 0188")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


@pytest.fixture
def echoing_server(monkeypatch: pytest.MonkeyPatch):
    app = FakeImagesApp(api_key=KEY, revised_prompt=ECHOED, render=True)
    with serve(app) as base_url:
        monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", KEY)
        monkeypatch.setenv("BRANDLOOP_OPENAI_BASE_URL", base_url)
        get_settings.cache_clear()
        yield app
    get_settings.cache_clear()


def _table_texts(db: Database) -> dict[str, str]:
    """Every row of every table, as text."""
    texts = {}
    with db.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            rows = conn.execute(text(f'SELECT * FROM "{table}"')).fetchall()
            texts[table] = "\n".join(repr(tuple(row)) for row in rows)
    return texts


def test_a_revised_prompt_echoing_the_key_and_personal_data_is_stored_redacted(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    db: Database,
    echoing_server: FakeImagesApp,
    tmp_path: Path,
) -> None:
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        capsys, "generate", "a cup of black coffee", "--brand",
        str(ROOT / "examples/brands/acme-coffee.yaml"), "--model", "openai/gpt-image-1-mini",
        "--size", "1024x1024", "--budget", "0.3", "--out", str(out_dir), "--json",
    )  # fmt: skip
    assert echoing_server.requests, "the run called the fake server"
    result = json.loads(out)
    assert result["images"], (code, result.get("reason"), err)
    files = [p for p in [*out_dir.rglob("*"), *settings.artifacts_dir.rglob("*")] if p.is_file()]
    assert any(p.name == "receipt.json" for p in files)
    tables = _table_texts(db)
    assert "[redacted]" in tables["attempts"] and "[redacted email]" in tables["attempts"]
    for needle in NEEDLES:
        assert needle not in out and needle not in err
        for path in files:
            assert needle.encode() not in path.read_bytes(), (needle, path)
        for table, dump in tables.items():
            assert needle not in dump, (needle, table)
