"""Query latency at scale through the real PostgreSQL backend and the app's whole funnel.

    nice -n 10 python bench/pg_scale.py [--sizes 5000 100000] [--queries 100] [--out FILE]
                                        [--database-url postgresql://...]  (default: a throwaway pgserver)

Per size: synthetic chunks as in bench/scale_bench.py (clustered random 384-d unit vectors, 60
Zipf-distributed terms per chunk as its text; no model), 10 chunks per document.

1. Load, through the store's real write path (no bulk path: 100k chunks take about a minute
   this way, so the figures are what an ingest pays): `add_pending` in batches of 4,090 chunks
   (409 whole documents; the ingest default is 4,096), each one transaction with the terms
   analysed as at ingest, under `writer()`; then one `publish`, which builds the HNSW index
   (`ensure_hnsw`, timed on its own, with pgvector's notices) when the library is past exact
   search (RAG_PG_EXACT_MAX_CHUNKS, 20,000). The same chunks go into a LocalStore the same way:
   the baseline (SQLite + FAISS exact below 1M chunks + bm25s files).
2. Each library is then opened as a replica opens it, in a fresh process (so its resident
   memory is its own): `open_store(Settings)` and the funnel `build_retriever` would make
   (dense_k/sparse_k 200, score fusion, dense PRF k=2, reranker from settings: none by default,
   so no model stage; the query vector is given, not embedded). Timed: the snapshot load of a
   cold replica (vids, bm25s rebuilt from the stored terms; split into its parts afterwards),
   the first query, then --queries queries (noisy copies of stored vectors; 5 terms drawn from
   the same chunk's terms): p50/p95 of each stage the funnel times and of the whole call
   (its index-version check included), and the replica's RSS.
3. HNSW recall@10 against brute-force exact search (a matrix product over the same vectors),
   for the funnel's dense call (k=200, ef_search 400: what the store sets) and for k=10 at
   ef_search 40 (the store's floor) ... 1000, each with its latency. Libraries within exact
   search (5k) are also searched with the HNSW index forced (exact_max=0), as a third replica.
   --hnsw-with builds the index with other parameters, --build-memory gives the build more
   maintenance_work_mem (as an operator would: ALTER DATABASE), --no-local skips the baseline.
Ratios PostgreSQL / local per stage; --out writes everything as JSON (bench/results/ is kept
out of git).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pg_bench import report, start_server, stop_servers  # noqa: E402
from bench.scale_bench import DIM, synthetic_terms, synthetic_vectors  # noqa: E402

CHUNKS_PER_DOC = 10
BATCH_CHUNKS = 4090  # the ingest default is 4,096; whole documents per batch
EF_SWEEP = (40, 100, 200, 400, 1000)
EMBEDDER_ID = "synthetic-384"


def rss() -> dict:
    """This process's resident memory now and at its peak, MB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = round(int(line.split()[1]) / 1024)
    return {"rss_mb": out.get("VmRSS"), "peak_mb": out.get("VmHWM")}


def pct(values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"p50": round(float(np.percentile(v, 50)), 2), "p95": round(float(np.percentile(v, 95)), 2)}


