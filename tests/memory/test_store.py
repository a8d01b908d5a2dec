"""BrandMemory over a real on-disk Chroma with real embeddings, offline."""

from __future__ import annotations

import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import chromadb
import pytest
from chromadb.api import ClientAPI
from chromadb.config import Settings as ChromaSettings

from brandloop.errors import BadInputError
from brandloop.memory import BrandMemory, MemoryHit, MiniLMEmbeddingFunction, make_chroma_client
from brandloop.memory.embeddings import EF_NAME, EmbeddingModelError
from brandloop.memory.store import KINDS, MemoryIdentityError, collection_name
from brandloop.settings import Settings

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SCORES = {"composite": 0.81, "palette": 0.92}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def ef() -> MiniLMEmbeddingFunction:
    function = MiniLMEmbeddingFunction()
    function.load()
    return function


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Fail any Python-level connection that leaves this machine (loopback stays allowed).

    Attempts are also recorded, so one swallowed by a background thread still fails the test.
    """
    attempts: list[Any] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def local(host: object) -> bool:
        return host in {"127.0.0.1", "::1", "localhost"}

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not local(address[0]):
            attempts.append(address)
            raise OSError(f"test tried to reach the network: {address!r}")
        real_connect(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not local(host):
            attempts.append(host)
            raise OSError(f"test tried to resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield attempts
    assert attempts == [], f"network attempted: {attempts}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[ClientAPI]:
    chroma = make_chroma_client(Settings(data_dir=tmp_path))
    yield chroma
    chroma.close()  # type: ignore[attr-defined]


@pytest.fixture
def memory(client: ClientAPI, ef: MiniLMEmbeddingFunction, clock: Clock) -> BrandMemory:
    return BrandMemory(client, ef, clock=clock)


Remember = Callable[..., str]


@pytest.fixture
def remember(memory: BrandMemory) -> Remember:
    def _remember(prompt: str, **overrides: Any) -> str:
        fields: dict[str, Any] = {
            "tenant": "acme-inc",
            "brand": "Acme Coffee",
            "prompt": prompt,
            "model": "procedural/draft",
            "seed": 7,
            "template": "banner@1",
            "run_id": "run-1",
            "scores": SCORES,
        }
        fields.update(overrides)
        return memory.remember_prompt(**fields)

    return _remember


def _ids(hits: list[MemoryHit]) -> list[str]:
    return [hit.id for hit in hits]


# --------------------------------------------------------------------------- names


LOOKALIKE_TENANTS = ("acme_co", "acme-co", "Acme-Co", "acme__co", "ACME-CO", "acme.co")


def test_collection_names_are_exact_follow_chroma_rules_and_never_collide() -> None:
    names = {
        collection_name(tenant, brand, kind)
        for tenant in LOOKALIKE_TENANTS
        for brand in ("brand_1", "Brand_1", "brand-1", "acme coffee", "Acme Coffee")
        for kind in KINDS
    }
    assert len(names) == len(LOOKALIKE_TENANTS) * 5 * len(KINDS)
    assert collection_name("a", "b\u0000c", "note") != collection_name("a\u0000b", "c", "note")
    assert collection_name('a", "b', "c", "note") != collection_name("a", '", "b", "c"', "note")
    long_name = collection_name("t" * 200, "b" * 200, "descriptor")
    assert all(
        3 <= len(n) <= 63 and n[0].isalnum() and n[-1].isalnum() and re.fullmatch(r"[\w.-]+", n)
        for n in [*names, long_name]
    )
    for tenant, brand in (("", "b"), ("t", ""), (" t", "b"), ("t", "b "), ("t" * 201, "b")):
        with pytest.raises(BadInputError):
            collection_name(tenant, brand, "note")


def test_lookalike_tenants_keep_their_own_memory(memory: BrandMemory) -> None:
    for tenant in LOOKALIKE_TENANTS:
        memory.add_note(tenant=tenant, brand="brand_1", text=f"the note of {tenant}")
    for tenant in LOOKALIKE_TENANTS:
        hits = memory.search(tenant=tenant, brand="brand_1", query="the note", k=20)
        assert [h.text for h in hits] == [f"the note of {tenant}"]
        assert memory.count(tenant=tenant, brand="brand_1") == 1
        assert memory.search(tenant=tenant, brand="Brand_1", query="the note") == []


def test_a_collection_naming_another_owner_is_refused_never_shared(
    memory: BrandMemory, client: ClientAPI, ef: MiniLMEmbeddingFunction
) -> None:
    """Whatever put it there (a bug, a hand-made collection, a colliding name), a collection
    whose metadata names another owner is an error on every open, for reads and writes."""
    client.create_collection(
        collection_name("acme_co", "brand_1", "note"),
        metadata={"brandloop_tenant": "acme-co", "brandloop_brand": "brand_1",
                  "brandloop_kind": "note"},
        embedding_function=ef,  # type: ignore[arg-type]
    )  # fmt: skip
    for attempt in (
        lambda: memory.search(tenant="acme_co", brand="brand_1", query="x"),
        lambda: memory.recall(tenant="acme_co", brand="brand_1", query="x"),
        lambda: memory.count(tenant="acme_co", brand="brand_1"),
        lambda: memory.add_note(tenant="acme_co", brand="brand_1", text="x"),
    ):
        with pytest.raises(MemoryIdentityError, match="refusing to share"):
            attempt()


# --------------------------------------------------------------------------- remember, recall


def test_remember_then_recall_returns_the_prompt_with_its_provenance(
    memory: BrandMemory, remember: Remember
) -> None:
    record_id = remember("cozy fall latte poster, warm amber light", campaign_id="fall-26")
    remember("a rocket launch at night over the sea", seed=9, run_id="run-2")

    hits = memory.recall(tenant="acme-inc", brand="Acme Coffee", query="autumn coffee banner")

    assert [h.kind for h in hits] == ["prompt", "prompt"]
    top = hits[0]
    assert top.id == record_id
    assert top.text == "cozy fall latte poster, warm amber light"
    assert top.distance < hits[1].distance
    assert top.metadata == {
        "kind": "prompt",
        "model": "procedural/draft",
        "seed": 7,
        "template": "banner@1",
        "run_id": "run-1",
        "campaign_id": "fall-26",
        "score_composite": 0.81,
        "score_palette": 0.92,
        "created_at": T0.timestamp(),
    }


def test_remembering_the_same_prompt_twice_keeps_one_record(
    memory: BrandMemory, remember: Remember
) -> None:
    first = remember("cozy fall latte poster")
    assert remember("cozy fall latte poster") == first
    assert memory.count(tenant="acme-inc", brand="Acme Coffee") == 1
    remember("cozy fall latte poster", seed=8)
    assert memory.count(tenant="acme-inc", brand="Acme Coffee") == 2


def test_the_campaigns_own_prompts_rank_first(memory: BrandMemory, remember: Remember) -> None:
    near = remember("warm autumn coffee banner with maple leaves", run_id="r-near")
    near_other = remember("cozy fall latte poster", run_id="r-other", campaign_id="spring")
    far_in_campaign = remember("a rocket launch at night", run_id="r-far", campaign_id="launch")

    plain = memory.recall(tenant="acme-inc", brand="Acme Coffee", query="autumn coffee")
    assert _ids(plain)[-1] == far_in_campaign

    ranked = memory.recall(
        tenant="acme-inc", brand="Acme Coffee", query="autumn coffee", campaign_id="launch"
    )
    assert _ids(ranked) == [far_in_campaign, near, near_other]

    capped = memory.recall(
        tenant="acme-inc", brand="Acme Coffee", query="autumn coffee", k=2, campaign_id="launch"
    )
    assert _ids(capped) == [far_in_campaign, near]


def test_notes_are_always_recalled_beside_up_to_k_prompts(
    memory: BrandMemory, remember: Remember
) -> None:
    for i, text in enumerate(
        ["autumn coffee banner", "fall latte poster", "pumpkin spice ad", "maple mocha flyer"]
    ):
        remember(text, run_id=f"r{i}")
    note = memory.add_note(
        tenant="acme-inc", brand="Acme Coffee", text="never use neon green; logo bottom right"
    )

    hits = memory.recall(tenant="acme-inc", brand="Acme Coffee", query="autumn coffee", k=2)

    assert [h.kind for h in hits] == ["prompt", "prompt", "note"]
    assert hits[-1].id == note
    assert hits[-1].text == "never use neon green; logo bottom right"
    assert hits[-1].metadata == {"kind": "note", "created_at": T0.timestamp()}


def test_search_ranks_every_kind_by_distance(memory: BrandMemory, remember: Remember) -> None:
    prompt = remember("a rocket launch at night")
    note = memory.add_note(tenant="acme-inc", brand="Acme Coffee", text="autumn tones, coffee")
    hits = memory.search(tenant="acme-inc", brand="Acme Coffee", query="autumn coffee banner")
    assert _ids(hits) == [note, prompt]
    assert hits[0].distance < hits[1].distance


def test_reads_of_an_unknown_brand_are_empty_and_create_nothing(
    memory: BrandMemory, client: ClientAPI
) -> None:
    assert memory.recall(tenant="acme-inc", brand="Nobody", query="anything") == []
    assert memory.search(tenant="acme-inc", brand="Nobody", query="anything") == []
    assert memory.count(tenant="acme-inc", brand="Nobody") == 0
    assert memory.forget(tenant="acme-inc", brand="Nobody", record_id="x") == 0
    assert client.list_collections() == []


def test_bad_input_is_refused(memory: BrandMemory, remember: Remember) -> None:
    with pytest.raises(BadInputError):
        remember("   ")
    with pytest.raises(BadInputError):
        remember("ok", scores={"composite": float("nan")})
    with pytest.raises(BadInputError):
        remember("ok", scores={"Bad Name": 0.5})
    with pytest.raises(BadInputError):
        memory.recall(tenant="acme-inc", brand="Acme Coffee", query="x", k=0)
    with pytest.raises(BadInputError):
        memory.forget(tenant="acme-inc", brand="Acme Coffee")
    with pytest.raises(BadInputError):
        memory.forget(tenant="acme-inc", brand="Acme Coffee", before=datetime(2026, 1, 1))


# --------------------------------------------------------------------------- forget


def test_forget_by_id_removes_the_record(memory: BrandMemory, remember: Remember) -> None:
    gone = remember("cozy fall latte poster")
    kept = remember("autumn coffee banner", run_id="run-2")

    assert memory.forget(tenant="acme-inc", brand="Acme Coffee", record_id=gone) == 1

    assert memory.count(tenant="acme-inc", brand="Acme Coffee") == 1
    hits = memory.search(tenant="acme-inc", brand="Acme Coffee", query="cozy fall latte poster")
    assert _ids(hits) == [kept]
    assert memory.forget(tenant="acme-inc", brand="Acme Coffee", record_id=gone) == 0
    assert memory.forget(tenant="acme-inc", brand="Acme Coffee", record_id="") == 0
    assert memory.count(tenant="acme-inc", brand="Acme Coffee") == 1


def test_forgetting_a_note_forgets_only_the_prompts_rendered_while_it_was_recalled(
    memory: BrandMemory, remember: Remember
) -> None:
    """The tester's data loss: a note "cozy" took every prompt whose text held the word (the
    kit's tone puts it in every Acme prompt), though those runs never recalled the note."""
    note = memory.add_note(tenant="acme-inc", brand="Acme Coffee", text="cozy")
    before = remember("a cup. warm, cozy, artisanal mood for Acme Coffee.", notes=[])
    other = memory.add_note(tenant="acme-inc", brand="Acme Coffee", text="soft light")
    carried = remember("a latte. warm, cozy mood. brand colours. cozy; soft light.",
                       run_id="run-2", notes=[note, other])  # fmt: skip
    beside = remember("a mug. warm mood. brand colours. soft light.", run_id="run-3",
                      notes=[other])  # fmt: skip

    assert memory.forget(tenant="acme-inc", brand="Acme Coffee", record_id=note) == 2

    hits = memory.search(tenant="acme-inc", brand="Acme Coffee", query="cozy cup", k=10)
    assert set(_ids(hits)) == {before, other, beside}
    assert carried not in _ids(hits)


