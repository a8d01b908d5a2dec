"""The local MiniLM embedding function: real vectors, pinned files, chromadb registration."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from chromadb.utils.embedding_functions import known_embedding_functions

from brandloop.memory.embeddings import (
    BATCH_SIZE,
    DIMENSIONS,
    EF_NAME,
    MODEL_PATH,
    MODEL_SHA256,
    TOKENIZER_PATH,
    TOKENIZER_SHA256,
    EmbeddingModelError,
    MiniLMEmbeddingFunction,
    ModelChecksumError,
    _batches,
)


@pytest.fixture(scope="module")
def ef() -> MiniLMEmbeddingFunction:
    function = MiniLMEmbeddingFunction()
    function.load()  # the process-wide cache shares this load with every other test
    return function


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)  # rows are unit-norm


def test_vectors_are_384_d_unit_norm_float32(ef: MiniLMEmbeddingFunction) -> None:
    vectors = ef.embed(["a warm autumn coffee banner", "x", "🚀 launch 🚀"])
    assert vectors.shape == (3, DIMENSIONS)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_similar_briefs_are_closer_than_unrelated_ones(ef: MiniLMEmbeddingFunction) -> None:
    coffee, latte, rocket = ef.embed(
        ["a warm autumn coffee banner", "cozy fall latte poster", "a rocket launch at night"]
    )
    assert _cos(coffee, latte) > _cos(coffee, rocket) + 0.1
    assert _cos(coffee, latte) > _cos(latte, rocket) + 0.1


def test_chromadb_call_returns_one_float32_vector_per_text(ef: MiniLMEmbeddingFunction) -> None:
    out = ef(["one", "two"])
    assert len(out) == 2
    assert all(v.shape == (DIMENSIONS,) and v.dtype == np.float32 for v in out)
    assert np.allclose(ef.embed_query(["one"])[0], out[0])


def test_padding_within_a_batch_does_not_change_a_vector(ef: MiniLMEmbeddingFunction) -> None:
    alone = ef.embed(["short text"])[0]
    padded = ef.embed(["short text", "a much longer text " * 20])[0]
    np.testing.assert_allclose(alone, padded, atol=1e-5)


def test_more_texts_than_one_batch_keep_their_order(ef: MiniLMEmbeddingFunction) -> None:
    texts = [f"poster number {i} for the spring sale" for i in range(70)]
    batch = ef.embed(texts)
    assert batch.shape == (70, DIMENSIONS)
    for i in (0, 33, 69):
        np.testing.assert_allclose(batch[i], ef.embed([texts[i]])[0], atol=1e-5)


def test_texts_of_mixed_lengths_in_any_order_keep_their_own_vectors(
    ef: MiniLMEmbeddingFunction,
) -> None:
    # a long brief's views: chunks of 40-100 word pieces beside clauses of 5-15, interleaved
    texts = [
        ("a long sentence about the autumn coffee campaign and its warm light " * (1 + i % 6))
        if i % 3 == 0
        else f"clause {i} of the brief"
        for i in range(45)
    ]
    together = ef.embed(texts)
    for i in (0, 1, 2, 3, 21, 44):
        np.testing.assert_allclose(together[i], ef.embed([texts[i]])[0], atol=1e-5)
    np.testing.assert_allclose(ef.embed(texts[::-1])[::-1], together, atol=1e-5)


def test_short_texts_are_not_padded_to_a_long_one() -> None:
    # shortest first; a new batch where padding the next one would cost more than a call
    assert _batches([5, 120, 6, 7]) == [[0, 2, 3], [1]]
    assert _batches([12, 10, 30]) == [[1, 0, 2]]  # a typical brief's views: one call
    assert [len(b) for b in _batches([8] * 70)] == [BATCH_SIZE, BATCH_SIZE, 6]


def test_long_texts_are_truncated_to_max_tokens(ef: MiniLMEmbeddingFunction) -> None:
    head = "brand " * 300  # over 256 word pieces on its own
    np.testing.assert_allclose(
        ef.embed([head])[0], ef.embed([head + "completely different ending"])[0], atol=1e-6
    )


def test_empty_input_gives_an_empty_array(ef: MiniLMEmbeddingFunction) -> None:
    assert ef.embed([]).shape == (0, DIMENSIONS)


# --------------------------------------------------------------------------- pinned files


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("model-copies")
    return (
        Path(shutil.copyfile(MODEL_PATH, folder / "model.onnx")),
        Path(shutil.copyfile(TOKENIZER_PATH, folder / "tokenizer.json")),
    )


def _corrupt(source: Path, target: Path) -> Path:
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    return target


def test_intact_copies_load_and_give_the_same_vectors(
    ef: MiniLMEmbeddingFunction, copies: tuple[Path, Path]
) -> None:
    model, tokenizer = copies
    other = MiniLMEmbeddingFunction(model_path=model, tokenizer_path=tokenizer)
    np.testing.assert_allclose(other.embed(["same"]), ef.embed(["same"]), atol=1e-6)


def test_a_corrupt_model_is_refused(copies: tuple[Path, Path], tmp_path: Path) -> None:
    model = _corrupt(copies[0], tmp_path / "model.onnx")
    function = MiniLMEmbeddingFunction(model_path=model, tokenizer_path=copies[1])
    with pytest.raises(ModelChecksumError, match=r"embedding model .* expected " + MODEL_SHA256):
        function(["anything"])


def test_a_corrupt_tokenizer_is_refused(copies: tuple[Path, Path], tmp_path: Path) -> None:
    tokenizer = _corrupt(copies[1], tmp_path / "tokenizer.json")
    function = MiniLMEmbeddingFunction(model_path=copies[0], tokenizer_path=tokenizer)
    with pytest.raises(ModelChecksumError, match=r"tokenizer .* expected " + TOKENIZER_SHA256):
        function.load()


def test_an_unexpected_digest_is_refused(copies: tuple[Path, Path]) -> None:
    function = MiniLMEmbeddingFunction(model_path=copies[0], model_sha256="0" * 64)
    with pytest.raises(ModelChecksumError):
        function.load()


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    function = MiniLMEmbeddingFunction(tokenizer_path=tmp_path / "nope.json")
    with pytest.raises(EmbeddingModelError, match="does not exist"):
        function.load()


# --------------------------------------------------------------------------- chromadb protocol


def test_is_registered_with_chromadb_and_not_legacy(ef: MiniLMEmbeddingFunction) -> None:
    assert MiniLMEmbeddingFunction.name() == EF_NAME == "brandloop-minilm-int8"
    assert known_embedding_functions[EF_NAME] is MiniLMEmbeddingFunction
    assert ef.default_space() == "cosine"
    assert not ef.is_legacy()


def test_config_round_trips(ef: MiniLMEmbeddingFunction) -> None:
    config = ef.get_config()
    assert config == {
        "model_sha256": MODEL_SHA256,
        "tokenizer_sha256": TOKENIZER_SHA256,
        "max_tokens": 256,
    }
    rebuilt = MiniLMEmbeddingFunction.build_from_config(config)
    assert rebuilt == ef
    assert rebuilt.get_config() == config


def test_config_refuses_unknown_keys_and_model_swaps(ef: MiniLMEmbeddingFunction) -> None:
    with pytest.raises(ValueError, match="unknown"):
        MiniLMEmbeddingFunction.build_from_config({"model_name": "other"})
    changed = {**ef.get_config(), "model_sha256": "0" * 64}
    with pytest.raises(ValueError, match="cannot change model_sha256"):
        ef.validate_config_update(ef.get_config(), changed)
