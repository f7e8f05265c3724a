"""L2 rerankers behind one small protocol: `score(query, chunks) -> scores` (higher is better).

- CrossEncoderReranker: a sentence-transformers CrossEncoder from a local path or model id
  (users with internet pick `cross-encoder/ms-marco-MiniLM-L-6-v2`).
- RemoteReranker: any `/v1/rerank` endpoint (vLLM, llama.cpp server, TEI, Jina, Cohere).
- SentenceMaxSimReranker: works out of the box with the packaged MiniLM; see its docstring.
"""
from __future__ import annotations

import functools
from typing import Protocol, Sequence

import numpy as np

from rag.errors import RagError
from rag.types import Chunk


class RerankerUnavailable(RagError):
    reason = "reranker_unavailable"


class Reranker(Protocol):
    name: str

    def score(self, query: str, chunks: Sequence[Chunk]) -> list[float]: ...


@functools.lru_cache(maxsize=2)
def _load_cross_encoder(model: str):
    from sentence_transformers import CrossEncoder

    return CrossEncoder(model, device="cpu")


class CrossEncoderReranker:
    def __init__(self, model: str, batch_size: int = 32):
        self.model_name = model
        self.name = f"cross-encoder:{model}"
        self.batch_size = batch_size

    def score(self, query: str, chunks: Sequence[Chunk]) -> list[float]:
        try:
            model = _load_cross_encoder(self.model_name)
        except (OSError, ValueError) as e:
            raise RerankerUnavailable(
                f"could not load cross-encoder {self.model_name!r} ({e}). Without internet access, "
                "set RAG_RERANKER_MODEL to a local folder holding the model, or RAG_RERANKER=maxsim.") from e
        pairs = [(query, c.index_text()) for c in chunks]
        return [float(s) for s in model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)]


class RemoteReranker:
    """POST {base_url}/rerank with {model, query, documents}; reads results[].relevance_score."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 10.0):
        if not base_url:
            raise RagError("RAG_RERANKER_BASE_URL must be set when RAG_RERANKER=remote")
        self.url = base_url.rstrip("/") + "/rerank"
        self.model = model
        self.name = f"remote:{model}"
        self.api_key = api_key
        self.timeout_s = timeout_s

    def score(self, query: str, chunks: Sequence[Chunk]) -> list[float]:
        import json
        import urllib.error
        import urllib.request

        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = {"model": self.model, "query": query, "documents": [c.index_text() for c in chunks],
                "top_n": len(chunks)}
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                results = json.loads(resp.read())["results"]
        except (OSError, urllib.error.URLError, KeyError, ValueError) as e:
            raise RerankerUnavailable(f"rerank endpoint {self.url} failed: {e}") from e
        out = np.full(len(chunks), -np.inf)
        for r in results:
            out[int(r["index"])] = float(r.get("relevance_score", r.get("score", -np.inf)))
        return out.tolist()


class SentenceMaxSimReranker:
    """Sentence-level late interaction with the packaged MiniLM (no extra model needed).

    A passage's score is the best cosine similarity between the question and any one of its
    sentences (vectors precomputed at ingestion). Chunk vectors average a passage's topics;
    a claim or question usually matches one sentence, and this L2 stage looks for it.
    Chunks without sentence vectors fall back to their chunk vector, and are counted.
    """

    name = "maxsim"

    def __init__(self, store, embedder=None):
        from rag.embed import MiniLMEmbedder

        self.store = store
        self.embedder = embedder or MiniLMEmbedder()
        self.missing = 0

    def score(self, query: str, chunks: Sequence[Chunk]) -> list[float]:
        q = self.embedder.embed([query])[0]
        sentences = self.store.sentence_vectors([c.id for c in chunks], len(q))
        lacking = [c.id for c in chunks if c.id not in sentences]
        if lacking:
            self.missing += len(lacking)
            sentences.update(self.store.chunk_vectors(lacking))
        return [float((sentences[c.id] @ q).max()) for c in chunks]
