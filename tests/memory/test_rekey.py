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
from brandloop.memory.store import campaign_collection_name, collection_name, is_split
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.api.test_cli import run_cli
from tests.memory.old_layout import old_descriptor, old_prompt, write_old_layout
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
    assert "0 campaign record(s) of 0 brand(s) copied to campaign collections" in out
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
        "campaign_brands": 0,
        "campaign_records": 0,
    }
    code, _, err = run_cli(capsys, "memory", "rekey", "--drop-legacy", "--nonsense")
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_rekey_gives_memory_written_before_campaign_collections_its_campaigns_collections(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    """An upgraded deployment: the brand's memory in the exact-identity layout of session 26,
    campaign records tagged in the brand's collections only. Its campaigns are found before
    `memory rekey` (by campaign_id) and after (from their own collections), the same."""
    db = Database.from_settings(settings)
    try:
        brand_id = _registry(db)["acme_co"]
    finally:
        db.dispose()
    memory = open_memory(settings)
    ef = MiniLMEmbeddingFunction()
    with memory.exclusive():
        write_old_layout(
            memory.client, ef, tenant="acme_co", brand=brand_id, kind="prompt",
            records=[old_prompt(i, "fall" if i % 2 else None, f"latte poster {i}")
                     for i in range(6)],
        )  # fmt: skip
        write_old_layout(
            memory.client, ef, tenant="acme_co", brand=brand_id, kind="descriptor",
            records=[old_descriptor(9, "fall", "#6b3e26")],
        )  # fmt: skip

    def fall() -> tuple[list[str], list[str]]:
        hits = memory.recall(
            tenant="acme_co", brand=brand_id, query="latte", k=3, campaign_id="fall"
        )
        described = memory.descriptors(tenant="acme_co", brand=brand_id, campaign_id="fall")
        return sorted(h.id for h in hits), [h.id for h in described]

    before = fall()
    assert before == (["prompt-old1", "prompt-old3", "prompt-old5"], ["descriptor-old9"])
    code, out, err = run_cli(capsys, "memory", "rekey", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["campaign_brands"], report["campaign_records"]) == (1, 4)
    assert fall() == before
    with memory.exclusive():
        copied = memory.client.get_collection(
            campaign_collection_name("acme_co", brand_id, "fall", "prompt")
        )
        assert sorted(copied.get(include=[])["ids"]) == before[0]
        assert is_split(
            memory.client.get_collection(collection_name("acme_co", brand_id, "prompt"))
        )
    code, out, _ = run_cli(capsys, "memory", "rekey")
    assert code == 0
    assert "0 campaign record(s) of 0 brand(s) copied to campaign collections" in out
