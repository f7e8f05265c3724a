"""Copying a library between stores without re-embedding: local DATA_DIR -> PostgreSQL
(`python -m ingest --copy-to postgresql://...`) and back (`--copy-from`).

    source read in one consistent view (read_view), document batch by document batch
      -> target rows added as `pending` under one run id (vectors, BM25 terms, sentence
         vectors and vids as stored: nothing is re-embedded or re-tokenised)
      -> one publish: every document goes live together, in one transaction
      -> verify: counts, a digest of every live chunk (text, terms, vector), the target's
         own --check, and the top-k of dense and sparse search for a sample of queries

The target must hold no live documents: a copy is how a library moves in, not a merge.
Chunks keep their vids, so equal scores break ties the same way in both stores.
"""
from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from rag.errors import RagError
from rag.store.catalog import IN_BATCH, Catalog
from rag.store.rules import marks
from rag.store.sparse import analyse

DOC_COLUMNS = ("id", "source", "title", "sha256", "kind", "pages", "n_chunks", "size_bytes", "meta",
               "chunker_version", "added_at")
CHUNK_COLUMNS = ("vid", "id", "doc_id", "ordinal", "page", "char_start", "char_end", "heading", "text",
                 "n_tokens", "terms", "embedding", "sentence_vectors")
EVENT_COLUMNS = ("run_id", "at", "path", "status", "reason", "message", "doc_id", "chunks")
DOCS_PER_BATCH = 200
TIE = 1e-5  # scores this close are a tie: either order is the same search result


class CopyRefused(RagError):
    reason = "copy_refused"


@dataclass
class CopyReport:
    source: str
    target: str
    documents: int = 0
    pages: int = 0
    chunks: int = 0
    events: int = 0
    index_version: int = 0
    seconds: float = 0.0
    check: dict = field(default_factory=dict)
    log: dict = field(default_factory=dict)  # answer log rows copied per table (copied by the caller)

    @property
    def ok(self) -> bool:
        return bool(self.check) and not self.check["problems"]

    def to_dict(self) -> dict:
        return {"source": self.source, "target": self.target, "documents": self.documents,
                "pages": self.pages, "chunks": self.chunks, "ingest_events": self.events,
                "index_version": self.index_version, "seconds": round(self.seconds, 2),
                "ok": self.ok, "check": self.check, "answer_log": self.log}

    def lines(self) -> list[str]:
        c = self.check
        out = [f"copied {self.documents} documents, {self.pages} pages, {self.chunks} chunks "
               f"(vectors as stored, nothing re-embedded) from {self.source} to {self.target} "
               f"in {self.seconds:.1f} s; published as index version {self.index_version}"]
        if c:
            out.append(f"check: counts {'equal' if c['counts_equal'] else 'DIFFER'}, chunk digest "
                       f"{'equal' if c['digest_equal'] else 'DIFFERS'}, target check "
                       f"{'clean' if not c['target_problems'] else 'has problems'}; identical search results on "
                       f"{c['dense_identical']}/{c['queries']} queries (dense top-{c['k']}) and "
                       f"{c['sparse_identical']}/{c['queries']} (BM25 top-{c['k']})")
            out += [f"problem: {p}" for p in c["problems"]]
        if self.log:
            out.append("answer log copied: " + ", ".join(f"{n} {table}" for table, n in self.log.items())
                       + " (the answer cache starts empty)")
        return out


def copy_library(source: Catalog, target: Catalog, queries: int = 50, k: int = 10,
                 progress: Callable[[str, int, int], None] | None = None) -> CopyReport:
    """Copy every live document of `source` into the empty `target`, publish it in one
    transaction, then verify it (see module doc). Raises CopyRefused when the target holds a
    library already, or the source none."""
    started = time.perf_counter()
    report = CopyReport(source.where, target.where)
    run_id = f"copy-{uuid.uuid4().hex}"
    with source.writer(wait_s=30), target.writer(wait_s=30):
        refuse_unless_empty(target)
        with source.read_view():
            meta = {key: source.meta(key) for key in ("embedder_id", "embedding_dim", "chunker_version")}
            doc_ids = [r[0] for r in source._exec(
                "SELECT id FROM documents WHERE status = 'live' ORDER BY added_at, id")]
            if not doc_ids:
                raise CopyRefused(f"nothing to copy: {source.where} holds no documents")
            dim = int(meta["embedding_dim"] or 0)
            target.check_embedder(meta["embedder_id"], dim or None)
            if dim and hasattr(target, "_ensure_vector_dim"):
                target._ensure_vector_dim(dim)
            if hasattr(target, "_hold_run"):
                target._hold_run(run_id)  # a concurrent publish must not take our rows for a dead run's
            for start in range(0, len(doc_ids), DOCS_PER_BATCH):
                part = doc_ids[start:start + DOCS_PER_BATCH]
                _copy_batch(source, target, part, run_id, report)
                if progress:
                    progress("copy", start + len(part), len(doc_ids))
            report.events = _copy_events(source, target)
        if progress:
            progress("publish", len(doc_ids), len(doc_ids))
        report.index_version = target.publish(run_id, embedder_id=meta["embedder_id"], dim=dim or None,
                                              chunker_version=meta["chunker_version"])
    report.seconds = time.perf_counter() - started
    if progress:
        progress("check", 0, queries)
    report.check = verify_copy(source, target, queries=queries, k=k)
    return report


