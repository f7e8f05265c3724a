"""A PostgreSQL replica brings its BM25 up to date by delta (rag/store/bm25_live.py), and its
scores stay those of the local store's engine: bm25s built from scratch on the same live chunks
(SparseIndex.build, lucene, k1 0.9, b 0.4), on a real PostgreSQL (tests/conftest.py), with the
terms `analyse` makes at ingest, after publishes, deletes and replacements one after another."""
from __future__ import annotations

import re
import uuid

import numpy as np
import pytest

from rag.store.bm25_live import LiveBM25
from rag.store.sparse import SparseIndex, analyse
from rag.types import Chunk, Document, Page
from tests.conftest import SAMPLES, store_at

pytestmark = pytest.mark.parametrize("store_backend", ["postgres"], indirect=True)

WORDS = re.findall(r"[A-Za-z]+", (SAMPLES / "user-guide.md").read_text())
DIM = 8


def text(rng) -> str:
    """Words of the user guide: repeated terms, stop words, now and then none but stop words."""
    if rng.random() < 0.05:
        return "the and of it is"
    return " ".join(rng.choice(WORDS, size=int(rng.integers(3, 60))))


def add(store, rng, source: str, n_chunks: int) -> None:
    """One pending document of `n_chunks` chunks, published on its own."""
    doc_id = uuid.uuid4().hex[:12]
    texts = [text(rng) for _ in range(n_chunks)]
    chunks, pos = [], 0
    for o, t in enumerate(texts):
        chunks.append(Chunk(f"{doc_id}-{o}", doc_id, o, t, 1, pos, pos + len(t)))
        pos += len(t) + 1
    vectors = rng.standard_normal((n_chunks, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    run_id = uuid.uuid4().hex
    with store.writer(wait_s=30):
        store.add_pending(run_id, [(Document(doc_id, source, source, doc_id, 1), [Page(1, "\n".join(texts))],
                                    chunks, vectors, [len(t.split()) for t in texts])],
                          {doc_id: "md"}, "test", {doc_id: pos})
        store.publish(run_id, embedder_id="test-8", dim=DIM, chunker_version="test")


def delete(store, sources: list[str]) -> None:
    with store.writer(wait_s=30):
        store.delete_sources(sources)


def same_as_bm25s(store, sparse: LiveBM25, queries: list[list[str]]) -> None:
    """Every query's whole result (vid -> score) equals bm25s's on the live chunks' terms."""
    rows = store.query("SELECT c.vid, c.terms FROM chunks c JOIN documents d ON d.id = c.doc_id "
                       "WHERE d.status = 'live' ORDER BY c.vid")
    vids = np.asarray([r["vid"] for r in rows], dtype=np.int64)
    reference = SparseIndex.build([r["terms"].split() for r in rows], vids)
    assert np.array_equal(np.sort(sparse.vids), vids) and len(sparse) == len(vids)
    for terms in queries:
        ours = sparse.search(terms, len(vids))
        ref_vids, ref_scores = reference.search(terms, len(vids))
        order = np.lexsort((ref_vids, -ref_scores))  # equal scores: lower vid first, as ours
        ref_vids, ref_scores = ref_vids[order], ref_scores[order]
        assert ours[0].tolist() == ref_vids.tolist(), terms
        np.testing.assert_allclose(ours[1], ref_scores, rtol=1e-6)
        top = sparse.search(terms, 10)
        assert top[0].tolist() == ref_vids[:10].tolist(), terms
        np.testing.assert_allclose(top[1], ref_scores[:10], rtol=1e-6)


def library(settings, seed: int, docs: int, chunks: int):
    """A writer and a replica on one database with `docs` documents of `chunks` chunks published:
    (rng, writer, replica, the replica's snapshot)."""
    rng = np.random.default_rng(seed)
    writer, replica = store_at(settings.data_dir), store_at(settings.data_dir)
    for i in range(docs):
        add(writer, rng, f"doc-{i}.md", chunks)
    return rng, writer, replica, replica.snapshot()


def test_publishes_and_deletes_by_delta_score_as_bm25s_from_scratch(store_backend, settings):
    rng = np.random.default_rng(7)
    writer, replica = store_at(settings.data_dir), store_at(settings.data_dir)
    queries = [analyse(text(rng))[:6] for _ in range(25)] + [["guid", "guid", "search"], ["zzzunknown"]]
    for i in range(12):
        add(writer, rng, f"doc-{i}.md", int(rng.integers(5, 40)))
    first = replica.snapshot()
    assert first.version == 12 and len(first.sparse.segments) == 1
    same_as_bm25s(replica, first.sparse, queries)

    steps = [("publish", "new-0.md"), ("delete", ["doc-3.md"]), ("publish", "doc-5.md"),  # a replacement
             ("publish", "new-1.md"), ("delete", ["doc-0.md", "new-0.md"]), ("publish", "new-2.md"),
             ("publish", "new-3.md"), ("delete", ["doc-7.md"]), ("publish", "new-4.md")]
    snap, kinds = first, []
    for n, (what, arg) in enumerate(steps):
        # The replica's dense side goes from exact to HNSW and back as its limit changes.
        replica.exact_max = 0 if n in (2, 5, 6) else 10**6
        if what == "publish":
            add(writer, rng, arg, int(rng.integers(1, 60)))
        else:
            delete(writer, arg)
        before, snap = snap, replica.snapshot()
        assert snap.version == before.version + 1
        assert snap.sparse.segments[0] is first.sparse.segments[0], "loaded in full, not by delta"
        same_as_bm25s(replica, snap.sparse, queries)
        same_as_bm25s(replica, snap.sparse.compacted(), queries)  # compaction changes no score
        full = replica._load_fresh(snap.version)  # the exact matrix by delta = the one read in full
        assert np.array_equal(snap.dense.vids, full.dense.vids)
        assert snap.dense.kind == full.dense.kind
        if full.dense.matrix is not None:
            assert np.array_equal(snap.dense.matrix, full.dense.matrix)
        kinds.append(snap.dense.kind)
    assert kinds == ["exact", "exact", "hnsw", "exact", "exact", "hnsw", "hnsw", "exact", "exact"]
    assert replica.check() == []

    # Two publishes in one go (the replica was not asked in between) and a chunk that went live
    # and was deleted again between its versions: it never reaches the index.
    add(writer, rng, "new-5.md", 7)
    add(writer, rng, "new-6.md", 9)
    delete(writer, ["new-5.md"])
    again = replica.snapshot()
    assert again.version == snap.version + 3 and again.sparse.segments[0] is first.sparse.segments[0]
    same_as_bm25s(replica, again.sparse, queries)


def test_a_version_without_its_change_row_is_loaded_in_full(store_backend, settings):
    """A writer that does not log changes (an older app on a migrated database), or a replica
    behind by more versions than index_changes keeps: the replica loads the version in full."""
    rng, writer, replica, first = library(settings, seed=3, docs=3, chunks=10)
    add(writer, rng, "doc-3.md", 10)
    with writer.transaction() as conn:
        conn.execute("DELETE FROM index_changes WHERE version = 4")
    snap = replica.snapshot()
    assert snap.version == 4 and snap.sparse.segments[0] is not first.sparse.segments[0]
    same_as_bm25s(replica, snap.sparse, [analyse("search the guide"), analyse("answers and sources")])


def test_a_database_from_before_index_changes_gets_them_when_opened(store_backend, settings):
    rng = np.random.default_rng(5)
    writer = store_at(settings.data_dir)
    add(writer, rng, "doc-0.md", 10)
    with writer.transaction() as conn:  # schema 1 as it shipped
        conn.execute("DROP TABLE index_changes")
        conn.execute("ALTER TABLE documents DROP COLUMN live_from")
    replica = store_at(settings.data_dir)  # opening it migrates
    first = replica.snapshot()
    add(replica, rng, "doc-1.md", 10)
    snap = replica.snapshot()
    assert snap.version == 2 and snap.sparse.segments[0] is first.sparse.segments[0]
    same_as_bm25s(replica, snap.sparse, [analyse("search the guide")])


def test_the_background_load_compacts_after_serving(store_backend, settings, monkeypatch):
    """Once dead chunks and deltas are a quarter of the postings, the loader thread rewrites them
    into one segment after the new version is served; the scores stay bm25s's."""
    import rag.store.bm25_live as bm25_live

    monkeypatch.setattr(bm25_live.LiveBM25, "needs_compaction", lambda self: self.untidy > 0)  # any
    rng, writer, replica, first = library(settings, seed=11, docs=4, chunks=12)
    add(writer, rng, "doc-4.md", 12)
    delete(writer, ["doc-1.md"])
    assert replica.snapshot(stale_ok=True) is first  # served meanwhile; the load is under way
    loader = replica._reloader
    if loader is not None:
        loader.join(60)
    snap = replica.snapshot(stale_ok=True)
    assert snap.version == 6 and len(snap.sparse.segments) == 1 and snap.sparse.n_dead == 0
    same_as_bm25s(replica, snap.sparse, [analyse("search the guide"), analyse("answers and sources cited")])
