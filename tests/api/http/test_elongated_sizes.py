"""A shape more elongated than 4:1 is made at 4:1 however it is asked for (docs/agent.md,
Pre-flight): a ``size`` keeps its long side and gets a quarter of it as the short one, as an
``aspect_ratio`` does, and intake records it (``adapt_aspect``, with the size made). Through the
CLI and the HTTP API, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from brandloop.api.cli import main
from brandloop.settings import Settings
from tests.api.http.conftest import Keys, brand_kit, wait_job

ROOT = Path(__file__).resolve().parents[3]
NORDLYS = ROOT / "examples" / "brands" / "nordlys-outdoor.yaml"
BRIEF = "a wide banner of a mountain ridge"


def _size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as image:
        return image.size


def _adapted(decisions: list[dict[str, Any]]) -> str:
    (adapted,) = [d for d in decisions if d["action"] == "adapt_aspect"]
    assert adapted["node"] == "intake" and decisions[0] is adapted, decisions
    return str(adapted["reason"])


def test_cli_a_size_past_four_to_one_is_made_at_four_to_one(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    argv = ["generate", BRIEF, "--brand", str(NORDLYS), "--seed", "2", "--size", "2048x256"]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", str(tmp_path / "out"), "--json"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    reason = _adapted(doc["decisions"])
    assert "size 2048x256 is past 4:1" in reason and "made at 2048x512" in reason, reason
    assert doc["images"], (exc.value.code, captured.err, doc["decisions"])
    assert [_size(Path(i["path"]).read_bytes()) for i in doc["images"]] == [(2048, 512)] * len(
        doc["images"]
    )


def test_cli_a_size_within_four_to_one_is_made_as_asked(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    argv = ["generate", BRIEF, "--brand", str(NORDLYS), "--seed", "2", "--size", "1024x256"]
    with pytest.raises(SystemExit):
        main([*argv, "--out", str(tmp_path / "out"), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert "adapt_aspect" not in [d["action"] for d in doc["decisions"]]
    assert all(_size(Path(i["path"]).read_bytes()) == (1024, 256) for i in doc["images"])


def test_http_a_tall_size_past_four_to_one_is_made_at_four_to_one(
    client: TestClient, keys: Keys
) -> None:
    admin, creator = keys["A", "admin"], keys["A", "creator"]
    kit = client.post("/v1/brands", json=brand_kit("nordlys-outdoor"), headers=admin)
    assert kit.status_code == 201, kit.text
    body = {"brief": BRIEF, "brand": "Nordlys Outdoor", "size": "128x1024", "seed": 2}
    answer = client.post("/v1/generations", json=body, headers=creator)
    assert answer.status_code == 202, answer.text
    job = wait_job(client, answer.json()["id"], creator, timeout=120)
    reason = _adapted(job["result"]["decisions"])
    assert "size 128x1024 is past 4:1" in reason and "made at 256x1024" in reason, reason
    assert job["result"]["images"], job
    for image in job["result"]["images"]:
        png = client.get(f"/v1/artifacts/{image['sha256']}", headers=creator)
        assert png.status_code == 200, png.text
        assert _size(png.content) == (256, 1024)
