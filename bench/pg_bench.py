"""PostgreSQL store vs local store on the same corpus: search latency and HNSW recall.

    python bench/pg_bench.py [--eval ../shared/eval] [--docs 2000] [--queries 300]
                             [--database-url postgresql://...]   (default: a throwaway pgserver)

1. Ingests the first --docs SciFact documents into both stores (each text is embedded once;
   the second ingest reuses the vectors, so its time is the store's).
2. Runs the SciFact queries through the default funnel (Retriever.search) on each store,
   query vectors precomputed: p50/p95 of the whole search and of the dense step alone, and
   the PostgreSQL/local ratio.
3. Recall@10 of pgvector's HNSW index (exact_max=0) against exact search on the same vectors.
"""
from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.pipeline import ingest_paths  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.embed import MiniLMEmbedder  # noqa: E402
from rag.retrieve import Retriever  # noqa: E402
from rag.store import LocalStore  # noqa: E402


class CachedEmbedder:
    """The packaged MiniLM, remembering every text it embedded: the second store's ingest and
    the timed searches then measure the store, not the model."""

    def __init__(self):
        self.inner = MiniLMEmbedder()
        self.cache: dict[str, np.ndarray] = {}

    @property
    def id(self) -> str:
        return self.inner.id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def load(self, path: Path) -> None:
        """Vectors saved by `save` (an .npz of texts and vectors; no pickles), model unchanged."""
        if path.exists():
            with np.load(path, allow_pickle=False) as f:
                self.cache.update(zip(f["texts"].tolist(), f["vectors"]))

    def save(self, path: Path) -> None:
        texts = list(self.cache)
        np.savez(path, texts=np.asarray(texts, dtype=str),
                 vectors=np.vstack([self.cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32))

    def embed(self, texts):
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.inner.embed(missing)))
        return np.vstack([self.cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def time_searches(retriever: Retriever, queries: list[str], qvecs: np.ndarray) -> dict:
    total, dense = [], []
    snap = retriever.store.snapshot()
    for q, v in zip(queries, qvecs):
        t = time.perf_counter()
        snap.dense.search(v, retriever.config.dense_k)
        dense.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        retriever.search(q, k=10)
        total.append((time.perf_counter() - t) * 1000)
    return {"search_p50_ms": pct(total, 50), "search_p95_ms": pct(total, 95),
            "dense_p50_ms": pct(dense, 50), "dense_p95_ms": pct(dense, 95),
            "dense_kind": snap.manifest["dense"]["kind"], "chunks": len(snap.dense)}


def stop_servers(stack: list) -> None:
    """Stop the throwaway pgservers that pg_url started and remove their folders."""
    for server, root in stack:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def report(out: dict, path: Path | None) -> None:
    """The figures as JSON on stdout, and in `path` too when given."""
    print(json.dumps(out, indent=2))
    if path:
        path.write_text(json.dumps(out, indent=2) + "\n")


def start_server(stack: list) -> str:
    """A throwaway pgserver (stopped by stop_servers): its admin URL."""
    import pgserver

    root = Path(tempfile.mkdtemp(prefix="rag-pg-bench-"))
    t = time.perf_counter()
    server = pgserver.get_server(root / "pg", cleanup_mode="delete")
    print(f"pgserver started in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    stack.append((server, root))
    return server.get_uri()


def pg_url(args, stack: list) -> str:
    """--database-url, else a "bench" database on a throwaway pgserver."""
    if args.database_url:
        return args.database_url
    import psycopg

    admin = start_server(stack)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE DATABASE bench")
    return stack[-1][0].get_uri("bench")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "eval")
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--database-url")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    scifact = args.eval / "scifact"
    tmp = Path(tempfile.mkdtemp(prefix="pg-bench-"))
    corpus = tmp / "corpus.jsonl"
    with open(scifact / "corpus.jsonl") as src, open(corpus, "w") as dst:
        dst.writelines(itertools.islice(src, args.docs))
    queries = [json.loads(line)["text"] for line in itertools.islice(open(scifact / "queries.jsonl"), args.queries)]
    embedder = CachedEmbedder()
    qvecs = embedder.embed(queries)
    stack: list = []
    out: dict = {"docs": args.docs, "queries": len(queries)}
    try:
        url = pg_url(args, stack)
        for name, settings in [("local", Settings.load(data_dir=tmp / "data")),
                               ("postgres", Settings.load(data_dir=tmp / "data-pg", database_url=url))]:
            t = time.perf_counter()
            report = ingest_paths([corpus], settings, embedder=embedder)
            out[f"{name}_ingest_s"] = round(time.perf_counter() - t, 2)
            print(f"{name}: ingested {sum(f.chunks for f in report.files)} chunks in "
                  f"{out[f'{name}_ingest_s']} s", file=sys.stderr)
        local = Retriever(LocalStore(tmp / "data"), embedder)
        from rag.store.postgres import PgStore

        pg_exact = Retriever(PgStore(url), embedder)
        pg_hnsw = Retriever(PgStore(url, exact_max=0), embedder)
        pg_hnsw.store.ensure_hnsw()  # below exact search's limit no publish builds it
        for r in (local, pg_exact, pg_hnsw):  # load snapshots, warm caches
            r.search(queries[0], k=10)
        t = time.perf_counter()
        PgStore(url).snapshot()
        out["postgres_snapshot_load_s"] = round(time.perf_counter() - t, 3)
        for name, r in (("local", local), ("postgres_exact", pg_exact), ("postgres_hnsw", pg_hnsw)):
            out[name] = time_searches(r, queries, qvecs)
        for name in ("postgres_exact", "postgres_hnsw"):
            out[f"{name}_vs_local_p50"] = round(out[name]["search_p50_ms"] / out["local"]["search_p50_ms"], 2)
            out[f"{name}_vs_local_p95"] = round(out[name]["search_p95_ms"] / out["local"]["search_p95_ms"], 2)
        exact, hnsw = pg_exact.store.snapshot().dense, pg_hnsw.store.snapshot().dense
        recalls = [len(set(exact.search(v, 10)[0]) & set(hnsw.search(v, 10)[0])) / 10 for v in qvecs]
        out["hnsw_recall_at_10"] = round(float(np.mean(recalls)), 4)
    finally:
        stop_servers(stack)
        shutil.rmtree(tmp, ignore_errors=True)
    report(out, args.out)


if __name__ == "__main__":
    main()