def test_a_prompt_whose_recalled_note_was_forgotten_is_not_remembered(
    memory: BrandMemory, remember: Remember
) -> None:
    """A run recalled the note, a person forgot it, then the run remembered its prompt: the
    note's text would come back into memory (an outside tester, over HTTP)."""
    note = memory.add_note(tenant="acme-inc", brand="Acme Coffee", text="zebrafish light")
    kept = memory.add_note(tenant="acme-inc", brand="Acme Coffee", text="soft light")
    assert memory.forget(tenant="acme-inc", brand="Acme Coffee", record_id=note) == 1

    assert (
        remember("a cup. brand colours. zebrafish light; soft light.", notes=[note, kept]) is None
    )
    assert remember("a mug. brand colours. soft light.", run_id="run-2", notes=[kept]) is not None
    hits = memory.search(tenant="acme-inc", brand="Acme Coffee", query="zebrafish cup", k=10)
    assert [hit.text for hit in hits if "zebrafish" in hit.text] == []
    assert memory.count(tenant="acme-inc", brand="Acme Coffee") == 2


def test_a_prompt_that_names_no_notes_goes_only_if_it_holds_the_note_as_a_clause(
    memory: BrandMemory, remember: Remember
) -> None:
    """Prompts remembered before prompts named their notes: the note's text as the composer
    joins notes in ("; note;", "note." after a sentence), never a word of the tone."""
    note = memory.add_note(tenant="acme-inc", brand="Acme Coffee", text="cozy")
    tone = remember("a cup. warm, cozy, artisanal mood for Acme Coffee. brand colours.")
    inside = remember("a cup in a cozy corner. brand colours.", run_id="run-2")
    last = remember("a cup. warm mood. brand colours. soft light; cozy.", run_id="run-3")
    first = remember("a cup. warm mood. brand colours. cozy; soft light.", run_id="run-4")
    alone = remember("a cup. warm mood. brand colours. cozy.", run_id="run-5")

    assert memory.forget(tenant="acme-inc", brand="Acme Coffee", record_id=note) == 4

    hits = memory.search(tenant="acme-inc", brand="Acme Coffee", query="cozy cup", k=10)
    assert set(_ids(hits)) == {tone, inside}
    assert not {last, first, alone} & set(_ids(hits))