def refuse_unless_empty(target: Catalog) -> None:
    live = target._exec("SELECT count(*) FROM documents WHERE status = 'live'").fetchone()[0]
    if live:
        raise CopyRefused(
            f"{target.where} already holds a library ({live} documents, index version {target.version()}); "
            "a copy only goes into an empty one. Create a new database (CREATE DATABASE ...) or data dir "
            "and copy into that, or remove these documents first (python -m ingest --delete ...).")
    pending = {r[0] for r in target._exec("SELECT DISTINCT run_id FROM documents WHERE status = 'pending'")}
    busy = [r for r in pending if target._run_alive(r)]
    if busy:
        raise CopyRefused(f"an ingest is writing into {target.where} (run {busy[0]}); "
                          "wait for it to finish, or copy into another database")
    if pending:  # left by an interrupted ingest or copy, never published: they would collide
        with target.transaction() as conn:
            for run in pending:
                target._delete_docs(conn, [r[0] for r in target._exec(
                    "SELECT id FROM documents WHERE status = 'pending' AND run_id = ?", (run,), conn)])
    if target._exec("SELECT count(*) FROM chunks").fetchone()[0]:
        raise CopyRefused(f"{target.where} holds chunks without a live document; "
                          "run python -m ingest --check on it, or copy into an empty database")


def _copy_batch(source: Catalog, target: Catalog, doc_ids: list[str], run_id: str, report: CopyReport) -> None:
    docs = list(source._exec(f"SELECT {', '.join(DOC_COLUMNS)} FROM documents WHERE id IN ({marks(len(doc_ids))})",
                             doc_ids))
    pages = list(source._exec(f"SELECT doc_id, page, text FROM pages WHERE doc_id IN ({marks(len(doc_ids))})", doc_ids))
    chunks = []
    for row in source._exec(f"SELECT {', '.join(CHUNK_COLUMNS)} FROM chunks WHERE doc_id IN ({marks(len(doc_ids))}) "
                            "ORDER BY vid", doc_ids):
        row = list(row)
        row[11] = target._vector_param(source._vector_of(row[11]))
        row[12] = bytes(row[12]) if row[12] is not None else None
        chunks.append(tuple(row))
    with target.transaction() as conn:
        target._many(conn, f"INSERT INTO documents ({', '.join(DOC_COLUMNS)}, status, run_id) "
                     f"VALUES ({marks(len(DOC_COLUMNS))}, 'pending', ?)", [(*d, run_id) for d in docs])
        target._many(conn, "INSERT INTO pages (doc_id, page, text) VALUES (?, ?, ?)", pages)
        target._many(conn, target.INSERT_CHUNK_WITH_VID.format(columns=", ".join(CHUNK_COLUMNS),
                                                                marks=marks(len(CHUNK_COLUMNS))), chunks)
        target._sync_vids(conn)
    report.documents += len(docs)
    report.pages += len(pages)
    report.chunks += len(chunks)


def _copy_events(source: Catalog, target: Catalog) -> int:
    """The ingestion log comes along (what happened to each file, and when)."""
    rows = [tuple(r) for r in source._exec(f"SELECT {', '.join(EVENT_COLUMNS)} FROM ingest_events ORDER BY id")]
    with target.transaction() as conn:
        target._many(conn, f"INSERT INTO ingest_events ({', '.join(EVENT_COLUMNS)}) "
                     f"VALUES ({marks(len(EVENT_COLUMNS))})", rows)
    return len(rows)


# ------------------------------------------------------------------------ verify
def _counts(store: Catalog) -> dict:
    one = lambda sql: int(store._exec(sql).fetchone()[0])  # noqa: E731
    return {"documents": one("SELECT count(*) FROM documents WHERE status = 'live'"),
            "pages": one("SELECT count(*) FROM pages p JOIN documents d ON d.id = p.doc_id "
                         "WHERE d.status = 'live'"),
            "chunks": one("SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.doc_id "
                          "WHERE d.status = 'live'")}


