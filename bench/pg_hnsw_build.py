"""pgvector's HNSW build alone: time and recall for build parameters, interleaved.

    .venv/bin/python bench/pg_hnsw_build.py --embed-cache vectors.npz [--vectors 28860]
        [--rounds 2] [--variants w2e128,w2e64] [--queries 300]

The vectors are bench/pg_ingest.py's embed cache (SciFact chunks, MiniLM), repeated with
Gaussian noise as its `--base-copies` are until there are --vectors of them, in a table on a
throwaway pgserver. Each variant ("w<maintenance workers>e<ef_construction>", m 16, 512MB
build memory) drops and builds the index, then searches the first --queries SciFact queries at
pgvector's default ef_search (40, LIMIT 10) and at the store's (400, LIMIT 200), and reports
recall@10 against exact search. The variants take turns, reversed every other round.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pg_bench import start_server, stop_servers  # noqa: E402
from bench.pg_scale import recall  # noqa: E402


def library(cache: Path, n: int, seed: int = 0) -> np.ndarray:
    base = np.load(cache)["vectors"].astype(np.float32)
    rng = np.random.default_rng(seed)
    parts, have = [], 0
    while have < n:
        noise = rng.normal(0, 0.5 / np.sqrt(base.shape[1]), base.shape).astype(np.float32) if parts else 0
        v = base + noise
        parts.append(v / np.linalg.norm(v, axis=1, keepdims=True))
        have += len(v)
    return np.concatenate(parts)[:n]


def literal(v: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in v) + "]"


def searched(conn, queries: np.ndarray, ef_search: int, limit: int) -> list[list[int]]:
    """Each query's ids through the HNSW index, nearest first."""
    conn.execute(f"SET hnsw.ef_search = {ef_search}")
    return [[r[0] for r in conn.execute("SELECT id FROM t ORDER BY e <=> %s::vector LIMIT %s",
                                        (literal(q), limit))] for q in queries]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embed-cache", type=Path, required=True, help="bench/pg_ingest.py's --embed-cache file")
    ap.add_argument("--eval", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "eval")
    ap.add_argument("--vectors", type=int, default=28_860)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--variants", default="w2e128,w2e64")
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    import psycopg

    from rag.embed import MiniLMEmbedder

    x = library(args.embed_cache, args.vectors)
    texts = [json.loads(line)["text"] for line in open(args.eval / "scifact" / "queries.jsonl")][:args.queries]
    queries = np.asarray(MiniLMEmbedder().embed(texts), dtype=np.float32)
    exact = np.argsort(-(queries @ x.T), axis=1)[:, :10].tolist()
    variants = args.variants.split(",")
    out: dict = {"vectors": len(x), "queries": len(queries), "runs": {v: [] for v in variants}}
    stack: list = []
    try:
        with psycopg.connect(start_server(stack), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute(f"CREATE TABLE t (id bigint PRIMARY KEY, e vector({x.shape[1]}))")
            with conn.cursor().copy("COPY t (id, e) FROM STDIN") as copy:
                for i, v in enumerate(x):
                    copy.write_row((i, literal(v)))
            conn.execute("VACUUM ANALYZE t")
            conn.execute("SET maintenance_work_mem = '512MB'")
            for r in range(args.rounds):
                for var in variants if r % 2 == 0 else variants[::-1]:
                    workers, ef = (int(p) for p in var[1:].split("e"))
                    conn.execute("DROP INDEX IF EXISTS h")
                    conn.execute(f"SET max_parallel_maintenance_workers = {workers}")
                    t = time.perf_counter()
                    conn.execute(f"CREATE INDEX h ON t USING hnsw (e vector_cosine_ops) "
                                 f"WITH (m = 16, ef_construction = {ef})")
                    run = {"build_s": round(time.perf_counter() - t, 2),
                           "recall@10 ef_search 40": recall(searched(conn, queries, 40, 10), exact, 10),
                           "recall@10 ef_search 400 (k 200)": recall(searched(conn, queries, 400, 200), exact, 10)}
                    out["runs"][var].append(run)
                    print(f"round {r} {var}: {run}", file=sys.stderr, flush=True)
    finally:
        stop_servers(stack)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
