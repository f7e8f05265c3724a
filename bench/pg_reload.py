"""Search latency a replica sees while a publish reloads its snapshot: before (its searches
wait for the reload) and after (they keep the old snapshot while a thread loads the new one).

    nice -n 10 python bench/pg_reload.py [--chunks 100000] [--rounds 3] [--rate 10] [--out FILE]

1. A throwaway pgserver holds --chunks synthetic chunks, loaded as bench/pg_scale.py loads them
   (the store's add_pending in batches, one publish, which builds the HNSW index past 20,000
   chunks); the same chunks go into a LocalStore (--no-local skips it).
2. A replica in this process: the store as the app opens it and the default funnel (query
   vectors given, no model). Its first snapshot is loaded, then --queries searches one after
   another give the latency with nothing reloading.
3. Rounds, the two modes taking turns: a writer (another store instance, its own connections)
   publishes one new 10-chunk document; from its commit, searches are started every 1/--rate s,
   each in its own thread (arrivals do not wait for earlier searches: people keep asking),
   until one returns the new version. Each search's latency runs from its start to its result.
   "blocking" is the replica as it was (`background_reload = False`: the first search after the
   commit loads the new snapshot and every search waits for it); "background" is the store's
   default now. The LocalStore replica runs "blocking" only (its default; its reload reads the
   files the publish built), to show whether serving stale would matter there.
Reported per mode: p50/p95/max of the searches started while the reload ran, how many, how long
from the commit until the new version was served, and background / blocking ratios.
"""
from __future__ import annotations

import argparse
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
    return {"n": len(v), "p50": round(float(np.percentile(v, 50)), 1),
            "p95": round(float(np.percentile(v, 95)), 1), "max": round(float(v.max()), 1)}


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


def during_reload(retriever, writer, data: dict, round_no: int, rate: float) -> dict:
    """Publish, then start a search every 1/rate s until one returns the new version."""
    queries = data["queries"]
    results: list[tuple[float, int]] = []  # (latency ms, index version) per search
    lock, served = threading.Lock(), threading.Event()

    def one(query: str) -> None:
        t = time.perf_counter()
        version = retriever.search(query, k=10).index_version
        with lock:
            results.append(((time.perf_counter() - t) * 1000, version))
        if version == new:
            served.set()

    t0 = time.perf_counter()
    new = publish_one(writer, data, round_no)
    commit = time.perf_counter()
    threads, i = [], 0
    while not served.is_set():
        th = threading.Thread(target=one, args=(queries[(round_no * 31 + i) % len(queries)],))
        th.start()
        threads.append(th)
        i += 1
        served.wait(1 / rate)
    serving_s = time.perf_counter() - commit
    for th in threads:
        th.join()
    return {"publish_s": round(commit - t0, 2), "new_version_served_after_s": round(serving_s, 2),
            "searches": stats([ms for ms, _ in results]),
            "old_version_answers": sum(v != new for _, v in results), "latencies_ms": [ms for ms, _ in results]}


def replica_runs(store, writer, data: dict, modes: list[str], args) -> dict:
    from rag.config import Settings
    from rag.factory import funnel_config
    from rag.retrieve import Retriever

    retriever = Retriever(store, GivenVectors(data["queries"], data["qvecs"]), funnel_config(Settings.load()))
    t = time.perf_counter()
    store.snapshot()
    out: dict = {"first_load_s": round(time.perf_counter() - t, 2)}
    quiet = []
    for q in data["queries"][:args.queries]:
        t = time.perf_counter()
        retriever.search(q, k=10)
        quiet.append((time.perf_counter() - t) * 1000)
    out["quiet"] = stats(quiet)
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    for r in range(args.rounds):
        for m in modes:
            store.background_reload = m == "background"
            res = during_reload(retriever, writer, data, len(modes) * r + modes.index(m), args.rate)
            runs[m].append(res)
            print(f"  {type(store).__name__} {m} round {r}: {res['searches']}, new version served after "
                  f"{res['new_version_served_after_s']} s", file=sys.stderr, flush=True)
    for m in modes:
        out[m] = {"rounds": [{k: v for k, v in res.items() if k != "latencies_ms"} for res in runs[m]],
                  "all": stats([ms for res in runs[m] for ms in res["latencies_ms"]])}
    if {"blocking", "background"} <= set(modes):
        a, b = out["background"]["all"], out["blocking"]["all"]
        out["background_vs_blocking"] = {p: round(a[p] / b[p], 4) for p in ("p50", "p95", "max")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=float, default=10.0, help="searches started per second during a reload")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-local", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import psycopg

    from rag.store import LocalStore
    from rag.store.postgres import PgStore

    data = corpus(args.chunks, args.queries, args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="rag-pg-reload-"))
    stack: list = []
    out: dict = {"chunks": args.chunks, "rate_per_s": args.rate, "rounds": args.rounds}
    try:
        admin = start_server(stack)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE reload")
        url = stack[-1][0].get_uri("reload")
        writer = PgStore(url)
        out["load_postgres"] = load(writer, data, args.chunks)
        print(f"postgres loaded: {out['load_postgres']}", file=sys.stderr, flush=True)
        out["postgres"] = replica_runs(PgStore(url), writer, data, ["blocking", "background"], args)
        if not args.no_local:
            local = LocalStore(tmp / "local")
            out["load_local"] = load(local, data, args.chunks)
            out["local"] = replica_runs(LocalStore(tmp / "local"), local, data, ["blocking"], args)
    finally:
        stop_servers(stack)
        shutil.rmtree(tmp, ignore_errors=True)
    for name in ("postgres", "local"):
        if name in out:
            print(name, {k: v for k, v in out[name].items() if k not in ("blocking", "background")},
                  {m: out[name][m]["all"] for m in ("blocking", "background") if m in out[name]})
    report(out, args.out)


if __name__ == "__main__":
    main()
