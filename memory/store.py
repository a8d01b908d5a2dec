"""Brand memory: what a brand has accepted before (prompts), what its people asked for (notes)
and what its accepted images look like (descriptors).

The planner recalls from it before composing prompts; the loop remembers each accepted prompt.
Storage is keyed by exact identity: each (tenant id, brand id, kind) has its own Chroma
collection in cosine space, named from a hash of the exact ids (``acme_co`` and ``acme-co``
are two tenants, ``Acme`` and ``acme`` too) and carrying those ids in its metadata, which
every open checks: a collection that is not the pair's is an error, never a silent share.
One collection per kind means recall queries stay unfiltered (no metadata scan on the hot
path); so does a campaign's recall: each prompt and descriptor of a campaign is also kept in a
collection of its own per (tenant id, brand id, campaign id, kind), written alongside the
brand's and read with no ``where``. The store is handed its chromadb client (or, for the
embedded on-disk Chroma, a :class:`~brandloop.memory.shared.LocalChroma` that serialises
processes) and embedding function;
:func:`make_chroma_store` builds either from :class:`~brandloop.settings.Settings`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar, cast

import chromadb
import httpx
from chromadb.api import ClientAPI
from chromadb.api.collection_configuration import CreateHNSWConfiguration
from chromadb.api.models.Collection import Collection
from chromadb.api.shared_system_client import SharedSystemClient
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, QueryResult, Where
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import InternalError as ChromaInternalError
from chromadb.errors import NotFoundError as ChromaNotFoundError
from pydantic import BaseModel, ConfigDict

from brandloop.domain import is_blank, utcnow
from brandloop.errors import BadInputError, BrandloopError
from brandloop.memory.embeddings import EmbeddingModelError
from brandloop.memory.shared import LocalChroma
from brandloop.settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "CAMPAIGN_KINDS",
    "COLLECTION_PREFIX",
    "KINDS",
    "SPLIT_MARK",
    "BrandMemory",
    "ChromaServer",
    "MemoryDamagedError",
    "MemoryHit",
    "MemoryIdentityError",
    "MemoryKind",
    "MemoryUnavailableError",
    "campaign_collection_name",
    "campaign_identity",
    "collection_identity",
    "collection_name",
    "is_split",
    "make_chroma_client",
    "make_chroma_store",
    "note_key",
    "unsplit_owner",
]

MemoryKind = Literal["prompt", "note", "descriptor"]
KINDS: tuple[MemoryKind, ...] = ("prompt", "note", "descriptor")
#: the kinds a run records under its campaign, each also kept in the campaign's own collection
CAMPAIGN_KINDS: tuple[MemoryKind, ...] = ("prompt", "descriptor")
MetadataValue = str | int | float | bool

COLLECTION_PREFIX = "blm-"
#: the collection metadata that names its owner; checked on every open
_TENANT, _BRAND, _KIND = "brandloop_tenant", "brandloop_brand", "brandloop_kind"
_CAMPAIGN = "brandloop_campaign"
#: set on a brand's prompt or descriptor collection whose campaign records all have their copy
#: in their campaign's collection: every such collection created since campaign collections
#: came, an older one once ``brandloop memory rekey`` (:meth:`BrandMemory.split_campaigns`)
#: copied them. Until then a campaign is read from the brand's collection by ``campaign_id``.
SPLIT_MARK = "brandloop_campaign_collections"
_MAX_ID = 200
_SPLIT_PAGE = 1000
_SPLIT_HELD = 10_000
_SCORE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_K = 100
#: the style notes a run recalls at most, nearest the brief first: every note of any brand a
#: person keeps by hand (a 4,000-character prompt holds fewer still: ``agent/nodes/plan.fit_prompt``
#: keeps the nearest), and a query that costs about what the prompts' does (50 of 5,000
#: notes: 2.0 ms against 1.4 ms for 5; 1,000 would cost 15 ms, past the prompts' query)
MAX_RECALLED_NOTES = 50
MAX_TEXT_CHARS = 8000
#: a prompt's metadata that names a style note its run recalled: ``note:<note id>`` = True,
#: one key a note, so ``forget`` finds the prompts of a note by an equality filter
_NOTE_KEY = "note:"
#: how many style notes the prompt's run recalled; a prompt that has it names each of them
#: (:data:`_NOTE_KEY`), one without it was remembered before notes were named
_RECALLED = "recalled_notes"
#: Cosine space. Flushing the vector index on every write lets Chroma purge its write-ahead
#: log at once, so a forgotten record's text and vector do not linger in it (by default they
#: stay until 1000 more writes). Brand memory is written once per accepted image; the cost
#: measured here was under 1 ms a write at 2000 records. Freed SQLite pages still hold old
#: bytes: ``forget`` rebuilds the on-disk file after deleting (:meth:`LocalChroma.vacuum`).
_HNSW = CreateHNSWConfiguration(space="cosine", sync_threshold=1, batch_size=1)
#: the most collections :meth:`BrandMemory._named` keeps looked up at once
_MAX_HANDLES = 256
#: Runs a recall's notes query beside its prompts' (threads: Chroma's search releases the GIL).
#: Its threads start on first use, so a process forked before any recall has none to lose.
_QUERIES = ThreadPoolExecutor(max_workers=8, thread_name_prefix="brandloop-memory-query")


class MemoryHit(BaseModel):
    """One recalled record; ``distance`` is cosine distance (0 is identical, 2 opposite)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    kind: MemoryKind
    text: str
    distance: float
    metadata: dict[str, MetadataValue]


class MemoryIdentityError(BrandloopError):
    """A collection that should hold one tenant's brand memory names another owner."""

    problem_type = "memory-identity"


class MemoryUnavailableError(BrandloopError):
    """Brand memory cannot be used at all: a Chroma server that cannot be reached, an on-disk
    store whose file Chroma cannot read. A run goes on without memory (recall and remember
    record an ``unavailable`` decision); a memory command stops with exit 7, the API with a
    503 ``memory-unavailable`` problem. The message names the Chroma store."""

    exit_code = 7
    problem_type = "memory-unavailable"


class MemoryDamagedError(MemoryUnavailableError):
    """Chroma failed inside a brand's memory (an index that lost records, as two processes
    writing one embedded store without the lock left it). The run goes on without memory;
    ``brandloop memory repair`` rebuilds the brand's collections from their stored texts."""

    problem_type = "memory-damaged"


#: what SQLite says of a file it cannot read: not a damaged index ``memory repair`` rebuilds
_UNREADABLE = ("malformed", "not a database", "disk i/o error", "unable to open", "corrupt")


_P = ParamSpec("_P")
_R = TypeVar("_R")
_Method = Callable[Concatenate["BrandMemory", _P], _R]


