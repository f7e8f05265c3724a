"""Hybrid search: dense (FAISS) + sparse (BM25), fused by reciprocal rank fusion.

This is the cheap first stage of the retrieval funnel; every hit keeps each stage's
score and rank so the UI and the evaluation can show where a passage won or lost.
"""
from __future__ import annotations

from rag.embed import Embedder
from rag.store import LocalStore
from rag.store.sparse import analyse
from rag.types import Hit

RRF_K = 60


def search(store: LocalStore, embedder: Embedder, query: str, k: int = 10, depth: int = 100) -> list[Hit]:
    snap = store.snapshot()
    if snap.version == 0 or not query.strip():
        return []
    scores: dict[int, dict[str, float]] = {}
    ranks: dict[int, dict[str, int]] = {}
    stages = []
    if snap.dense is not None and len(snap.dense):
        stages.append(("dense", snap.dense.search(embedder.embed([query])[0], depth)))
    if snap.sparse is not None:
        stages.append(("bm25", snap.sparse.search(analyse(query), depth)))
    for stage, (vids, stage_scores) in stages:
        for rank, (vid, score) in enumerate(zip(vids.tolist(), stage_scores.tolist()), 1):
            scores.setdefault(vid, {})[stage] = float(score)
            ranks.setdefault(vid, {})[stage] = rank
    for vid, r in ranks.items():
        scores[vid]["fused"] = sum(1.0 / (RRF_K + rank) for rank in r.values())
    best = sorted(scores, key=lambda v: -scores[v]["fused"])[:k]
    chunks = store.chunks_by_vid(best)
    hits = []
    for rank, vid in enumerate((v for v in best if v in chunks), 1):
        chunk, source = chunks[vid]
        hits.append(Hit(chunk, source, scores[vid], {**ranks[vid], "fused": rank}))
    return hits
