"""Second funnel study on SciFact TRAIN: BM25 k1/b, MaxSim as a third L1 signal, dense PRF.

    python bench/funnel_study2.py --data-dir DIR   (an index with sentence vectors)
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.funnel_prf import study_parser  # noqa: E402
from rag.embed import MiniLMEmbedder  # noqa: E402
from rag.eval import doc_ranking, load_beir, ndcg_at  # noqa: E402
from rag.retrieve import minmax  # noqa: E402
from rag.store import LocalStore  # noqa: E402
from rag.store.sparse import SparseIndex, analyse  # noqa: E402


def main() -> None:
    ap = study_parser()
    ap.add_argument("--split", default="train")
    args = ap.parse_args()
    store = LocalStore(args.data_dir)
    snap = store.snapshot()
    queries, qrels = load_beir(args.dataset, args.split)
    qids = list(queries)
    src = store.live_sources()
    vids, terms = zip(*[(v, t.split()) for v, t in store.conn.execute("SELECT vid, terms FROM chunks ORDER BY vid")])
    vids = np.array(vids)
    emb = MiniLMEmbedder()
    qv = emb.embed([queries[q] for q in qids])
    dense = [snap.dense.search(qv[i], 200) for i in range(len(qids))]

    def nd(rank_lists):
        return float(np.mean([ndcg_at(doc_ranking(r, src), qrels[q]) for q, r in zip(qids, rank_lists)]))

    def fuse(lists, weights):
        acc = {}
        for (ids, sc), w in zip(lists, weights):
            for v, s in zip(ids.tolist(), minmax(sc).tolist() if len(sc) else []):
                acc[v] = acc.get(v, 0.0) + w * s
        return sorted(acc, key=lambda v: -acc[v])

    print("dense", round(nd([d[0] for d in dense]), 4))
    best_bm = None
    for k1, b in itertools.product([0.9, 1.2, 1.5], [0.4, 0.6, 0.75, 0.9]):
        sp = SparseIndex.build(list(terms), vids, k1=k1, b=b)
        bm = [sp.search(analyse(queries[q]), 200) for q in qids]
        f = nd([fuse([d, s], [1, 1]) for d, s in zip(dense, bm)])
        print(f"bm25 k1={k1} b={b}: alone {nd([s[0] for s in bm]):.4f} fused {f:.4f}")
        if best_bm is None or f > best_bm[0]:
            best_bm = (f, k1, b, bm)
    f0, k1, b, bm = best_bm
    print("best bm25", k1, b, round(f0, 4))
    # MaxSim over the union of candidates as a third signal
    ms_lists = []
    for i, q in enumerate(qids):
        cand = sorted(set(dense[i][0].tolist()) | set(bm[i][0].tolist()))
        ids = [r[0] for r in store.conn.execute(
            f"SELECT id FROM chunks WHERE vid IN ({','.join(map(str, cand))}) ORDER BY vid")]
        sv = store.sentence_vectors(ids, 384)
        scores = np.array([float((sv[c] @ qv[i]).max()) if c in sv else 0.0 for c in ids])
        ms_lists.append((np.array(cand), scores))
    print("maxsim alone over candidates", round(nd([l[0][np.argsort(-l[1])] for l in ms_lists]), 4))
    for wm in [0.25, 0.5, 0.75, 1.0, 1.5]:
        for wd in [0.5, 1.0]:
            print(f"3-signal wd={wd} ws=1 wm={wm}:",
                  round(nd([fuse([d, s, m], [wd, 1, wm]) for d, s, m in zip(dense, bm, ms_lists)]), 4))
    # Dense pseudo-relevance feedback (Rocchio on the fused top-3 chunks)
    for beta in [0.25, 0.5, 1.0]:
        lists = []
        for i in range(len(qids)):
            top = fuse([dense[i], bm[i]], [1, 1])[:3]
            vecs = np.vstack(list(store.chunk_vectors(
                [r[0] for r in store.conn.execute(f"SELECT id FROM chunks WHERE vid IN ({','.join(map(str, top))})")]
            ).values()))
            q2 = qv[i] + beta * vecs.mean(axis=0)
            q2 /= np.linalg.norm(q2)
            lists.append(fuse([snap.dense.search(q2, 200), bm[i]], [1, 1]))
        print(f"dense PRF beta={beta}:", round(nd(lists), 4))


if __name__ == "__main__":
    main()
