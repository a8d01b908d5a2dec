"""A cache-replayed image's receipt says it was replayed, and which run and attempt it replays
(outside tester 25d, defect 5): in the registry, the output folder's receipt.json, the PNG's
receipt chunk and the C2PA ``brandloop.receipt`` assertion, at $0, its provider request id
named as the replayed call's. ``brandloop verify`` passes on it, and still on a file whose
receipt an older release made (no such fields)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from brandloop.artifacts import RECEIPT_KEY, ArtifactStore, read_png_text, sha256_hex
from brandloop.domain import ContentCredentials, receipt_digest
from brandloop.registry import crud
from brandloop.registry.artifact_owners import keep_artifact
from brandloop.registry.db import Database
from brandloop.settings import Settings
from brandloop.tools.credentials import sign_image
from brandloop.tools.credentials.signers import signer_from_settings
from brandloop.tools.credentials.verify import read_manifest_store
from tests.api.test_cli import BRANDS, run_cli

ARGV = (
    "generate", "a steaming cup, warm morning light", "--brand", str(BRANDS / "acme-coffee.yaml"),
    "--providers", "procedural", "--seed", "7", "--size", "256x256", "--json",
)  # fmt: skip


def _generate(capsys: pytest.CaptureFixture[str], out_dir: Path) -> dict[str, Any]:
    code, out, err = run_cli(capsys, *ARGV, "--out", str(out_dir))
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    assert len(doc["images"]) == 1, doc["reason"]
    return doc


def _assertion_of(data: bytes) -> dict[str, Any]:
    """The brandloop.receipt assertion of a signed PNG's C2PA manifest."""
    store = read_manifest_store(data, "png", None)
    assert store is not None
    manifest = store["manifests"][store["active_manifest"]]
    found: dict[str, Any] = next(
        a["data"] for a in manifest["assertions"] if a["label"] == "brandloop.receipt"
    )
    return found


def _assertion(path: Path) -> dict[str, Any]:
    return _assertion_of(path.read_bytes())


def test_a_replayed_images_receipt_names_the_run_and_attempt_it_replays(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    first = _generate(capsys, tmp_path / "first")
    again = _generate(capsys, tmp_path / "again")
    assert not first["images"][0]["cache_hit"] and again["images"][0]["cache_hit"]

    [paid] = json.loads((tmp_path / "first" / "receipt.json").read_text())["receipts"]
    [replayed] = json.loads((tmp_path / "again" / "receipt.json").read_text())["receipts"]
    assert paid["cache_hit"] is False and paid["replay_of"] is None and paid["cost_usd"] > 0
    replay_of = {"run_id": first["run_id"], "attempt_id": paid["attempt_id"]}
    assert replayed["run_id"] == again["run_id"] and replayed["attempt_id"] != paid["attempt_id"]
    assert replayed["cache_hit"] is True and replayed["replay_of"] == replay_of
    assert replayed["cost_usd"] == 0.0
    # the one provider call both receipts name is the replayed attempt's, and the receipt says so
    assert replayed["provider_request_id"] == paid["provider_request_id"]
    assert any(
        f"replaying run {first['run_id']} attempt {paid['attempt_id']}" in note
        and "no provider call was made for this image" in note
        and "provider_request_id" in note
        for note in replayed["notes"]
    ), replayed["notes"]

    code, out, err = run_cli(capsys, "runs", "show", again["run_id"], "--json")
    assert code == 0, err
    [registry] = json.loads(out)["receipts"]
    assert registry == replayed

    path = Path(again["images"][0]["path"])
    in_file = json.loads(read_png_text(path.read_bytes())[RECEIPT_KEY])
    assert in_file["cache_hit"] is True and in_file["replay_of"] == replay_of
    assertion = _assertion(path)
    assert assertion["cache_hit"] is True and assertion["replay_of"] == replay_of
    assert assertion["cost_usd"] == 0.0
    assert _assertion(Path(first["images"][0]["path"]))["cache_hit"] is False

    files = [str(path), first["images"][0]["path"]]
    code, out, err = run_cli(capsys, "verify", *files)
    assert code == 0, out + err
    assert out.count("receipt matches the registry") == 2, out


def test_a_file_signed_with_an_older_receipt_still_verifies(
    capsys: pytest.CaptureFixture[str], settings: Settings, db: Database, tmp_path: Path
) -> None:
    """An image an older release shipped: its stored receipt and its manifest's assertion
    have no cache_hit or replay_of; verify still finds them equal."""
    doc = _generate(capsys, tmp_path / "out")
    sha = doc["images"][0]["sha256"]
    with db.session() as session:
        row = crud.get_artifact(session, tenant="default", sha256=sha)
        assert row is not None and row.receipt is not None
        older = {
            k: v
            for k, v in row.receipt.items()
            if k not in {"cache_hit", "replay_of", "sha256", "credentials"}
        }
        store = ArtifactStore(settings.artifacts_dir)
        raw = store.get(older["source_sha256"])
        signer = signer_from_settings(settings)
        signed = sign_image(raw, "png", older, signer)
        # what the older release stored: the file it signed, with that receipt (verify finds
        # a file by its own sha256; a file the registry never kept is not its image)
        keep_artifact(
            session, store, signed.data, tenant="default", width=row.width, height=row.height,
            run_id=row.run_id, attempt_id=row.attempt_id,
        )  # fmt: skip
        row = crud.get_artifact(session, tenant="default", sha256=sha256_hex(signed.data))
        assert row is not None
        row.receipt = {
            **older,
            "credentials": ContentCredentials(
                manifest_label=signed.manifest_label,
                format="png",
                digital_source_type=older["digital_source_type"],
                signer=signer.name,
                signer_kind=signer.kind,
                receipt_sha256=receipt_digest(older),
            ).model_dump(mode="json"),
        }
    assert "cache_hit" not in _assertion_of(signed.data)
    old_file = tmp_path / "older.png"
    old_file.write_bytes(signed.data)
    code, out, err = run_cli(capsys, "verify", str(old_file))
    assert code == 0, out + err
    assert ": valid - " in out and "receipt matches the registry" in out, out
