"""``brandloop templates ...``, ``drift list`` and ``runs reproduce`` end to end through the CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from brandloop.agent.templates import pick_weighted
from brandloop.api.cli import main
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.api.test_cli import BRANDS, data_snapshot, run_cli
from tests.databases import PostgresTemplate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "templates"
V1 = str(EXAMPLES / "seasonal-banner.yaml")
V2 = str(EXAMPLES / "seasonal-banner-v2.yaml")


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    return out


def two_approved_versions(capsys: pytest.CaptureFixture[str]) -> None:
    ok(capsys, "templates", "create", "seasonal-banner", "--file", V1, "--as", "ana")
    ok(
        capsys,
        "templates",
        "new-version",
        "seasonal-banner",
        "--file",
        V2,
        "-m",
        "minimal",
        "--as",
        "ana",
    )
    for version in ("1", "2"):
        ok(capsys, "templates", "submit", "seasonal-banner", version, "--as", "ana")
        ok(
            capsys,
            "templates",
            "approve",
            "seasonal-banner",
            version,
            "--as",
            "lee",
            "--note",
            "ok",
        )


def audit_rows() -> list[tuple[str, str, str]]:
    """The audit log of the registry the settings name now."""
    db = Database.from_settings(get_settings())
    try:
        with db.engine.connect() as conn:
            query = sa.text("SELECT actor, action, subject_id FROM audit_log ORDER BY id")
            return [tuple(row) for row in conn.execute(query)]
    finally:
        db.dispose()


def test_the_whole_review_flow_through_the_cli(
    capsys: pytest.CaptureFixture[str], settings: Settings, data_dir: Path
) -> None:
    out = ok(capsys, "templates", "create", "seasonal-banner", "--file", V1, "--as", "ana")
    assert "seasonal-banner@1 (draft)" in out
    # no production label yet: the bare name cannot be shown, and the line says what can
    code, _, err = run_cli(capsys, "templates", "show", "seasonal-banner")
    assert code == 2 and err.count("\n") == 1, err
    assert "has no label 'production'; show one of its versions: seasonal-banner@N" in err, err
    ok(
        capsys,
        "templates",
        "new-version",
        "seasonal-banner",
        "--file",
        V2,
        "-m",
        "minimal",
        "--as",
        "ana",
    )
    ok(
        capsys,
        "templates",
        "comment",
        "seasonal-banner",
        "2",
        "--as",
        "lee",
        "-m",
        "fewer objects?",
    )
    ok(capsys, "templates", "submit", "seasonal-banner", "1", "--as", "ana")
    ok(capsys, "templates", "approve", "seasonal-banner", "1", "--as", "lee", "--note", "good")
    ok(capsys, "templates", "submit", "seasonal-banner", "2", "--as", "ana")
    ok(
        capsys,
        "templates",
        "reject",
        "seasonal-banner",
        "2",
        "--as",
        "priya",
        "--note",
        "too plain",
    )
    ok(capsys, "templates", "label", "seasonal-banner", "production", "1", "--as", "lee")

    doc = json.loads(ok(capsys, "templates", "show", "seasonal-banner:production", "--json"))
    assert [v["ref"] for v in doc["selected"]] == ["seasonal-banner@1"]
    assert doc["labels"] == {"production": {"1": 1.0}}
    assert [(v["version"], v["status"]) for v in doc["versions"]] == [
        (1, "approved"),
        (2, "rejected"),
    ]
    assert [(r["actor"], r["action"]) for r in doc["reviews"]] == [
        ("ana", "submit"),
        ("lee", "approve"),
    ]
    doc = json.loads(ok(capsys, "templates", "show", "seasonal-banner@2", "--json"))
    assert [(r["actor"], r["action"], r["note"]) for r in doc["reviews"]] == [
        ("lee", "comment", "fewer objects?"),
        ("ana", "submit", ""),
        ("priya", "reject", "too plain"),
    ]
    listing = json.loads(ok(capsys, "templates", "list", "--json"))
    assert {t["name"] for t in listing} == {"brand-hero", "seasonal-banner"}
    diff = ok(capsys, "templates", "diff", "seasonal-banner", "1", "2")
    assert "--- seasonal-banner@1" in diff and "+  many objects" in diff
    history = json.loads(ok(capsys, "templates", "history", "seasonal-banner", "--json"))
    assert [h["action"] for h in history] == [
        "template.created",
        "template.version_created",
        "template.commented",
        "template.submitted",
        "template.approved",
        "template.submitted",
        "template.rejected",
        "template.label_moved",
    ]
    assert "brief" in ok(capsys, "templates", "variables")


def test_an_author_in_another_case_is_still_the_author(
    capsys: pytest.CaptureFixture[str], settings: Settings, data_dir: Path
) -> None:
    """Four eyes compares names ignoring case: LEE's version is not lee's (or Lee's) to approve."""
    ok(capsys, "templates", "create", "seasonal-banner", "--file", V1, "--as", "LEE")
    ok(capsys, "templates", "submit", "seasonal-banner", "1", "--as", "lee")  # the author's own
    before = data_snapshot(data_dir)
    for argv in (
        ("approve", "seasonal-banner", "1", "--as", "lee"),
        ("approve", "seasonal-banner", "1", "--as", "Lee"),
        ("reject", "seasonal-banner", "1", "--as", "lee", "--note", "mine"),
        ("label", "seasonal-banner", "production", "1", "--as", "lee"),
    ):
        code, _, err = run_cli(capsys, "templates", *argv)
        assert code == 2, (argv, err)
        assert "lee wrote" in err.lower() or "only to approved versions" in err, err
        if argv[0] in {"approve", "reject"}:  # the stored author is named, not the caller
            assert f"LEE wrote seasonal-banner@1; {argv[4]} may not {argv[0]} it" in err, err
    assert data_snapshot(data_dir) == before
    # another approver may, in any case too (approvers: lee, priya)
    ok(capsys, "templates", "approve", "seasonal-banner", "1", "--as", "PRIYA")
    ok(capsys, "templates", "label", "seasonal-banner", "production", "1", "--as", "priya")
    doc = json.loads(ok(capsys, "templates", "show", "seasonal-banner", "--json"))
    assert doc["versions"][0]["status"] == "approved"
    assert [(r["actor"], r["action"]) for r in doc["reviews"]] == [
        ("lee", "submit"),
        ("PRIYA", "approve"),
    ]


def test_an_imported_review_is_four_eyed_and_recorded(
    capsys: pytest.CaptureFixture[str], settings: Settings, data_dir: Path, tmp_path: Path
) -> None:
    """The tester's case: ana's template exported, a version 2 written by lee added to the file
    as approved and in production; lee cannot import it, priya can (and is its reviewer)."""
    ok(capsys, "templates", "create", "seasonal-banner", "--file", V1, "--as", "ana")
    exported = tmp_path / "exp"
    ok(capsys, "templates", "export", str(exported))
    path = exported / "seasonal-banner.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["versions"].append(
        {**doc["versions"][0], "version": 2, "author": "lee", "status": "approved"}
    )
    doc["labels"] = {"production": {"2": 1.0}}
    path.write_text(yaml.safe_dump(doc))
    before = data_snapshot(data_dir)
    for importer in ("lee", "LEE"):
        code, _, err = run_cli(capsys, "templates", "import", str(exported), "--as", importer)
        assert code == 2 and "four eyes" in err, err
        assert data_snapshot(data_dir) == before
    report = json.loads(ok(capsys, "templates", "import", str(exported), "--as", "priya", "--json"))
    assert [
        (r["added_versions"], r["moved_labels"]) for r in report if r["template"] != "brand-hero"
    ] == [([2], ["production"])]
    shown = json.loads(ok(capsys, "templates", "show", "seasonal-banner@2", "--json"))
    assert shown["selected"][0]["author"] == "lee"
    assert [(r["actor"], r["action"]) for r in shown["reviews"]] == [("priya", "approve")]


