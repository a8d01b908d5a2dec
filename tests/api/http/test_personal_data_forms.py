"""The forms of personal data the redactor missed (an internationalised e-mail address, an
apostrophe in one, phone and card numbers grouped by typographic dashes, ``.``, ``/`` or
``_``) are redacted before the service stores or sends anything: a generation's job, run and
receipt, and a memory note, on SQLite and PostgreSQL (docs/signals.md, PII)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from brandloop.registry.db import Database
from tests.api.http.conftest import Keys, brand_kit
from tests.databases import stored_anywhere

VALUES = (
    "zorro.garcía@correo.es",
    "ivanov7@пример.рф",
    "yamada9@例え.jp",
    "o'brien5@example.ie",
    "+44\u201320\u20137946\u20130958",
    "4111.1111.1111.1111",
    "4111/1111/1111/1111",
    "4111_1111_1111_1111",
)
#: a part of each value that only the value itself would put in a row (text and JSON forms,
#: the digits as typed or joined): long enough that no timestamp or page of a write-ahead log
#: holds it by chance ("7946" alone once matched a row's microseconds)
TRACES = (
    "zorro.", "ivanov7", "yamada9", "brien5",
    "7946\u20130958", "7946\\u20130958", "79460958", "7946-0958", "7946 0958",
    "4111.1111", "4111/1111", "4111\\/1111", "4111_1111", "41111111", "4111 1111", "4111-1111",
)  # fmt: skip


def _kept(db: Database, files: Path | None) -> list[str]:
    found: list[str] = []
    for trace in TRACES:
        found += [f"{trace}: {where}" for where in stored_anywhere(db, trace, files)]
    return found


def test_a_generation_keeps_none_of_the_forms_anywhere(
    client: TestClient,
    keys: Keys,
    acme: dict[str, Any],
    db: Database,
    data_dir: Path,
    database: str,
) -> None:
    brief = "a cup, contact " + ", ".join(VALUES)
    done = client.post(
        "/v1/generations?wait=60",
        json={"brief": brief, "brand": "Acme Coffee", "size": "64x64"},
        headers=keys["A", "creator"],
    )
    assert done.status_code == 200, done.text
    ran = done.json()["result"]["brief"]
    assert ran.count("[redacted email]") == 4 and ran.count("[redacted card]") == 3, ran
    assert "[redacted phone]" in ran and "@" not in ran, ran
    assert _kept(db, data_dir if database == "sqlite" else None) == []


def test_a_memory_note_says_what_it_took_out(
    make_client: Callable[..., TestClient], keys: Keys
) -> None:
    client = make_client(use_memory=True)
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).status_code == 201
    )
    note = client.post(
        "/v1/memory/notes",
        json={"brand": "Acme Coffee", "text": "ask " + " or ".join(VALUES)},
        headers=keys["A", "creator"],
    )
    assert note.status_code == 201, note.text
    body = note.json()
    assert body["redacted"] == ["card", "email", "phone"], body
    assert not any(trace in json.dumps(body, ensure_ascii=False) for trace in TRACES), body
