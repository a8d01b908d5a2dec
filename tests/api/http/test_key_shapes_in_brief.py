"""Key-shaped tokens typed into a brief (another service's key nobody configured here, so not
refused as a configured credential is) are redacted at intake as personal data is: the brief
that is stored, sent to the provider, signed into the PNG and written to ``receipt.json``
holds ``[redacted key]`` in their place - through the CLI and through the API, on both
databases (docs/provenance.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from brandloop.tools.moderation.keys import redact_keys
from tests.agent.helpers import ROOT
from tests.agent.test_provider_text_redaction import _table_texts, run_cli
from tests.api.http.conftest import Keys, both_databases, brand_kit
from tests.fakes.provider_server import FakeImagesApp, serve

OPENAI_KEY = "sk-proj-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
GITHUB_TOKEN = "ghp_16C7e42F292c6912E7710c838347Ae178B4a9Z"
TOKENS = (OPENAI_KEY, AWS_KEY, GITHUB_TOKEN)
BRIEF = (
    f"a latte for the launch, keys {OPENAI_KEY} and {AWS_KEY}, token {GITHUB_TOKEN}, "
    "mail ann@example.com, the key-visual-for-the-spring-campaign look"
)
settings = pytest.fixture(name="settings")(both_databases)

NEEDLES = (*TOKENS, "4f9a8b7c6d5e", "IOSFODNN7", "16C7e42F292c", "ann@example.com")


def _scan(texts: dict[str, str], files: list[Path], *outputs: str) -> None:
    """None of the tokens (nor a piece of one) in any table, file or output."""
    for needle in NEEDLES:
        assert all(needle not in output for output in outputs), needle
        for path in files:
            assert needle.encode() not in path.read_bytes(), (needle, path)
        for table, dump in texts.items():
            assert needle not in dump, (needle, table)


@pytest.fixture
def images_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeImagesApp]:
    app = FakeImagesApp(api_key="sk-test-configured-0123456789abcdef", render=True)
    with serve(app) as base_url:
        monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", "sk-test-configured-0123456789abcdef")
        monkeypatch.setenv("BRANDLOOP_OPENAI_BASE_URL", base_url)
        get_settings.cache_clear()
        yield app
    get_settings.cache_clear()


def test_key_shaped_tokens_in_a_cli_brief_are_redacted_before_stored_sent_or_signed(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    db: Database,
    images_server: FakeImagesApp,
    tmp_path: Path,
) -> None:
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        capsys, "generate", BRIEF, "--brand", str(ROOT / "examples/brands/acme-coffee.yaml"),
        "--model", "openai/gpt-image-1-mini", "--size", "1024x1024", "--budget", "0.3",
        "--out", str(out_dir), "--json",
    )  # fmt: skip
    assert code == 0, err
    sent = [r["body"].get("prompt", "") for r in images_server.requests]
    assert sent and all(prompt.count("[redacted key]") == 3 for prompt in sent), sent
    assert all("key-visual-for-the-spring-campaign" in prompt for prompt in sent)
    receipt = json.loads((out_dir / "receipt.json").read_text())["receipts"][0]
    assert receipt["prompt"].count("[redacted key]") == 3
    assert sorted(receipt["redactions"]) == ["email", "key x3"]
    files = [p for p in [*out_dir.rglob("*"), *settings.artifacts_dir.rglob("*")] if p.is_file()]
    assert any(p.suffix == ".png" for p in files)
    _scan(_table_texts(db), files, out, err)


def test_key_shaped_tokens_in_an_api_brief_are_redacted_before_stored_or_signed(
    client: TestClient, keys: Keys, db: Database, settings: Settings
) -> None:
    admin = keys["A", "admin"]
    assert client.post("/v1/brands", json=brand_kit(), headers=admin).status_code == 201
    body = {"brief": BRIEF, "brand": "Acme Coffee", "size": "256x256", "seed": 3}
    job = client.post("/v1/generations?wait=120", json=body, headers=admin).json()
    assert job["state"] == "succeeded", job
    assert job["result"]["brief"].count("[redacted key]") == 3, job["result"]["brief"]
    receipts = client.get(f"/v1/runs/{job['run_id']}/receipts", headers=admin).json()
    assert all(r["prompt"].count("[redacted key]") == 3 for r in receipts)
    png = client.get(f"/v1/artifacts/{receipts[0]['sha256']}", headers=admin).content
    assert b"[redacted key]" in png
    files = [p for p in settings.artifacts_dir.rglob("*") if p.is_file()]
    _scan(_table_texts(db), files, json.dumps(job), json.dumps(receipts))


@pytest.mark.parametrize(
    "words",
    [
        "a key-lime-pie latte",
        "the key-visual-for-the-spring-campaign",
        "a sk-8-board on the counter",
        "session_cookie_banner_design",
        # words around the credential shapes added for style notes (outside tester)
        "the bearer of good news",
        "a Bearer abcdefghijklmnopqrstuv",
        "our secret: fresh beans",
        "a token: gift",
        "a cup, password protected",
        "secret_sauce=caramel drizzle",
        "the dress_code: smart casual",
        "monkey=banana1234",
    ],
)
def test_words_shaped_like_a_key_prefix_are_not_taken_for_one(words: str) -> None:
    assert redact_keys(words) == (words, 0)


def test_each_kind_of_key_shape_is_redacted() -> None:
    for token in (
        *TOKENS,
        "sk_live_51HqLyjWDarjtT1zdp7dcXYZ",
        "xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    ):
        assert redact_keys(f"a cup {token}.") == ("a cup [redacted key].", 1), token


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        (
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.abcdefghijklmnop and password=Sup3r!",
            "[redacted key] and password=[redacted key]",
        ),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.abcdefghijklmnop", "jwt [redacted key]"),
        ("PWD: hunter2, then warm light", "PWD: [redacted key], then warm light"),
        ("api_key=abcdef123456", "api_key=[redacted key]"),
        ("token: abc123def456ghi789", "token: [redacted key]"),
        # a label that ends a longer name, as environment files write them (outside tester:
        # each of these was kept in a style note in clear)
        (
            "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY DB_PASSWORD=Tr0ub4dor3",
            "aws_secret_access_key=[redacted key] DB_PASSWORD=[redacted key]",
        ),
        ("export OPENAI_API_KEY=abc123def456ghi789jkl", "export OPENAI_API_KEY=[redacted key]"),
        ("MY_TOKEN: 9f8e7d6c5b4a39281706", "MY_TOKEN: [redacted key]"),
    ],
)
def test_tokens_and_credentials_written_as_assignments_are_redacted(
    text: str, redacted: str
) -> None:
    """A JSON web token, a Bearer token and a password or API key written as an assignment
    were kept in a style note in clear, and so in every later prompt and receipt of the brand
    (outside tester); the label stays, the value goes."""
    assert redact_keys(text)[0] == redacted
