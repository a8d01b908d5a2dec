"""A campaign's prompts and descriptors, each also kept in a collection of the campaign's own
(issue 18 part 4: campaign recall queried the brand's collection with a ``where`` on
``campaign_id``, 4x Chroma's unfiltered query at 50k records). Real on-disk Chroma, real
embeddings; memory written in the old layout is read right before and after the split."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from chromadb.api import ClientAPI

from brandloop.errors import BadInputError
from brandloop.memory import BrandMemory, MiniLMEmbeddingFunction, make_chroma_client
from brandloop.memory.rekey import split_campaigns
from brandloop.memory.shared import LocalChroma
from brandloop.memory.store import (
    MemoryIdentityError,
    campaign_collection_name,
    collection_name,
    is_split,
    make_chroma_store,
)
from brandloop.settings import Settings
from tests.memory.old_layout import old_descriptor, old_prompt, write_old_layout

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SCORES = {"composite": 0.8}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def ef() -> MiniLMEmbeddingFunction:
    function = MiniLMEmbeddingFunction()
    function.load()
    return function


@pytest.fixture
def client(tmp_path: Path) -> Iterator[ClientAPI]:
    chroma = make_chroma_client(Settings(data_dir=tmp_path))
    yield chroma
    chroma.close()  # type: ignore[attr-defined]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def memory(client: ClientAPI, ef: MiniLMEmbeddingFunction, clock: Clock) -> BrandMemory:
    return BrandMemory(client, ef, clock=clock)


def prompt(memory: BrandMemory, text: str, campaign: str | None, **fields: Any) -> str:
    values: dict[str, Any] = {
        "tenant": "acme_co",
        "brand": "brand_1",
        "model": "procedural/draft",
        "seed": 7,
        "template": "banner@1",
        "run_id": "run-1",
        "scores": SCORES,
    }
    values.update(fields)
    return memory.remember_prompt(prompt=text, campaign_id=campaign, **values)


def descriptor(memory: BrandMemory, colour: str, campaign: str | None, **fields: Any) -> str:
    values: dict[str, Any] = {
        "tenant": "acme_co",
        "brand": "brand_1",
        "run_id": "run-1",
        "attempt_id": f"att-{colour}",
        "model": "procedural/draft",
        "seed": 7,
    }
    values.update(fields)
    return memory.remember_descriptor(colours=[(colour, 0.6)], campaign_id=campaign, **values)


def names(client: ClientAPI) -> set[str]:
    return {c.name for c in client.list_collections()}


def copies(client: ClientAPI, tenant: str, brand: str, campaign: str, kind: Any) -> set[str]:
    name = campaign_collection_name(tenant, brand, campaign, kind)
    if name not in names(client):
        return set()
    return set(client.get_collection(name).get(include=[])["ids"])


def ids(hits: list[Any]) -> list[str]:
    return [hit.id for hit in hits]


# --------------------------------------------------------------------------- layout


def test_a_campaigns_records_are_kept_in_its_own_collection_and_read_from_there(
    memory: BrandMemory, client: ClientAPI
) -> None:
    fall = [prompt(memory, f"autumn latte poster {i}", "fall", seed=i) for i in range(3)]
    spring = prompt(memory, "spring blossom coffee banner", "spring", seed=10)
    plain = prompt(memory, "a plain coffee cup", None, seed=11)
    fall_colour = descriptor(memory, "#6b3e26", "fall")
    descriptor(memory, "#f4c2c2", "spring")
    descriptor(memory, "#000000", None)

    assert copies(client, "acme_co", "brand_1", "fall", "prompt") == set(fall)
    assert copies(client, "acme_co", "brand_1", "spring", "prompt") == {spring}
    assert copies(client, "acme_co", "brand_1", "fall", "descriptor") == {fall_colour}
    # the brand's own collections still hold every record, and say their campaigns are split
    assert memory.count(tenant="acme_co", brand="brand_1") == 8
    for kind in ("prompt", "descriptor"):
        assert is_split(client.get_collection(collection_name("acme_co", "brand_1", kind)))

    hits = memory.recall(
        tenant="acme_co", brand="brand_1", query="a plain coffee cup", k=5, campaign_id="spring"
    )
    assert ids(hits)[0] == spring and ids(hits)[1] == plain  # the campaign's first, then nearest
    assert len(hits) == 5 and set(ids(hits)) <= {*fall, spring, plain}
    hits = memory.recall(tenant="acme_co", brand="brand_1", query="autumn", k=3, campaign_id="fall")
    assert sorted(ids(hits)) == sorted(fall)
    described = memory.descriptors(tenant="acme_co", brand="brand_1", campaign_id="fall")
    assert [(h.id, h.metadata["colours"]) for h in described] == [(fall_colour, "#6b3e26")]
    assert described[0].metadata["campaign_id"] == "fall" and described[0].kind == "descriptor"
    # a campaign with no records reads nothing and creates nothing
    before = names(client)
    assert memory.descriptors(tenant="acme_co", brand="brand_1", campaign_id="winter") == []
    nearest = memory.recall(tenant="acme_co", brand="brand_1", query="x", k=1)
    assert (
        memory.recall(tenant="acme_co", brand="brand_1", query="x", k=1, campaign_id="winter")
        == nearest
    )
    assert names(client) == before
    with pytest.raises(BadInputError, match="campaign"):
        memory.recall(tenant="acme_co", brand="brand_1", query="x", campaign_id=" fall")
    with pytest.raises(BadInputError, match="campaign"):
        prompt(memory, "x", "")


def test_the_same_prompt_remembered_in_another_campaign_leaves_the_first(
    memory: BrandMemory, client: ClientAPI
) -> None:
    """A record is in one campaign at a time, as a ``campaign_id`` query of the brand's
    collection found it: its copy moves, and the emptied campaign collection goes."""
    moved = prompt(memory, "autumn latte poster", "fall")
    assert prompt(memory, "autumn latte poster", "spring") == moved
    assert copies(client, "acme_co", "brand_1", "spring", "prompt") == {moved}
    assert campaign_collection_name("acme_co", "brand_1", "fall", "prompt") not in names(client)
    assert prompt(memory, "autumn latte poster", None) == moved
    assert copies(client, "acme_co", "brand_1", "spring", "prompt") == set()
    assert memory.count(tenant="acme_co", brand="brand_1") == 1


# --------------------------------------------------------------------------- forget


def test_forget_removes_the_campaign_copies_from_chroma_and_the_disk(
    tmp_path: Path, ef: MiniLMEmbeddingFunction
) -> None:
    store = make_chroma_store(Settings(data_dir=tmp_path))
    assert isinstance(store, LocalChroma)
    clock = Clock()
    memory = BrandMemory(store, ef, clock=clock)
    secret = prompt(memory, "the quokkastein launch poster", "launch", seed=1)
    kept = prompt(memory, "a warm latte poster", "launch", seed=2)
    colour = descriptor(memory, "#123456", "launch")
    clock.now = T0 + timedelta(days=30)
    late = prompt(memory, "a cold brew banner", "summer", seed=3)

    def on_disk() -> int:
        return sum(
            p.read_bytes().lower().count(b"quokkastein")
            for p in (tmp_path / "chroma").rglob("*")
            if p.is_file()
        )

    assert on_disk() > 0
    assert memory.forget(tenant="acme_co", brand="brand_1", record_id=secret) == 1
    with memory.exclusive():
        assert copies(memory.client, "acme_co", "brand_1", "launch", "prompt") == {kept}
    assert on_disk() == 0
    hits = memory.recall(
        tenant="acme_co", brand="brand_1", query="quokkastein launch", campaign_id="launch"
    )
    assert secret not in ids(hits)

    # by age: the older campaign's copies go, and its emptied collections with them
    assert memory.forget(tenant="acme_co", brand="brand_1", before=T0 + timedelta(days=1)) == 2
    with memory.exclusive():
        left = names(memory.client)
        assert copies(memory.client, "acme_co", "brand_1", "summer", "prompt") == {late}
    for kind in ("prompt", "descriptor"):
        assert campaign_collection_name("acme_co", "brand_1", "launch", kind) not in left
    assert memory.descriptors(tenant="acme_co", brand="brand_1", campaign_id="launch") == []
    assert colour not in ids(memory.search(tenant="acme_co", brand="brand_1", query="colours"))
    # and the campaign starts again as new
    again = prompt(memory, "a warm latte poster", "launch", seed=2)
    assert ids(
        memory.recall(tenant="acme_co", brand="brand_1", query="latte", campaign_id="launch")
    )[0] == again  # fmt: skip


# --------------------------------------------------------------------------- isolation

#: odd but legal: ids differ only by case, separators, quotes, a JSON-looking tail, non-ASCII
OWNERS = [
    ("acme_co", "brand_1"),
    ("acme-co", "brand_1"),
    ("Acme_Co", "brand_1"),
    ("acme_co", 'brand_1", "x'),
    ('acme_co", "brand_1', "x"),
    ("ácme co", "brand 1"),
]


def test_tenants_with_lookalike_ids_never_share_a_campaigns_memory(
    memory: BrandMemory, client: ClientAPI
) -> None:
    for tenant, brand in OWNERS:
        prompt(memory, f"the fall prompt of {tenant}/{brand}", "fall", tenant=tenant, brand=brand)
        descriptor(memory, "#abcdef", "fall", tenant=tenant, brand=brand, run_id=tenant)
    campaign_names = {
        campaign_collection_name(tenant, brand, "fall", kind)
        for tenant, brand in OWNERS
        for kind in ("prompt", "descriptor")
    }
    assert len(campaign_names) == 2 * len(OWNERS) and campaign_names <= names(client)
    for tenant, brand in OWNERS:
        hits = memory.recall(
            tenant=tenant, brand=brand, query="the fall prompt", k=10, campaign_id="fall"
        )
        assert [h.text for h in hits] == [f"the fall prompt of {tenant}/{brand}"]
        described = memory.descriptors(tenant=tenant, brand=brand, campaign_id="fall")
        assert [h.metadata["run_id"] for h in described] == [tenant]
    # a campaign collection whose metadata names another owner is refused, never read
    client.delete_collection(campaign_collection_name("acme-co", "brand_1", "fall", "prompt"))
    client.create_collection(
        campaign_collection_name("acme-co", "brand_1", "fall", "prompt"),
        metadata={"brandloop_tenant": "acme_co", "brandloop_brand": "brand_1",
                  "brandloop_kind": "prompt", "brandloop_campaign": "fall"},
        embedding_function=memory._ef,  # type: ignore[arg-type]
    )  # fmt: skip
    with pytest.raises(MemoryIdentityError, match="refusing to share"):
        memory.recall(tenant="acme-co", brand="brand_1", query="x", campaign_id="fall")
    with pytest.raises(MemoryIdentityError, match="refusing to share"):
        prompt(memory, "another", "fall", tenant="acme-co", seed=99)


# --------------------------------------------------------------------------- old layout


def _old_brand(client: ClientAPI, ef: MiniLMEmbeddingFunction) -> None:
    write_old_layout(
        client, ef, tenant="acme_co", brand="brand_1", kind="prompt",
        records=[
            old_prompt(0, None, "a plain coffee cup"),
            old_prompt(1, "fall", "autumn latte poster"),
            old_prompt(2, "fall", "maple leaves and a mocha"),
            old_prompt(3, "spring", "spring blossom coffee banner"),
        ],
    )  # fmt: skip
    write_old_layout(
        client, ef, tenant="acme_co", brand="brand_1", kind="descriptor",
        records=[old_descriptor(4, None, "#000000"), old_descriptor(5, "fall", "#6b3e26")],
    )  # fmt: skip


def _campaign_view(memory: BrandMemory) -> dict[str, object]:
    recall = memory.recall(
        tenant="acme_co", brand="brand_1", query="a coffee", k=2, campaign_id="fall"
    )
    described = memory.descriptors(tenant="acme_co", brand="brand_1", campaign_id="fall")
    return {
        "recall": sorted(ids(recall)),
        "descriptors": ids(described),
        "spring": ids(
            memory.recall(tenant="acme_co", brand="brand_1", query="x", k=1, campaign_id="spring")
        ),
    }


def test_memory_of_the_old_layout_is_read_by_campaign_before_and_after_the_split(
    memory: BrandMemory, client: ClientAPI, ef: MiniLMEmbeddingFunction
) -> None:
    _old_brand(client, ef)
    expected = {
        "recall": ["prompt-old1", "prompt-old2"],
        "descriptors": ["descriptor-old5"],
        "spring": ["prompt-old3"],
    }
    assert _campaign_view(memory) == expected  # not split yet: read by campaign_id
    assert not is_split(client.get_collection(collection_name("acme_co", "brand_1", "prompt")))
    # a write after the upgrade keeps the old collection unsplit (its older records have no
    # copy yet) but gives the new record its copy
    new = prompt(memory, "autumn latte poster, take two", "fall", seed=20)
    assert not is_split(client.get_collection(collection_name("acme_co", "brand_1", "prompt")))
    assert copies(client, "acme_co", "brand_1", "fall", "prompt") == {new}
    view = _campaign_view(memory)
    assert view["descriptors"] == expected["descriptors"] and view["spring"] == expected["spring"]
    assert set(view["recall"]) < {new, "prompt-old1", "prompt-old2"}  # type: ignore[call-overload]

    assert split_campaigns(memory) == (1, 5)
    for kind in ("prompt", "descriptor"):
        assert is_split(client.get_collection(collection_name("acme_co", "brand_1", kind)))
    assert copies(client, "acme_co", "brand_1", "fall", "prompt") == {
        new, "prompt-old1", "prompt-old2"
    }  # fmt: skip
    assert copies(client, "acme_co", "brand_1", "spring", "prompt") == {"prompt-old3"}
    assert copies(client, "acme_co", "brand_1", "fall", "descriptor") == {"descriptor-old5"}
    assert _campaign_view(memory) == view  # the same answers, now unfiltered
    copy = client.get_collection(
        campaign_collection_name("acme_co", "brand_1", "fall", "prompt")
    ).get(ids=["prompt-old1"], include=["metadatas", "documents", "embeddings"])
    brand_record = client.get_collection(collection_name("acme_co", "brand_1", "prompt")).get(
        ids=["prompt-old1"], include=["metadatas", "documents", "embeddings"]
    )
    assert copy["metadatas"] == brand_record["metadatas"]
    assert copy["documents"] == brand_record["documents"]
    assert copy["embeddings"] is not None and brand_record["embeddings"] is not None
    # the vector itself, as stored (float32), not a re-embedding
    assert list(copy["embeddings"][0]) == pytest.approx(
        list(brand_record["embeddings"][0]), abs=1e-6
    )
    assert split_campaigns(memory) == (0, 0)  # idempotent

    # a repair rebuilds the campaigns' collections too, and keeps them split
    memory.repair(tenant="acme_co", brand="brand_1")
    assert _campaign_view(memory) == view
    assert is_split(client.get_collection(collection_name("acme_co", "brand_1", "prompt")))
    assert copies(client, "acme_co", "brand_1", "spring", "prompt") == {"prompt-old3"}
