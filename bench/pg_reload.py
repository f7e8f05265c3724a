"""How soon a PostgreSQL replica serves a new index version, and what its searches meanwhile
cost: BM25 rebuilt from every chunk's terms on each version ("before": bm25s, as the store
did) against brought up to date by delta ("after": rag/store/bm25_live.py, the store now).

    nice -n 10 python bench/pg_reload.py [--chunks 100000] [--rounds 3] [--rate 10] [--out FILE]
                                         [--probe search|snapshot] [--no-hnsw] [--no-local]

1. A throwaway pgserver holds --chunks synthetic chunks, loaded as bench/pg_scale.py loads them
   (the store's add_pending in batches, one publish, which builds the HNSW index past 20,000
   chunks; --no-hnsw leaves it out, for a 1M library in minutes instead of most of an hour,
   with --probe snapshot, as dense search would then scan); the same chunks go into a
   LocalStore (--no-local skips it).
2. A replica in this process: the store as the app opens it and the default funnel (query
   vectors given, no model). Its first snapshot is loaded both ways (time, peak memory above
   what the process held before), then --queries searches give the latency with nothing
   reloading.
3. Rounds, "before" and "after" taking turns, each a publish and then a delete: a writer (another
   store instance, its own connections) publishes one new 10-chunk document, or deletes one
   10-chunk document of the library; from its commit, searches are started every 1/--rate s,
   each in its own thread (arrivals do not wait for earlier searches: people keep asking),
   until one returns the new version. A search is the whole funnel (--probe search) or what a
   search does with the sparse side: snapshot(stale_ok) and BM25 top-200 (--probe snapshot).
   Both modes reload in the background (searches keep the old snapshot meanwhile). The peak
   memory of each reload: the process's high-water mark (reset at the commit) less its
   resident size just before. The LocalStore replica runs its own way (it waits for its reload,
   which reads the files the publish built), for comparison.
Reported per mode and kind: how long from the commit until the new version was served, the
peak memory, p50/p95/max of the searches started meanwhile, and after / before ratios.
"""
from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pg_bench import report, start_server, stop_servers  # noqa: E402
from bench.pg_scale import CHUNKS_PER_DOC, EMBEDDER_ID, GivenVectors, corpus, load  # noqa: E402
from bench.scale_bench import DIM  # noqa: E402


def stats(ms: list[float]) -> dict:
    v = np.asarray(ms, dtype=np.float64)
    if not len(v):
        return {"n": 0}
    return {"n": len(v), "p50": round(float(np.percentile(v, 50)), 1),
            "p95": round(float(np.percentile(v, 95)), 1), "max": round(float(v.max()), 1)}