def test_a_note_of_several_lines_goes_with_the_prompts_that_hold_it_on_one_line(
    memory: BrandMemory, remember: Remember
) -> None:
    """A render collapses whitespace: the note "beans scattered\\non the   counter" is in its
    prompts as "beans scattered on the counter", which forget looked for as stored (an outside
    tester found the text four times in chroma.sqlite3 after the forget)."""
    note = memory.add_note(
        tenant="acme-inc", brand="Acme Coffee", text="beans scattered\non the   counter"
    )
    old = remember("a cup. brand colours. beans scattered on the counter.")  # names no notes
    new = remember("a mug. brand colours. beans scattered on the counter.", run_id="run-2",
                   notes=[note])  # fmt: skip

    assert memory.forget(tenant="acme-inc", brand="Acme Coffee", record_id=note) == 3

    assert memory.count(tenant="acme-inc", brand="Acme Coffee") == 0
    assert not {old, new} & set(_ids(memory.search(tenant="acme-inc", brand="Acme Coffee",
                                                   query="beans", k=10)))  # fmt: skip


def test_forget_before_a_date_removes_older_records(
    memory: BrandMemory, remember: Remember, clock: Clock
) -> None:
    old_prompt = remember("cozy fall latte poster")
    old_note = memory.add_note(tenant="acme-inc", brand="Acme Coffee", text="autumn palette")
    clock.now = T0 + timedelta(days=30)
    new_prompt = remember("autumn coffee banner", run_id="run-2")

    removed = memory.forget(tenant="acme-inc", brand="Acme Coffee", before=T0 + timedelta(days=1))

    assert removed == 2
    assert memory.count(tenant="acme-inc", brand="Acme Coffee") == 1
    hits = memory.recall(tenant="acme-inc", brand="Acme Coffee", query="autumn latte", k=10)
    assert _ids(hits) == [new_prompt]
    assert not {old_prompt, old_note} & set(_ids(hits))
    # both bounds at once: the record goes only if it is older
    assert (
        memory.forget(tenant="acme-inc", brand="Acme Coffee", before=T0, record_id=new_prompt) == 0
    )


