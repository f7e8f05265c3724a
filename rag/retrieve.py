"""The retrieval funnel: cheap retrieval over everything, costlier rankers over fewer items.

    dense top-N (FAISS) + BM25 top-N  ->  L1 fusion (RRF or normalised scores)
      [->  dense pseudo-relevance feedback: a second dense search, fused again with BM25]
      ->  L2 rerank of the top-M  ->  context selection (near-duplicates, diversity, budget)

Every Hit keeps each stage's score and rank, so the UI and the evaluation can show where a
passage won or lost. Stage timings are returned with the hits.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from rag.embed import Embedder
from rag.rerank import Reranker
from rag.store import LocalStore
from rag.store.sparse import analyse
from rag.types import Hit


@dataclass(frozen=True)
class FunnelConfig:
    dense_k: int = 100          # candidates from FAISS
    sparse_k: int = 100         # candidates from BM25
    fusion: str = "score"       # "rrf" or "score" (min-max normalised, weighted sum)
    rrf_k: int = 60
    w_dense: float = 1.0
    w_sparse: float = 1.0
    # Dense pseudo-relevance feedback (Rocchio, training-free): q' = normalise(q + prf_alpha *
    # mean of the vectors of the first fusion's top prf_k chunks); a second dense search with q'
    # ("dense_prf", weight w_prf) is fused with BM25 again. The first dense pass stays on hits
    # as "dense". prf_k = 0: off.
    prf_k: int = 0
    prf_alpha: float = 0.75
    w_prf: float = 1.75
    # A second BM25 list for a figure question that names its period (the answerer gives its
    # terms: the metric, and the period as column headers name it, "Three Months Ended June 30
    # 2023"), fused with this weight. Statement rows sat at rank 100-200 of the plain lists in
    # 100-page filings, where "total revenues" and "fiscal 2023" fill the prose.
    w_period: float = 0.3
    # ... and its top period_pin chunks are always among the k returned (in place of the fused
    # order's last): a row the period list ranks 1-5 still sat at fused rank 24-52 in 10-Qs.
    period_pin: int = 5
    rerank_m: int = 100         # how many fused candidates the L2 reranker sees
    w_rerank: float = 0.5       # final = w * L2 + (1 - w) * fused, both min-max normalised
    # Context selection
    dedup_threshold: float = 0.9  # token-set Jaccard above which a passage is a near-duplicate
    max_per_doc: int = 0          # 0 = no per-document cap
    token_budget: int = 0         # 0 = no budget (count of index tokens, approximate)

    def __post_init__(self):
        if self.fusion not in {"rrf", "score"}:
            raise ValueError(f"fusion must be 'rrf' or 'score', not {self.fusion!r}")
        if self.prf_k < 0:
            raise ValueError(f"prf_k must be >= 0, not {self.prf_k}")
        if self.period_pin < 0:
            raise ValueError(f"period_pin must be >= 0, not {self.period_pin}")


@dataclass
class SearchResult:
    query: str
    hits: list[Hit]
    timings_ms: dict[str, float] = field(default_factory=dict)
    reranker: str = "none"
    candidates: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    index_version: int = 0  # the snapshot the hits came from


def minmax(scores: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; all-equal scores become 1."""
    if scores.size == 0:
        return scores
    lo, hi = float(scores.min()), float(scores.max())
    return np.ones_like(scores) if hi - lo < 1e-9 else (scores - lo) / (hi - lo)


def fuse(lists: dict[str, tuple[np.ndarray, np.ndarray]], config: FunnelConfig
         ) -> tuple[list[int], dict[int, dict[str, float]], dict[int, dict[str, int]]]:
    """L1: fused order of vids, with per-stage scores and ranks kept."""
    weights = {"dense": config.w_dense, "bm25": config.w_sparse, "dense_prf": config.w_prf,
               "bm25_period": config.w_period}
    scores: dict[int, dict[str, float]] = {}
    ranks: dict[int, dict[str, int]] = {}
    fused: dict[int, float] = {}
    for stage, (vids, stage_scores) in lists.items():
        norm = minmax(stage_scores) if config.fusion == "score" else None
        for i, (vid, score) in enumerate(zip(vids.tolist(), stage_scores.tolist())):
            scores.setdefault(vid, {})[stage] = float(score)
            ranks.setdefault(vid, {})[stage] = i + 1
            part = 1.0 / (config.rrf_k + i + 1) if norm is None else float(norm[i])
            fused[vid] = fused.get(vid, 0.0) + weights.get(stage, 1.0) * part
    order = sorted(fused, key=lambda v: -fused[v])
    for rank, vid in enumerate(order, 1):
        scores[vid]["fused"] = fused[vid]
        ranks[vid]["fused"] = rank
    return order, scores, ranks


