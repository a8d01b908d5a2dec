"""A version's commit message and a review note are at most 2,000 characters wherever they are
typed, as the HTTP API takes them (422) and a template file's ``message:`` holds one: the CLI's
``new-version -m``, ``submit --note``, ``approve --note``, ``reject --note`` and ``comment -m``
refuse a longer one (one line, exit 2, nothing stored). An import names the file and the version
of a message past the limit (an export made before the CLI enforced it), and still imports its
own registry's export, whose versions it already has (outside tester)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from brandloop.domain import MAX_MESSAGE_CHARS, MAX_REVIEW_NOTE_CHARS, TemplateVersion
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from brandloop.templates.sandbox import MAX_TEMPLATE_CHARS
from tests.api.test_cli import data_snapshot, run_cli

ROOT = Path(__file__).resolve().parents[2]
V1 = str(ROOT / "examples" / "templates" / "seasonal-banner.yaml")
V2 = str(ROOT / "examples" / "templates" / "seasonal-banner-v2.yaml")
LONG = "m" * 5000


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    return out


@pytest.fixture
def in_review(capsys: pytest.CaptureFixture[str], settings: Settings) -> Settings:
    """seasonal-banner@1 in review (ana wrote it)."""
    ok(capsys, "templates", "create", "seasonal-banner", "--file", V1, "--as", "ana")
    ok(capsys, "templates", "submit", "seasonal-banner", "1", "--as", "ana")
    return settings


def test_the_limits_are_the_apis() -> None:
    assert MAX_MESSAGE_CHARS == MAX_REVIEW_NOTE_CHARS == 2000


TOO_LONG = [
    ["templates", "new-version", "seasonal-banner", "--file", V2, "--as", "ana", "-m", LONG],
    ["templates", "submit", "seasonal-banner", "2", "--as", "ana", "--note", LONG],
    ["templates", "approve", "seasonal-banner", "1", "--as", "lee", "--note", LONG],
    ["templates", "reject", "seasonal-banner", "1", "--as", "lee", "--note", LONG],
    ["templates", "comment", "seasonal-banner", "1", "--as", "lee", "-m", LONG],
    ["templates", "comment", "seasonal-banner", "1", "--as", "lee", "-m", "c" * 2001],
]


@pytest.mark.parametrize("argv", TOO_LONG, ids=[" ".join(a[:2]) for a in TOO_LONG])
def test_an_over_long_message_or_note_is_refused_exit_2_storing_nothing(
    capsys: pytest.CaptureFixture[str], in_review: Settings, argv: list[str]
) -> None:
    if argv[1] == "submit":  # a draft to submit
        ok(capsys, "templates", "new-version", "seasonal-banner", "--file", V2, "--as", "ana",
           "-m", "v2")  # fmt: skip
    before = data_snapshot(in_review.data_dir)
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, (out, err)
    assert err.startswith("brandloop: error: ") and err.count("\n") == 1, err
    assert "at most 2000" in err and str(len(argv[-1])) in err, err
    assert LONG not in err
    assert data_snapshot(in_review.data_dir) == before


def test_a_message_or_note_at_the_limit_is_taken(
    capsys: pytest.CaptureFixture[str], in_review: Settings
) -> None:
    note = "n" * MAX_REVIEW_NOTE_CHARS
    ok(capsys, "templates", "comment", "seasonal-banner", "1", "--as", "lee", "-m", note)
    ok(capsys, "templates", "approve", "seasonal-banner", "1", "--as", "lee", "--note", note)
    ok(capsys, "templates", "new-version", "seasonal-banner", "--file", V2, "--as", "ana",
       "-m", "m" * MAX_MESSAGE_CHARS)  # fmt: skip
    ok(capsys, "templates", "submit", "seasonal-banner", "2", "--as", "ana", "--note", note)


def _store_old_version(settings: Settings, message: str) -> None:
    """seasonal-banner@2 with ``message``, as the CLI stored one before it had the limit."""
    db = Database(settings.resolved_database_url)
    try:
        with db.session() as session:
            crud.add_template_version(
                session,
                tenant=settings.tenant,
                version=TemplateVersion(
                    name="seasonal-banner",
                    version=2,
                    body="{{ brief }}, winter",
                    author="ana",
                    message=message,
                ),
                description="",
            )
            session.commit()
    finally:
        db.dispose()


def test_an_export_with_an_over_long_message_imports_here_and_is_named_elsewhere(
    capsys: pytest.CaptureFixture[str],
    in_review: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    another_database_url: str | None,
) -> None:
    _store_old_version(in_review, LONG)
    export_dir = tmp_path / "repo"
    ok(capsys, "templates", "export", str(export_dir))
    # its own registry has the version: nothing to add, nothing refused
    report = ok(capsys, "templates", "import", str(export_dir), "--as", "lee")
    assert "seasonal-banner: no new versions" in report

    monkeypatch.setenv("BRANDLOOP_DATA_DIR", str(tmp_path / "fresh"))
    if another_database_url is not None:
        monkeypatch.setenv("BRANDLOOP_DATABASE_URL", another_database_url)
    get_settings.cache_clear()
    ok(capsys, "templates", "list")  # the fresh registry, its templates and models seeded
    ok(capsys, "models", "list")
    before = data_snapshot(tmp_path / "fresh")
    code, out, err = run_cli(capsys, "templates", "import", str(export_dir), "--as", "priya")
    assert code == 2, (out, err)
    assert err.count("\n") == 1, err
    assert "seasonal-banner.yaml version 2: message" in err, err
    assert "5000 characters" in err and "at most 2000" in err, err
    assert LONG not in err
    assert data_snapshot(tmp_path / "fresh") == before


def test_a_template_file_with_an_over_long_message_is_named_by_file_and_version(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "repo"
    folder.mkdir()
    doc = {
        "name": "aaa",
        "versions": [
            {"version": 1, "author": "ana", "body": "{{ brief }}", "message": "first"},
            {"version": 2, "author": "ana", "body": "{{ brief }}!", "message": "x" * 2001},
        ],
    }
    (folder / "aaa.yaml").write_text(yaml.safe_dump(doc))
    ok(capsys, "templates", "list")
    ok(capsys, "models", "list")
    before = data_snapshot(settings.data_dir)
    code, out, err = run_cli(capsys, "templates", "import", str(folder), "--as", "ana")
    assert code == 2, (out, err)
    assert "aaa.yaml version 2: message" in err and "at most 2000" in err, err
    assert data_snapshot(settings.data_dir) == before


def test_a_negative_body_takes_the_same_limit_in_the_cli_and_the_api(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """The engine's limit for either text (8,000 characters) in both: the API took at most
    4,000 of a negative body that ``templates create`` stored (outside tester)."""
    from fastapi.testclient import TestClient

    from brandloop.api.app import ApiSettings, create_app
    from tests.api.http.conftest import Keys

    at_limit = "blurry, " * 1000  # 8,000 characters
    assert len(at_limit) == MAX_TEMPLATE_CHARS
    for name, negative in (("neg-ok", at_limit), ("neg-long", at_limit + "x")):
        spec = tmp_path / f"{name}.yaml"
        spec.write_text(yaml.safe_dump({"body": "{{ brief }}", "negative_body": negative}))
        code, _, err = run_cli(capsys, "templates", "create", name, "--file", str(spec), "--as",
                               "ana")  # fmt: skip
        if name == "neg-ok":
            assert code == 0, err
        else:
            assert code == 2 and "8001 characters; the limit is 8000" in err, err
    db = Database(settings.resolved_database_url)
    with TestClient(create_app(settings, ApiSettings(workers=0))) as client:
        ana = Keys(db).of("A", "ana", "creator")
        db.dispose()  # its connection closed here, not by the collector (a warning on PostgreSQL)
        url = "/v1/templates/neg-api/versions"
        body = {"body": "{{ brief }}", "negative_body": at_limit}
        assert client.post(url, json=body, headers=ana).status_code == 201
        body["negative_body"] += "x"
        refused = client.post(url, json=body, headers=ana)
        assert refused.status_code == 422, refused.text
