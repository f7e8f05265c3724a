"""Convenience: run the default retrieval funnel (no reranker) and return its hits."""
from __future__ import annotations

from rag.embed import Embedder
from rag.retrieve import Retriever
from rag.store import LocalStore
from rag.types import Hit


def search(store: LocalStore, embedder: Embedder, query: str, k: int = 10) -> list[Hit]:
    return Retriever(store, embedder).search(query, k=k).hits