def test_forgotten_text_is_left_in_no_live_chroma_table(
    memory: BrandMemory, tmp_path: Path
) -> None:
    secret = "confidential launch codename zebrafish"
    record_id = memory.add_note(tenant="acme-inc", brand="Acme Coffee", text=secret)
    memory.add_note(tenant="acme-inc", brand="Acme Coffee", text="keep it warm")

    assert memory.forget(tenant="acme-inc", brand="Acme Coffee", record_id=record_id) == 1

    db = sqlite3.connect(f"file:{tmp_path / 'chroma' / 'chroma.sqlite3'}?mode=ro", uri=True)
    try:
        tables = [row[0] for row in db.execute("select name from sqlite_master where type='table'")]
        leftovers = [
            table
            for table in tables
            for row in db.execute(f'select * from "{table}"')
            if any(isinstance(v, str | bytes) and "zebrafish" in str(v) for v in row)
        ]
    finally:
        db.close()
    assert leftovers == []


# --------------------------------------------------------------------------- isolation


def test_tenants_and_brands_do_not_see_each_others_memory(
    memory: BrandMemory, remember: Remember
) -> None:
    mine = remember("cozy fall latte poster")
    other_tenant = remember("cozy fall latte poster", tenant="globex")
    other_brand = remember("cozy fall latte poster", brand="Acme Tea")
    memory.add_note(tenant="globex", brand="Acme Coffee", text="globex's note")

    for tenant, brand, expected in [
        ("acme-inc", "Acme Coffee", mine),
        ("globex", "Acme Coffee", other_tenant),
        ("acme-inc", "Acme Tea", other_brand),
    ]:
        prompts = [
            h
            for h in memory.recall(tenant=tenant, brand=brand, query="latte")
            if h.kind == "prompt"
        ]
        assert _ids(prompts) == [expected]

    assert memory.count(tenant="acme-inc", brand="Acme Coffee") == 1
    assert memory.forget(tenant="acme-inc", brand="Acme Coffee", before=T0 + timedelta(1)) == 1
    assert memory.count(tenant="globex", brand="Acme Coffee") == 2
    assert memory.count(tenant="acme-inc", brand="Acme Tea") == 1


