"""`brandloop memory rekey`: memory of the old slug-named collections moves to exact-identity
collections, on SQLite and PostgreSQL registries. Records a run made follow the run's exact
tenant; notes that lookalike tenants shared go to nobody. Idempotent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromadb.api.collection_configuration import CreateHNSWConfiguration

from brandloop.agent.runner import open_memory
from brandloop.domain import BrandKit, PaletteColour
from brandloop.memory import BrandMemory, MiniLMEmbeddingFunction
from brandloop.memory.rekey import legacy_collection_name
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.api.test_cli import run_cli
from tests.services import DATABASES, database_url_for

KIT = BrandKit(name="Acme Coffee", palette=[PaletteColour(hex="#6b3e26", name="roast")])


@pytest.fixture(params=DATABASES)
def settings(
    request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    with database_url_for(str(request.param), data_dir) as url:
        monkeypatch.setenv("BRANDLOOP_DATABASE_URL", url)
        get_settings.cache_clear()
        yield get_settings()
        get_settings.cache_clear()


def _registry(db: Database) -> dict[str, str]:
    """Three tenants with an "Acme Coffee" brand, two of them slug-alike; a run of each."""
    brand_ids = {}
    with db.session() as session:
        for tenant in ("acme_co", "acme-co", "globex"):
            brand = crud.upsert_brand(session, tenant=tenant, kit=KIT)
            brand_ids[tenant] = brand.id
            crud.create_run(
                session,
                run_id=f"run_{tenant}",
                tenant=tenant,
                brand_id=brand.id,
                brand_name=KIT.name,
                brief="b",
                request={},
            )
    return brand_ids


def _legacy(memory: BrandMemory, ef: MiniLMEmbeddingFunction) -> None:
    """The layout the slug-keyed store wrote (one collection per slugged pair)."""
    shared = memory.client.create_collection(
        legacy_collection_name("acme_co", "Acme Coffee"),  # == acme-co's
        configuration={"hnsw": CreateHNSWConfiguration(space="cosine")},
        metadata={"tenant": "acme-co", "brand": "acme-coffee"},
        embedding_function=ef,  # type: ignore[arg-type]
    )
    assert (
        shared.name == legacy_collection_name("acme-co", "acme coffee") == "bl-acme-co--acme-coffee"
    )
    shared.add(
        ids=["prompt-1", "prompt-2", "note-1", "descriptor-1"],
        documents=["teal latte art", "neon latte sign", "keep it warm", "dominant colours: #fff"],
        metadatas=[
            {"kind": "prompt", "run_id": "run_acme_co", "seed": 1, "created_at": 1.0},
            {"kind": "prompt", "run_id": "run_acme-co", "seed": 2, "created_at": 2.0},
            {"kind": "note", "created_at": 3.0},
            {
                "kind": "descriptor",
                "run_id": "run_acme_co",
                "colours": "#ffffff",
                "created_at": 4.0,
            },
        ],
    )
    alone = memory.client.create_collection(
        legacy_collection_name("globex", "Acme Coffee"),
        configuration={"hnsw": CreateHNSWConfiguration(space="cosine")},
        embedding_function=ef,  # type: ignore[arg-type]
    )
    alone.add(ids=["note-2"], documents=["globex likes grey"], metadatas=[{"kind": "note"}])


def _texts(memory: BrandMemory, tenant: str, brand: str) -> set[str]:
    return {h.text for h in memory.search(tenant=tenant, brand=brand, query="latte", k=20)}


def test_rekey_moves_each_record_to_its_exact_owner_and_is_idempotent(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    db = Database.from_settings(settings)
    try:
        brand_ids = _registry(db)
    finally:
        db.dispose()
    memory = open_memory(settings)
    _legacy(memory, MiniLMEmbeddingFunction())

    first: dict[str, object] = {}
    for _ in range(2):  # the second pass changes nothing
        code, out, err = run_cli(capsys, "memory", "rekey", "--json")
        assert code == 0, err
        report = json.loads(out)
        assert (report["collections"], report["moved"], report["unattributed"]) == (2, 4, 1)
        assert report["dropped"] == [] and len(report["kept"]) == 2
        first = first or report
        assert _texts(memory, "acme_co", brand_ids["acme_co"]) == {
            "teal latte art",
            "dominant colours: #fff",
        }
        assert _texts(memory, "acme-co", brand_ids["acme-co"]) == {"neon latte sign"}
        assert _texts(memory, "globex", brand_ids["globex"]) == {"globex likes grey"}
        assert memory.count(tenant="acme_co", brand=brand_ids["acme_co"]) == 2
    assert first == report
    # the moved records keep their vectors and metadata: recall still finds them by meaning
    recalled = memory.recall(tenant="acme_co", brand=brand_ids["acme_co"], query="coffee art")
    assert [(h.kind, h.metadata["seed"]) for h in recalled] == [("prompt", 1)]

    code, out, _ = run_cli(capsys, "memory", "rekey", "--drop-legacy", "--json")
    report = json.loads(out)
    assert report["dropped"] == ["bl-globex--acme-coffee"]
    assert report["kept"] == ["bl-acme-co--acme-coffee"], "its shared note has no single owner"
    code, out, _ = run_cli(capsys, "memory", "rekey")
    assert code == 0 and "1 legacy collection(s): 3 record(s) moved, 1 left unattributed" in out
    assert _texts(memory, "globex", brand_ids["globex"]) == {"globex likes grey"}


def test_rekey_with_nothing_to_move(capsys: pytest.CaptureFixture[str], settings: Settings) -> None:
    code, out, _ = run_cli(capsys, "memory", "rekey", "--json")
    assert code == 0
    assert json.loads(out) == {
        "collections": 0,
        "moved": 0,
        "unattributed": 0,
        "dropped": [],
        "kept": [],
    }
    code, _, err = run_cli(capsys, "memory", "rekey", "--drop-legacy", "--nonsense")
    assert code == 2 and len(err.strip().splitlines()) == 1
