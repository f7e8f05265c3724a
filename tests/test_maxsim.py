"""The out-of-the-box L2 reranker: sentence-level MaxSim with the packaged MiniLM."""
from __future__ import annotations

import numpy as np

from ingest.chunk import sentence_spans
from ingest.pipeline import backfill_sentence_vectors, embed_sentences, ingest_paths
from rag.config import Settings
from rag.rerank import SentenceMaxSimReranker
from rag.retrieve import FunnelConfig, Retriever
from rag.store import LocalStore

NEEDLE = ("# Field notes\n\nThe river valley was quiet in winter and the meadow froze early. "
          "Copper mining shaped the harbour town for a century. "
          "Our survey counted exactly forty-two nesting ospreys along the western ridge. "
          "The bridge and the tunnel were rebuilt after the flood.\n")


def test_sentence_spans_put_the_heading_first():
    text = "Title line\nFirst sentence here. Second one follows."
    assert [text[a:b] for a, b in sentence_spans(text)] == ["Title line", "First sentence here.", "Second one follows."]


def test_embed_sentences_embeds_each_distinct_sentence_once(embedder):
    out = embed_sentences(embedder, [("a", "T\nSame sentence. Other one."), ("b", "T\nSame sentence.")])
    assert out["a"].shape == (3, 384) and out["b"].shape == (2, 384)
    np.testing.assert_allclose(out["a"][1], out["b"][1])
    np.testing.assert_allclose(out["a"][1], embedder.embed(["Same sentence."])[0], atol=1e-5)


def test_maxsim_finds_the_sentence_that_answers(tmp_path, embedder):
    settings = Settings.load(data_dir=tmp_path / "data", sentence_vectors=True)
    (tmp_path / "notes.md").write_text(NEEDLE)
    ingest_paths([tmp_path / "notes.md"], settings, embedder=embedder)
    store = LocalStore(settings.data_dir)
    assert store.stats()["chunks_with_sentence_vectors"] == store.stats()["chunks"]
    chunk = store.chunks_of(store.documents()[0]["id"])[0]
    reranker = SentenceMaxSimReranker(store, embedder)
    [score] = reranker.score("How many ospreys were nesting?", [chunk])
    best_sentence = embedder.embed(["Our survey counted exactly forty-two nesting ospreys along the western ridge."])[0]
    q = embedder.embed(["How many ospreys were nesting?"])[0]
    assert score == np.float32(score) and abs(score - float(best_sentence @ q)) < 2e-3  # float16 storage
    assert score > float(embedder.embed([chunk.index_text()])[0] @ q)  # sharper than the chunk vector
    assert reranker.missing == 0


def test_backfill_for_an_index_built_without_sentence_vectors(tmp_path, embedder):
    settings = Settings.load(data_dir=tmp_path / "data", sentence_vectors=False)
    (tmp_path / "notes.md").write_text(NEEDLE)
    ingest_paths([tmp_path / "notes.md"], settings, embedder=embedder)
    store = LocalStore(settings.data_dir)
    assert store.stats()["chunks_with_sentence_vectors"] == 0
    chunk = store.chunks_of(store.documents()[0]["id"])[0]
    fallback = SentenceMaxSimReranker(store, embedder)
    fallback.score("ospreys", [chunk])
    assert fallback.missing == 1  # degraded mode is counted, not hidden
    assert backfill_sentence_vectors(settings, embedder) == store.stats()["chunks"]
    assert store.stats()["chunks_with_sentence_vectors"] == store.stats()["chunks"]
    assert store.check() == []
    result = Retriever(store, embedder, FunnelConfig(), SentenceMaxSimReranker(store, embedder)).search("ospreys", k=3)
    assert result.reranker == "maxsim" and result.hits[0].scores["rerank"] > 0.3
