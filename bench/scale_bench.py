"""Scale benchmark on synthetic corpora: random unit vectors and generated text (no model).

    python bench/scale_bench.py [--sizes 10000 100000 1000000] [--queries 50]

Per size: index build time (FAISS exact, FAISS IVF, BM25), query latency p50/p95 per stage
(dense exact, dense IVF, bm25s, fusion), resident memory, IVF recall@10 against exact search,
and at <= 100k chunks rank-bm25's query latency as the baseline for the BM25 speed-up
(with a parity check: the same top-10 scores, which is insensitive to how ties are ordered).
"""
from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.retrieve import FunnelConfig, fuse  # noqa: E402
from rag.store.dense import DenseIndex  # noqa: E402
from rag.store.sparse import SparseIndex  # noqa: E402

DIM = 384


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_terms(n: int, rng: np.random.Generator, vocab_size: int = 50_000, length: int = 60) -> list[list[str]]:
    """Words from a bounded Zipf distribution (p ~ 1/rank^1.1, like real text), already analysed
    into terms. Terms share one string object per vocabulary entry, so 1M chunks fit in memory."""
    vocab = [f"w{i}" for i in range(vocab_size)]
    p = 1.0 / np.arange(1, vocab_size + 1) ** 1.1
    cdf = np.cumsum(p / p.sum())
    out = []
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        ranks = np.minimum(np.searchsorted(cdf, rng.random((m, length))), vocab_size - 1)
        out.extend([vocab[i] for i in row] for row in ranks.tolist())
    return out


def synthetic_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    """n unit vectors clustered by topic (n // 500 centres, at least 20): uniform random
    vectors would make "top-10" pure noise."""
    centers = rng.standard_normal((max(n // 500, 20), DIM), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    vectors = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        noise = rng.standard_normal((m, DIM), dtype=np.float32) / np.sqrt(DIM)
        vectors[start:start + m] = centers[rng.integers(0, len(centers), m)] + 1.0 * noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def pct(values: list[float]) -> dict:
    return {"p50": round(float(np.percentile(values, 50)), 2), "p95": round(float(np.percentile(values, 95)), 2)}


def run(n: int, n_queries: int, rng: np.random.Generator, rank_bm25_max: int) -> dict:
    out: dict = {"chunks": n}
    base_rss = rss_mb()
    vectors = synthetic_vectors(n, rng)
    vids = np.arange(1, n + 1, dtype=np.int64)
    terms = synthetic_terms(n, rng)
    out["data_rss_mb"] = round(rss_mb() - base_rss)

    t = time.perf_counter()
    exact = DenseIndex.build(vectors, vids, DIM)
    out["build_s"] = {"faiss_exact": round(time.perf_counter() - t, 2)}
    t = time.perf_counter()
    sparse = SparseIndex.build(terms, vids)
    out["build_s"]["bm25s"] = round(time.perf_counter() - t, 2)
    ivf = None
    if n >= 100_000:
        t = time.perf_counter()
        ivf = DenseIndex.build(vectors, vids, DIM, ann_threshold=1)
        out["build_s"]["faiss_ivf"] = round(time.perf_counter() - t, 2)
    out["rss_mb_after_build"] = round(rss_mb())

    # Queries: near-duplicates of stored vectors (so there is a true neighbourhood), and
    # text queries of 5 terms drawn from stored chunks.
    picks = rng.choice(n, size=n_queries, replace=False)
    qvecs = vectors[picks] + 0.5 * rng.standard_normal((n_queries, DIM), dtype=np.float32) / np.sqrt(DIM)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    common = {f"w{i}" for i in range(50)}  # the Zipf head behaves like stop words: not query terms
    qterms = [list(rng.choice([t for t in terms[i] if t not in common] or terms[i], size=5)) for i in picks]
    lat: dict[str, list[float]] = {"dense_exact": [], "dense_ivf": [], "bm25s": [], "fuse": [], "total_exact": []}
    recalls = []
    for qv, qt in zip(qvecs, qterms):
        t0 = time.perf_counter()
        d = exact.search(qv, 200)
        t1 = time.perf_counter()
        s = sparse.search(qt, 200)
        t2 = time.perf_counter()
        fuse({"dense": d, "bm25": s}, FunnelConfig())
        t3 = time.perf_counter()
        lat["dense_exact"].append((t1 - t0) * 1000)
        lat["bm25s"].append((t2 - t1) * 1000)
        lat["fuse"].append((t3 - t2) * 1000)
        lat["total_exact"].append((t3 - t0) * 1000)
        if ivf is not None:
            t0 = time.perf_counter()
            a = ivf.search(qv, 10)
            lat["dense_ivf"].append((time.perf_counter() - t0) * 1000)
            recalls.append(len(set(a[0][:10]) & set(d[0][:10])) / 10)
    out["latency_ms"] = {k: pct(v) for k, v in lat.items() if v}
    if recalls:
        out["ivf_recall@10_vs_exact"] = round(float(np.mean(recalls)), 4)
        out["ivf_nprobe"] = ivf.nprobe
    if n <= rank_bm25_max:
        from rank_bm25 import BM25Okapi

        t = time.perf_counter()
        ref = BM25Okapi(terms)
        out["build_s"]["rank_bm25"] = round(time.perf_counter() - t, 2)
        ref_ms, agree = [], []
        robertson = SparseIndex.build(terms, vids, method="robertson", k1=1.5, b=0.75)
        for qt in qterms[:10]:
            t0 = time.perf_counter()
            scores = ref.get_scores(qt)
            ref_ms.append((time.perf_counter() - t0) * 1000)
            ref_top10 = np.sort(scores)[::-1][:10]
            ours_top10 = robertson.search(qt, 10)[1] * (1.5 + 1)  # bm25s drops the (k1+1) factor
            agree.append(float(np.allclose(ours_top10, ref_top10[:len(ours_top10)], rtol=1e-3)))
        out["rank_bm25_query_ms"] = pct(ref_ms)
        out["bm25s_speedup_vs_rank_bm25_p50"] = round(out["rank_bm25_query_ms"]["p50"] /
                                                       max(out["latency_ms"]["bm25s"]["p50"], 1e-3), 1)
        out["bm25_top10_score_parity_robertson"] = round(float(np.mean(agree)), 3)  # share of queries
        del ref
    del exact, ivf, sparse, vectors, terms
    gc.collect()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--rank-bm25-max", type=int, default=100_000)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rng = np.random.default_rng(42)
    results = []
    for n in args.sizes:
        r = run(n, args.queries, rng, args.rank_bm25_max)
        print(json.dumps(r), flush=True)
        results.append(r)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