# --------------------------------------------------------------------------- reopening


def test_a_reopened_collection_embeds_with_our_function_offline(
    tmp_path: Path, ef: MiniLMEmbeddingFunction, remember: Remember, client: ClientAPI
) -> None:
    remember("cozy fall latte poster")
    client.close()  # type: ignore[attr-defined]  # the last reference: chromadb stops the system

    reopened = chromadb.PersistentClient(
        path=tmp_path / "chroma", settings=ChromaSettings(anonymized_telemetry=False)
    )
    try:
        # no embedding function passed: chromadb must rebuild ours from the stored config
        collection = reopened.get_collection(collection_name("acme-inc", "Acme Coffee", "prompt"))
        configured = collection.configuration["embedding_function"]
        assert isinstance(configured, MiniLMEmbeddingFunction) and configured is not ef
        assert configured.name() == EF_NAME
        assert collection.configuration["hnsw"]["space"] == "cosine"  # type: ignore[index]
        result = collection.query(query_texts=["autumn coffee"], n_results=1)
        assert result["documents"] == [["cozy fall latte poster"]]

        again = BrandMemory(reopened, ef)
        assert again.count(tenant="acme-inc", brand="Acme Coffee") == 1
        assert again.recall(tenant="acme-inc", brand="Acme Coffee", query="latte")[0].text == (
            "cozy fall latte poster"
        )
    finally:
        reopened.close()  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- a Chroma server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[int]:
    port = _free_port()
    chroma = Path(sys.executable).parent / "chroma"
    process = subprocess.Popen(
        [
            str(chroma),
            "run",
            "--path",
            str(tmp_path / "server"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("chroma run did not start listening")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.server
def test_make_chroma_client_talks_to_a_server_when_a_host_is_set(
    chroma_server: int, ef: MiniLMEmbeddingFunction
) -> None:
    client = make_chroma_client(Settings(chroma_host="127.0.0.1", chroma_port=chroma_server))
    try:
        memory = BrandMemory(client, ef, clock=Clock())
        note = memory.add_note(tenant="acme-inc", brand="Acme Coffee", text="warm tones only")
        hits = memory.recall(tenant="acme-inc", brand="Acme Coffee", query="colour palette")
        assert _ids(hits) == [note]
        assert memory.forget(tenant="acme-inc", brand="Acme Coffee", record_id=note) == 1
        assert memory.count(tenant="acme-inc", brand="Acme Coffee") == 0
    finally:
        client.close()  # type: ignore[attr-defined]
        # chromadb 1.5 quirk: HttpClient.close() leaves the httpx.Client of the client and of
        # its internal admin client (a second system) open; their sockets would surface as
        # ResourceWarnings, which filterwarnings=error turns into a failure at exit.
        for owner in (client, client._admin_client):  # type: ignore[attr-defined]
            owner._server._session.close()  # type: ignore[union-attr]


def test_a_collection_embedded_by_another_model_version_is_refused(
    memory: BrandMemory, remember: Remember, client: ClientAPI
) -> None:
    remember("cozy fall latte poster")
    newer = MiniLMEmbeddingFunction(max_tokens=128)  # stands in for a re-pinned model
    with pytest.raises(EmbeddingModelError, match="re-embed"):
        BrandMemory(client, newer).recall(tenant="acme-inc", brand="Acme Coffee", query="latte")