def memory_mb() -> dict:
    """Resident now and the high-water mark since the last reset_peak(), MB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return {"rss": out["VmRSS"], "peak": out["VmHWM"]}


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:  # Linux: VmHWM := VmRSS
        f.write("5")


def full_bm25s_load(store, version: int):
    """The PostgreSQL replica's load as it was before bm25_live: every live chunk's terms read
    at once and bm25s built from them (the exact matrix too, for a small library)."""
    from rag.store.postgres import PgDense
    from rag.store.sparse import SparseIndex

    conn = store.conn
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        version = store.version()
        rows = store._exec("SELECT c.vid, c.terms FROM chunks c JOIN documents d ON d.id = c.doc_id "
                           "WHERE d.status = 'live' ORDER BY c.vid").fetchall()
        vids = np.asarray([r[0] for r in rows], dtype=np.int64)
        terms = [r[1].split() if r[1] else [] for r in rows]
        del rows
        matrix = store._live_matrix(conn, "") if len(vids) <= store.exact_max else None
        sparse = SparseIndex.build(terms, vids)
        del terms
        return store._snapshot_of(version, PgDense(store, vids, matrix), sparse)


LOADED: list[float] = []  # when each load of the replica ended (perf_counter)


def use_mode(store, mode: str) -> None:
    """Make the replica load the way `mode` says; "after" needs a delta-able snapshot to start."""
    from rag.store.bm25_live import LiveBM25

    inner = (lambda version: full_bm25s_load(store, version)) if mode == "before" else type(store)._load.__get__(store)

    def timed(version):
        snap = inner(version)
        LOADED.append(time.perf_counter())
        return snap
    store._load = timed
    snap = store._snapshot
    if mode == "after" and snap is not None and not isinstance(snap.sparse, LiveBM25):
        store._snapshot = store._load_fresh(snap.version)


def bm25_latency(sparse, queries: list[str]) -> dict:
    """BM25 top-200 alone, per query, with nothing else running."""
    from rag.store.sparse import analyse

    ms = []
    for q in queries:
        terms = analyse(q)
        t = time.perf_counter()
        sparse.search(terms, 200)
        ms.append((time.perf_counter() - t) * 1000)
    return {p: round(float(np.percentile(ms, q)), 2) for p, q in (("p50", 50), ("p95", 95))}


def first_loads(store, queries: list[str]) -> dict:
    """The first snapshot, loaded each way (kept: the new one), with its peak memory."""
    from rag.store.bm25_live import LiveBM25

    out = {}
    for mode in ("before", "after"):
        store._snapshot = None
        gc.collect()
        base = memory_mb()["rss"]
        reset_peak()
        t = time.perf_counter()
        snap = full_bm25s_load(store, store.version()) if mode == "before" else store._load_fresh(store.version())
        out[mode] = {"s": round(time.perf_counter() - t, 2),
                     "peak_above_mb": round(memory_mb()["peak"] - base)}
        store._snapshot = snap
        out[mode]["bm25_top200_ms"] = bm25_latency(snap.sparse, queries)
    assert isinstance(store._snapshot.sparse, LiveBM25)
    out["after_vs_before"] = {k: round(out["after"][k] / out["before"][k], 3) for k in ("s", "peak_above_mb")}
    out["after_vs_before"]["bm25_top200_p50"] = round(
        out["after"]["bm25_top200_ms"]["p50"] / out["before"]["bm25_top200_ms"]["p50"], 3)
    return out


def publish_one(writer, data: dict, n: int) -> int:
    """One new document of CHUNKS_PER_DOC chunks (terms and vectors of existing ones, new ids)."""
    from rag.types import Chunk, Document, Page

    rng = np.random.default_rng(n)
    picks = rng.choice(len(data["terms"]), size=CHUNKS_PER_DOC, replace=False)
    doc_id = f"new{n:06d}-{uuid.uuid4().hex[:6]}"
    texts = [" ".join(data["terms"][i]) for i in picks]
    chunks, pos = [], 0
    for o, text in enumerate(texts):
        chunks.append(Chunk(f"{doc_id}-{o}", doc_id, o, text, 1, pos, pos + len(text)))
        pos += len(text) + 1
    doc = Document(doc_id, f"synthetic/{doc_id}.txt", doc_id, doc_id, 1)
    run_id = uuid.uuid4().hex
    with writer.writer(wait_s=60):
        writer.add_pending(run_id, [(doc, [Page(1, "\n".join(texts))], chunks, data["vectors"][picks],
                                     [len(data["terms"][i]) for i in picks])],
                           {doc_id: "synthetic"}, "synthetic", {doc_id: pos})
        return writer.publish(run_id, embedder_id=EMBEDDER_ID, dim=DIM, chunker_version="synthetic")


def delete_one(writer, data: dict, n: int) -> int:
    """Delete one document of the library as loaded (a different one each round)."""
    doc = n * 7919 % (len(data["terms"]) // CHUNKS_PER_DOC)
    with writer.writer(wait_s=60):
        return writer.delete_sources([f"synthetic/syn{doc * CHUNKS_PER_DOC:08d}.txt"])[1]


def during_reload(search, change, round_no: int, queries: list[str], rate: float) -> dict:
    """Change the library, then start a search every 1/rate s until one returns the new version."""
    results: list[tuple[float, int]] = []  # (latency ms, index version) per search
    lock, served = threading.Lock(), threading.Event()
    new = None

    def one(query: str) -> None:
        t = time.perf_counter()
        version = search(query)
        with lock:
            results.append(((time.perf_counter() - t) * 1000, version))
        if version == new:
            served.set()

    gc.collect()
    base = memory_mb()["rss"]
    t0 = time.perf_counter()
    reset_peak()
    new = change()
    commit = time.perf_counter()
    threads, i = [], 0
    while not served.is_set():
        th = threading.Thread(target=one, args=(queries[(round_no * 31 + i) % len(queries)],))
        th.start()
        threads.append(th)
        i += 1
        served.wait(1 / rate)
    serving_s = time.perf_counter() - commit
    peak = memory_mb()["peak"] - base
    for th in threads:
        th.join()
    loaded = [t for t in LOADED if t > commit]
    return {"change_s": round(commit - t0, 2), "served_after_s": round(serving_s, 2),
            "loaded_after_s": round(loaded[0] - commit, 3) if loaded else None,
            "peak_above_mb": round(peak), "searches": stats([ms for ms, _ in results]),
            "old_version_answers": sum(v != new for _, v in results), "latencies_ms": [ms for ms, _ in results]}


def replica_runs(store, writer, data: dict, modes: list[str], args) -> dict:
    from rag.config import Settings
    from rag.factory import funnel_config
    from rag.retrieve import Retriever
    from rag.store.sparse import analyse

    retriever = Retriever(store, GivenVectors(data["queries"], data["qvecs"]), funnel_config(Settings.load()))
    if args.probe == "search":
        def search(q: str) -> int:
            return retriever.search(q, k=10).index_version
    else:
        def search(q: str) -> int:
            snap = store.snapshot(stale_ok=True)
            snap.sparse.search(analyse(q), 200)
            return snap.version
    out: dict = {}
    if "after" in modes:
        out["first_load"] = first_loads(store, data["queries"][:args.queries])
        print(f"  first load: {out['first_load']}", file=sys.stderr, flush=True)
    else:
        t = time.perf_counter()
        store.snapshot()
        out["first_load_s"] = round(time.perf_counter() - t, 2)
    quiet = []
    for q in data["queries"][:args.queries]:
        t = time.perf_counter()
        search(q)
        quiet.append((time.perf_counter() - t) * 1000)
    out["quiet"] = stats(quiet)
    kinds = {"publish": lambda n: publish_one(writer, data, n), "delete": lambda n: delete_one(writer, data, n)}
    runs: dict = {m: {k: [] for k in kinds} for m in modes}
    for r in range(args.rounds):
        for m in modes:
            use_mode(store, m)
            for kind, change in kinds.items():
                n = (r * len(modes) + modes.index(m)) * len(kinds) + list(kinds).index(kind)
                res = during_reload(search, lambda: change(n), n, data["queries"], args.rate)
                runs[m][kind].append(res)
                print(f"  {type(store).__name__} {m} {kind} round {r}: served after {res['served_after_s']} s "
                      f"(loaded after {res['loaded_after_s']} s), "
                      f"peak +{res['peak_above_mb']} MB, searches {res['searches']}", file=sys.stderr, flush=True)
    for m in modes:
        out[m] = {kind: {"served_after_s": [res["served_after_s"] for res in rs],
                         "loaded_after_s": [res["loaded_after_s"] for res in rs],
                         "peak_above_mb": [res["peak_above_mb"] for res in rs],
                         "searches": stats([ms for res in rs for ms in res["latencies_ms"]]),
                         "rounds": [{k: v for k, v in res.items() if k != "latencies_ms"} for res in rs]}
                  for kind, rs in runs[m].items()}
    if "after" in modes:  # what the background thread does now and then, searches going on meanwhile
        use_mode(store, "after")
        sparse = store.snapshot().sparse
        t = time.perf_counter()
        sparse.compacted()
        out["compaction_s"] = round(time.perf_counter() - t, 2)
    if {"before", "after"} <= set(modes):
        ratio = {}
        for kind in kinds:
            a, b = out["after"][kind], out["before"][kind]
            ratio[kind] = {"served_after_s": round(float(np.median(a["served_after_s"]) / np.median(b["served_after_s"])), 4),
                           "loaded_after_s": round(float(np.median(a["loaded_after_s"]) / np.median(b["loaded_after_s"])), 4),
                           "peak_above_mb": round(float(np.median(a["peak_above_mb"]) / max(1, np.median(b["peak_above_mb"]))), 4),
                           **{p: round(a["searches"][p] / b["searches"][p], 4) for p in ("p50", "p95", "max")}}
        out["after_vs_before"] = ratio
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=float, default=10.0, help="searches started per second during a reload")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-local", action="store_true")
    ap.add_argument("--no-hnsw", action="store_true", help="no HNSW index (use with --probe snapshot)")
    ap.add_argument("--probe", choices=("search", "snapshot"), default="search")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import psycopg

    from rag.store import LocalStore
    from rag.store.postgres import PgStore

    data = corpus(args.chunks, args.queries, args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="rag-pg-reload-"))
    stack: list = []
    out: dict = {"chunks": args.chunks, "rate_per_s": args.rate, "rounds": args.rounds, "probe": args.probe,
                 "hnsw": not args.no_hnsw}
    try:
        admin = start_server(stack)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE reload")
        url = stack[-1][0].get_uri("reload")
        writer = PgStore(url, exact_max=10**12) if args.no_hnsw else PgStore(url)
        out["load_postgres"] = load(writer, data, args.chunks)
        print(f"postgres loaded: {out['load_postgres']}", file=sys.stderr, flush=True)
        out["postgres"] = replica_runs(PgStore(url), writer, data, ["before", "after"], args)
        if not args.no_local:
            local = LocalStore(tmp / "local")
            out["load_local"] = load(local, data, args.chunks)
            out["local"] = replica_runs(LocalStore(tmp / "local"), local, data, ["local"], args)
    finally:
        stop_servers(stack)
        shutil.rmtree(tmp, ignore_errors=True)
    for name, modes in (("postgres", ("before", "after")), ("local", ("local",))):
        if name in out:
            for m in modes:
                for kind, r in out[name][m].items():
                    print(f"{name} {m} {kind}: served after {r['served_after_s']} s (loaded after "
                          f"{r['loaded_after_s']} s), peak +{r['peak_above_mb']} MB, "
                          f"searches meanwhile {r['searches']}")
    if "postgres" in out:
        print("first load:", out["postgres"]["first_load"], "compaction:", out["postgres"]["compaction_s"], "s")
        print("after / before:", out["postgres"]["after_vs_before"])
    report(out, args.out)


if __name__ == "__main__":
    main()