# ------------------------------------------------------------------ the corpus
def corpus(n: int, n_queries: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    vectors = synthetic_vectors(n, rng)
    terms = synthetic_terms(n, rng)
    picks = rng.choice(n, size=n_queries, replace=False)
    qvecs = vectors[picks] + 0.5 * rng.standard_normal((n_queries, DIM), dtype=np.float32) / np.sqrt(DIM)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    common = {f"w{i}" for i in range(50)}  # the Zipf head behaves like stop words: not query terms
    queries = [" ".join(rng.choice([t for t in terms[i] if t not in common] or terms[i], size=5)) for i in picks]
    assert len(set(queries)) == len(queries), "two queries with the same text"
    return {"vectors": vectors, "terms": terms, "qvecs": qvecs.astype(np.float32), "queries": queries}


def load(store, data: dict, n: int, hnsw_with: str | None = None) -> dict:
    """All chunks through add_pending (batches of BATCH_CHUNKS) and one publish, as an ingest.
    `hnsw_with` ("m = 16, ef_construction = 128"): the HNSW index is built with those
    parameters before the publish (which then finds it there), not by the store."""
    from rag.types import Chunk, Document, Page

    vectors, terms = data["vectors"], data["terms"]
    run_id = uuid.uuid4().hex
    timings = {"add_pending_s": 0.0}
    hnsw: dict = {}
    if hasattr(store, "ensure_hnsw"):  # time the index build inside publish on its own
        # pgvector says when its graph outgrows maintenance_work_mem (the build slows down)
        store.conn.add_notice_handler(lambda d: hnsw.setdefault("notices", []).append(d.message_primary))
        inner = store.ensure_hnsw

        def timed_ensure_hnsw():
            t = time.perf_counter()
            built = inner()
            hnsw["s"] = time.perf_counter() - t
            return built
        store.ensure_hnsw = timed_ensure_hnsw
    with store.writer():
        for start in range(0, n, BATCH_CHUNKS):
            items, kinds, sizes = [], {}, {}
            stop = min(n, start + BATCH_CHUNKS)
            for d0 in range(start, stop, CHUNKS_PER_DOC):
                d1 = min(stop, d0 + CHUNKS_PER_DOC)
                doc_id = f"syn{d0:08d}"
                texts = [" ".join(terms[i]) for i in range(d0, d1)]
                page = "\n".join(texts)
                chunks, pos = [], 0
                for o, text in enumerate(texts):
                    chunks.append(Chunk(f"{doc_id}-{o}", doc_id, o, text, 1, pos, pos + len(text)))
                    pos += len(text) + 1
                doc = Document(doc_id, f"synthetic/{doc_id}.txt", doc_id, doc_id, 1)
                items.append((doc, [Page(1, page)], chunks, vectors[d0:d1], [len(terms[i]) for i in range(d0, d1)]))
                kinds[doc_id], sizes[doc_id] = "synthetic", len(page)
            t = time.perf_counter()
            store.add_pending(run_id, items, kinds, "synthetic", sizes)
            timings["add_pending_s"] += time.perf_counter() - t
            if start and start % (BATCH_CHUNKS * 50) == 0:
                print(f"  {type(store).__name__}: {start} chunks added", file=sys.stderr, flush=True)
        if hnsw_with:
            t = time.perf_counter()
            with store.transaction() as conn:
                store._hnsw_build_memory(conn)
                conn.execute(f"CREATE INDEX chunks_embedding_hnsw ON chunks USING hnsw "
                             f"(embedding vector_cosine_ops) WITH ({hnsw_with})")
            hnsw["s"] = time.perf_counter() - t
        t = time.perf_counter()
        store.publish(run_id, embedder_id=EMBEDDER_ID, dim=DIM, chunker_version="synthetic")
        timings["publish_s"] = time.perf_counter() - t
    if "s" in hnsw:
        store.ensure_hnsw = inner
        timings["hnsw_build_s"] = hnsw["s"]
    timings["chunks_per_s"] = n / (timings["add_pending_s"] + timings["publish_s"] + (hnsw["s"] if hnsw_with else 0))
    out = {k: round(v, 2) for k, v in timings.items()}
    if hnsw.get("notices"):
        out["notices"] = hnsw["notices"]
    return out


# ------------------------------------------------------------------ a replica
class GivenVectors:
    """Stands in for the embedder: each query's vector was made beforehand."""

    id = EMBEDDER_ID
    dim = DIM

    def __init__(self, queries: list[str], qvecs: np.ndarray):
        self.by_text = dict(zip(queries, qvecs))

    def embed(self, texts):
        return np.vstack([self.by_text[t] for t in texts])


def replica(args) -> None:
    """Child process: open the library as an app replica does and time the funnel."""
    from rag.config import Settings
    from rag.factory import funnel_config, reranker_from_settings
    from rag.retrieve import Retriever
    from rag.store import open_store
    from rag.store.sparse import SparseIndex

    spec = json.loads(Path(args.replica).read_text())
    q = np.load(spec["queries_npz"])
    queries, qvecs = json.loads(Path(spec["queries_json"]).read_text()), q["qvecs"]
    out: dict = {"rss_start": rss()}
    settings = Settings.load(data_dir=spec["data_dir"], database_url=spec.get("url") or "",
                             pg_exact_max_chunks=spec.get("exact_max"))
    t = time.perf_counter()
    store = open_store(settings)
    out["open_ms"] = round((time.perf_counter() - t) * 1000, 1)
    r = Retriever(store, GivenVectors(queries, qvecs), funnel_config(settings),
                  reranker_from_settings(settings, store, None))
    out["funnel"] = {"dense_k": r.config.dense_k, "sparse_k": r.config.sparse_k, "fusion": r.config.fusion,
                     "prf_k": r.config.prf_k, "reranker": r.reranker_name}
    t = time.perf_counter()
    snap = store.snapshot()
    out["snapshot_load_ms"] = round((time.perf_counter() - t) * 1000, 1)
    out["dense_kind"] = snap.manifest["dense"]["kind"]
    out["rss_after_snapshot"] = rss()
    t = time.perf_counter()
    r.search(queries[0], k=10)
    out["first_query_ms"] = round((time.perf_counter() - t) * 1000, 1)
    stages: dict[str, list[float]] = {}
    top10, dense200 = [], []
    for text in queries:
        t = time.perf_counter()
        res = r.search(text, k=10)
        wall = (time.perf_counter() - t) * 1000
        for stage, ms in res.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
        stages.setdefault("wall", []).append(wall)
        top10.append([h.chunk.id for h in res.hits])
        dense200.append(res.candidates["dense"][0].tolist())
    out["latency_ms"] = {s: pct(v) for s, v in stages.items()}
    out["rss_after_queries"] = rss()
    out["top10"], out["dense200"] = top10, dense200
    if out["dense_kind"] == "hnsw":
        plan, out["ef_sweep"] = hnsw_checks(store, qvecs)
        out["plan_uses_hnsw"], out["plan"] = "chunks_embedding_hnsw" in plan, plan.splitlines()
    if spec.get("url"):  # where the snapshot load's time goes (after the measurements above)
        out["snapshot_parts_ms"] = snapshot_parts(store, SparseIndex)
    vid_of = {}
    for row in store.query("SELECT vid, id FROM chunks"):
        vid_of[row["vid"]] = row["id"]
    out["dense200"] = [[vid_of[v] for v in vs] for vs in dense200]
    for ef in out.get("ef_sweep", {}).values():
        ef["ids"] = [[vid_of[v] for v in vs] for vs in ef.pop("vids")]
    Path(spec["result"]).write_text(json.dumps(out))


def hnsw_checks(store, qvecs: np.ndarray) -> tuple[bool, dict]:
    """Does the dense query use the HNSW index (not a scan and sort)? And top-10 at each ef."""
    q = qvecs[0]
    with store.transaction() as conn:
        conn.execute("SET LOCAL hnsw.ef_search = 400")
        conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT c.vid, 1 - (c.embedding <=> %s) FROM chunks c WHERE EXISTS "
            "(SELECT 1 FROM documents d WHERE d.id = c.doc_id AND d.status = 'live') "
            "ORDER BY c.embedding <=> %s LIMIT 200", (q, q)))
    sweep = {}
    for ef in EF_SWEEP:
        ms, vids = [], []
        for v in qvecs:
            t = time.perf_counter()
            found, _ = store.hnsw_search(v, 10, ef_search=ef)
            ms.append((time.perf_counter() - t) * 1000)
            vids.append(found.tolist())
        sweep[str(ef)] = {"latency_ms": pct(ms), "vids": vids}
    return plan, sweep


