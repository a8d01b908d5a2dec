"""Brand memory on the shared Chroma server answers exactly as the embedded client does:
the same collection names, metadata and tenant scoping."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromadb.api import ClientAPI

from brandloop.memory import BrandMemory, MiniLMEmbeddingFunction, make_chroma_client
from brandloop.memory.rekey import split_campaigns
from brandloop.memory.store import campaign_collection_name, collection_name, is_split
from brandloop.settings import Settings
from tests.memory.old_layout import old_prompt, write_old_layout
from tests.services import service_env

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def ef() -> MiniLMEmbeddingFunction:
    function = MiniLMEmbeddingFunction()
    function.load()
    return function


def _close(client: ClientAPI) -> None:
    # chromadb 1.5: HttpClient.close() leaves its httpx sessions open (see tests/memory)
    client.close()  # type: ignore[attr-defined]
    for owner in (client, client._admin_client):  # type: ignore[attr-defined]
        owner._server._session.close()  # type: ignore[union-attr]


@pytest.fixture
def server() -> Iterator[ClientAPI]:
    host = service_env("BRANDLOOP_TEST_CHROMA_HOST")
    port = int(service_env("BRANDLOOP_TEST_CHROMA_PORT"))
    client = make_chroma_client(Settings(chroma_host=host, chroma_port=port))
    yield client
    _close(client)


@pytest.fixture
def embedded(tmp_path: Path) -> ClientAPI:
    return make_chroma_client(Settings(data_dir=tmp_path))


def _exercise(
    client: ClientAPI, ef: MiniLMEmbeddingFunction, tenants: list[str]
) -> dict[str, object]:
    memory = BrandMemory(client, ef)
    a, b = tenants
    memory.add_note(tenant=a, brand="Acme Coffee", text="warm tones, teal and cream")
    memory.add_note(tenant=b, brand="Acme Coffee", text="neon magenta everywhere")
    hits_a = memory.search(tenant=a, brand="Acme Coffee", query="colour palette", k=5)
    hits_b = memory.search(tenant=b, brand="Acme Coffee", query="colour palette", k=5)
    metadata = {
        c.name: c.metadata
        for c in client.list_collections()
        if (c.metadata or {}).get("brandloop_tenant") in tenants
    }
    assert metadata, "the notes went into collections naming their tenants"
    return {
        "a": [h.text for h in hits_a],
        "b": [h.text for h in hits_b],
        "collections": sorted(metadata),
        "metadata": sorted(
            str(sorted((m or {}).items())).replace(a, "A").replace(b, "B")
            for m in metadata.values()
        ),
        "count_a": memory.count(tenant=a, brand="Acme Coffee"),
    }


def test_server_and_embedded_clients_scope_tenants_identically(
    server: ClientAPI, embedded: ClientAPI, ef: MiniLMEmbeddingFunction
) -> None:
    tenants = [f"ta{uuid.uuid4().hex[:8]}", f"tb{uuid.uuid4().hex[:8]}"]
    try:
        on_server = _exercise(server, ef, tenants)
        on_disk = _exercise(embedded, ef, tenants)
    finally:
        for collection in server.list_collections():
            if (collection.metadata or {}).get("brandloop_tenant") in tenants:
                server.delete_collection(collection.name)
    assert on_server == on_disk
    assert on_server["a"] == ["warm tones, teal and cream"]  # never the other tenant's note
    assert on_server["b"] == ["neon magenta everywhere"]
    assert len(on_server["collections"]) == 2  # type: ignore[arg-type]


def _campaigns(client: ClientAPI, ef: MiniLMEmbeddingFunction, tenant: str) -> dict[str, object]:
    """Old-layout memory, new campaign records, the split, campaign reads and a forget."""
    memory = BrandMemory(client, ef)
    write_old_layout(
        client, ef, tenant=tenant, brand="brand_1", kind="prompt",
        records=[old_prompt(1, "fall", "autumn latte poster"), old_prompt(2, None, "a cup")],
    )  # fmt: skip
    new = memory.remember_prompt(
        tenant=tenant, brand="brand_1", prompt="maple mocha flyer", model="m", seed=3,
        template="t@1", run_id="r3", campaign_id="fall", scores={"composite": 0.5},
    )  # fmt: skip
    before = [h.id for h in memory.recall(
        tenant=tenant, brand="brand_1", query="autumn", k=2, campaign_id="fall"
    )]  # fmt: skip
    # the pass goes over the whole store: on the shared server, other tests' brands too
    seen: list[tuple[str, str]] = []
    split_campaigns(memory, on_brand=lambda owner, brand: seen.append((owner, brand)))
    split = [brand for owner, brand in seen if owner == tenant]
    after = [h.id for h in memory.recall(
        tenant=tenant, brand="brand_1", query="autumn", k=2, campaign_id="fall"
    )]  # fmt: skip
    fall = campaign_collection_name(tenant, "brand_1", "fall", "prompt")
    copies = sorted(client.get_collection(fall).get(include=[])["ids"])
    marked = is_split(client.get_collection(collection_name(tenant, "brand_1", "prompt")))
    forgotten = memory.forget(tenant=tenant, brand="brand_1", record_id=new)
    forgotten += memory.forget(tenant=tenant, brand="brand_1", record_id="prompt-old1")
    left = [c.name for c in client.list_collections() if c.name == fall]
    return {
        "before": sorted(before), "after": sorted(after), "split": split, "copies": copies,
        "marked": marked, "forgotten": forgotten, "left": left,
        "new": new,
    }  # fmt: skip


def test_campaign_collections_on_the_server_as_on_disk(
    server: ClientAPI, embedded: ClientAPI, ef: MiniLMEmbeddingFunction
) -> None:
    """Written in the old layout, split by `memory rekey`'s pass, read by campaign with no
    filter and forgotten: the server answers as the embedded client does."""
    tenant = f"tc{uuid.uuid4().hex[:8]}"
    try:
        on_server = _campaigns(server, ef, tenant)
        on_disk = _campaigns(embedded, ef, tenant)
    finally:
        for collection in server.list_collections():
            if (collection.metadata or {}).get("brandloop_tenant") == tenant:
                server.delete_collection(collection.name)
    assert on_server == on_disk
    assert on_server["before"] == on_server["after"] == sorted(["prompt-old1", on_server["new"]])
    assert on_server["split"] == ["brand_1"]
    # both campaign records copied (the new one again)
    assert on_server["copies"] == on_server["after"] and on_server["marked"] is True
    assert on_server["forgotten"] == 2 and on_server["left"] == []