def _cli(*argv: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    assert not exc.value.code, argv


def _fill_prepared_registry(golden: Path, inputs: Path, database_url: str | None) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BRANDLOOP_DATA_DIR", str(golden))
        if database_url is not None:
            mp.setenv("BRANDLOOP_DATABASE_URL", database_url)
        get_settings.cache_clear()
        _cli("templates", "create", "seasonal-banner", "--file", V1, "--as", "ana")
        _cli("templates", "new-version", "seasonal-banner", "--file", V2, "-m", "v2", "--as", "ana")
        for version in ("1", "2"):
            _cli("templates", "submit", "seasonal-banner", version, "--as", "ana")
            _cli("templates", "approve", "seasonal-banner", version, "--as", "lee")
        _cli("templates", "new-version", "seasonal-banner", "--file", V1, "-m", "v3", "--as", "ana")
        _cli("templates", "new-version", "seasonal-banner", "--file", V2, "-m", "v4", "--as", "ana")
        _cli("templates", "submit", "seasonal-banner", "4", "--as", "ana")
        _cli("brands", "add", str(BRANDS / "acme-coffee.yaml"))
        _cli("models", "list")  # the catalog sync is not part of what a refusal must leave alone
        if not (inputs / "changed_dir").exists():
            _cli("templates", "export", str(inputs / "changed_dir"))
    get_settings.cache_clear()


@dataclass
class Prepared:
    """A registry with seasonal-banner @1 @2 approved, @3 draft, @4 in review, and the bad
    inputs beside it; each bad-input test starts from a copy of this registry: the data dir of
    ``golden`` (SQLite) and, on PostgreSQL, a copy of the database ``postgres``."""

    golden: Path
    inputs: Path
    make_postgres: Callable[[], PostgresTemplate]
    postgres: PostgresTemplate | None = None

    def database(self) -> PostgresTemplate:
        if self.postgres is None:
            self.postgres = self.make_postgres()
            _fill_prepared_registry(self.golden.parent / "pg-data", self.inputs, self.postgres.url)
        return self.postgres


@pytest.fixture(scope="module")
def prepared(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Prepared]:
    root = tmp_path_factory.mktemp("prepared")
    golden, inputs = root / "data", root / "inputs"
    inputs.mkdir()
    _fill_prepared_registry(golden, inputs, None)
    (inputs / "undefined.yaml").write_text("body: '{{ brief }} for {{ customer_name }}'\n")
    (inputs / "escape.yaml").write_text("body: \"{{ ''.__class__.__mro__ }}\"\n")
    (inputs / "escape2.yaml").write_text(
        "body: '{{ brief }}'\nnegative_body: '{{ cycler.__init__.__globals__ }}'\n"
    )
    (inputs / "malformed.yaml").write_text("body: '{{ brief }}\nparams: [\n")
    (inputs / "blank_body.yaml").write_text("body: '   '\nmessage: m\n")
    (inputs / "invisible_body.yaml").write_text('body: "\\u200b\\u00a0"\nmessage: m\n')
    changed = inputs / "changed_dir" / "seasonal-banner.yaml"
    doc = yaml.safe_load(changed.read_text())
    doc["versions"][0]["body"] += " edited"
    changed.write_text(yaml.safe_dump(doc))

    def fresh(directory: str, **version: Any) -> None:
        path = inputs / directory
        path.mkdir()
        body = {"version": 1, "author": "ana", "body": "{{ brief }}", **version}
        (path / "fresh.yaml").write_text(yaml.safe_dump({"name": "fresh", "versions": [body]}))

    fresh("malformed_dir")
    (inputs / "malformed_dir" / "zz.yaml").write_text("name: [broken\n")
    fresh("approved_dir", status="approved")
    fresh("escape_dir", body="{{ ''.__class__ }}")
    fresh("newline_author_dir", author="lee\n")
    # four eyes in a file: lee wrote it (in any case), so lee may not bring it in approved
    fresh("self_approved_dir", author="LEE", status="approved")
    fresh("self_rejected_dir", author="lee", status="rejected")
    fresh("foreign_review_dir", author="ana", status="in_review")  # mallory is not ana
    # a new version's model hints are checked as create's are (an outside tester's report)
    fresh("unknown_hint_dir", model_hints=["procedural/draft", "nope/none"])

    def labelled(directory: str, name: str, labels: dict[str, Any]) -> None:
        path = inputs / directory
        path.mkdir()
        body = {"version": 1, "author": "ana", "body": "{{ brief }}"}
        document = {"name": name, "labels": labels, "versions": [body]}
        (path / "fresh.yaml").write_text(yaml.safe_dump(document))

    # an outside tester's imports: brandloop's reserved author, numbers spelt otherwise,
    # metadata and a description past what the API takes, a YAML alias bomb in metadata
    fresh("system_author_dir", author="System", status="approved")
    fresh("string_version_dir", version="1")
    fresh("bool_version_dir", version=True)
    fresh("long_safety_notes_dir", metadata={"safety_notes": "s" * 2001})
    bomb = inputs / "metadata_bomb_dir"
    bomb.mkdir()
    lines = ["name: fresh", "versions:", "  - version: 1", "    author: ana",
             "    body: '{{ brief }}'", "    metadata:", "      l0: &a0 [" + ", ".join(["lol"] * 10) + "]"]  # fmt: skip
    lines += [f"      l{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    (bomb / "fresh.yaml").write_text("\n".join(lines) + "\n")
    big = inputs / "metadata_big_dir"  # 10,000 values of 3 characters: past 16,000 characters
    big.mkdir()
    (big / "fresh.yaml").write_text("\n".join(lines[:7] + [
        f"      l{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 4)
    ]) + "\n")  # fmt: skip
    path = inputs / "long_description_dir"
    path.mkdir()
    document = {"name": "fresh", "description": "d" * 2001,
                "versions": [{"version": 1, "author": "ana", "body": "{{ brief }}"}]}  # fmt: skip
    (path / "fresh.yaml").write_text(yaml.safe_dump(document))
    labelled("full_width_label_dir", "fresh", {"staging": {"\uff11": 1.0}})
    labelled("leading_zero_label_dir", "fresh", {"staging": {"01": 1.0}})
    labelled("newline_label_dir", "fresh", {"production\n": {"1": 1.0}})
    labelled("newline_name_dir", "fresh\n", {})
    labelled("huge_weight_dir", "fresh", {"staging": {"1": 1e308}})
    # weight 0 in a file, as `templates label 1=0,2=1` refuses it (docs/templates.md)
    path = inputs / "zero_weight_dir"
    path.mkdir()
    two = [{"version": v, "author": "ana", "body": "{{ brief }}"} for v in (1, 2)]
    document = {"name": "fresh", "labels": {"zw": {"1": 0, "2": 1}}, "versions": two}
    (path / "fresh.yaml").write_text(yaml.safe_dump(document))
    (inputs / "unknown_model.yaml").write_text(
        "body: '{{ brief }}'\nmodel_hints: [procedural/draft, nope/none, openai/gpt-nonexistent]\n"
    )
    made = Prepared(golden, inputs, lambda: request.getfixturevalue("postgres_template").derive())
    yield made
    if made.postgres is not None:
        made.postgres.drop()


@pytest.fixture
def prepared_registry(
    prepared: Prepared,
    database: str,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[None]:
    """This test's registry: a copy of the prepared one."""
    shutil.copytree(prepared.golden, data_dir)
    if database == "sqlite":
        yield
        return
    source = prepared.database()
    capsys.readouterr()  # what preparing it printed is not this test's output
    with source.copy() as url:
        monkeypatch.setenv("BRANDLOOP_DATABASE_URL", url)
        get_settings.cache_clear()
        yield
    get_settings.cache_clear()


def _input(prepared: Prepared, token: str) -> str:
    if re.fullmatch(r"[A-Z][A-Z0-9_]*", token):
        suffix = "" if token.endswith("_DIR") else ".yaml"
        return str(prepared.inputs / f"{token.lower()}{suffix}")
    return token


BAD = [
    # argv (UPPER-CASE tokens name prepared inputs), the message expected on stderr
    (["templates", "import", "ZERO_WEIGHT_DIR", "--as", "priya"], "gives version 1 the weight 0"),
    (
        ["templates", "import", "UNKNOWN_HINT_DIR", "--as", "priya"],
        "the catalog does not hold: nope/none (known models: ",
    ),
    (
        ["templates", "create", "hinted", "--file", "UNKNOWN_MODEL", "--as", "ana"],
        "the catalog does not hold: nope/none, openai/gpt-nonexistent (known models: ",
    ),
    (
        [
            "templates",
            "new-version",
            "seasonal-banner",
            "-f",
            "UNKNOWN_MODEL",
            "-m",
            "x",
            "--as",
            "ana",
        ],
        "model_hints name models the catalog does not hold: nope/none, openai/gpt-nonexistent",
    ),
    (["templates", "create", "x", "--file", "MISSING", "--as", "ana"], "cannot read"),
    (
        ["templates", "create", "undefined-vars", "--file", "UNDEFINED", "--as", "ana"],
        "undefined variable",
    ),
    (["templates", "create", "escape", "--file", "ESCAPE", "--as", "ana"], "attribute access"),
    (["templates", "create", "escape2", "--file", "ESCAPE2", "--as", "ana"], "attribute access"),
    (["templates", "create", "broken", "--file", "MALFORMED", "--as", "ana"], "not valid YAML"),
    (["templates", "create", "Bad Name", "--file", V1, "--as", "ana"], "template name"),
    (["templates", "create", "seasonal-banner", "--file", V1, "--as", "ana"], "already exists"),
    (
        ["templates", "new-version", "seasonal-banner", "--file", V2, "-m", "m", "--as", "sys tem"],
        "not a valid user",
    ),
    (
        ["templates", "label", "seasonal-banner", "canary", "9", "--as", "ana"],
        "seasonal-banner@9 does not exist",
    ),
    (
        ["templates", "label", "seasonal-banner", "canary", "1=90,x", "--as", "ana"],
        "VERSION=WEIGHT",
    ),
    # a weight left out after '=' is no weight (it was taken as 1: canary -> @1 100%)
    (
        ["templates", "label", "seasonal-banner", "canary", "1=", "--as", "lee"],
        "'1=' in '1=' has no weight after '='",
    ),
    (
        ["templates", "label", "seasonal-banner", "canary", "1=90,2=", "--as", "lee"],
        "'2=' in '1=90,2=' has no weight after '='",
    ),
    (
        ["templates", "label", "seasonal-banner", "production", "3", "--as", "lee"],
        "only to approved versions",
    ),
    (
        ["templates", "label", "seasonal-banner", "production", "1", "--as", "ana"],
        "only an approver",
    ),
    (["templates", "approve", "seasonal-banner", "3", "--as", "ana"], "only a version in review"),
    (["templates", "approve", "seasonal-banner", "4", "--as", "ana"], "may not approve it"),
    (
        ["templates", "reject", "seasonal-banner", "4", "--as", "lee", "--note", ""],
        "needs a --note",
    ),
    # a body of nothing but blanks would render a prompt without the brief (an outside tester)
    (["templates", "create", "blank", "--file", "BLANK_BODY", "--as", "ana"], "body is empty"),
    (
        [
            "templates",
            "new-version",
            "seasonal-banner",
            "--file",
            "INVISIBLE_BODY",
            "-m",
            "m",
            "--as",
            "ana",
        ],
        "body is empty",
    ),
    # a typo in drift's filter is not "no drift events" (an outside tester)
    (["drift", "list", "--template", "nosuch"], "template 'nosuch' does not exist"),
    (["drift", "list", "--template", "seasonal-banner@9"], "seasonal-banner@9 does not exist"),
    (["drift", "list", "--template", "seasonal-banner:production"], "not name or name@VERSION"),
    (["templates", "show", "seasonal-banner@7"], "does not exist"),
    (["templates", "show", "nope:production"], "'nope' does not exist"),
    (["templates", "diff", "seasonal-banner", "1", "9"], "does not exist"),
    (["templates", "stats", "nope"], "does not exist"),
    (["templates", "import", "MALFORMED_DIR", "--as", "lee"], "not valid YAML"),
    (["templates", "import", "CHANGED_DIR", "--as", "lee"], "versions are immutable"),
    (["templates", "import", "APPROVED_DIR", "--as", "ana"], "only an approver may import"),
    (["templates", "import", "ESCAPE_DIR", "--as", "lee"], "attribute access"),
    # four eyes holds for imports: the importer is never both author and approver
    (["templates", "import", "SELF_APPROVED_DIR", "--as", "lee"], "four eyes"),
    (["templates", "import", "SELF_REJECTED_DIR", "--as", "Lee"], "four eyes"),
    (["templates", "import", "FOREIGN_REVIEW_DIR", "--as", "mallory"], "only its author"),
    # a name ending in a newline is no name (Python's "$" would let "lee\n" pass for lee)
    (["templates", "create", "seasonal-banner\n", "--file", V1, "--as", "ana"], "template name"),
    (
        ["templates", "new-version", "seasonal-banner", "--file", V2, "-m", "m", "--as", "ana\n"],
        "not a valid user",
    ),
    (["templates", "submit", "seasonal-banner", "3", "--as", "ana\n"], "not a valid user"),
    (["templates", "approve", "seasonal-banner", "4", "--as", "lee\n"], "not a valid user"),
    (["templates", "comment", "seasonal-banner", "4", "--as", "lee\n", "-m", "x"], "valid user"),
    (
        ["templates", "label", "seasonal-banner", "production\n", "1", "--as", "lee"],
        "label 'production\\n' must be",
    ),
    (["templates", "label", "seasonal-banner", "staging\n", "3", "--as", "ana"], "must be"),
    (["templates", "show", "seasonal-banner\n"], "is not name"),
    (["templates", "show", "seasonal-banner:production\n"], "is not name"),
    (
        [
            "generate",
            "x",
            "--brand",
            str(BRANDS / "acme-coffee.yaml"),
            "--template",
            "seasonal-banner@1\n",
        ],
        "is not name",
    ),
    (
        ["keys", "create", "--tenant", "acme\n", "--principal", "ana", "--role", "admin"],
        "tenant 'acme\\n' must be",
    ),
    (
        ["keys", "create", "--tenant", "acme", "--principal", "ana\n", "--role", "admin"],
        "principal 'ana\\n' must be",
    ),
    (["templates", "import", "NEWLINE_AUTHOR_DIR", "--as", "lee"], "author"),
    (["templates", "import", "NEWLINE_LABEL_DIR", "--as", "lee"], "label 'production\\n'"),
    (["templates", "import", "NEWLINE_NAME_DIR", "--as", "lee"], "template name"),
    # weights are finite and bounded: two of 1e308 would sum to infinity
    (
        [
            "templates",
            "label",
            "seasonal-banner",
            "staging",
            f"1={10**308},2={10**308}",
            "--as",
            "ana",
        ],
        "at most 1,000,000",
    ),
    (
        ["templates", "label", "seasonal-banner", "staging", "1=1000001", "--as", "ana"],
        "at most 1,000,000",
    ),
    (["templates", "import", "HUGE_WEIGHT_DIR", "--as", "lee"], "weights are numbers from 0"),
    (["templates", "import", "SYSTEM_AUTHOR_DIR", "--as", "lee"], "'System' is reserved"),
    (["templates", "import", "STRING_VERSION_DIR", "--as", "lee"], "versions.0.version"),
    (["templates", "import", "BOOL_VERSION_DIR", "--as", "lee"], "versions.0.version"),
    (["templates", "import", "LONG_SAFETY_NOTES_DIR", "--as", "lee"], "safety_notes is 2001"),
    (["templates", "import", "METADATA_BOMB_DIR", "--as", "lee"], "more than 1,000,000 values"),
    (["templates", "import", "METADATA_BIG_DIR", "--as", "lee"], "more than 16,000 characters"),
    (["templates", "import", "LONG_DESCRIPTION_DIR", "--as", "lee"], "description is 2001"),
    (["templates", "import", "FULL_WIDTH_LABEL_DIR", "--as", "lee"], "in ASCII digits"),
    (["templates", "import", "LEADING_ZERO_LABEL_DIR", "--as", "lee"], "no leading zero"),
    (
        [
            "generate",
            "x",
            "--brand",
            str(BRANDS / "acme-coffee.yaml"),
            "--template",
            "seasonal-banner@9",
        ],
        "does not exist",
    ),
]


@pytest.mark.parametrize(
    ("argv", "message"), BAD, ids=[" ".join(a[:3]) + f"-{i}" for i, (a, _) in enumerate(BAD)]
)
def test_bad_input_is_one_clear_line_exit_2_and_changes_nothing(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    data_dir: Path,
    prepared: Prepared,
    prepared_registry: None,
    argv: list[str],
    message: str,
) -> None:
    argv = [_input(prepared, a) for a in argv]
    before = data_snapshot(data_dir)
    assert before["tables"]["template_versions"] == (5,)  # the prepared registry (with brand-hero)
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, (out, err)
    assert err.startswith("brandloop: error: ") and err.count("\n") == 1, err
    assert message in err
    assert data_snapshot(data_dir) == before


def test_canary_split_generate_stats_and_rollback(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    data_dir: Path,
    tmp_path: Path,
    seed: int,
) -> None:
    two_approved_versions(capsys)
    ok(capsys, "templates", "label", "seasonal-banner", "production", "1=50,2=50", "--as", "lee")
    used = set()
    for i in range(4):
        doc = json.loads(
            ok(
                capsys,
                "generate",
                "an autumn sale banner",
                "--brand",
                str(BRANDS / "acme-coffee.yaml"),
                "--size",
                "128x128",
                "--seed",
                str((seed + i) % 2**32),
                "--template",
                "seasonal-banner",
                "--no-memory",
                "--out",
                str(tmp_path / f"o{i}"),
                "--json",
            )
        )
        trace = json.loads(ok(capsys, "runs", "show", doc["run_id"], "--json"))
        assert trace["run"]["template"] in {"seasonal-banner@1", "seasonal-banner@2"}
        assert {a["template"] for a in trace["attempts"]} == {trace["run"]["template"]}
        # the version recorded is the one the split assigns to this run id
        expected = pick_weighted({"1": 50, "2": 50}, doc["run_id"])
        assert trace["run"]["template"] == f"seasonal-banner@{expected}"
        used.add(trace["run"]["template"])
    stats = json.loads(ok(capsys, "templates", "stats", "seasonal-banner", "--json"))
    rows = {v["version"]: v for v in stats["versions"]}
    assert sum(v["runs"] for v in rows.values()) == 4
    for version in rows.values():
        assert version["labels"] == {"production": 0.5}
        if version["runs"]:
            assert version["attempts"] >= version["accepted"] >= 1
            assert version["acceptance_rate"] == round(version["accepted"] / version["attempts"], 4)
            assert version["cost_per_accepted_usd"] == round(
                version["cost_usd"] / version["accepted"], 6
            )
            assert 0 < version["mean_composite"] <= 1 and "palette" in version["mean_scores"]
    ok(
        capsys, "templates", "label", "seasonal-banner", "production", "1", "--as", "priya"
    )  # rollback
    assert json.loads(ok(capsys, "templates", "show", "seasonal-banner", "--json"))["labels"] == {
        "production": {"1": 1.0}
    }
    assert "@1 (production 100%)" in ok(capsys, "templates", "stats", "seasonal-banner")
    drift_doc = json.loads(ok(capsys, "drift", "list", "--json"))
    assert drift_doc["events"] == [] and drift_doc["policy"]["method"] == "cusum"
    assert {b["template"] for b in drift_doc["baselines"]} == used
    for ref in ("seasonal-banner", "seasonal-banner@1"):  # a filter naming what exists
        only = json.loads(ok(capsys, "drift", "list", "--template", ref, "--json"))
        assert {b["template"] for b in only["baselines"]} == (
            used if ref == "seasonal-banner" else used & {ref}
        )


def test_a_weight_is_ascii_digits_and_a_small_share_never_shows_as_0_percent(
    capsys: pytest.CaptureFixture[str], settings: Settings, data_dir: Path
) -> None:
    """``1=0.5,2=1e3`` was taken (1e3 is no ASCII number) and shown as ``@1 0%``, though @1
    gets 0.05% of the runs (outside tester)."""
    two_approved_versions(capsys)
    before = data_snapshot(data_dir)
    for weight in ("1e3", "1E3", "inf", "0x10", "1_000"):
        spec = f"1=0.5,2={weight}"
        code, out, err = run_cli(
            capsys, "templates", "label", "seasonal-banner", "production", spec, "--as", "lee"
        )
        assert code == 2, (spec, out, err)
        assert "is not a number in ASCII digits (e.g. 90 or 0.5)" in err and err.count("\n") == 1
    assert data_snapshot(data_dir) == before
    moved = ok(
        capsys, "templates", "label", "seasonal-banner", "production", "1=0.5,2=1000", "--as", "lee"
    )
    assert "seasonal-banner@1 <1%, seasonal-banner@2 >99%" in moved, moved
    assert "production->@1=<1%,@2=>99%" in ok(capsys, "templates", "list", "--wide")
    assert "labels: production->@1=<1%,@2=>99%" in ok(
        capsys, "templates", "show", "seasonal-banner"
    )
    assert "@1 (production <1%)" in ok(capsys, "templates", "stats", "seasonal-banner")
    # a share too small for four decimals is still above 0 where it is a number (--json)
    ok(capsys, "templates", "label", "seasonal-banner", "staging", "1=1,2=1000000", "--as", "lee")
    stats = json.loads(ok(capsys, "templates", "stats", "seasonal-banner", "--json"))
    shares = {v["version"]: v["labels"] for v in stats["versions"]}
    assert shares[1] == {"production": 0.0005, "staging": 9.99999e-07}, shares
    assert shares[2] == {"production": 0.9995, "staging": 0.999999}, shares


def test_export_import_round_trip(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    another_database_url: str | None,
) -> None:
    two_approved_versions(capsys)
    ok(capsys, "templates", "label", "seasonal-banner", "production", "1=90,2=10", "--as", "lee")
    ok(capsys, "templates", "label", "seasonal-banner", "staging", "2", "--as", "ana")
    export_dir = tmp_path / "repo"
    ok(capsys, "templates", "export", str(export_dir))
    assert sorted(p.name for p in export_dir.iterdir()) == [
        "brand-hero.yaml",
        "seasonal-banner.yaml",
    ]
    original = {
        name: json.loads(ok(capsys, "templates", "show", f"{name}@1", "--json"))
        for name in ("brand-hero", "seasonal-banner")
    }
    original_v2 = json.loads(ok(capsys, "templates", "show", "seasonal-banner@2", "--json"))

    monkeypatch.setenv("BRANDLOOP_DATA_DIR", str(tmp_path / "fresh"))
    if another_database_url is not None:
        monkeypatch.setenv("BRANDLOOP_DATABASE_URL", another_database_url)
    get_settings.cache_clear()
    report = json.loads(ok(capsys, "templates", "import", str(export_dir), "--as", "lee", "--json"))
    assert {r["template"]: (r["added_versions"], r["moved_labels"]) for r in report} == {
        "brand-hero": ([], []),
        "seasonal-banner": ([1, 2], ["production", "staging"]),
    }
    for name, before in original.items():
        after = json.loads(ok(capsys, "templates", "show", f"{name}@1", "--json"))
        for key in ("labels", "description"):
            assert after[key] == before[key]
        assert after["selected"] == before["selected"]  # brand-hero: seeded alike in both
    assert (
        json.loads(ok(capsys, "templates", "show", "seasonal-banner@2", "--json"))["selected"]
        == original_v2["selected"]
    )
    again = json.loads(ok(capsys, "templates", "import", str(export_dir), "--as", "lee", "--json"))
    assert all(r["added_versions"] == [] and r["moved_labels"] == [] for r in again)
    second_export = tmp_path / "repo2"
    ok(capsys, "templates", "export", str(second_export))
    # byte for byte, the shipped brand-hero too (the tester's case: it had this registry's
    # own seeding time, as the fresh registry seeds it before the import)
    files = sorted(p.name for p in export_dir.iterdir())
    assert sorted(p.name for p in second_export.iterdir()) == files
    for name in files:
        assert (second_export / name).read_bytes() == (export_dir / name).read_bytes(), name
    imported = [a for a in audit_rows() if a[1] == "template.imported"]
    assert imported == [
        ("lee", "template.imported", "seasonal-banner@1"),
        ("lee", "template.imported", "seasonal-banner@2"),
    ]


def _edited_export(source: Path, target: Path, **changes: Any) -> Path:
    """A copy of an export with seasonal-banner@1 changed, and a template new to the registry
    (``aaa``, imported first) beside it: a refusal must leave that one out too."""
    shutil.copytree(source, target)
    path = target / "seasonal-banner.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["versions"][0].update(changes)
    path.write_text(yaml.safe_dump(doc))
    fresh = {"name": "aaa", "versions": [{"version": 1, "author": "ana", "body": "{{ brief }}"}]}
    (target / "aaa.yaml").write_text(yaml.safe_dump(fresh))
    return target


@pytest.mark.parametrize(
    ("registry", "changes", "expected"),
    [
        # the tester's case: a PR flips the status; nothing was approved, and import said ok
        ("draft", {"status": "approved"}, "status ('approved' in the file, 'draft' in the"),
        ("draft", {"status": "in_review"}, "templates submit seasonal-banner 1 does that"),
        ("in_review", {"status": "approved"}, "templates approve seasonal-banner 1 does that"),
        ("approved", {"status": "rejected"}, "a verdict is final"),
        ("draft", {"author": "priya"}, "author ('priya' in the file, 'ana' in the registry)"),
        (
            "draft",
            {"message": "edited"},
            "message ('edited' in the file, 'first version of the seasonal banner' in the",
        ),
        ("draft", {"status": "approved", "author": "priya"}, "in author ('priya'"),
    ],
)
def test_import_refuses_a_changed_status_author_or_message_of_a_version_it_has(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    data_dir: Path,
    tmp_path: Path,
    registry: str,
    changes: dict[str, str],
    expected: str,
) -> None:
    ok(capsys, "templates", "create", "seasonal-banner", "--file", V1, "--as", "ana")
    exported = tmp_path / "exp"
    ok(capsys, "templates", "export", str(exported))
    if registry != "draft":
        ok(capsys, "templates", "submit", "seasonal-banner", "1", "--as", "ana")
    if registry == "approved":
        ok(capsys, "templates", "approve", "seasonal-banner", "1", "--as", "lee")
    if registry != "draft":  # the file is read from this state's own export
        shutil.rmtree(exported)
        ok(capsys, "templates", "export", str(exported))
    edited = _edited_export(exported, tmp_path / "edited", **changes)
    before = data_snapshot(data_dir)
    code, out, err = run_cli(capsys, "templates", "import", str(edited), "--as", "priya")
    assert code == 2, (out, err)
    assert err.startswith("brandloop: error: seasonal-banner@1 differs from the registry in ")
    assert err.count("\n") == 1 and expected in err, err
    assert data_snapshot(data_dir) == before
    shown = json.loads(ok(capsys, "templates", "show", "seasonal-banner@1", "--json"))
    assert (shown["selected"][0]["status"], shown["selected"][0]["author"]) == (registry, "ana")


def test_an_export_older_than_a_review_imports_again(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """A Git checkout made before a version was reviewed: its file says draft (or in_review),
    the registry approved it since. Re-importing it is no edit: exit 0, nothing changes."""
    ok(capsys, "templates", "create", "seasonal-banner", "--file", V1, "--as", "ana")
    as_draft = tmp_path / "draft"
    ok(capsys, "templates", "export", str(as_draft))
    ok(capsys, "templates", "submit", "seasonal-banner", "1", "--as", "ana")
    in_review = tmp_path / "in_review"
    ok(capsys, "templates", "export", str(in_review))
    ok(capsys, "templates", "import", str(as_draft), "--as", "priya")  # in review: ahead
    ok(capsys, "templates", "approve", "seasonal-banner", "1", "--as", "lee", "--note", "ok")
    for older in (as_draft, in_review):
        report = json.loads(ok(capsys, "templates", "import", str(older), "--as", "ana", "--json"))
        assert all(r["added_versions"] == [] and r["moved_labels"] == [] for r in report)
    shown = json.loads(ok(capsys, "templates", "show", "seasonal-banner@1", "--json"))
    assert shown["selected"][0]["status"] == "approved"


@pytest.mark.parametrize("folder", ["brand-hero.yaml", "seasonal-banner.yaml"])
def test_export_refuses_a_folder_where_a_file_goes_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, folder: str
) -> None:
    ok(capsys, "templates", "create", "seasonal-banner", "--file", V1, "--as", "ana")
    target = tmp_path / "repo"
    (target / folder).mkdir(parents=True)
    (target / folder / "keep.txt").write_text("mine")
    code, out, err = run_cli(capsys, "templates", "export", str(target))
    assert code == 2, (out, err)  # was exit 1, IsADirectoryError, after brand-hero.yaml
    assert err.startswith("brandloop: error: ") and err.count("\n") == 1, err
    assert f"{target / folder} is a folder" in err
    assert sorted(p.name for p in target.iterdir()) == [folder]  # nothing written, no .tmp-*
    assert [p.name for p in (target / folder).iterdir()] == ["keep.txt"]


def test_runs_show_lineage_and_reproduce_byte_identical(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    data_dir: Path,
    tmp_path: Path,
    seed: int,
) -> None:
    doc = json.loads(
        ok(
            capsys,
            "generate",
            "a steaming cup",
            "--brand",
            str(BRANDS / "acme-coffee.yaml"),
            "--n",
            "2",
            "--size",
            "128x128",
            "--seed",
            str(seed),
            "--no-memory",
            "--out",
            str(tmp_path / "o"),
            "--json",
        )
    )
    run_id = doc["run_id"]
    text = ok(capsys, "runs", "show", run_id)
    for needle in (
        "template   brand-hero@1",
        "version 1",
        "seed       requested",
        "moderation",
        "prompt     ",
    ):
        assert needle in text
    trace = json.loads(ok(capsys, "runs", "show", doc["images"][0]["sha256"], "--json"))
    assert len(trace["receipts"]) == len(doc["images"])
    assert all(a["model_version"] == "1" for a in trace["attempts"])

    result = json.loads(
        ok(capsys, "runs", "reproduce", run_id, "--out", str(tmp_path / "again"), "--json")
    )
    assert result["template"] == "brand-hero@1"
    assert [i["verdict"] for i in result["images"]] == ["byte-identical"] * len(doc["images"])
    for image, receipt in zip(result["images"], trace["receipts"], strict=True):
        assert image["reproduced_sha256"] == receipt["source_sha256"]
        assert (
            Path(image["path"]).read_bytes()
            == (
                data_dir
                / "artifacts"
                / receipt["source_sha256"][:2]
                / receipt["source_sha256"][2:4]
                / f"{receipt['source_sha256']}.png"
            ).read_bytes()
        )
    assert "byte-identical" in ok(capsys, "runs", "reproduce", run_id)
    code, _, err = run_cli(capsys, "runs", "reproduce", "run_missing")
    assert code == 2 and "unknown run" in err


def test_parallel_new_versions_from_processes_each_get_a_number(
    capsys: pytest.CaptureFixture[str], settings: Settings, data_dir: Path
) -> None:
    """Four ``new-version`` processes at once (the outside tester ran three: two exited 1
    with "internal error: IntegrityError"): each gets a number of its own, none fails."""
    ok(capsys, "templates", "create", "seasonal-banner", "--file", V1, "--as", "ana")
    code = (
        "import sys, time; from brandloop.api.cli import main; "
        "time.sleep(max(0.0, float(sys.argv[1]) - time.time())); main(sys.argv[2:])"
    )
    # every process imports first, then all start the command at the same moment
    at = f"{time.time() + 8:.3f}"
    argv = ["templates", "new-version", "seasonal-banner", "--file", V2, "--as", "ana", "-m"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, at, *argv, f"m{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for i in range(4)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert [r[0] for r in results] == [0] * 4, results
    made = sorted(int(re.findall(r"seasonal-banner@(\d+)", out)[0]) for _, out, _ in results)
    assert made == [2, 3, 4, 5]
    doc = json.loads(ok(capsys, "templates", "show", "seasonal-banner@1", "--json"))
    assert [v["version"] for v in doc["versions"]] == [1, 2, 3, 4, 5]
    assert sorted(v["message"] for v in doc["versions"][1:]) == [f"m{i}" for i in range(4)]


@pytest.mark.parametrize("actor", ["system", "SYSTEM", "System"])
def test_a_reserved_reviewer_name_is_reserved_in_every_case(
    capsys: pytest.CaptureFixture[str], actor: str, data_dir: Path
) -> None:
    """Four eyes compare names ignoring case, so ``--as SYSTEM`` would pass for the shipped
    templates' author in the audit log: refused like ``system``, nothing stored."""
    code, _, err = run_cli(
        capsys, "templates", "create", "seasonal-banner", "--file", V1, "--as", actor
    )
    assert code == 2 and err.count("\n") == 1 and "is reserved for brandloop itself" in err, err
    assert json.loads(ok(capsys, "templates", "list", "--json")) == [] or all(
        t["name"] != "seasonal-banner"
        for t in json.loads(ok(capsys, "templates", "list", "--json"))
    )