def snapshot_parts(store, SparseIndex) -> dict:
    """The PostgreSQL snapshot load in parts: reading vids and terms, splitting, bm25s."""
    t0 = time.perf_counter()
    rows = store.query("SELECT c.vid, c.terms FROM chunks c JOIN documents d ON d.id = c.doc_id "
                       "WHERE d.status = 'live' ORDER BY c.vid")
    t1 = time.perf_counter()
    vids = np.asarray([r["vid"] for r in rows], dtype=np.int64)
    terms = [r["terms"].split() for r in rows]
    t2 = time.perf_counter()
    del rows
    SparseIndex.build(terms, vids)
    t3 = time.perf_counter()
    return {"read_vids_terms": round((t1 - t0) * 1000), "split_terms": round((t2 - t1) * 1000),
            "bm25s_build": round((t3 - t2) * 1000)}


def run_replica(name: str, spec: dict, tmp: Path) -> dict:
    path = tmp / f"replica-{name}.json"
    spec = {**spec, "result": str(tmp / f"result-{name}.json")}
    path.write_text(json.dumps(spec))
    t = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--replica", str(path)], check=True)
    out = json.loads(Path(spec["result"]).read_text())
    out["process_s"] = round(time.perf_counter() - t, 1)
    return out


# ------------------------------------------------------------------ per size
def exact_top(vectors: np.ndarray, qvecs: np.ndarray, k: int) -> list[list[str]]:
    """Brute force: chunk ids of the k nearest stored vectors of each query."""
    out = []
    for qv in qvecs:
        scores = vectors @ qv
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        out.append([f"syn{(i // CHUNKS_PER_DOC) * CHUNKS_PER_DOC:08d}-{i % CHUNKS_PER_DOC}" for i in top])
    return out


