"""Design experiment for the funnel on SciFact TRAIN queries (never test): fusion tuning and
candidate L2 rerankers built only from the packaged MiniLM.

    python bench/funnel_experiment.py --data-dir /tmp/scifact-data [--queries 300]

Prints nDCG@10 on train for each variant; the chosen defaults are then reported on test
by `python -m rag.eval retrieval`.
"""
from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.funnel_prf import study_parser  # noqa: E402
from ingest.chunk import sentence_spans  # noqa: E402
from rag.embed import MiniLMEmbedder  # noqa: E402
from rag.eval import doc_ranking, load_beir, ndcg_at  # noqa: E402
from rag.retrieve import FunnelConfig, fuse, minmax  # noqa: E402
from rag.store import LocalStore  # noqa: E402
from rag.types import index_text  # noqa: E402
from rag.store.sparse import analyse  # noqa: E402


def encode_sentences(model, texts: list[str]) -> list[np.ndarray]:
    spans = [sentence_spans(t) for t in texts]
    flat = [t[a:b] for t, sp in zip(texts, spans) for a, b in sp]
    vecs = model.encode(flat, batch_size=128, normalize_embeddings=True, convert_to_numpy=True)
    out, pos = [], 0
    for sp in spans:
        out.append(vecs[pos:pos + len(sp)])
        pos += len(sp)
    return out


def span_pooled(model, texts: list[str]) -> list[np.ndarray]:
    """Sentence vectors mean-pooled from the chunk's own token embeddings (one forward pass)."""
    tok = model.tokenizer
    out = []
    tokens = model.encode(texts, batch_size=64, output_value="token_embeddings", convert_to_numpy=False)
    for text, emb in zip(texts, tokens):
        enc = tok(text, return_offsets_mapping=True, truncation=True, max_length=256)
        offsets = enc["offset_mapping"]
        emb = emb.cpu().numpy()[:len(offsets)]
        vecs = []
        for a, b in sentence_spans(text):
            idx = [i for i, (s, e) in enumerate(offsets) if e > s and s >= a and e <= b]
            if idx:
                v = emb[idx].mean(axis=0)
                vecs.append(v / (np.linalg.norm(v) or 1))
        out.append(np.array(vecs) if vecs else np.zeros((1, emb.shape[1]), dtype=np.float32))
    return out


def main() -> None:
    ap = study_parser()
    ap.add_argument("--queries", type=int, default=300, help="train queries used for the L2 study")
    ap.add_argument("--m", type=int, default=30)
    args = ap.parse_args()
    store = LocalStore(args.data_dir)
    snap = store.snapshot()
    emb = MiniLMEmbedder()
    model = emb.model
    queries, qrels = load_beir(args.dataset, "train")
    source_of = store.live_sources()
    qids = list(queries)
    t = time.perf_counter()
    qvecs = emb.embed([queries[q] for q in qids])
    lists = {q: {"dense": snap.dense.search(qvecs[i], 200), "bm25": snap.sparse.search(analyse(queries[q]), 200)}
             for i, q in enumerate(qids)}
    print(f"{len(qids)} train queries, candidates in {time.perf_counter() - t:.1f}s")

    def score(cfg: FunnelConfig, subset=qids) -> float:
        vals = []
        for q in subset:
            order, _, _ = fuse(lists[q], cfg)
            vals.append(ndcg_at(doc_ranking(order, source_of), qrels[q]))
        return float(np.mean(vals))

    for stage in ("bm25", "dense"):
        print(f"{stage:>6} alone: {np.mean([ndcg_at(doc_ranking(lists[q][stage][0], source_of), qrels[q]) for q in qids]):.4f}")
    results = []
    for fusion, k, wd in itertools.product(["rrf"], [5, 10, 20, 30, 60, 100], [0.5, 0.75, 1.0, 1.25, 1.5, 2.0]):
        results.append((score(FunnelConfig(fusion=fusion, rrf_k=k, w_dense=wd)), fusion, k, wd))
    for wd in [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.25, 1.5, 2.0]:
        results.append((score(FunnelConfig(fusion="score", w_dense=wd)), "score", 0, wd))
    results.sort(reverse=True)
    print("RRF k=60 equal weights:", round(score(FunnelConfig()), 4))
    for r in results[:8]:
        print("fusion", r[1], "rrf_k", r[2], "w_dense", r[3], "ndcg@10", round(r[0], 4))
    best = results[0]
    best_cfg = FunnelConfig(fusion=best[1], rrf_k=best[2] or 60, w_dense=best[3])
    best_score_cfg = max((r for r in results if r[1] == "score"))
    print("best score-fusion:", best_score_cfg)

    # ---- L2 study on a subset of train queries
    sub = qids[:args.queries]
    heads = {}
    for q in sub:
        order, scores, _ = fuse(lists[q], best_cfg)
        heads[q] = (order[:args.m], np.array([scores[v]["fused"] for v in order[:args.m]]), order)
    cand = sorted({v for q in sub for v in heads[q][0]})
    texts = {v: index_text(h, x) for v, h, x in store.conn.execute(
        f"SELECT vid, heading, text FROM chunks WHERE vid IN ({','.join(map(str, cand))})")}
    t = time.perf_counter()
    sent_a = dict(zip(cand, encode_sentences(model, [texts[v] for v in cand])))
    ta = time.perf_counter() - t
    t = time.perf_counter()
    sent_b = dict(zip(cand, span_pooled(model, [texts[v] for v in cand])))
    tb = time.perf_counter() - t
    n_sent = sum(len(x) for x in sent_a.values())
    print(f"L2 candidates: {len(cand)} chunks, {n_sent} sentences; encode sentences {ta:.0f}s, "
          f"span-pool pass {tb:.0f}s")
    qv = dict(zip(qids, qvecs))
    base = np.mean([ndcg_at(doc_ranking(heads[q][2], source_of), qrels[q]) for q in sub])
    print(f"fused (best config) on the L2 subset: {base:.4f}")
    for name, sents in (("A sentences", sent_a), ("B span-pooled", sent_b)):
        for agg in ("max", "max+mean"):
            for alpha in (0.3, 0.5, 0.7, 1.0):
                vals = []
                for q in sub:
                    top, fused_scores, order = heads[q]
                    s = []
                    for v in top:
                        sims = sents[v] @ qv[q]
                        s.append(sims.max() if agg == "max" else sims.max() + 0.5 * sims.mean())
                    final = alpha * minmax(np.array(s)) + (1 - alpha) * minmax(fused_scores)
                    rer = [top[i] for i in np.argsort(-final, kind="stable")] + order[args.m:]
                    vals.append(ndcg_at(doc_ranking(rer, source_of), qrels[q]))
                print(f"  L2 {name:<14} {agg:<8} alpha {alpha}: {np.mean(vals):.4f}")


if __name__ == "__main__":
    main()