def _serialised(*, write: bool) -> Callable[[_Method[_P, _R]], _Method[_P, _R]]:
    """Run the method under the store's cross-process lock; a Chroma internal error in it is
    a :class:`MemoryDamagedError` naming the brand and the repair."""

    def wrap(method: _Method[_P, _R]) -> _Method[_P, _R]:
        @functools.wraps(method)
        def serialised(self: BrandMemory, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            # opening the client (under the lock) is inside the try: a store that cannot be
            # opened is as unavailable as one that fails a query
            try:
                with self._access(write=write):
                    return method(self, *args, **kwargs)
            except ChromaInternalError as exc:
                if any(word in str(exc).lower() for word in _UNREADABLE):
                    raise MemoryUnavailableError(
                        f"brand memory is unavailable: {self.where} cannot be read "
                        f"({_first_line(exc)}); restore it from a backup (docs/runbook.md)"
                    ) from exc
                brand = kwargs.get("brand") or kwargs.get("source") or "?"
                raise MemoryDamagedError(
                    f"brand memory of {brand} is damaged ({exc}); "
                    f"`brandloop memory repair --brand {brand}` rebuilds it"
                ) from exc
            except httpx.TransportError as exc:  # a server that went away after connecting
                raise MemoryUnavailableError(
                    f"brand memory is unavailable: {self.where} cannot be reached "
                    f"({type(exc).__name__}: {_first_line(exc)})"
                ) from exc
            except OSError as exc:
                if self._shared is None:
                    raise
                raise _unopenable(exc) from exc

        return serialised

    return wrap


def _unopenable(exc: OSError) -> MemoryUnavailableError:
    """The on-disk store's directory cannot be made or its lock file opened (a
    ``BRANDLOOP_CHROMA_PATH`` that is a file, below a file, or where this user may not write):
    memory is unavailable, as for a store that cannot be read. The message names the setting
    and the reason, not the path (the API's answers and a run's decisions carry it)."""
    reason = exc.strerror or type(exc).__name__
    return MemoryUnavailableError(
        f"brand memory is unavailable: the on-disk Chroma store cannot be opened ({reason}); "
        "BRANDLOOP_CHROMA_PATH (default <data_dir>/chroma) must be a directory, or a path one "
        "can be made at, that this user may write"
    )


def _check_id(value: str, what: str) -> str:
    if not value or len(value) > _MAX_ID or value != value.strip():
        raise BadInputError(f"{what} {value!r} must be 1-{_MAX_ID} characters, unpadded")
    return value


def collection_identity(tenant: str, brand: str, kind: MemoryKind) -> dict[str, str]:
    """The metadata naming a collection's owner: the exact ids, as given."""
    return {
        _TENANT: _check_id(tenant, "tenant"),
        _BRAND: _check_id(brand, "brand"),
        _KIND: kind,
    }


def collection_name(tenant: str, brand: str, kind: MemoryKind) -> str:
    """The collection of ``tenant``'s ``kind`` records of ``brand`` (the brand's registry id):
    ``blm-{kind}-{32 hex}``, a sha256 of the exact ids, within Chroma's 63 characters.

    The ids are hashed as given (a JSON pair, so no separator can be forged): ids that differ
    in case, ``_`` against ``-`` or anything else get different collections.
    """
    identity = collection_identity(tenant, brand, kind)
    pair = json.dumps([identity[_TENANT], identity[_BRAND]], ensure_ascii=False)
    return f"{COLLECTION_PREFIX}{kind}-{hashlib.sha256(pair.encode()).hexdigest()[:32]}"


def campaign_identity(tenant: str, brand: str, campaign: str, kind: MemoryKind) -> dict[str, str]:
    """The metadata naming a campaign collection's owner: the exact ids, as given."""
    return {
        **collection_identity(tenant, brand, kind),
        _CAMPAIGN: _check_id(campaign, "campaign"),
    }


def campaign_collection_name(tenant: str, brand: str, campaign: str, kind: MemoryKind) -> str:
    """The collection of the ``kind`` records ``tenant``'s ``brand`` made in ``campaign``:
    ``blm-campaign-{kind}-{32 hex}``, a sha256 of the exact ids (a JSON triple, as for
    :func:`collection_name`), so no two owners or campaigns share one."""
    identity = campaign_identity(tenant, brand, campaign, kind)
    triple = json.dumps(
        [identity[_TENANT], identity[_BRAND], identity[_CAMPAIGN]], ensure_ascii=False
    )
    digest = hashlib.sha256(triple.encode()).hexdigest()[:32]
    return f"{COLLECTION_PREFIX}campaign-{kind}-{digest}"


def _campaign_of(metadata: Mapping[str, Any]) -> str | None:
    """The campaign a record was made in, if it names one that can key a collection."""
    campaign = metadata.get("campaign_id")
    if not isinstance(campaign, str) or not campaign or len(campaign) > _MAX_ID:
        return None
    return campaign if campaign == campaign.strip() else None


@dataclass
class _Copies:
    """Campaign copies gathered for one write."""

    ids: list[str] = field(default_factory=list)
    embeddings: list[Any] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    metadatas: list[Mapping[str, MetadataValue]] = field(default_factory=list)


def _vectors(embeddings: Sequence[Sequence[float]]) -> list[list[float]]:
    """Vectors as lists of Python floats, the one form Chroma takes from every source."""
    return [[float(x) for x in vector] for vector in embeddings]


def is_split(collection: Collection) -> bool:
    """Whether a brand's collection has its campaign records copied to their campaigns'
    collections (:data:`SPLIT_MARK`)."""
    return (collection.metadata or {}).get(SPLIT_MARK) == 1


def unsplit_owner(collection: Collection) -> tuple[str, str] | None:
    """The (tenant id, brand id) of a brand's prompt or descriptor collection whose campaign
    records were written before campaign collections (not :func:`is_split`), else None."""
    metadata = collection.metadata or {}
    kind, tenant, brand = metadata.get(_KIND), metadata.get(_TENANT), metadata.get(_BRAND)
    if kind not in CAMPAIGN_KINDS or is_split(collection) or _CAMPAIGN in metadata:
        return None
    if not isinstance(tenant, str) or not isinstance(brand, str):
        return None
    try:
        named = collection_name(tenant, brand, cast(MemoryKind, kind))
    except BadInputError:  # not ids this store writes: not its collection
        return None
    return (tenant, brand) if collection.name == named else None


def make_chroma_client(settings: Settings) -> ClientAPI:
    """A client for the configured Chroma: a server when ``chroma_host`` is set, else on disk.

    Telemetry is off. Chroma keeps one embedded instance per path and refuses a second one
    with different settings, so in-process code should share the client built here.
    """
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        log.info(
            "chroma server", extra={"host": settings.chroma_host, "port": settings.chroma_port}
        )
        return chromadb.HttpClient(
            host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
        )
    path = settings.resolved_chroma_path
    path.mkdir(parents=True, exist_ok=True)
    log.info("chroma on disk", extra={"path": str(path)})
    try:
        return chromadb.PersistentClient(path=path, settings=chroma_settings)
    except Exception:
        # chromadb keeps an instance that failed to start (a corrupt file) and hands it out,
        # broken, to the next open of the path: drop it, so the next open tries afresh
        SharedSystemClient._identifier_to_system.pop(str(path), None)
        raise


class ChromaServer:
    """A Chroma server's client, connected on first use and again after a failed attempt.

    ``chromadb.HttpClient`` connects as it is built; building it lazily means a server that is
    down fails the memory operation that needs it (:class:`MemoryUnavailableError`, which a
    run survives), not the process or the run that merely holds the store.
    """

    def __init__(self, settings: Settings) -> None:
        """Connect to ``settings.chroma_host``/``chroma_port`` when first used."""
        self._settings = settings
        self._client: ClientAPI | None = None
        self._mutex = threading.Lock()

    @property
    def where(self) -> str:
        """The server, for messages."""
        return f"the Chroma server at {self._settings.chroma_host}:{self._settings.chroma_port}"

    @property
    def client(self) -> ClientAPI:
        """The connected client; :class:`MemoryUnavailableError` when the server cannot be
        reached."""
        with self._mutex:
            if self._client is None:
                try:
                    self._client = make_chroma_client(self._settings)
                except (ValueError, httpx.TransportError) as exc:
                    # chromadb says "Could not connect to a Chroma server" as a ValueError
                    raise MemoryUnavailableError(
                        f"brand memory is unavailable: {self.where} cannot be reached "
                        f"({_first_line(exc)})"
                    ) from exc
            return self._client


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def make_chroma_store(settings: Settings) -> ChromaServer | LocalChroma:
    """What :class:`BrandMemory` should use: the server, connected on first use, when
    ``chroma_host`` is set, else the on-disk store behind the cross-process lock (several
    processes may share one data dir)."""
    if settings.chroma_host:
        return ChromaServer(settings)

    def open_client(path: Path) -> ClientAPI:
        return make_chroma_client(settings.model_copy(update={"chroma_path": path}))

    return LocalChroma(settings.resolved_chroma_path, open_client)


def _record_id(kind: MemoryKind, *parts: str | int) -> str:
    joined = "\0".join(str(p) for p in parts)
    return f"{kind}-{hashlib.sha256(joined.encode()).hexdigest()[:32]}"


def _text(value: str, what: str) -> str:
    text = value.strip()
    if is_blank(text):
        raise BadInputError(f"{what} is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise BadInputError(f"{what} is {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
    return text


def note_key(note_id: str) -> str:
    """The metadata key that marks a prompt rendered while the style note ``note_id`` was
    recalled."""
    return f"{_NOTE_KEY}{note_id}"


def _holds_clause(prompt: str, note: str) -> bool:
    """Whether ``prompt`` holds ``note`` as a whole clause, the way the composer joins recalled
    notes into a prompt ("...; note; ..." after a sentence): never a word inside another clause,
    such as the brand's tone ("warm, cozy, artisanal") that every prompt of the brand carries.

    The fallback for prompts remembered before they named their notes (:data:`_RECALLED`)."""
    return re.search(rf"(?:^|[.;:]\s+){re.escape(note)}\s*(?:[.;]|$)", prompt) is not None


def _rendered_forms(note: str) -> list[str]:
    """The forms a note's text takes in a prompt: as rendered (a template render collapses
    each run of whitespace to one space, ``brandloop.templates.sandbox.render``: a note of
    two lines or repeated spaces is in its prompts on one line), and as stored."""
    rendered = " ".join(note.split())
    return [form for form in dict.fromkeys((rendered, note)) if form]


def _created_before(before: datetime | None) -> Where | None:
    """The filter of records created before ``before`` (timezone-aware), None for all."""
    if before is None:
        return None
    if before.tzinfo is None:
        raise BadInputError("before must be timezone-aware")
    return cast(Where, {"created_at": {"$lt": before.timestamp()}})


def _check_k(k: int) -> None:
    if not 1 <= k <= MAX_K:
        raise BadInputError(f"k must be in 1..{MAX_K}, got {k}")


class BrandMemory:
    """Per-tenant, per-brand semantic memory of accepted prompts, style notes and descriptors.

    ``tenant`` and ``brand`` are exact ids (the brand's registry id, not its name): nothing is
    slugged or case-folded, so two ids that differ at all never share a record.

    Records are plain Chroma records: the text is the document, ``kind`` and the rest are
    metadata, ``created_at`` is epoch seconds (UTC). Writes are idempotent: remembering the
    same prompt of the same run, model and seed, or adding the same note, updates one record.
    Reads of a brand with no memory return nothing and create no collection.
    """

    def __init__(
        self,
        client: ClientAPI | LocalChroma | ChromaServer,
        embedding_function: EmbeddingFunction[Documents],
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """Use ``client``'s collections, embedding with ``embedding_function``.

        Args:
            client: any chromadb client (persistent, HTTP or ephemeral) used by this process
                alone, a :class:`LocalChroma` that several processes share, or a
                :class:`ChromaServer` connected on first use.
            embedding_function: must be a registered chromadb embedding function, so that
                collections reopened later rebuild it from their configuration.
            clock: the source of ``created_at``; tests pin it.
        """
        self._shared = client if isinstance(client, LocalChroma) else None
        self._server = client if isinstance(client, ChromaServer) else None
        self._plain = None if isinstance(client, LocalChroma | ChromaServer) else client
        self._ef = embedding_function
        self._clock = clock
        # the collections looked up, checked, in a read of the on-disk store, kept while no
        # process writes to it (LocalChroma.read_epoch): a lookup costs about 0.5 ms and
        # recall makes two (None: the collection does not exist)
        self._handles: dict[str, Collection | None] = {}
        self._handles_epoch: tuple[int, bytes] | None = None

    @property
    def client(self) -> ClientAPI:
        """The Chroma client the memory lives in; with a shared on-disk store, use it only
        within :meth:`exclusive`."""
        return self._client

    def exclusive(self) -> AbstractContextManager[None]:
        """Hold the store (every process of the data dir waits) for work on :attr:`client`,
        such as re-keying; re-entrant."""
        return self._access(write=True)

    @property
    def where(self) -> str:
        """The Chroma store the memory lives in, for messages."""
        if self._server is not None:
            return self._server.where
        if self._shared is not None:
            return f"the on-disk Chroma store {self._shared.path / 'chroma.sqlite3'}"
        return "the Chroma store"

    @property
    def _client(self) -> ClientAPI:
        if self._plain is not None:
            return self._plain
        if self._server is not None:
            return self._server.client
        return cast(LocalChroma, self._shared).client

    def _access(self, *, write: bool) -> AbstractContextManager[None]:
        if self._shared is None:
            return nullcontext()
        return _held(self._shared, write=write)

    # ------------------------------------------------------------------ writes

    @_serialised(write=True)
    def remember_prompt(
        self,
        *,
        tenant: str,
        brand: str,
        prompt: str,
        model: str,
        seed: int,
        template: str,
        run_id: str,
        campaign_id: str | None = None,
        scores: Mapping[str, float],
        extra: Mapping[str, MetadataValue] | None = None,
        kit: str | None = None,
        notes: Sequence[str] | None = None,
    ) -> str | None:
        """Store an accepted prompt with how it was made and how it scored; return its id, or
        None when it was not stored: a note in ``notes`` was forgotten since the run recalled
        it, and its text, in the prompt, must not come back into memory.

        ``notes`` are the ids of the style notes the run recalled (its prompt may carry their
        text): each is named in the metadata (:func:`note_key`), so forgetting a note forgets
        the prompts rendered while it was recalled, and only those. None (a caller that does
        not know) leaves the prompt to ``forget``'s text fallback.

        ``kit`` is the digest of the brand kit the prompt was rendered from (``kit``
        metadata): readers keep to the records of the brand's current kit
        (``brandloop.agent.kit_memory``). The id is the record's content (run, model, seed,
        text), so storing it again replaces it rather than adding a copy.

        ``scores`` are stored as ``score_<name>`` metadata (``composite`` and ``palette``
        are the ones recall's callers read). ``extra`` adds plain metadata such as the
        palette emphasis that worked; it cannot replace the fields above.
        """
        text = _text(prompt, "prompt")
        if campaign_id is not None:
            _check_id(campaign_id, "campaign")
        metadata: dict[str, MetadataValue] = {
            "kind": "prompt",
            "model": model,
            "seed": int(seed),
            "template": template,
            "run_id": run_id,
            "created_at": self._now(),
        }
        if kit is not None:
            metadata["kit"] = kit
        if campaign_id is not None:
            metadata["campaign_id"] = campaign_id
        if notes is not None:
            metadata[_RECALLED] = len(notes)
            metadata.update({note_key(note_id): True for note_id in notes})
        for key, item in (extra or {}).items():
            metadata.setdefault(key, item)
        for name, value in scores.items():
            if not _SCORE_NAME.fullmatch(name):
                raise BadInputError(f"score name {name!r} must match {_SCORE_NAME.pattern}")
            number = float(value)
            if not math.isfinite(number):
                raise BadInputError(f"score {name!r} is {value!r}, not a finite number")
            metadata[f"score_{name}"] = number
        # the content, not the run: a replayed or retried run stores the same record again
        record_id = _record_id("prompt", model, seed, text)
        if notes and self._forgotten(tenant, brand, notes):
            log.info("prompt not remembered: a note it recalled was forgotten",
                     extra={"tenant": tenant, "brand": brand})  # fmt: skip
            return None
        self._store(
            tenant, brand, "prompt", ids=[record_id], documents=[text], metadatas=[metadata]
        )
        if notes and self._shared is None and self._forgotten(tenant, brand, notes):
            # no lock keeps a forget out (a Chroma server): one that deleted the note between
            # the look and the write found no prompt naming it yet, so this one goes now
            self._delete(tenant, brand, "prompt", self._writable(tenant, brand, "prompt"),
                         {record_id: metadata})  # fmt: skip
            return None
        log.debug("prompt remembered", extra={"tenant": tenant, "brand": brand, "model": model})
        return record_id

    def _forgotten(self, tenant: str, brand: str, notes: Sequence[str]) -> bool:
        """Whether any of the style notes ``notes`` (ids) is no longer in the brand's memory."""
        collection = self._collection(tenant, brand, "note")
        if collection is None:
            return True
        found = collection.get(ids=list(dict.fromkeys(notes)), include=[])
        return len(set(found["ids"])) < len(set(notes))

    @_serialised(write=True)
    def remember_descriptor(
        self,
        *,
        tenant: str,
        brand: str,
        run_id: str,
        attempt_id: str,
        colours: Sequence[tuple[str, float]],
        model: str,
        seed: int,
        campaign_id: str | None = None,
        image_descriptor: str | None = None,
        kit: str | None = None,
    ) -> str:
        """Store what an accepted image looks like: its dominant colours (hex, coverage).

        ``kit`` is the digest of the brand kit the image was made under, as for
        :meth:`remember_prompt`. The id is the image's content (model, seed, colours and
        descriptor), so a replay of the same image replaces the record rather than adding one.

        ``image_descriptor`` (``brandloop.tools.scoring.encode_descriptor``, ~172 base64 characters)
        is kept as metadata for the score node's similarity signal.

        The text ("dominant colours: #0f766e 52%, ...") is searchable; the ordered hex codes
        are kept in ``colours`` metadata so a campaign's later runs can follow them.
        """
        if not colours:
            raise BadInputError("a descriptor needs at least one colour")
        if campaign_id is not None:
            _check_id(campaign_id, "campaign")
        text = "dominant colours: " + ", ".join(f"{hx} {cov:.0%}" for hx, cov in colours)
        metadata: dict[str, MetadataValue] = {
            "kind": "descriptor",
            "colours": " ".join(hx for hx, _ in colours),
            **({"image_descriptor": image_descriptor} if image_descriptor else {}),
            "model": model,
            "seed": int(seed),
            "run_id": run_id,
            "created_at": self._now(),
        }
        if kit is not None:
            metadata["kit"] = kit
        if campaign_id is not None:
            metadata["campaign_id"] = campaign_id
        # the image's content, not the run or attempt: a replay of it is the same record
        record_id = _record_id("descriptor", model, seed, text, image_descriptor or attempt_id)
        self._store(
            tenant, brand, "descriptor", ids=[record_id], documents=[text], metadatas=[metadata]
        )
        return record_id

    @_serialised(write=False)
    def descriptors(
        self,
        *,
        tenant: str,
        brand: str,
        campaign_id: str | None = None,
        limit: int = 50,
        kit: str | None = None,
    ) -> list[MemoryHit]:
        """Image descriptors of the brand (or of one campaign), oldest first: the first
        ``limit`` recorded, so the cost stays flat however many the brand has.

        With ``kit`` (a kit digest, as stored by :meth:`remember_descriptor`), the records of
        another kit are left out, and when the first ``limit`` held any, this kit's own are
        looked up by their ``kit`` (only then: a brand whose kit never changed pays for one
        read), so a brand refreshed after ``limit`` accepted images still finds its new
        kit's. Records stored without a kit are kept for the caller to judge
        (``brandloop.agent.kit_memory``). A campaign's are read from its own collection."""
        _check_k(min(limit, MAX_K))
        if campaign_id is not None:
            _check_id(campaign_id, "campaign")
        collection = self._collection(tenant, brand, "descriptor")
        if collection is None:
            return []
        where: Where | None = None
        if campaign_id is not None:
            source, where = self._campaign_source(collection, tenant, brand, campaign_id)
            if source is None:
                return []
            collection = source
        try:
            hits = self._get(collection, where, limit)
            if kit is not None:
                kept = _of_kit(hits, kit)
                if len(kept) < len(hits):  # another kit's records took places: read this kit's
                    own = self._get(collection, _and_kit(where, kit), limit)
                    hits = list({hit.id: hit for hit in kept + own}.values())
        except ChromaNotFoundError:  # a campaign collection forget emptied and dropped since
            return []
        hits.sort(key=lambda h: float(h.metadata.get("created_at", 0.0)))
        return hits[:limit]

    @staticmethod
    def _get(collection: Collection, where: Where | None, limit: int) -> list[MemoryHit]:
        found = collection.get(where=where, limit=limit, include=["documents", "metadatas"])
        return [
            MemoryHit(
                id=record_id,
                kind="descriptor",
                text=document or "",
                distance=0.0,
                metadata=dict(metadata or {}),
            )
            for record_id, document, metadata in zip(
                found["ids"],
                found["documents"] or [],
                found["metadatas"] or [],
                strict=True,
            )
        ]

    @_serialised(write=True)
    def add_note(self, *, tenant: str, brand: str, text: str) -> str:
        """Store a style note (e.g. "no neon, keep it warm"); return its id."""
        note = _text(text, "note")
        record_id = _record_id("note", note)
        self._writable(tenant, brand, "note").upsert(
            ids=[record_id],
            documents=[note],
            metadatas=[{"kind": "note", "created_at": self._now()}],
        )
        return record_id

    @_serialised(write=True)
    def forget(
        self,
        *,
        tenant: str,
        brand: str,
        before: datetime | None = None,
        record_id: str | None = None,
    ) -> int:
        """Delete records, vectors and texts alike; return how many were deleted. A style
        note goes with every accepted prompt rendered while a run recalled it (the prompt
        names the note: :func:`note_key`; one remembered before prompts named their notes goes
        if it holds the note's text as a whole clause), so its text is nowhere in memory after,
        and a prompt that never held it stays.

        On the on-disk store the SQLite file is then rebuilt (``VACUUM``), so the deleted texts
        cannot be read back from it; a Chroma server's files are the server's to compact
        (docs/agent.md says what remains where). Give ``record_id`` to delete one record,
        ``before`` (timezone-aware) to delete every record created earlier, or both to delete
        that record only if it is older.
        """
        if before is None and record_id is None:
            raise BadInputError("forget needs before, record_id or both")
        where = _created_before(before)
        ids_filter = None if record_id is None else [record_id]
        notes = self._notes_to_forget(tenant, brand, ids_filter, where)
        if record_id is not None:
            # prompts naming a note a forget cut short already deleted still go with it
            notes.setdefault(record_id, None)
        removed = 0
        # notes before prompts: a run that remembers a prompt after this looks for its notes
        # first (:meth:`remember_prompt`), so it finds them gone or its prompt is found here
        for kind in ("note", "prompt", "descriptor"):
            collection = self._collection(tenant, brand, kind)
            if collection is None:
                continue
            found = collection.get(ids=ids_filter, where=where, include=["metadatas"])
            records = dict(zip(found["ids"], found["metadatas"] or [], strict=True))
            if kind == "prompt":
                records.update(self._carrying(collection, notes))
            removed += self._delete(tenant, brand, kind, collection, records)
        if removed and self._shared is not None:
            # the deleted rows' bytes stay in SQLite's free space until the file is rebuilt
            self._shared.vacuum()
        log.info("memory forgotten", extra={"tenant": tenant, "brand": brand, "records": removed})
        return removed

    @_serialised(write=False)
    def note_forms(
        self,
        *,
        tenant: str,
        brand: str,
        before: datetime | None = None,
        record_id: str | None = None,
    ) -> list[str]:
        """The texts, in the forms a prompt holds them, of the style notes a :meth:`forget`
        with the same arguments deletes: what a replay of an earlier run's prompts must not
        bring back (``brandloop.agent.replay.forget_replays``)."""
        where = _created_before(before)
        ids = None if record_id is None else [record_id]
        texts = self._notes_to_forget(tenant, brand, ids, where).values()
        return list(dict.fromkeys(form for text in texts for form in _rendered_forms(text or "")))

    def _notes_to_forget(
        self, tenant: str, brand: str, ids: list[str] | None, where: Where | None
    ) -> dict[str, str | None]:
        """The style notes a forget deletes: their texts by id."""
        notes_of = self._collection(tenant, brand, "note")
        if notes_of is None:
            return {}
        found = notes_of.get(ids=ids, where=where, include=["documents"])
        return dict(zip(found["ids"], found["documents"] or [], strict=True))

    def _carrying(
        self, prompts: Collection, notes: Mapping[str, str | None]
    ) -> dict[str, Mapping[str, Any]]:
        """The prompts that carried any of ``notes`` (texts by id) into a render: those that
        name the note, and those remembered before prompts named their notes that hold its
        text as a whole clause (:func:`_holds_clause`)."""
        carried: dict[str, Mapping[str, Any]] = {}
        for note_id, text in notes.items():
            named = prompts.get(where=cast(Where, {note_key(note_id): True}), include=["metadatas"])
            carried.update(zip(named["ids"], named["metadatas"] or [], strict=True))
            for form in _rendered_forms(text or ""):
                held = prompts.get(
                    where_document={"$contains": form}, include=["documents", "metadatas"]
                )
                for found_id, document, metadata in zip(
                    held["ids"], held["documents"] or [], held["metadatas"] or [], strict=True
                ):
                    legacy = _RECALLED not in (metadata or {})
                    if legacy and _holds_clause(document or "", form):
                        carried[found_id] = metadata or {}
        return carried

    def _delete(
        self,
        tenant: str,
        brand: str,
        kind: MemoryKind,
        collection: Collection,
        records: Mapping[str, Mapping[str, Any] | None],
    ) -> int:
        """Delete ``records`` (metadata by id) of the brand's ``kind``; return how many.

        The campaigns' copies first: a forget cut short leaves the brand's record, which names
        its campaign, for the next forget to find both."""
        copies: dict[str, list[str]] = {}
        for found_id, metadata in records.items():
            if (campaign := _campaign_of(metadata or {})) is not None:
                copies.setdefault(campaign, []).append(found_id)
        for campaign, copied in copies.items():
            self._drop_copies(tenant, brand, kind, campaign, copied)
        ids = list(records)
        step = max(1, self._client.get_max_batch_size())
        for start in range(0, len(ids), step):
            collection.delete(ids=ids[start : start + step])
        return len(ids)

    @_serialised(write=True)
    def move_notes(self, *, tenant: str, source: str, target: str) -> int:
        """Move every style note kept under ``source`` to ``target`` (texts, vectors, times);
        return how many moved. The repair for notes once keyed by a brand's name instead of its
        id (the studio and ``GET /v1/memory/notes`` did so before 2026-12-04)."""
        collection = self._collection(tenant, source, "note")
        if collection is None:
            return 0
        found = collection.get(include=["documents", "metadatas", "embeddings"])
        ids = list(found["ids"])
        if not ids:
            return 0
        self.put_records(
            tenant=tenant,
            brand=target,
            kind="note",
            ids=ids,
            embeddings=[list(e) for e in cast(Any, found["embeddings"])],
            documents=[d or "" for d in found["documents"] or []],
            metadatas=[
                cast(dict[str, MetadataValue], dict(m or {})) for m in found["metadatas"] or []
            ],
        )
        collection.delete(ids=ids)
        log.info("memory notes moved", extra={"tenant": tenant, "records": len(ids)})
        return len(ids)

    @_serialised(write=True)
    def put_records(
        self,
        *,
        tenant: str,
        brand: str,
        kind: MemoryKind,
        ids: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        documents: Sequence[str],
        metadatas: Sequence[Mapping[str, MetadataValue]],
    ) -> None:
        """Upsert records as they are, vectors included (moving memory between stores: the
        re-keying step); a record of the same id is replaced. Campaign records get their copy
        in their campaign's collection, as when remembered."""
        if not ids:
            return
        self._store(
            tenant,
            brand,
            kind,
            ids=ids,
            documents=documents,
            metadatas=metadatas,
            embeddings=[list(e) for e in embeddings],
        )

    @_serialised(write=True)
    def repair(self, *, tenant: str, brand: str) -> dict[MemoryKind, int]:
        """Rebuild each of the brand's collections from what its SQLite side holds (texts and
        metadata, ids kept), re-embedding the texts; return how many records each kind kept.

        The repair of an index that lost records (:class:`MemoryDamagedError`), safe on a sound
        one. Each rebuild fills a new collection before the old one is dropped and the new one
        takes its name, so a repair cut short loses nothing: running it again finishes it.
        """
        rebuilt: dict[MemoryKind, int] = {}
        for kind in KINDS:
            name = collection_name(tenant, brand, kind)
            spare = f"{name}-repair"
            old = self._collection(tenant, brand, kind)
            half_done = self._named(spare, tenant, brand, kind)
            if old is None and half_done is None:
                continue
            if old is None:  # cut short after the old one was dropped: the spare is complete
                cast(Collection, half_done).modify(name=name)
                rebuilt[kind] = cast(Collection, half_done).count()
                continue
            if half_done is not None:
                self._client.delete_collection(spare)
            found = old.get(include=["documents", "metadatas"])
            fresh = self._client.create_collection(
                spare,
                configuration={"hnsw": _HNSW},
                metadata=collection_identity(tenant, brand, kind),
                embedding_function=cast(Any, self._ef),
            )
            step = max(1, self._client.get_max_batch_size())
            ids = list(found["ids"])
            documents = [d or "" for d in found["documents"] or []]
            metadatas = [dict(m or {}) for m in found["metadatas"] or []]
            for start in range(0, len(ids), step):
                fresh.upsert(
                    ids=ids[start : start + step],
                    documents=documents[start : start + step],
                    metadatas=cast(Any, metadatas[start : start + step]),
                )
            self._client.delete_collection(name)
            fresh.modify(name=name)
            rebuilt[kind] = len(ids)
        # the campaigns' collections anew from the rebuilt ones (one of them may be the damage)
        self.split_campaigns(tenant=tenant, brand=brand, rebuild=True)
        log.info("memory rebuilt", extra={"tenant": tenant, "brand": brand, "records": rebuilt})
        return rebuilt

    @_serialised(write=True)
    def split_campaigns(self, *, tenant: str, brand: str, rebuild: bool = False) -> int:
        """Copy each campaign record of the brand's prompt and descriptor collections, vector
        and all, to its campaign's collection, then mark the brand's collection
        (:data:`SPLIT_MARK`) so campaign reads use those; return how many records were copied.

        The migration of a brand written before campaign collections (``brandloop memory
        rekey`` runs it for every such brand); a brand already marked is skipped unless
        ``rebuild``, which first drops each campaign collection it fills (``repair``).
        Idempotent, and safe to cut short: the mark comes last. Copies are written a
        campaign at a time in batches of up to :data:`_SPLIT_PAGE` (each Chroma write flushes
        the index, so a write per page per campaign cost ~10x more), holding at most
        :data:`_SPLIT_HELD` records' vectors at once.
        """
        copied = 0
        step = min(_SPLIT_PAGE, max(1, self._client.get_max_batch_size()))
        for kind in CAMPAIGN_KINDS:
            collection = self._collection(tenant, brand, kind)
            if collection is None or (is_split(collection) and not rebuild):
                continue
            dropped: set[str] = set()
            held: dict[str, _Copies] = {}
            for offset in range(0, collection.count(), step):
                page = collection.get(
                    limit=step, offset=offset, include=["embeddings", "documents", "metadatas"]
                )
                vectors = cast(Any, page["embeddings"])  # numpy rows: 1.5 KB a record held
                documents = page["documents"] or []
                for row, metadata in enumerate(page["metadatas"] or []):
                    campaign = _campaign_of(metadata or {})
                    if campaign is None:
                        continue
                    if rebuild and campaign not in dropped:
                        dropped.add(campaign)
                        self._drop_campaign(tenant, brand, kind, campaign)
                    batch = held.setdefault(campaign, _Copies())
                    batch.ids.append(page["ids"][row])
                    batch.embeddings.append(vectors[row])
                    batch.documents.append(documents[row] or "")
                    batch.metadatas.append(cast(dict[str, MetadataValue], dict(metadata or {})))
                    copied += 1
                    if len(batch.ids) >= step:
                        self._write_held(tenant, brand, kind, held, [campaign])
                if sum(len(b.ids) for b in held.values()) >= _SPLIT_HELD:
                    self._write_held(tenant, brand, kind, held, list(held))
            self._write_held(tenant, brand, kind, held, list(held))
            collection.modify(metadata={**(collection.metadata or {}), SPLIT_MARK: 1})
        log.info("memory campaigns split", extra={"tenant": tenant, "brand": brand,
                                                   "records": copied})  # fmt: skip
        return copied

    def _write_held(
        self,
        tenant: str,
        brand: str,
        kind: MemoryKind,
        held: dict[str, _Copies],
        campaigns: Sequence[str],
    ) -> None:
        """Write the copies held for ``campaigns`` and let them go."""
        for campaign in campaigns:
            batch = held.pop(campaign)
            self._upsert_copies(
                tenant, brand, kind, campaign, ids=batch.ids, embeddings=batch.embeddings,
                documents=batch.documents, metadatas=batch.metadatas,
            )  # fmt: skip

    # ------------------------------------------------------------------ reads

    @_serialised(write=False)
    def recall(
        self,
        *,
        tenant: str,
        brand: str,
        query: str,
        k: int = 5,
        campaign_id: str | None = None,
        kit: str | None = None,
    ) -> list[MemoryHit]:
        """What the planner should see for ``query``: prompts first, then notes.

        At most ``k`` prompts, nearest first, except that with ``campaign_id`` the campaign's
        own prompts all come before any other; then every one of the brand's style notes (up
        to :data:`MAX_RECALLED_NOTES`, the nearest), nearest first. Notes do not compete with prompts, nor
        with each other, for places: a style note is the brand's standing instruction, so it
        is recalled however far it is from the query, and the prompt that cannot hold them all
        leaves out the farthest first (``agent/nodes/plan.fit_prompt``).

        Prompts and notes live in collections of their own, so both queries are unfiltered,
        and so is the query of a campaign's prompts, kept in the campaign's own collection too
        (a brand's collection written before that is read by ``campaign_id`` until ``brandloop
        memory rekey`` copies its campaigns: :meth:`split_campaigns`). With ``kit`` (a
        kit digest), prompts of another kit are left out; when any were among the nearest,
        this kit's own nearest are looked up by their ``kit`` (only then, so a brand whose
        kit never changed pays for no filtered query). Prompts stored without a kit are kept
        for the caller to judge (``brandloop.agent.kit_memory``).
        """
        _check_k(k)
        if campaign_id is not None:
            _check_id(campaign_id, "campaign")
        prompts_of = self._collection(tenant, brand, "prompt")
        notes_of = self._collection(tenant, brand, "note")
        if prompts_of is None and notes_of is None:
            return []
        embedding = self._embed_query(query)
        # the notes' query runs beside the prompts' (Chroma lets the interpreter lock go while
        # it searches): recall waits for the slower of the two, not for both in turn
        notes_found = (
            None
            if notes_of is None
            else _QUERIES.submit(self._query, notes_of, embedding, MAX_RECALLED_NOTES, None)
        )
        prompts: list[MemoryHit] = []
        if prompts_of is not None:
            if campaign_id is not None:
                source, where = self._campaign_source(prompts_of, tenant, brand, campaign_id)
                if source is not None:
                    # a campaign collection a forget emptied and dropped since it was opened
                    with suppress(ChromaNotFoundError):
                        prompts += self._kit_query(source, embedding, k, where, kit)
            if len(prompts) < k:
                # fewer than k campaign prompts means these are all of them: the nearest k
                # of the whole brand hold the nearest k - len(prompts) others
                seen = {hit.id for hit in prompts}
                others = self._kit_query(prompts_of, embedding, k, None, kit)
                prompts += [hit for hit in others if hit.id not in seen][: k - len(prompts)]
        notes = [] if notes_found is None else notes_found.result()
        log.debug(
            "memory recalled",
            extra={"tenant": tenant, "brand": brand, "prompts": len(prompts), "notes": len(notes)},
        )
        return prompts + notes

    @_serialised(write=False)
    def search(self, *, tenant: str, brand: str, query: str, k: int = 10) -> list[MemoryHit]:
        """The ``k`` records of any kind nearest to ``query``, nearest first. A blank query is
        bad input whether or not the brand has any memory yet."""
        _check_k(k)
        _text(query, "query")
        collections = [c for kind in KINDS if (c := self._collection(tenant, brand, kind))]
        if not collections:
            return []
        embedding = self._embed_query(query)
        hits = [hit for c in collections for hit in self._query(c, embedding, k, None)]
        return sorted(hits, key=lambda hit: hit.distance)[:k]

    @_serialised(write=False)
    def notes(
        self, *, tenant: str, brand: str, limit: int | None = MAX_K, offset: int = 0
    ) -> list[MemoryHit]:
        """The brand's style notes, newest first, ``limit`` of them (None: all) from
        ``offset``, without embedding anything (a listing, not a search: ``distance`` is 0)."""
        collection = self._collection(tenant, brand, "note")
        if collection is None:
            return []
        found = collection.get(include=["documents", "metadatas"])
        hits = [
            MemoryHit(id=record_id, kind="note", text=document or "", distance=0.0,
                      metadata=dict(metadata or {}))
            for record_id, document, metadata in zip(
                found["ids"], found["documents"] or [], found["metadatas"] or [], strict=True
            )
        ]  # fmt: skip
        # the id breaks ties, so pages of notes added in one instant neither repeat nor skip
        hits.sort(key=lambda h: (float(h.metadata.get("created_at", 0)), h.id), reverse=True)
        return hits[offset:] if limit is None else hits[offset : offset + limit]

    @_serialised(write=False)
    def count(self, *, tenant: str, brand: str) -> int:
        """How many records (prompts, notes and descriptors) the brand's memory holds."""
        return sum(
            c.count() for kind in KINDS if (c := self._collection(tenant, brand, kind)) is not None
        )

    # ------------------------------------------------------------------ helpers

    def _now(self) -> float:
        return self._clock().timestamp()

    def _writable(self, tenant: str, brand: str, kind: MemoryKind) -> Collection:
        """The pair's collection of ``kind``, created on first write."""
        # a new collection of a campaign kind starts split: its campaign records get copies
        # as they are written (an existing one keeps its metadata: Chroma ignores ours then)
        mark = {SPLIT_MARK: 1} if kind in CAMPAIGN_KINDS else {}
        collection = self._client.get_or_create_collection(
            collection_name(tenant, brand, kind),
            configuration={"hnsw": _HNSW},
            metadata={**collection_identity(tenant, brand, kind), **mark},
            embedding_function=cast(Any, self._ef),  # chromadb wants EmbeddingFunction[Embeddable]
        )
        return self._checked(collection, tenant, brand, kind)

    def _store(
        self,
        tenant: str,
        brand: str,
        kind: MemoryKind,
        *,
        ids: Sequence[str],
        documents: Sequence[str],
        metadatas: Sequence[Mapping[str, MetadataValue]],
        embeddings: Sequence[Sequence[float]] | None = None,
    ) -> None:
        """Upsert records into the brand's collection of ``kind``, and each campaign record
        into its campaign's collection too (embedded once for both).

        A record that was in another campaign (the same content remembered again) leaves that
        campaign's collection first, as it leaves a ``campaign_id`` query of the brand's: so
        every copy is the copy of the brand's record as it stands, and ``forget`` finds each
        one by the brand's record. The brand's record is written before the copies: a write
        cut short leaves at worst a record without its copy, never a copy without a record.
        """
        collection = self._writable(tenant, brand, kind)
        campaigns = [_campaign_of(m) for m in metadatas] if kind in CAMPAIGN_KINDS else []
        if kind in CAMPAIGN_KINDS:
            now = dict(zip(ids, campaigns, strict=True))
            before = collection.get(ids=list(ids), include=["metadatas"])
            left: dict[str, list[str]] = {}
            for record_id, metadata in zip(before["ids"], before["metadatas"] or [], strict=True):
                was = _campaign_of(metadata or {})
                if was is not None and was != now.get(record_id):
                    left.setdefault(was, []).append(record_id)
            for campaign, gone in left.items():
                self._drop_copies(tenant, brand, kind, campaign, gone)
        vectors = None if embeddings is None else _vectors(embeddings)
        if vectors is None and any(c is not None for c in campaigns):
            vectors = _vectors(cast(Any, self._ef(list(documents))))
        collection.upsert(
            ids=list(ids),
            embeddings=cast(Any, vectors),
            documents=list(documents),
            metadatas=[dict(m) for m in metadatas],
        )
        groups: dict[str, list[int]] = {}
        for row, of_row in enumerate(campaigns):
            if of_row is not None:
                groups.setdefault(of_row, []).append(row)
        copied = vectors or []  # set above when any record has a campaign
        for campaign, rows in groups.items():
            self._upsert_copies(
                tenant, brand, kind, campaign,
                ids=[ids[r] for r in rows],
                embeddings=[copied[r] for r in rows],
                documents=[documents[r] for r in rows],
                metadatas=[metadatas[r] for r in rows],
            )  # fmt: skip

    def _upsert_copies(
        self,
        tenant: str,
        brand: str,
        kind: MemoryKind,
        campaign: str,
        *,
        ids: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        documents: Sequence[str],
        metadatas: Sequence[Mapping[str, MetadataValue]],
    ) -> None:
        """Upsert records into the campaign's collection, created on first write (again, if
        a forget on another process dropped it between the open and the write)."""
        for attempt in range(2):
            copies = self._campaign_writable(tenant, brand, campaign, kind)
            try:
                copies.upsert(
                    ids=list(ids),
                    embeddings=cast(Any, list(embeddings)),
                    documents=list(documents),
                    metadatas=[dict(m) for m in metadatas],
                )
                return
            except ChromaNotFoundError:
                if attempt:
                    raise

    def _drop_copies(
        self, tenant: str, brand: str, kind: MemoryKind, campaign: str, ids: Sequence[str]
    ) -> None:
        """Delete records from the campaign's collection; drop it once it holds none."""
        copies = self._campaign_collection(tenant, brand, campaign, kind)
        if copies is None:
            return
        step = max(1, self._client.get_max_batch_size())
        for start in range(0, len(ids), step):
            copies.delete(ids=list(ids[start : start + step]))
        if copies.count() == 0:
            self._drop_campaign(tenant, brand, kind, campaign)

    def _drop_campaign(self, tenant: str, brand: str, kind: MemoryKind, campaign: str) -> None:
        with suppress(ChromaNotFoundError):
            self._client.delete_collection(campaign_collection_name(tenant, brand, campaign, kind))

    def _campaign_writable(
        self, tenant: str, brand: str, campaign: str, kind: MemoryKind
    ) -> Collection:
        identity = campaign_identity(tenant, brand, campaign, kind)
        collection = self._client.get_or_create_collection(
            campaign_collection_name(tenant, brand, campaign, kind),
            configuration={"hnsw": _HNSW},
            metadata=identity,
            embedding_function=cast(Any, self._ef),
        )
        return self._checked_as(collection, identity)

    def _campaign_collection(
        self, tenant: str, brand: str, campaign: str, kind: MemoryKind
    ) -> Collection | None:
        """The campaign's collection of ``kind``, or None: reads create nothing."""
        try:
            collection = self._client.get_collection(
                campaign_collection_name(tenant, brand, campaign, kind),
                embedding_function=cast(Any, self._ef),
            )
        except ChromaNotFoundError:
            return None
        return self._checked_as(collection, campaign_identity(tenant, brand, campaign, kind))

    def _campaign_source(
        self, brand_collection: Collection, tenant: str, brand: str, campaign: str
    ) -> tuple[Collection | None, Where | None]:
        """Where to read ``campaign``'s records of the brand's collection's kind, and the
        filter to read them with: the campaign's own collection, unfiltered (None when the
        campaign made none); for a brand collection not yet split, that collection by
        ``campaign_id``."""
        kind = cast(MemoryKind, (brand_collection.metadata or {})[_KIND])
        if not is_split(brand_collection):
            return brand_collection, cast(Where, {"campaign_id": campaign})
        return self._campaign_collection(tenant, brand, campaign, kind), None

    def _collection(self, tenant: str, brand: str, kind: MemoryKind) -> Collection | None:
        """The pair's collection of ``kind``, or None if nothing was ever written: reads
        create nothing."""
        return self._named(collection_name(tenant, brand, kind), tenant, brand, kind)

    def _named(self, name: str, tenant: str, brand: str, kind: MemoryKind) -> Collection | None:
        epoch = None if self._shared is None else self._shared.read_epoch
        if epoch is not None and epoch == self._handles_epoch and name in self._handles:
            return self._handles[name]
        try:
            collection = self._client.get_collection(name, embedding_function=cast(Any, self._ef))
        except ChromaNotFoundError:
            found = None
        else:
            found = self._checked(collection, tenant, brand, kind)
        if epoch is not None:
            if epoch != self._handles_epoch or len(self._handles) >= _MAX_HANDLES:
                self._handles, self._handles_epoch = {}, epoch
            self._handles[name] = found
        return found

    def _checked(
        self, collection: Collection, tenant: str, brand: str, kind: MemoryKind
    ) -> Collection:
        """The collection, if its metadata names exactly this owner; else an error."""
        return self._checked_as(collection, collection_identity(tenant, brand, kind))

    def _checked_as(self, collection: Collection, wanted: Mapping[str, str]) -> Collection:
        found = {key: (collection.metadata or {}).get(key) for key in wanted}
        if found != dict(wanted):
            raise MemoryIdentityError(
                f"memory collection {collection.name} belongs to {found}, not {wanted}; "
                "refusing to share it"
            )
        self._check_same_embeddings(collection)
        return collection

    def _check_same_embeddings(self, collection: Collection) -> None:
        """Refuse a collection embedded by another version of our function.

        chromadb only compares embedding function names, and uses the function it is handed
        over the stored one, so a changed model would quietly mix incomparable vectors.
        """
        stored = collection.configuration_json.get("embedding_function") or {}
        if stored.get("name") != self._ef.name():
            return
        ours = self._ef.get_config()
        theirs = stored.get("config") or {}
        if any(theirs.get(key) != value for key, value in ours.items()):
            raise EmbeddingModelError(
                f"collection {collection.name} was embedded with {theirs}, not {ours}; "
                "re-embed its records before using this model on it"
            )

    def _kit_query(
        self,
        collection: Collection,
        embedding: Embeddings,
        n: int,
        where: Where | None,
        kit: str | None,
    ) -> list[MemoryHit]:
        """The nearest ``n`` of ``kit`` (or stored without one): unfiltered, and by their
        ``kit`` only when another kit's records were among the nearest."""
        hits = self._query(collection, embedding, n, where)
        if kit is None:
            return hits
        kept = _of_kit(hits, kit)
        if len(kept) == len(hits):
            return hits
        own = self._query(collection, embedding, n, _and_kit(where, kit))
        merged = {hit.id: hit for hit in kept + own}.values()
        return sorted(merged, key=lambda hit: hit.distance)[:n]

    def _embed_query(self, query: str) -> Embeddings:
        return self._ef.embed_query([_text(query, "query")])

    @staticmethod
    def _query(
        collection: Collection, embedding: Embeddings, n: int, where: Where | None
    ) -> list[MemoryHit]:
        result: QueryResult = collection.query(
            query_embeddings=embedding,
            n_results=n,
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        return _hits(result)


def _of_kit(hits: list[MemoryHit], kit: str) -> list[MemoryHit]:
    """The hits made under ``kit``, or stored without a kit (the caller judges those)."""
    return [hit for hit in hits if hit.metadata.get("kit", kit) == kit]


def _and_kit(where: Where | None, kit: str) -> Where:
    """``where`` narrowed to the records of ``kit``."""
    return cast(Where, {"kit": kit} if where is None else {"$and": [where, {"kit": kit}]})


@contextmanager
def _held(shared: LocalChroma, *, write: bool) -> Iterator[None]:
    with shared.access(write=write):
        yield


def _hits(result: QueryResult) -> list[MemoryHit]:
    ids = result["ids"][0] if result["ids"] else []
    documents: Sequence[Any] = (result["documents"] or [[]])[0]
    metadatas: Sequence[Any] = (result["metadatas"] or [[]])[0]
    distances: Sequence[float] = (result["distances"] or [[]])[0]
    hits = []
    for record_id, document, metadata, distance in zip(
        ids, documents, metadatas, distances, strict=True
    ):
        meta = dict(metadata or {})
        hits.append(
            MemoryHit(
                id=record_id,
                kind=meta.get("kind", "note"),
                text=document or "",
                distance=float(distance),
                metadata=meta,
            )
        )
    return hits
