"""The semantic layer of text moderation: a classifier over MiniLM sentence embeddings that
catches what no term list holds ("wearing nothing at all", "in her birthday suit").

One logistic-regression head per category over the 384-d embeddings brand memory already
uses (:class:`brandloop.memory.embeddings.MiniLMEmbeddingFunction`, a local ONNX model),
trained on the hand-written exemplars in ``exemplars/`` by ``scripts/train_text_classifier.py``,
thresholds chosen on the validation split. The weights ship in ``classifier.json``, checked
against a pinned sha256 before use. See ``PROVENANCE.md`` for the data and the figures.
"""

from brandloop.tools.moderation.semantic.classifier import (
    CLASSIFIER_PATH,
    CLASSIFIER_SHA256,
    ChunkScores,
    EmbeddingClassifier,
    SemanticLayer,
    chunk_spans,
    default_semantic_layer,
)

__all__ = [
    "CLASSIFIER_PATH",
    "CLASSIFIER_SHA256",
    "ChunkScores",
    "EmbeddingClassifier",
    "SemanticLayer",
    "chunk_spans",
    "default_semantic_layer",
]