def _terms(text: str) -> set[str]:
    return set(text.lower().split())


def select_context(hits: list[Hit], config: FunnelConfig, k: int) -> list[Hit]:
    """Drop near-duplicates, cap passages per document, fit a token budget; keep order."""
    chosen: list[Hit] = []
    seen_terms: list[set[str]] = []
    per_doc: dict[str, int] = {}
    used = 0
    for h in hits:
        terms = _terms(h.chunk.text)
        if any(len(terms & t) / max(1, len(terms | t)) >= config.dedup_threshold for t in seen_terms):
            continue
        if config.max_per_doc and per_doc.get(h.chunk.doc_id, 0) >= config.max_per_doc:
            continue
        cost = len(h.chunk.text) // 4
        if config.token_budget and chosen and used + cost > config.token_budget:
            break
        chosen.append(h)
        seen_terms.append(terms)
        per_doc[h.chunk.doc_id] = per_doc.get(h.chunk.doc_id, 0) + 1
        used += cost
        if len(chosen) >= k:
            break
    return chosen


class Retriever:
    """Runs the funnel over one store. Cheap to construct; models load on first use."""

    def __init__(self, store: LocalStore, embedder: Embedder, config: FunnelConfig | None = None,
                 reranker: Reranker | None = None):
        self.store = store
        self.embedder = embedder
        self.config = config or FunnelConfig()
        self.reranker = reranker

    @property
    def reranker_name(self) -> str:
        return self.reranker.name if self.reranker is not None else "none"

    def search(self, query: str, k: int = 10, select: bool = True,
               period_terms: list[str] | None = None, extra_terms: list[str] | None = None) -> SearchResult:
        """`period_terms`: BM25 terms of a second sparse list ("bm25_period", see
        FunnelConfig.w_period); none by default. `extra_terms`: BM25 terms added to the query's
        own (the answerer's acronyms: "gmv" for "gross merchandise volume")."""
        cfg = self.config
        timings: dict[str, float] = {}
        result = SearchResult(query, [], timings, self.reranker_name)
        snap = self.store.snapshot(stale_ok=True)  # a publish loads meanwhile (PgStore)
        result.index_version = snap.version
        if snap.version == 0 or not query.strip():
            return result
        t0 = time.perf_counter()
        lists: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        qvec = None
        if snap.dense is not None and len(snap.dense) and cfg.dense_k:
            qvec = self.embedder.embed([query])[0]
            t1 = time.perf_counter()
            timings["embed_query"] = (t1 - t0) * 1000
            lists["dense"] = snap.dense.search(qvec, cfg.dense_k)
            timings["dense"] = (time.perf_counter() - t1) * 1000
        t1 = time.perf_counter()
        if snap.sparse is not None and cfg.sparse_k:
            lists["bm25"] = snap.sparse.search(analyse(query) + list(extra_terms or ()), cfg.sparse_k)
            if period_terms and cfg.w_period:
                lists["bm25_period"] = snap.sparse.search(period_terms, cfg.sparse_k)
        timings["bm25"] = (time.perf_counter() - t1) * 1000
        result.candidates = lists
        t1 = time.perf_counter()
        order, scores, ranks = fuse(lists, cfg)
        timings["fuse"] = (time.perf_counter() - t1) * 1000
        if cfg.prf_k and qvec is not None and "dense" in lists:
            t1 = time.perf_counter()
            feedback = self._feedback(snap, qvec, order[:cfg.prf_k])
            if feedback is not None:
                lists["dense_prf"] = feedback
                order, scores, ranks = self._refuse(lists, cfg)
            timings["prf"] = (time.perf_counter() - t1) * 1000
        result.candidates["fused"] = (np.asarray(order, dtype=np.int64),
                                      np.asarray([scores[v]["fused"] for v in order], dtype=np.float32))
        t1 = time.perf_counter()
        # Context selection may drop near-duplicates, so it gets 2k to choose from; L2 sees rerank_m.
        head = order[:max(2 * k if select else k, cfg.rerank_m if self.reranker is not None else 0)]
        if "bm25_period" in lists and cfg.period_pin:
            head = pin_into(head, lists["bm25_period"][0][:cfg.period_pin].tolist(), k)
        chunks = self.store.chunks_by_vid(head)
        head = [v for v in head if v in chunks]
        timings["fetch"] = (time.perf_counter() - t1) * 1000
        if self.reranker is not None and head:
            t1 = time.perf_counter()
            top = head[:cfg.rerank_m]
            rr = np.asarray(self.reranker.score(query, [chunks[v][0] for v in top]), dtype=np.float64)
            fused_top = np.array([scores[v]["fused"] for v in top])
            final = cfg.w_rerank * minmax(rr) + (1 - cfg.w_rerank) * minmax(fused_top)
            for vid, s in zip(top, rr):
                scores[vid]["rerank"] = float(s)
            blended = dict(zip(top, final.tolist()))
            top = sorted(top, key=lambda v: -blended[v])
            for rank, vid in enumerate(top, 1):
                ranks[vid]["rerank"] = rank
            head = top + head[cfg.rerank_m:]
            timings["rerank"] = (time.perf_counter() - t1) * 1000
        hits = [Hit(chunks[v][0], chunks[v][1], scores[v], ranks[v], chunks[v][2].get("fiscal_calendar"),
                    chunks[v][0].page in chunks[v][2].get("ocr_pages", ()), chunks[v][2].get("report_period"))
                for v in head]
        t1 = time.perf_counter()
        result.hits = select_context(hits, cfg, k) if select else hits[:k]
        timings["select"] = (time.perf_counter() - t1) * 1000
        timings["total"] = (time.perf_counter() - t0) * 1000
        return result

    def mentions(self, term: str) -> bool:
        """Whether any live chunk holds this BM25 term (analyse()'s form: "antarctica")."""
        snap = self.store.snapshot(stale_ok=True)
        return snap.version > 0 and snap.sparse is not None and len(snap.sparse.search([term], 1)[0]) > 0

    def _feedback(self, snap, qvec: np.ndarray, top: list[int]) -> tuple[np.ndarray, np.ndarray] | None:
        """The second dense search, with the query moved towards the top chunks' vectors."""
        chunks = self.store.chunks_by_vid(top)
        ids = [chunks[v][0].id for v in top if v in chunks]  # live ones (a delete may have raced)
        vectors = self.store.chunk_vectors(ids) if ids else {}
        if not vectors:
            return None
        centroid = np.vstack(list(vectors.values())).mean(axis=0)
        q = np.asarray(qvec, dtype=np.float32) + self.config.prf_alpha * centroid
        norm = float(np.linalg.norm(q))
        if norm < 1e-9:
            return None
        return snap.dense.search((q / norm).astype(np.float32), self.config.dense_k)

    @staticmethod
    def _refuse(lists: dict[str, tuple[np.ndarray, np.ndarray]], cfg: FunnelConfig):
        """Second fusion: dense_prf + BM25; the first dense pass's scores and ranks are kept."""
        order, scores, ranks = fuse({s: v for s, v in lists.items() if s != "dense"}, cfg)
        vids, stage_scores = lists["dense"]
        for i, (vid, score) in enumerate(zip(vids.tolist(), stage_scores.tolist())):
            if vid in scores:
                scores[vid]["dense"] = float(score)
                ranks[vid]["dense"] = i + 1
        return order, scores, ranks


def pin_into(head: list[int], pinned: list[int], k: int) -> list[int]:
    """`head` with every `pinned` vid among its first k: those missing take the places of the
    last ones, which move down behind them."""
    new = [v for v in pinned if v not in head[:k]]
    if not new:
        return head
    keep = head[:max(k - len(new), 0)]
    return keep + new + [v for v in head[len(keep):] if v not in new]


def with_config(retriever: Retriever, **changes) -> Retriever:
    return Retriever(retriever.store, retriever.embedder, replace(retriever.config, **changes), retriever.reranker)


__all__ = ["FunnelConfig", "Retriever", "SearchResult", "fuse", "minmax", "pin_into", "select_context", "with_config"]
