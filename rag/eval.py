"""Evaluation: `python -m rag.eval retrieval --dataset DIR [--data-dir DIR] [--split test]`,
`python -m rag.eval answers --set FILE --data-dir DIR` and `python -m rag.eval calibrate`
(both in rag/answer/evaluate.py).

Retrieval on a BEIR-layout dataset (corpus.jsonl, queries.jsonl, qrels/<split>.tsv):
nDCG@10, recall@10, recall@100 and MRR@10 for BM25 alone, dense alone, the pseudo-relevance
feedback dense pass (when on), fused and reranked,
at document level (a document's score is its best chunk's), plus per-stage latency.
The corpus is ingested into --data-dir first (a no-op when it is already there).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np


def load_beir(folder: Path, split: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(folder / "qrels" / f"{split}.tsv", encoding="utf-8") as f:
        next(f)
        for line in f:
            qid, did, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels.setdefault(qid, {})[did] = int(score)
    queries = {}
    with open(folder / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            if q["_id"] in qrels:
                queries[q["_id"]] = q["text"]
    return queries, qrels


def ndcg_at(ranked: list[str], rels: dict[str, int], k: int = 10) -> float:
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(rels.values(), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], rels: dict[str, int], k: int) -> float:
    return len(set(ranked[:k]) & set(rels)) / len(rels) if rels else 0.0


def mrr_at(ranked: list[str], rels: dict[str, int], k: int = 10) -> float:
    for i, d in enumerate(ranked[:k]):
        if d in rels:
            return 1.0 / (i + 1)
    return 0.0


def doc_ranking(vids, source_of: dict[int, str]) -> list[str]:
    """Chunk ranking -> document ranking (first = best chunk), duplicates dropped."""
    seen, out = set(), []
    for v in vids:
        s = source_of.get(int(v))
        if s is not None and s not in seen:
            seen.add(s)
            out.append(s)
    return out


def metrics(rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    rows = [(ndcg_at(r, qrels[q]), recall_at(r, qrels[q], 10), recall_at(r, qrels[q], 100), mrr_at(r, qrels[q]))
            for q, r in rankings.items()]
    arr = np.array(rows) if rows else np.zeros((0, 4))
    return {name: round(float(arr[:, i].mean()), 4) if len(arr) else 0.0
            for i, name in enumerate(["ndcg@10", "recall@10", "recall@100", "mrr@10"])}


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"p50": round(float(np.percentile(values, 50)), 2), "p95": round(float(np.percentile(values, 95)), 2)}


def evaluate_retrieval(retriever, queries: dict[str, str], qrels, depth: int = 100) -> dict:
    store = retriever.store
    source_of = store.live_sources()
    runs: dict[str, dict[str, list[str]]] = {"bm25": {}, "dense": {}, "dense_prf": {}, "fused": {}}
    if retriever.reranker is not None:
        runs["reranked"] = {}
    stage_ms: dict[str, list[float]] = {}
    for qid, text in queries.items():
        res = retriever.search(text, k=depth, select=False)
        for stage, ms in res.timings_ms.items():
            stage_ms.setdefault(stage, []).append(ms)
        for stage in ("bm25", "dense", "dense_prf", "fused"):
            if stage in res.candidates:
                runs[stage][qid] = doc_ranking(res.candidates[stage][0], source_of)
        if retriever.reranker is not None:
            runs["reranked"][qid] = _dedupe([h.source for h in res.hits])
    return {
        "queries": len(queries),
        "reranker": retriever.reranker_name,
        "config": retriever.config.__dict__,
        "metrics": {name: metrics(r, qrels) for name, r in runs.items() if r},
        "latency_ms": {stage: percentiles(v) for stage, v in stage_ms.items()},
    }


def _dedupe(sources: list[str]) -> list[str]:
    seen: set[str] = set()
    return [s for s in sources if not (s in seen or seen.add(s))]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in {"answers", "calibrate"}:
        from rag.answer.evaluate import answers_main, calibrate_main

        return (answers_main if argv[0] == "answers" else calibrate_main)(argv[1:])
    from ingest.pipeline import ingest_paths
    from rag.config import Settings
    from rag.errors import RagError
    from rag.factory import build_retriever
    from rag.retrieve import with_config

    ap = argparse.ArgumentParser(prog="python -m rag.eval")
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("retrieval", help="retrieval quality and latency on a BEIR-layout dataset")
    r.add_argument("--dataset", type=Path, required=True)
    r.add_argument("--data-dir", type=Path, help="index folder (default: <dataset>/../<name>-index in ./data)")
    r.add_argument("--split", default="test")
    r.add_argument("--limit", type=int, help="only the first N queries")
    r.add_argument("--json", action="store_true")
    r.add_argument("--reranker", help="none | maxsim | cross-encoder | remote (default: settings)")
    r.add_argument("--fusion", choices=["rrf", "score"], help="L1 fusion (default: settings)")
    r.add_argument("--no-ingest", action="store_true", help="evaluate the index as it is")
    r.add_argument("--rerank-m", type=int, help="candidates the L2 stage sees (default: settings)")
    r.add_argument("--w-rerank", type=float, help="L2 weight in the final blend (default: settings)")
    r.add_argument("--prf-k", type=int, help="dense pseudo-relevance feedback chunks, 0 = off (default: settings)")
    r.add_argument("--prf-alpha", type=float, help="weight of the feedback centroid in the query (default: settings)")
    r.add_argument("--w-prf", type=float, help="weight of the feedback dense pass in fusion (default: settings)")
    args = ap.parse_args(argv)
    try:
        data_dir = args.data_dir or Path("data") / f"eval-{args.dataset.name}"
        settings = Settings.load(data_dir=data_dir, reranker=args.reranker, fusion=args.fusion,
                                 rerank_m=args.rerank_m, w_rerank=args.w_rerank, prf_k=args.prf_k,
                                 prf_alpha=args.prf_alpha, w_prf=args.w_prf)
        if not args.no_ingest:
            report = ingest_paths([args.dataset / "corpus.jsonl"], settings, progress=None)
            if report.failed:
                print(f"warning: {report.failed[0].message}", file=sys.stderr)
        queries, qrels = load_beir(args.dataset, args.split)
        if args.limit:
            queries = dict(list(queries.items())[:args.limit])
        retriever = build_retriever(settings)
        retriever = with_config(retriever, dense_k=max(retriever.config.dense_k, 200),
                                sparse_k=max(retriever.config.sparse_k, 200))
        retriever.search("warm up", k=1)
        result = evaluate_retrieval(retriever, queries, qrels)
    except RagError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    result.update({"dataset": str(args.dataset), "split": args.split,
                   "index_version": retriever.store.version()})
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.dataset.name} {args.split}: {result['queries']} queries, reranker {result['reranker']}")
        print(f"{'stage':<10}" + "".join(f"{m:>12}" for m in ["ndcg@10", "recall@10", "recall@100", "mrr@10"]))
        for stage, m in result["metrics"].items():
            print(f"{stage:<10}" + "".join(f"{v:>12.4f}" for v in m.values()))
        print("latency ms: " + ", ".join(f"{s} p50 {v['p50']} p95 {v['p95']}" for s, v in result["latency_ms"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
