"""The retrieval funnel: fusion, context selection, rerank stage, and `python -m rag search`."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ingest.pipeline import ingest_paths
from rag.retrieve import FunnelConfig, Retriever, fuse, select_context
from rag.store import LocalStore
from rag.types import Chunk, Hit
from tests.conftest import ROOT, write_docs


def lists(dense, bm25):
    as_arrays = lambda pairs: (np.array([p[0] for p in pairs], dtype=np.int64),
                               np.array([p[1] for p in pairs], dtype=np.float32))
    return {"dense": as_arrays(dense), "bm25": as_arrays(bm25)}


def test_rrf_rewards_agreement_and_keeps_every_stage():
    order, scores, ranks = fuse(lists([(1, .9), (2, .8), (3, .7)], [(3, 9.0), (4, 5.0), (1, 1.0)]),
                                 FunnelConfig(fusion="rrf"))
    assert order[:2] in ([1, 3], [3, 1])  # in both lists
    assert ranks[3] == {"dense": 3, "bm25": 1, "fused": ranks[3]["fused"]}
    assert scores[4]["bm25"] == 5.0 and "dense" not in scores[4]
    assert scores[1]["fused"] == pytest.approx(1 / 61 + 1 / 63)


def test_weights_and_score_fusion_change_the_order():
    data = lists([(1, .9), (2, .5)], [(2, 10.0), (1, 1.0)])
    assert fuse(data, FunnelConfig(fusion="rrf", w_dense=2.0))[0][0] == 1
    assert fuse(data, FunnelConfig(fusion="rrf", w_sparse=2.0))[0][0] == 2
    order, scores, _ = fuse(data, FunnelConfig(fusion="score", w_dense=1.0, w_sparse=0.5))
    assert order[0] == 1 and scores[1]["fused"] == pytest.approx(1.0)  # min-max: 1*1 + 0.5*0
    with pytest.raises(ValueError):
        FunnelConfig(fusion="max")


def _hit(i, doc, text):
    return Hit(Chunk(f"c{i}", doc, i, text, 1, 0, len(text)), f"src-{doc}", {}, {})


def test_context_selection_dedups_caps_and_budgets():
    hits = [_hit(0, "a", "alpha beta gamma delta"), _hit(1, "a", "alpha beta gamma delta"),
            _hit(2, "a", "epsilon zeta"), _hit(3, "b", "eta theta iota"), _hit(4, "c", "x " * 400)]
    assert [h.chunk.id for h in select_context(hits, FunnelConfig(), 10)] == ["c0", "c2", "c3", "c4"]
    assert [h.chunk.id for h in select_context(hits, FunnelConfig(max_per_doc=1), 10)] == ["c0", "c3", "c4"]
    assert [h.chunk.id for h in select_context(hits, FunnelConfig(token_budget=50), 10)] == ["c0", "c2", "c3"]
    assert len(select_context(hits, FunnelConfig(), 2)) == 2


class ReverseReranker:
    """A real (if silly) reranker: prefers shorter passages. Exercises the L2 plumbing."""
    name = "shortest-first"

    def score(self, query, chunks):
        return [-len(c.text) for c in chunks]


def test_rerank_stage_reorders_top_m_and_records_scores(tmp_path, settings, embedder):
    docs = write_docs(tmp_path / "docs", 6, words=60)
    docs[3].write_text("# Short\n\nriver.\n")
    ingest_paths(docs, settings, embedder=embedder)
    store = LocalStore(settings.data_dir)
    plain = Retriever(store, embedder, FunnelConfig()).search("river valley", k=5)
    ranked = Retriever(store, embedder, FunnelConfig(rerank_m=6, w_rerank=1.0),
                       ReverseReranker()).search("river valley", k=5)
    assert ranked.reranker == "shortest-first" and "rerank" in ranked.timings_ms
    assert ranked.hits[0].chunk.text == "river." and ranked.hits[0].ranks["rerank"] == 1
    assert all("rerank" in h.scores and "fused" in h.scores for h in ranked.hits)
    assert plain.reranker == "none" and "rerank" not in plain.timings_ms


def test_dense_prf_moves_the_query_and_keeps_stage_scores(tmp_path, settings, embedder):
    from rag.config import Settings
    from rag.factory import funnel_config

    ingest_paths(write_docs(tmp_path / "docs", 8, words=60), settings, embedder=embedder)
    store = LocalStore(settings.data_dir)
    query = "river valley topic3"
    plain = Retriever(store, embedder, FunnelConfig(prf_k=0)).search(query, k=5, select=False)
    cfg = FunnelConfig(prf_k=2, prf_alpha=1.0, w_prf=1.5)
    prf = Retriever(store, embedder, cfg).search(query, k=5, select=False)
    assert "prf" in prf.timings_ms and "prf" not in plain.timings_ms and "dense_prf" not in plain.candidates

    # The second dense pass searched with q' = normalise(q + alpha * mean(top-2 fused chunk vectors)).
    top2 = plain.candidates["fused"][0][:2].tolist()
    chunks = store.chunks_by_vid(top2)
    vecs = store.chunk_vectors([chunks[v][0].id for v in top2])
    q = embedder.embed([query])[0] + 1.0 * np.vstack(list(vecs.values())).mean(axis=0)
    q /= np.linalg.norm(q)
    vids, dense_prf = (a.tolist() for a in prf.candidates["dense_prf"])
    found = store.chunks_by_vid(vids)
    all_vecs = store.chunk_vectors([c.id for c, *_ in found.values()])
    assert dense_prf == pytest.approx([float(all_vecs[found[v][0].id][0] @ q) for v in vids], abs=1e-4)
    # ... which is a different query from the first pass: same chunks, different scores.
    first = dict(zip(*(a.tolist() for a in prf.candidates["dense"])))
    assert any(abs(first[v] - s) > 1e-3 for v, s in zip(vids, dense_prf))
    assert prf.candidates["dense"][1].tolist() == pytest.approx(plain.candidates["dense"][1].tolist())

    # Every hit keeps both dense passes, BM25 where it matched, and the final fusion.
    assert prf.hits and prf.hits[0].ranks["fused"] == 1
    for h in prf.hits:
        assert {"dense", "dense_prf", "fused"} <= set(h.scores) and {"dense", "dense_prf"} <= set(h.ranks)
    assert [h.scores["fused"] for h in prf.hits] == sorted((h.scores["fused"] for h in prf.hits), reverse=True)
    # The settings reach the funnel; prf_k=0 turns it off.
    wired = funnel_config(Settings(prf_k=3, prf_alpha=0.5, w_prf=2.0))
    assert (wired.prf_k, wired.prf_alpha, wired.w_prf) == (3, 0.5, 2.0)
    assert funnel_config(Settings(prf_k=0)).prf_k == 0
    with pytest.raises(ValueError):
        FunnelConfig(prf_k=-1)


def test_period_terms_add_a_weighted_bm25_list_that_can_bring_a_chunk_into_the_pool(tmp_path, settings, embedder):
    from rag.store.sparse import analyse

    ingest_paths(write_docs(tmp_path / "docs", 8, words=60), settings, embedder=embedder)
    store = LocalStore(settings.data_dir)
    query, terms = "river valley", analyse("topic5")
    plain = Retriever(store, embedder, FunnelConfig(prf_k=0)).search(query, k=3, select=False)
    top = plain.candidates["fused"][0][:3].tolist()
    res = Retriever(store, embedder, FunnelConfig(prf_k=0, w_period=5.0)).search(
        query, k=3, select=False, period_terms=terms)
    vids, scores = store.snapshot().sparse.search(terms, 200)
    assert res.candidates["bm25_period"][0].tolist() == vids.tolist() and len(vids) == 1
    assert vids[0] not in top and res.hits[0].chunk.id == store.chunks_by_vid([vids[0]])[vids[0]][0].id
    assert res.hits[0].ranks["bm25_period"] == 1
    off = Retriever(store, embedder, FunnelConfig(prf_k=0, w_period=0)).search(
        query, k=3, select=False, period_terms=terms)
    assert "bm25_period" not in off.candidates and [h.chunk.id for h in off.hits] == [h.chunk.id for h in plain.hits]


def test_pin_into_puts_the_pinned_among_the_first_k():
    from rag.config import Settings
    from rag.factory import funnel_config
    from rag.retrieve import pin_into
    assert pin_into([1, 2, 3, 4, 5, 6], [9, 2], 4) == [1, 2, 3, 9, 4, 5, 6]
    assert pin_into([1, 2, 3], [2, 1], 2) == [1, 2, 3]
    assert pin_into([1, 2, 3, 4], [7, 8, 9], 2) == [7, 8, 9, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        FunnelConfig(period_pin=-1)
    assert funnel_config(Settings(period_pin=2)).period_pin == 2


def test_extra_terms_join_the_querys_own_bm25_terms(tmp_path, settings, embedder):
    from rag.store.sparse import analyse

    ingest_paths(write_docs(tmp_path / "docs", 8, words=60), settings, embedder=embedder)
    store = LocalStore(settings.data_dir)
    retriever = Retriever(store, embedder, FunnelConfig(prf_k=0))
    both = retriever.search("river valley", k=3, select=False, extra_terms=analyse("topic5"))
    alone = store.snapshot().sparse.search(analyse("river valley topic5"), 200)
    assert both.candidates["bm25"][0].tolist() == alone[0].tolist()
    assert both.candidates["bm25"][0].tolist() != retriever.search("river valley", k=3).candidates["bm25"][0].tolist()


def test_search_cli_json_lines(tmp_path, settings, embedder):
    docs = write_docs(tmp_path / "docs", 3)
    ingest_paths(docs, settings, embedder=embedder)
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"_id": "q1", "text": "doc 1 about topic1"}\n{"_id": "q2", "text": "topic2"}\n')
    out = subprocess.run([sys.executable, "-m", "rag", "search", "--data-dir", str(settings.data_dir), "--k", "2",
                          "--json", "--queries", str(queries)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert [x["query_id"] for x in lines] == ["q1", "q2"]
    top = lines[0]["hits"][0]
    assert top["source"] == str(docs[1]) and top["page"] == 1 and top["chunk_id"]
    assert {"dense", "bm25", "fused"} <= set(top["scores"]) and top["ranks"]["fused"] == 1
    assert {"embed_query", "dense", "bm25", "fuse", "total"} <= set(lines[0]["timings_ms"])
    one = subprocess.run([sys.executable, "-m", "rag", "search", "--data-dir", str(settings.data_dir), "topic2"],
                         cwd=ROOT, capture_output=True, text=True)
    assert one.returncode == 0 and "topic2" in one.stdout
