"""SciFact through the PostgreSQL backend vs the local engine, on a copied library.

    nice -n 10 python bench/pg_scifact.py [--eval ../shared/eval] [--data-dir DIR]
                                          [--database-url postgresql://...] [--split test] [--out FILE]

1. The local SciFact library in --data-dir (ingested there first when it is not: slow, about
   a quarter of an hour on 2 cores; rerun with the same --data-dir to reuse it).
2. `copy_library` (what `python -m ingest --copy-to` runs) into an empty database (default:
   a throwaway pgserver): its time and its own check.
3. The same funnel as `python -m rag.eval retrieval` (settings' defaults, dense_k/sparse_k
   >= 200) on both stores, and on PostgreSQL with the HNSW index forced (exact_max=0):
   nDCG@10 etc. per stage, and the difference to local.
4. Identical search results on every query of the split: the final top-10 (chunk ids in
   order) and each stage's candidate list (vids in order, equal scores allowed either way).
5. Latency of the whole funnel per query (query vectors embedded beforehand, so the figures
   are the store's and the funnel's, not the model's): p50/p95 both ways.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pg_bench import CachedEmbedder, pct, pg_url, report, stop_servers  # noqa: E402
from ingest.pipeline import ingest_paths  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.eval import evaluate_retrieval, load_beir  # noqa: E402
from rag.factory import funnel_config, reranker_from_settings  # noqa: E402
from rag.retrieve import Retriever, with_config  # noqa: E402
from rag.store import LocalStore  # noqa: E402
from rag.store.copy import copy_library, same_ranking  # noqa: E402

def retriever_for(store, embedder, settings: Settings) -> Retriever:
    """The funnel `python -m rag.eval retrieval` runs."""
    r = Retriever(store, embedder, funnel_config(settings), reranker_from_settings(settings, store, embedder))
    return with_config(r, dense_k=max(r.config.dense_k, 200), sparse_k=max(r.config.sparse_k, 200))

def compare(a: Retriever, b: Retriever, queries: dict[str, str]) -> dict:
    """Per query: is the final top-10 the same, and is each stage's candidate list?"""
    same_top, same_stage, differing = 0, {}, []
    for qid, text in queries.items():
        ra, rb = a.search(text, k=10), b.search(text, k=10)
        top = [h.chunk.id for h in ra.hits] == [h.chunk.id for h in rb.hits]
        same_top += top
        stages_ok = True
        for stage, lst in ra.candidates.items():
            ok = stage in rb.candidates and same_ranking(lst, rb.candidates[stage])
            same_stage[stage] = same_stage.get(stage, 0) + ok
            stages_ok &= ok
        if not (top and stages_ok):
            differing.append(qid)
    return {"queries": len(queries), "identical_top10": same_top, "identical_stage_lists": same_stage,
            "differing_queries": differing[:20]}

def latency(r: Retriever, queries: list[str]) -> dict:
    times = []
    for q in queries:
        t = time.perf_counter()
        r.search(q, k=10)
        times.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": round(pct(times, 50), 2), "p95_ms": round(pct(times, 95), 2)}

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "eval")
    ap.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "rag-scifact-local")
    ap.add_argument("--database-url", help="an empty database (default: a throwaway pgserver)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    scifact = args.eval / "scifact"
    embedder = CachedEmbedder()
    settings = Settings.load(data_dir=args.data_dir, database_url="")
    local = LocalStore(args.data_dir)
    if not local.version():
        t = time.perf_counter()
        ingest_paths([scifact / "corpus.jsonl"], settings, embedder=embedder)
        print(f"local ingest {time.perf_counter() - t:.0f} s", file=sys.stderr)
    queries, qrels = load_beir(scifact, args.split)
    embedder.embed(list(queries.values()))  # once; every later search reuses these vectors
    stack: list = []
    out: dict = {"split": args.split, "queries": len(queries)}
    try:
        url = pg_url(args, stack)
        from rag.store.postgres import PgStore

        copy = copy_library(local, PgStore(url), queries=len(queries))
        out["copy"] = {"seconds": round(copy.seconds, 1), "documents": copy.documents, "chunks": copy.chunks,
                       "check": {k: v for k, v in copy.check.items() if k != "counts"}}
        print(json.dumps(out["copy"]), file=sys.stderr)
        pg_settings = Settings.load(data_dir=args.data_dir, database_url=url)
        t = time.perf_counter()
        PgStore(url).ensure_hnsw()  # SciFact is below exact search's limit: no index until asked
        out["hnsw_build_s"] = round(time.perf_counter() - t, 1)
        runs = {"local": retriever_for(local, embedder, settings),
                "postgres": retriever_for(PgStore(url, exact_max=pg_settings.pg_exact_max_chunks), embedder,
                                          pg_settings),
                "postgres_hnsw": retriever_for(PgStore(url, exact_max=0), embedder, pg_settings)}
        for name, r in runs.items():
            r.search("warm up", k=1)
            result = evaluate_retrieval(r, queries, qrels)
            out[name] = {"dense": r.store.snapshot().manifest["dense"]["kind"], "metrics": result["metrics"]}
            print(name, json.dumps(result["metrics"]), file=sys.stderr)
        for name in ("postgres", "postgres_hnsw"):
            out[f"{name}_minus_local_ndcg@10"] = {
                stage: round(m["ndcg@10"] - out["local"]["metrics"][stage]["ndcg@10"], 4)
                for stage, m in out[name]["metrics"].items()}
            out[f"{name}_vs_local_identical"] = compare(runs["local"], runs[name], queries)
        texts = list(queries.values())
        for name, r in runs.items():
            out[name]["latency"] = latency(r, texts)
    finally:
        stop_servers(stack)
    report(out, args.out)

if __name__ == "__main__":
    main()
