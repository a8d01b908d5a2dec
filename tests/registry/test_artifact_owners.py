"""Artifact ownership per (tenant, sha256), on SQLite and PostgreSQL: identical bytes are each
tenant's own copy, a release touches only the releasing tenant's, and keeps and releases of the
same bytes racing each other never lose a file someone still owns."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from brandloop.artifacts import ArtifactStore
from brandloop.registry import crud
from brandloop.registry.artifact_owners import keep_artifact, release_artifact
from brandloop.registry.db import Database

TENANTS = ("acme_co", "acme-co", "Acme-Co", "acme__co")


def png_bytes(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (shade % 256, 40, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


def keep(db: Database, store: ArtifactStore, data: bytes, tenant: str) -> str:
    with db.session() as session:
        sha, _ = keep_artifact(
            session, store, data, tenant=tenant, width=8, height=8, run_id=None, attempt_id=None
        )
    return sha


def release(db: Database, store: ArtifactStore, tenant: str, sha: str) -> bool:
    with db.session() as session:
        return release_artifact(session, store, tenant=tenant, sha256=sha)


def owners(db: Database, sha: str) -> set[str]:
    with db.session() as session:
        return {t for t in TENANTS if crud.get_artifact(session, tenant=t, sha256=sha)}


def test_identical_bytes_are_each_tenants_own_copy(any_db: Database, store: ArtifactStore) -> None:
    data = png_bytes(1)
    shas = {keep(any_db, store, data, tenant) for tenant in TENANTS}
    assert len(shas) == 1
    sha = shas.pop()
    assert owners(any_db, sha) == set(TENANTS)
    assert keep(any_db, store, data, "acme_co") == sha, "keeping again changes nothing"
    for gone, tenant in enumerate(TENANTS[:-1], start=1):
        assert release(any_db, store, tenant, sha)
        assert not release(any_db, store, tenant, sha), "a copy is released once"
        assert owners(any_db, sha) == set(TENANTS[gone:])
        assert store.get(sha) == data, "the others still read the bytes"
    assert release(any_db, store, TENANTS[-1], sha)
    assert not store.exists(sha), "the last owner's release removes the file"
    assert not release(any_db, store, "nobody", sha)


def test_releases_racing_keeps_never_lose_an_owned_file(
    any_db: Database, store: ArtifactStore
) -> None:
    for round_ in range(12):
        data = png_bytes(100 + round_)
        sha = keep(any_db, store, data, "acme_co")
        start = threading.Barrier(2)

        def release_a(sha: str = sha, start: threading.Barrier = start) -> bool:
            start.wait()
            return release(any_db, store, "acme_co", sha)

        def keep_b(data: bytes = data, start: threading.Barrier = start) -> str:
            start.wait()
            return keep(any_db, store, data, "acme-co")

        with ThreadPoolExecutor(2) as pool:
            released, kept = pool.submit(release_a), pool.submit(keep_b)
            assert released.result() and kept.result() == sha
        assert owners(any_db, sha) == {"acme-co"}
        assert store.get(sha) == data, f"round {round_}: acme-co's copy lost its file"


def test_concurrent_keeps_of_one_copy_record_it_once(
    any_db: Database, store: ArtifactStore
) -> None:
    data = png_bytes(7)
    with ThreadPoolExecutor(8) as pool:
        shas = set(pool.map(lambda tenant: keep(any_db, store, data, tenant), TENANTS * 4))
    assert len(shas) == 1
    assert owners(any_db, shas.pop()) == set(TENANTS)
