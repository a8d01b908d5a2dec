"""``brandloop memory add`` moderates a style note before it stores it, as plan moderates every
prompt the note would reach: a note crossing the minors line is exit 3 with one line, audited
(digest, no text), and never stored, so it cannot refuse every later run of the brand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.memory.test_memory_cli import ACME, brand_id_of, cli

CROSSING = "schoolgirl aged 13 posing nude"


def audit_entries(settings: Settings) -> list[tuple[str, str, str, str]]:
    database = Database.from_settings(settings)
    try:
        with database.session() as session:
            rows = session.execute(
                sa.text(
                    "SELECT action, subject_type, subject_id, detail FROM audit_log "
                    "WHERE action LIKE 'moderation.refused.%' ORDER BY id"
                )
            ).all()
    finally:
        database.dispose()
    return [(r[0], r[1], r[2], r[3] if isinstance(r[3], str) else json.dumps(r[3])) for r in rows]


def test_a_note_crossing_the_minors_line_is_refused_audited_and_not_stored(
    capsys: pytest.CaptureFixture[str], settings: Settings, data_dir: Path
) -> None:
    assert cli(capsys, "brands", "add", ACME)[0] == 0  # memory commands add no brand
    code, out, err = cli(capsys, "memory", "add", CROSSING, "--brand", ACME)
    assert code == 3, (out, err)
    assert out == "" and err.count("\n") == 1 and "sexual/minors" in err
    assert "nothing stored" in err and "schoolgirl" not in err
    code, out, _ = cli(capsys, "memory", "search", CROSSING, "--brand", "Acme Coffee", "--json")
    assert code == 0 and json.loads(out) == []
    entries = audit_entries(settings)
    assert len(entries) == 1
    action, subject_type, subject_id, detail = entries[0]
    assert action == "moderation.refused.sexual_minors"
    assert (subject_type, subject_id) == ("style_note", brand_id_of(settings, "Acme Coffee"))
    assert "normalised_sha256" in detail
    # the rules name the listed terms they matched (docs/signals.md), never the note itself
    assert CROSSING not in detail and "aged 13" not in detail
    # an ordinary note is still kept
    code, out, _ = cli(capsys, "memory", "add", "always a soft morning light", "--brand", ACME)
    assert code == 0 and "noted for" in out


def test_a_note_too_long_is_bad_input_naming_the_limit_not_a_refusal(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    """An outside tester's note of 4,001-8,000 characters was refused as moderation "length"
    (exit 3, audited), though the API's schema took 8,000: one limit now, the brief's."""
    assert cli(capsys, "brands", "add", ACME)[0] == 0
    for length in (4001, 8000):
        code, out, err = cli(capsys, "memory", "add", "w" * length, "--brand", "Acme Coffee")
        assert code == 2 and not out, (code, err)
        assert f"note is {length} characters; the limit is 4000" in err
    # redaction can lengthen a note: it is held to the limit once redacted too
    grown = "a" * 3984 + " ann@example.org"  # 4,000; 4,001 once redacted
    code, _, err = cli(capsys, "memory", "add", grown, "--brand", "Acme Coffee")
    assert code == 2 and "once its personal data is redacted; the limit is 4000" in err, err
    assert audit_entries(settings) == []
    code, out, err = cli(capsys, "memory", "add", "w" * 4000, "--brand", "Acme Coffee", "--json")
    assert code == 0, err


def test_a_padded_note_is_answered_as_it_is_kept(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    """`memory add --json "  padded note  "` answered the padded text while "padded note" was
    stored; the answer's text is the text kept (an outside tester)."""
    assert cli(capsys, "brands", "add", ACME)[0] == 0
    code, out, err = cli(capsys, "memory", "add", " \n padded note  ", "--brand", "Acme Coffee",
                         "--json")  # fmt: skip
    assert code == 0, err
    added = json.loads(out)
    assert added["text"] == "padded note"
    code, out, _ = cli(capsys, "memory", "notes", "--brand", "Acme Coffee", "--json")
    assert [(n["id"], n["text"]) for n in json.loads(out)] == [(added["id"], "padded note")]