def recall(found: list[list[str]], truth: list[list[str]], k: int) -> float:
    return round(float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth)])), 4)


def run_size(n: int, args, admin_url: str | None, tmp: Path) -> dict:
    import psycopg

    from rag.store import LocalStore
    from rag.store.postgres import FAST_BUILD_EF, FAST_BUILD_MAX, HNSW_WITH, PgStore

    out: dict = {"chunks": n, "documents": -(-n // CHUNKS_PER_DOC)}
    t = time.perf_counter()
    data = corpus(n, args.queries, args.seed)
    out["generate_s"] = round(time.perf_counter() - t, 1)
    np.savez(tmp / f"q{n}.npz", qvecs=data["qvecs"])
    (tmp / f"q{n}.json").write_text(json.dumps(data["queries"]))
    base = {"queries_npz": str(tmp / f"q{n}.npz"), "queries_json": str(tmp / f"q{n}.json")}

    if args.database_url:
        url = args.database_url
    else:
        name = f"scale_{n}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        prefix, _, query = admin_url.partition("?")
        url = prefix.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")
    if args.build_memory:  # what an operator would give the HNSW build (the store keeps it)
        with psycopg.connect(url, autocommit=True) as conn:
            db = conn.execute("SELECT current_database()").fetchone()[0]
            conn.execute(f'ALTER DATABASE "{db}" SET maintenance_work_mem = \'{args.build_memory}\'')
    pg = PgStore(url)
    out["load"] = {"postgres": load(pg, data, n, args.hnsw_with)}
    out["hnsw_build"] = {"with": args.hnsw_with or (f"the store's ({HNSW_WITH}; a build of up to {FAST_BUILD_MAX:,} "
                                                     f"vectors with ef_construction {FAST_BUILD_EF})"),
                         "maintenance_work_mem": args.build_memory or "the store's (512MB)"}
    print(f"{n}: postgres load {out['load']['postgres']}", file=sys.stderr, flush=True)
    out["postgres_sizes_mb"] = {r["what"]: round(r["bytes"] / 2**20) for r in pg.query(
        "SELECT 'database' AS what, pg_database_size(current_database()) AS bytes UNION ALL "
        "SELECT 'hnsw_index', coalesce(pg_relation_size(to_regclass('chunks_embedding_hnsw')), 0)")}
    out["postgres_settings"] = {k: pg.query(f"SHOW {k}")[0][k] for k in
                                ("shared_buffers", "max_parallel_maintenance_workers", "server_version")}
    replicas = {"postgres": {**base, "data_dir": str(tmp / "unused"), "url": url}}
    if not args.no_local:
        local = LocalStore(tmp / f"local-{n}")
        out["load"]["local"] = load(local, data, n)
        print(f"{n}: local load {out['load']['local']}", file=sys.stderr, flush=True)
        del local
        replicas = {"local": {**base, "data_dir": str(tmp / f"local-{n}")}, **replicas}
    if n <= pg.exact_max:  # within exact search: HNSW forced as well, as a third replica
        t = time.perf_counter()
        pg.ensure_hnsw()
        out["load"]["postgres"]["hnsw_build_forced_s"] = round(time.perf_counter() - t, 2)
        replicas["postgres_hnsw"] = {**replicas["postgres"], "exact_max": 0}
    results = {}
    for name, spec in replicas.items():
        results[name] = run_replica(name, spec, tmp)
        print(f"{n}: {name} {json.dumps(results[name]['latency_ms'])}", file=sys.stderr, flush=True)

    truth = exact_top(data["vectors"], data["qvecs"], 200)
    local_top10 = results["local"].pop("top10") if "local" in results else None
    for name, res in results.items():
        dense = res.pop("dense200")
        res["dense_recall@10_vs_exact"] = recall(dense, truth, 10)
        res["dense_recall@200_vs_exact"] = recall(dense, truth, 200)
        if name != "local" and local_top10 is not None:
            top10 = res.pop("top10")
            res["final_top10_same_as_local"] = sum(a == b for a, b in zip(top10, local_top10))
            for stage in ("total", "wall", "dense", "bm25", "prf"):
                a, b = res["latency_ms"].get(stage), results["local"]["latency_ms"].get(stage)
                if a and b:
                    res.setdefault("vs_local", {})[stage] = {
                        p: round(a[p] / max(b[p], 1e-3), 2) for p in ("p50", "p95")}
        for ef, sweep in res.get("ef_sweep", {}).items():
            sweep["recall@10"] = recall(sweep.pop("ids"), truth, 10)
    out["replicas"] = results
    del data
    return out


def table(results: list[dict]) -> str:
    rows = ["| chunks | replica | dense | first query (snapshot) ms | wall p50/p95 | dense | bm25 | fuse | prf | fetch "
            "| RSS MB | recall@10 (k=200) | vs local p50/p95 |", "|" + "---|" * 13]
    for r in results:
        for name, res in r["replicas"].items():
            lat = res["latency_ms"]
            cell = lambda s: f"{lat[s]['p50']}/{lat[s]['p95']}" if s in lat else "-"  # noqa: E731
            vs = res.get("vs_local", {}).get("wall")
            ratio = f"{vs['p50']}/{vs['p95']}" if vs else "-"
            rows.append(f"| {r['chunks']} | {name} | {res['dense_kind']} | {res['first_query_ms']} "
                        f"({res['snapshot_load_ms']}) | {cell('wall')} | {cell('dense')} | {cell('bm25')} | "
                        f"{cell('fuse')} | {cell('prf')} | {cell('fetch')} | {res['rss_after_queries']['rss_mb']} | "
                        f"{res['dense_recall@10_vs_exact']} | {ratio} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[5_000, 100_000])
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--database-url", help="an empty database, for one size (default: a throwaway pgserver)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--no-local", action="store_true", help="skip the LocalStore baseline")
    ap.add_argument("--build-memory", help="maintenance_work_mem the database gives the HNSW build, e.g. 4GB")
    ap.add_argument("--hnsw-with", help='HNSW build parameters instead of the store\'s, e.g. "ef_construction = 128"')
    ap.add_argument("--replica", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.replica:
        replica(args)
        return
    if args.database_url and len(args.sizes) > 1:
        ap.error("--database-url takes one size")
    tmp = Path(tempfile.mkdtemp(prefix="rag-pg-scale-"))
    stack: list = []
    results = []
    try:
        admin_url = None if args.database_url else start_server(stack)
        for n in args.sizes:
            t = time.perf_counter()
            results.append(run_size(n, args, admin_url, tmp))
            results[-1]["size_wall_s"] = round(time.perf_counter() - t, 1)
            print(table(results[-1:]), file=sys.stderr, flush=True)
    finally:
        stop_servers(stack)
        shutil.rmtree(tmp, ignore_errors=True)
    print(table(results))
    report({"sizes": results, "cpus": os.cpu_count()}, args.out)


if __name__ == "__main__":
    main()
