"""Build the configured components from Settings (one place that knows the names)."""
from __future__ import annotations

from rag.config import Settings
from rag.embed import embedder_from_settings
from rag.errors import RagError
from rag.rerank import CrossEncoderReranker, RemoteReranker, Reranker, SentenceMaxSimReranker
from rag.retrieve import FunnelConfig, Retriever
from rag.store import LocalStore, open_store


def reranker_from_settings(settings: Settings, store: LocalStore, embedder=None) -> Reranker | None:
    name = settings.reranker
    if name == "none":
        return None
    if name == "cross-encoder":
        return CrossEncoderReranker(settings.reranker_model)
    if name == "remote":
        return RemoteReranker(settings.reranker_base_url or "", settings.reranker_model,
                              settings.reranker_api_key)
    if name == "maxsim":
        return SentenceMaxSimReranker(store, embedder)
    raise RagError(f"unknown RAG_RERANKER={name!r}: use none, maxsim, cross-encoder or remote")


def funnel_config(settings: Settings) -> FunnelConfig:
    return FunnelConfig(dense_k=settings.dense_k, sparse_k=settings.sparse_k, fusion=settings.fusion,
                        rrf_k=settings.rrf_k, w_dense=settings.w_dense, w_sparse=settings.w_sparse,
                        prf_k=settings.prf_k, prf_alpha=settings.prf_alpha, w_prf=settings.w_prf,
                        w_period=settings.w_period, period_pin=settings.period_pin,
                        rerank_m=settings.rerank_m, w_rerank=settings.w_rerank)


def build_retriever(settings: Settings) -> Retriever:
    store = open_store(settings)
    embedder = embedder_from_settings(settings)
    return Retriever(store, embedder, funnel_config(settings), reranker_from_settings(settings, store, embedder))
