"""Ingest throughput into PostgreSQL vs the local store, same machine, same documents.

    nice -n 10 python bench/pg_ingest.py [--eval ../shared/eval] [--docs 1000] [--model-docs 300]
                                         [--repeats 2] [--database-url postgresql://...]

1. Store only: the first --docs SciFact documents, their chunk vectors embedded once beforehand
   (a warm-up ingest fills a cache), then ingested --repeats times into a fresh local data dir
   and a fresh PostgreSQL database, alternating: what each store adds to an ingest (chunking,
   writing rows and vectors, publishing, building BM25/FAISS or pgvector's HNSW).
2. Store only, past exact search: the same, into libraries that already hold --base-docs
   other documents, with RAG_PG_EXACT_MAX_CHUNKS=0 so that PostgreSQL has its HNSW index
   already (as a library past 20,000 chunks does): the run's vectors wait outside it and its
   publish inserts them, or rebuilds the index when they are a quarter of the library or more
   (here 2,482 chunks into 1,240: a rebuild).
3. With the model: the first --model-docs documents ingested with the packaged MiniLM each
   time (nothing cached), as a user sees it; embedding dominates.
Prints documents/s and chunks/s both ways and the ratio PostgreSQL/local (target >= 0.8), and
that ratio with each run given the median embedding time of all (the model's time for the same
texts varies more than the stores differ when the machine is shared).
"""
from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pg_bench import CachedEmbedder, report, start_server, stop_servers  # noqa: E402
from ingest.pipeline import ingest_paths  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.embed import MiniLMEmbedder  # noqa: E402


def fresh_db(admin_url: str) -> str:
    import psycopg

    name = f"ingest_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base, _, query = admin_url.partition("?")
    return base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")


def timed_ingest(corpus: Path, settings: Settings, embedder) -> dict:
    t = time.perf_counter()
    report = ingest_paths([corpus], settings, embedder=embedder)
    seconds = time.perf_counter() - t
    assert not report.failed, report.failed[0].message
    docs = sum(f.documents for f in report.files)
    chunks = sum(f.chunks for f in report.files)
    return {"seconds": round(seconds, 2), "docs_per_s": round(docs / seconds, 1),
            "chunks_per_s": round(chunks / seconds, 1), "timings": {k: round(v, 2) for k, v in report.timings.items()},
            "docs": docs, "chunks": chunks}


def compare(corpus: Path, embedder, repeats: int, admin_url: str, tmp: Path, base: Path | None = None,
            exact_max: int | None = None) -> dict:
    runs: dict[str, list[dict]] = {"local": [], "postgres": []}
    for i in range(repeats):
        order = ("local", "postgres") if i % 2 == 0 else ("postgres", "local")
        for name in order:
            url = fresh_db(admin_url) if name == "postgres" else ""
            settings = Settings.load(data_dir=tmp / f"{name}-{i}", database_url=url, pg_exact_max_chunks=exact_max)
            if base is not None:  # untimed: the library this ingest adds to
                ingest_paths([base], settings, embedder=embedder)
            runs[name].append(timed_ingest(corpus, settings, embedder))
            print(name, json.dumps(runs[name][-1]), file=sys.stderr)
    median = {name: statistics.median(r["seconds"] for r in rs) for name, rs in runs.items()}
    # On a shared machine the model's time for the same texts varies more than the stores
    # differ: the ratio again with every run given the median embedding time of all runs.
    embed = statistics.median(r["timings"]["embed"] for rs in runs.values() for r in rs)
    rest = {name: statistics.median(r["seconds"] - r["timings"]["embed"] for r in rs) for name, rs in runs.items()}
    return {"runs": runs, "median_s": median,
            "throughput_ratio_pg_over_local": round(median["local"] / median["postgres"], 3),
            "median_embed_s": round(embed, 2), "median_rest_s": {k: round(v, 2) for k, v in rest.items()},
            "ratio_at_equal_embedding": round((embed + rest["local"]) / (embed + rest["postgres"]), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "eval")
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--model-docs", type=int, default=300)
    ap.add_argument("--base-docs", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--database-url", help="a server where this may CREATE DATABASE (default: a throwaway pgserver)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="rag-ingest-bench-"))
    stack: list = []
    out: dict = {}
    try:
        admin_url = args.database_url or start_server(stack)
        src = args.eval / "scifact" / "corpus.jsonl"
        base = tmp / "base.jsonl"  # the documents after the first --docs
        with open(src) as f, open(base, "w") as dst:
            dst.writelines(itertools.islice(f, args.docs, args.docs + args.base_docs))
        for name, n in (("store_only", args.docs), ("store_only_past_exact", args.docs),
                        ("with_model", args.model_docs)):
            corpus = tmp / f"{name}.jsonl"
            with open(src) as f, open(corpus, "w") as dst:
                dst.writelines(itertools.islice(f, n))
            if name == "store_only":
                embedder = CachedEmbedder()
                ingest_paths([corpus, base], Settings.load(data_dir=tmp / "warm-up", database_url=""),
                             embedder=embedder)
            elif name == "with_model":
                embedder = MiniLMEmbedder()
            past = name == "store_only_past_exact"
            out[name] = compare(corpus, embedder, args.repeats, admin_url, tmp / name,
                                base=base if past else None, exact_max=0 if past else None)
            print(f"{name}: {n} docs, PostgreSQL/local throughput {out[name]['throughput_ratio_pg_over_local']}",
                  file=sys.stderr)
    finally:
        stop_servers(stack)
        shutil.rmtree(tmp, ignore_errors=True)
    report(out, args.out)


if __name__ == "__main__":
    main()