def chunk_digest(store: Catalog) -> str:
    """sha256 over every live chunk in vid order: vid, id, document, text, BM25 terms and the
    vector's float32 bytes (so equal digests mean nothing was re-embedded or re-tokenised)."""
    h = hashlib.sha256()
    last = -1
    while True:
        rows = list(store._exec(
            "SELECT c.vid, c.id, c.doc_id, c.text, c.terms, c.embedding FROM chunks c "
            "JOIN documents d ON d.id = c.doc_id WHERE d.status = 'live' AND c.vid > ? ORDER BY c.vid LIMIT ?",
            (last, IN_BATCH)))
        if not rows:
            return h.hexdigest()
        for vid, cid, doc_id, text, terms, emb in rows:
            h.update(f"{vid}\x00{cid}\x00{doc_id}\x00{text}\x00{terms}\x00".encode())
            h.update(np.asarray(store._vector_of(emb), dtype="<f4").tobytes())
        last = rows[-1][0]


def sample_queries(store: Catalog, n: int) -> list[tuple[int, str, np.ndarray]]:
    """n live chunks spread evenly over the library: (vid, its first 30 words, its vector).
    The text is a BM25 query, the stored vector a dense one (no model needed)."""
    vids = store.live_vids()
    if not len(vids) or n <= 0:
        return []
    picks = [int(v) for v in vids[np.linspace(0, len(vids) - 1, min(n, len(vids))).astype(int)]]
    rows = {r[0]: r for r in store._exec(
        f"SELECT vid, text, embedding FROM chunks WHERE vid IN ({marks(len(picks))})", picks)}
    return [(v, " ".join(rows[v][1].split()[:30]), np.asarray(store._vector_of(rows[v][2]), dtype=np.float32))
            for v in picks if v in rows]


def same_ranking(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    """The same chunks in the same order, where chunks whose scores tie may come in either order."""
    (va, sa), (vb, sb) = a, b
    if len(va) != len(vb) or not np.allclose(sa, sb, atol=TIE):
        return False
    if np.array_equal(va, vb):
        return True
    i = 0
    while i < len(va):  # compare as sets within each run of tied scores
        j = i + 1
        while j < len(va) and abs(float(sa[j]) - float(sa[i])) <= TIE:
            j += 1
        # a run that reaches the cut-off may hold different members of a larger tie
        if set(va[i:j].tolist()) != set(vb[i:j].tolist()) and j < len(va):
            return False
        i = j
    return True


def verify_copy(source: Catalog, target: Catalog, queries: int = 50, k: int = 10) -> dict:
    """Does `target` hold the same library as `source`? Counts, digests, the target's own
    consistency check, and identical dense and sparse top-k for `queries` sample queries."""
    src_counts, dst_counts = _counts(source), _counts(target)
    digest_equal = chunk_digest(source) == chunk_digest(target)
    target_problems = target.check()
    src_snap, dst_snap = source.snapshot(), target.snapshot()
    dense_same = sparse_same = 0
    differing: list[int] = []
    sample = sample_queries(source, queries)
    # An approximate index (pgvector's HNSW) is not what a copy is checked by: its exact twin is.
    src_dense = getattr(source, "exact_search", None) if _kind(src_snap) == "hnsw" else src_snap.dense.search
    dst_dense = getattr(target, "exact_search", None) if _kind(dst_snap) == "hnsw" else dst_snap.dense.search
    for vid, text, vector in sample:
        terms = analyse(text)
        d_ok = same_ranking(src_dense(vector, k), dst_dense(vector, k))
        s_ok = same_ranking(src_snap.sparse.search(terms, k), dst_snap.sparse.search(terms, k))
        dense_same += d_ok
        sparse_same += s_ok
        if not (d_ok and s_ok):
            differing.append(vid)
    problems = []
    if src_counts != dst_counts:
        problems.append(f"counts differ: source {src_counts}, target {dst_counts}")
    if not digest_equal:
        problems.append("the chunks' text, BM25 terms or vectors differ between source and target")
    problems += [f"target: {p}" for p in target_problems]
    if differing:
        problems.append(f"{len(differing)} of {len(sample)} sample queries give different results "
                        f"(queries from chunks {differing[:10]})")
    return {"counts": dst_counts, "counts_equal": src_counts == dst_counts, "digest_equal": digest_equal,
            "target_problems": target_problems, "queries": len(sample), "k": k,
            "dense_identical": dense_same, "sparse_identical": sparse_same,
            "dense_kind": {"source": _kind(src_snap), "target": _kind(dst_snap)},
            "problems": problems}


def _kind(snap) -> str | None:
    return (snap.manifest.get("dense") or {}).get("kind")
