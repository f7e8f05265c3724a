"""The PostgreSQL store (RAG_DATABASE_URL=postgresql://...): the catalog, the vectors and the
index version in one database, for several app replicas and several ingest processes at once.

- Dense search: pgvector, a `vector(dim)` column with an HNSW index (cosine). Small libraries
  (up to `exact_max` live chunks) are searched exactly in each replica's memory instead:
  a matrix product over a few thousand vectors beats a round trip to an ANN index. So the
  HNSW index is built only when a publish takes the library past `exact_max` (in one go,
  before the commit): until then no insert pays for maintaining it (about 2 ms a chunk on
  2 cores, ten times the rest of the store's work), and a bulk build is cheaper than inserts.
  Once the index exists, a pending chunk's vector is parked in `pending_embedding`, which no
  index covers, and the publish moves it to `embedding`: so the index takes each vector once,
  at the publish, and a publish whose chunks are at least REBUILD_SHARE of a library of up
  to REBUILD_MAX_CHUNKS rebuilds the index instead (a build costs a quarter of an insert per
  vector at 4,000 chunks: 0.6 vs 2-3 ms). Searches meanwhile scan exactly (right, slower).
  A build of up to FAST_BUILD_MAX vectors uses pgvector's default ef_construction, 64, which
  halves its time there at the same recall, and sets 128 for the inserts after it.
- Sparse search: each replica keeps BM25 postings of the live chunks' stored terms in memory
  (rag/store/bm25_live.py): the same analysis as the local store, and bm25s's scores to the
  float32 bit, but computed at query time from term frequencies, so that a new version is a
  delta, not a rebuild. Every publish records, in its own transaction, the version each
  document went live in (`documents.live_from`) and the vids of the live chunks it retired (a
  row of `index_changes`); a replica that finds the version moved on (checked on every search)
  reads just those and adds a segment of postings and masks the retired chunks (and the exact
  matrix of a small library likewise). A replica with no snapshot yet, or one that finds a
  version without its `index_changes` row (published by an older app, or older than the
  KEEP_CHANGES versions kept) or a chunk count that disagrees with the catalog, loads in full.
- What a replica does when the version moves on: its searches keep the snapshot it has while
  one thread of its own, on its own connection, loads the new one; the next search after that
  load gets the new one. By delta that takes tens of milliseconds and a few MB besides the
  snapshot, which it shares with the old one (bench/pg_reload.py, a publish or a delete of 10
  chunks: loaded 20-80 ms after the commit at 100k and at 1M chunks, against 7-11 s and 71-86 s
  rebuilding bm25s, which also held 0.1-0.3 GB and 5.7-6.1 GB more at its peak); a full load
  takes 2.8 s at 100k chunks and 23 s at 1M (peak 86 MB and 256 MB above the process). After
  serving, the thread compacts the postings when dead chunks and deltas reach a quarter of
  them (the same scores; 0.2 s at 100k, 1.5 s at 1M; a version published meanwhile waits). Only
  the first load, with no snapshot yet, makes searches wait. A failed load keeps the old
  snapshot, is recorded (`reload_error`, shown in the app's status) and retried by a later
  search, after a back-off that doubles with each failure in a row (1 s up to 60 s). A stale
  snapshot can still name chunks of a document deleted since; search hits are read back
  through `chunks_by_vid`, which returns live chunks only, so they never reach an answer.
  Dense search through the HNSW index reads the database, so it is never stale.
- Writers: any number of ingest processes. Each holds an advisory lock for its run while it
  works, so a publish drops only the pending rows of runs that died (kill -9 releases the
  lock with the connection) and a rerun can resume those. Publishing takes a short advisory
  lock and is one transaction: a document is entirely live or absent.

psycopg is imported only here, and only when RAG_DATABASE_URL is set.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import struct
import threading
import time
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from rag.errors import IndexBusy, RagError
from rag.store.catalog import Catalog
from rag.store.publish import Publisher
from rag.store.rules import SCHEMA_VERSION, PublishPlan, Snapshot, crash_point
from rag.store.bm25_live import BATCH as TERMS_BATCH, LiveBM25

log = logging.getLogger(__name__)

# Advisory lock keys (two int4s): our namespace, then what is locked.
LOCK_NS = 0x52414701       # "RAG" + 1: schema, publish, writers
RUN_LOCK_NS = 0x52414702   # per ingest run, keyed by hashtext(run_id)
SCHEMA_KEY, PUBLISH_KEY, WRITERS_KEY = 1, 2, 3
HNSW_INDEX = "chunks_embedding_hnsw"
MAX_EF_SEARCH = 1000  # pgvector's limit
HNSW_BUILD_MEMORY = "512MB"  # maintenance_work_mem for the HNSW build, at least
# pgvector's default ef_construction (64) gave recall@10 0.90-0.93 at 1M synthetic chunks, and
# no ef_search reached 0.95; 128 gave 0.997 for a 1.5x longer build (bench/pg_scale.py).
HNSW_M, HNSW_EF = 16, 128
HNSW_WITH = f"m = {HNSW_M}, ef_construction = {HNSW_EF}"
# ... but a bulk build of up to FAST_BUILD_MAX vectors uses FAST_BUILD_EF, and the index then
# takes HNSW_EF for every later insert (pgvector reads it from the index's options at
# each insert). 28,860 SciFact-like vectors, 2 cores: a build in 11.9-13.2 s instead of
# 20.0-24.2 s; recall@10 of 300 SciFact queries at the store's ef_search (400, k 200) 0.9997
# against 1.0000 (at pgvector's default ef_search 40: 0.968 against 0.980); at 100,000
# synthetic chunks the 64 build gave 0.996 (bench/pg_scale.py). Past 100k the build's share of
# the recall matters (0.90-0.93 at 1M), and no publish rebuilds there (REBUILD_MAX_CHUNKS).
FAST_BUILD_EF = 64
FAST_BUILD_MAX = 100_000
# A publish whose parked vectors are at least this share of the library after it rebuilds the
# HNSW index rather than insert them. 3,710 SciFact vectors, 2 cores: a build over all took
# 2.0-2.4 s; inserting 1,855 of them into an index of the rest 5.5 s, 1,240 3.2-3.7 s, and
# 740 (a fifth) 1.9-2.2 s, about even.
REBUILD_SHARE = 0.25
# ... and only up to this many chunks: past it a build's cost per vector nears an insert's (2.9
# ms at 1M chunks) and the searches meanwhile, exact scans, take too long (bench/pg_scale.py).
REBUILD_MAX_CHUNKS = 100_000
# How long a publish's DROP INDEX may queue for the chunks table before it inserts instead:
# while it waits, every search queues behind it (a replica's full load holds the table for
# seconds).
DROP_WAIT = "200ms"
# index_changes keeps the last KEEP_CHANGES versions' rows: a replica further behind loads in full.
KEEP_CHANGES = 1000
# A publish that inserts parked vectors into the HNSW index does it from this many connections
# at once (pgvector takes concurrent inserts): 2,482 SciFact chunks into an index of 20,876,
# 2 shared cores, 6.3-8.5 s instead of 10.0-11.2 (bench/pg_ingest.py --base-copies 17).
MOVE_WAYS = 2


def _vids_and_terms(rows) -> tuple[np.ndarray, list[list[str]]]:
    """(vid, stored terms) rows as LiveBM25 takes them: the vids, and each chunk's term list."""
    return (np.asarray([r[0] for r in rows], dtype=np.int64),
            [r[1].split() if r[1] else [] for r in rows])


def _psycopg():
    try:
        import psycopg
    except ImportError as e:
        raise RagError("RAG_DATABASE_URL is set but psycopg is not installed: "
                       "pip install -r requirements-postgres.txt") from e
    return psycopg


def redact(url: str) -> str:
    """The database URL without its password, for messages and the status page."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _vector_adapters(conn, oid: int) -> None:
    """numpy float vectors <-> pgvector's `vector`, without the pgvector Python package.
    Binary both ways: big-endian uint16 dim, uint16 unused, float32 values."""
    from psycopg.adapt import Dumper, Loader
    from psycopg.pq import Format

    class VectorDumper(Dumper):
        format = Format.BINARY

        def dump(self, obj):
            v = np.asarray(obj, dtype=">f4").ravel()
            return struct.pack(">HH", v.shape[0], 0) + v.tobytes()

    class VectorBinaryLoader(Loader):
        format = Format.BINARY

        def load(self, data):
            return np.frombuffer(bytes(data), dtype=">f4", offset=4).astype(np.float32)

    class VectorTextLoader(Loader):
        def load(self, data):
            return np.array(bytes(data)[1:-1].decode().split(","), dtype=np.float32)

    VectorDumper.oid = oid
    conn.adapters.register_dumper(np.ndarray, VectorDumper)
    conn.adapters.register_loader(oid, VectorBinaryLoader)
    conn.adapters.register_loader(oid, VectorTextLoader)


class PgDense:
    """Dense search over the live chunks of one index version: exact in memory (small
    libraries) or pgvector's HNSW index."""

    def __init__(self, store: "PgStore", vids: np.ndarray, matrix: np.ndarray | None):
        self.store = store
        self.vids = vids
        self.matrix = matrix

    @property
    def kind(self) -> str:
        return "exact" if self.matrix is not None else "hnsw"

    def __len__(self) -> int:
        return len(self.vids)

    def ids(self) -> np.ndarray:
        return self.vids

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (vids, cosine scores) for one normalised query vector."""
        if not len(self.vids) or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if self.matrix is not None:
            scores = self.matrix @ np.asarray(query, dtype=np.float32)
            k = min(k, len(scores))
            top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
            top = top[np.argsort(-scores[top], kind="stable")]
            return self.vids[top], scores[top].astype(np.float32)
        return self.store.hnsw_search(query, k)


class PgStore(Publisher, Catalog):
    """Everything in one PostgreSQL database; safe for many threads, processes and replicas."""

    background_reload = True  # see the module doc

    def __init__(self, url: str, exact_max: int = 20_000):
        self.psycopg = _psycopg()
        self.url = url
        self.where = redact(url)
        self.exact_max = exact_max
        self._local = threading.local()
        self._init_snapshots()
        self._locks_conn = None        # holds run and writer locks for this process
        self._locks_mutex = threading.Lock()
        self._held_runs: set[str] = set()
        self._vector_oid: int | None = None
        self._types: dict[str, dict[str, int]] = {}  # table -> column -> type oid, for COPY
        self._ensure_schema()

    # -------------------------------------------------------------- dialect
    def _connect(self):
        try:
            conn = self.psycopg.connect(self.url, autocommit=True)
        except self.psycopg.OperationalError as e:
            raise RagError(f"cannot connect to the database at {self.where}: {e}. "
                           "Check the URL (RAG_DATABASE_URL, or the one given to --copy-to/--copy-from) and that the server is running.") from e
        if self._vector_oid is not None:
            _vector_adapters(conn, self._vector_oid)
        return conn

    @property
    def conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:  # a restarted server: reconnect
            conn = self._local.conn = self._connect()
        return conn

    def _thread_done(self) -> None:
        """The background loader ends: close its connection (psycopg's are one thread's each)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator:
        conn = self.conn
        with conn.transaction():
            yield conn

    @contextlib.contextmanager
    def read_view(self) -> Iterator:
        conn = self.conn
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield conn

    INSERT_CHUNK_WITH_VID = "INSERT INTO chunks ({columns}) OVERRIDING SYSTEM VALUE VALUES ({marks})"

    def _sync_vids(self, conn) -> None:
        conn.execute("SELECT setval(pg_get_serial_sequence('chunks', 'vid'), "
                     "greatest((SELECT max(vid) FROM chunks), 1))")

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _vector_param(self, vector: np.ndarray) -> np.ndarray:
        return np.asarray(vector, dtype=np.float32)

    def _vector_of(self, value) -> np.ndarray:
        return value

    def _insert(self, conn, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        """COPY in binary: the rows stream in one statement, where executemany sent each as a
        statement of its own (2,482 SciFact chunks with their pages and documents: the store
        step 0.75-0.96 s -> 0.51-0.57 s, bench/pg_ingest.py)."""
        if not rows:
            return
        types = self._column_types(conn, table)
        with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([types[c] for c in columns])
            for row in rows:
                copy.write_row(row)

    def _column_types(self, conn, table: str) -> dict[str, int]:
        """Column name -> type oid, read once per table per process."""
        if table not in self._types:
            self._types[table] = dict(conn.execute(
                "SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = %s::regclass "
                "AND attnum > 0 AND NOT attisdropped", (table,)).fetchall())
        return self._types[table]

    def _ensure_schema(self) -> None:
        conn = self.conn
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NS, SCHEMA_KEY))
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except self.psycopg.errors.InsufficientPrivilege as e:
                raise RagError(f"the database at {self.where} lacks the pgvector extension and this "
                               "user may not create it: ask its administrator to run "
                               "CREATE EXTENSION vector; in it") from e
            exists = conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0]
            if exists:
                found = int(self.meta("schema_version") or 0)
                if found != SCHEMA_VERSION:
                    raise RagError(f"the database at {self.where} has schema version {found}; this version "
                                   f"of the app reads {SCHEMA_VERSION}. Use a new database or re-ingest.")
                if not conn.execute("SELECT to_regclass('index_changes') IS NOT NULL").fetchone()[0]:
                    for ddl in CHANGES_SCHEMA:  # added after schema 1 shipped; see index_changes
                        conn.execute(ddl)
                if not conn.execute("SELECT count(*) FROM pg_attribute WHERE attrelid = 'chunks'::regclass "
                                    "AND attname = 'pending_embedding'").fetchone()[0]:
                    for ddl in PARKED_SCHEMA:
                        conn.execute(ddl)
            else:
                for ddl in SCHEMA + CHANGES_SCHEMA + PARKED_SCHEMA:
                    conn.execute(ddl)
                conn.execute("INSERT INTO meta VALUES ('schema_version', %s), ('index_version', '0')",
                             (str(SCHEMA_VERSION),))
        self._vector_oid = conn.execute("SELECT 'vector'::regtype::oid").fetchone()[0]
        _vector_adapters(conn, self._vector_oid)

    def _ensure_vector_dim(self, dim: int) -> None:
        """Give the embedding column its dimension, once: pgvector can only index a column of
        a fixed dimension, known when the first vectors arrive."""
        if self.meta("vector_dim") is not None:
            return
        with self.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NS, SCHEMA_KEY))
            if self.meta("vector_dim") is not None:
                return
            conn.execute(f"ALTER TABLE chunks ALTER COLUMN embedding TYPE vector({int(dim)})")
            self._set_meta(conn, "vector_dim", int(dim))

    def has_hnsw(self) -> bool:
        return bool(self._exec("SELECT to_regclass(?) IS NOT NULL", (HNSW_INDEX,)).fetchone()[0])

    def ensure_hnsw(self) -> bool:
        """Build the HNSW index over every chunk with a vector in `embedding` (live, and pending
        ones not parked) unless it exists; True when it was built. One transaction: a crash
        leaves no half index. Inserts wait while it builds; searches do not."""
        if self.meta("vector_dim") is None or self.has_hnsw():
            return False
        with self.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NS, SCHEMA_KEY))
            if conn.execute("SELECT to_regclass(%s) IS NOT NULL", (HNSW_INDEX,)).fetchone()[0]:
                return False
            self._hnsw_build_memory(conn)
            vectors = conn.execute("SELECT count(embedding) FROM chunks").fetchone()[0]
            ef = FAST_BUILD_EF if vectors <= FAST_BUILD_MAX else HNSW_EF
            conn.execute(f"CREATE INDEX {HNSW_INDEX} ON chunks USING hnsw "
                         f"(embedding vector_cosine_ops) WITH (m = {HNSW_M}, ef_construction = {ef})")
            if ef != HNSW_EF:  # later inserts build with HNSW_EF (see FAST_BUILD_EF)
                conn.execute(f"ALTER INDEX {HNSW_INDEX} SET (ef_construction = {HNSW_EF})")
        return True

    @staticmethod
    def _hnsw_build_memory(conn) -> None:
        """At least HNSW_BUILD_MEMORY for the build (PostgreSQL's default is 64MB), or what the
        server, database or role gives when that is more (ALTER ROLE ... SET maintenance_work_mem):
        a graph that outgrows it is built on disk, several times slower. 384-d vectors fit
        about 250,000 of them in 512MB; 1M need about 2GB (bench/pg_scale.py)."""
        conn.execute("SELECT set_config('maintenance_work_mem', %s, true) WHERE "
                     "pg_size_bytes(current_setting('maintenance_work_mem')) < pg_size_bytes(%s)",
                     (HNSW_BUILD_MEMORY, HNSW_BUILD_MEMORY))

    def _drop_hnsw(self) -> bool:
        """Drop the HNSW index for a publish to rebuild it; False, leaving it, when that would
        queue searches for more than DROP_WAIT (DROP INDEX needs the table to itself)."""
        try:
            with self.transaction() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NS, SCHEMA_KEY))
                conn.execute(f"SET LOCAL lock_timeout = '{DROP_WAIT}'")
                conn.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
        except self.psycopg.errors.LockNotAvailable:
            log.info("readers hold the chunks table; the publish inserts into the HNSW index instead")
            return False
        return True

    def _move_parked(self, doc_ids: list[str]) -> None:
        """These pending documents' parked vectors into `embedding`, and so into the HNSW index
        where it exists: an insert each, 2-3 ms on 2 cores, so the documents are split between
        MOVE_WAYS connections working at once. Each part commits by itself, before the publish's
        transaction: the documents are still pending, so no search sees them, and a crash here
        leaves them pending with their vectors moved (or not), which a rerun resumes from."""
        parts = [part for part in (doc_ids[i::MOVE_WAYS] for i in range(MOVE_WAYS)) if part]
        sql = ("UPDATE chunks SET embedding = pending_embedding, pending_embedding = NULL "
               "WHERE doc_id = ANY(%s) AND pending_embedding IS NOT NULL")
        if len(parts) == 1:
            self.conn.execute(sql, (parts[0],))
            return
        errors: list[BaseException] = []

        def move(part: list[str]) -> None:
            try:
                with self._connect() as conn:
                    conn.execute(sql, (part,))
            except BaseException as e:  # noqa: BLE001 - raised in the publishing thread below
                errors.append(e)
        threads = [threading.Thread(target=move, args=(part,), name="move-parked") for part in parts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def _needs_hnsw(self, live_chunks: int) -> bool:
        return live_chunks > self.exact_max and not self.has_hnsw()

    def _pending_vector_column(self, conn) -> str:
        """Where the HNSW index exists, pending vectors wait outside it (see the module doc)."""
        indexed = self._exec("SELECT to_regclass(?) IS NOT NULL", (HNSW_INDEX,), conn).fetchone()[0]
        return "pending_embedding" if indexed else "embedding"

    # ----------------------------------------------------------------- locks
    def _locks(self):
        """The connection that holds this process's run and writer locks (not a per-thread
        one: a run's lock must outlive whichever thread touched it first)."""
        if self._locks_conn is None or self._locks_conn.closed or self._locks_conn.broken:
            self._locks_conn = self._connect()
        return self._locks_conn

    def _hold_run(self, run_id: str) -> None:
        with self._locks_mutex:
            if run_id not in self._held_runs:
                self._locks().execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (RUN_LOCK_NS, run_id))
                self._held_runs.add(run_id)

    def _release_run(self, run_id: str | None) -> None:
        with self._locks_mutex:
            if run_id in self._held_runs:
                self._locks().execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (RUN_LOCK_NS, run_id))
                self._held_runs.discard(run_id)

    def _run_alive(self, run_id: str | None) -> bool:
        """Another process (or this one) is still ingesting `run_id`: its lock is held."""
        if run_id is None:
            return False
        if run_id in self._held_runs:
            return True
        got = self._exec("SELECT pg_try_advisory_xact_lock(?, hashtext(?))", (RUN_LOCK_NS, run_id)).fetchone()[0]
        return not got

    @contextlib.contextmanager
    def writer(self, wait_s: float = 0.0) -> Iterator["PgStore"]:
        """Several ingests may write at once (a shared lock); one that needs the database to
        itself (none today) would take it exclusively."""
        conn = self._locks()
        deadline = time.monotonic() + wait_s
        with self._locks_mutex:
            while not conn.execute("SELECT pg_try_advisory_lock_shared(%s, %s)",
                                   (LOCK_NS, WRITERS_KEY)).fetchone()[0]:
                if time.monotonic() >= deadline:
                    raise IndexBusy(f"the database at {self.where} is being maintained; try again later")
                time.sleep(0.2)
        try:
            yield self
        finally:
            with self._locks_mutex:
                if not (conn.closed or conn.broken):
                    conn.execute("SELECT pg_advisory_unlock_shared(%s, %s)", (LOCK_NS, WRITERS_KEY))

    # ---------------------------------------------------------------- writes
    def claim_pending(self, doc_id: str, run_id: str) -> bool:
        self._hold_run(run_id)
        return super().claim_pending(doc_id, run_id)

    def _prepare_pending(self, conn, doc_id: str, run_id: str) -> bool:
        """A pending copy that another live run is still working on is left to it."""
        row = self._exec("SELECT run_id FROM documents WHERE id = ? AND status = 'pending' FOR UPDATE",
                         (doc_id,), conn).fetchone()
        if row is not None and row[0] != run_id and self._run_alive(row[0]):
            return False
        return super()._prepare_pending(conn, doc_id, run_id)

    def add_pending(self, run_id: str, items, kind_of, chunker_version, size_of, sentence_vectors=None) -> None:
        self._hold_run(run_id)
        dims = {int(np.asarray(v).shape[1]) for *_, v, _n in items if len(v)}
        for dim in dims:
            self._ensure_vector_dim(dim)
        super().add_pending(run_id, items, kind_of, chunker_version, size_of, sentence_vectors)

    # ------------------------------------------------------------ publishing
    @contextlib.contextmanager
    def _publish_lock(self) -> Iterator[None]:
        conn = self.conn
        conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NS, PUBLISH_KEY))
        try:
            yield
        finally:
            if not (conn.closed or conn.broken):
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NS, PUBLISH_KEY))

    def _stale_runs(self, conn, run_id: str | None) -> list[str]:
        """Pending rows of runs that died (their lock is free); live runs keep theirs."""
        runs = [r[0] for r in self._exec(
            "SELECT DISTINCT run_id FROM documents WHERE status='pending' AND run_id IS DISTINCT FROM ?",
            (run_id,), conn)]
        return [r for r in runs if not self._run_alive(r)]

    def _prepare_indexes(self, plan: PublishPlan, version: int, dim: int,
                         embedder_id: str | None, chunker_version: str | None) -> None:
        """Each replica brings its BM25 up to date from the catalog; here the HNSW index takes
        this run's parked vectors, moved to `embedding` (one insert each), or, when they are
        REBUILD_SHARE of the library or more (up to REBUILD_MAX_CHUNKS), it is dropped first and
        built again over all; until that build commits, searches scan the chunks exactly. A
        publish that takes the library past exact search builds the index (see the module doc)."""
        after, parked = self._exec(
            "SELECT count(*), count(c.pending_embedding) FROM chunks c JOIN documents d ON d.id = c.doc_id "
            "WHERE (d.status = 'live' AND d.id <> ALL(?)) OR (d.status = 'pending' AND d.id = ANY(?))",
            (sorted(plan.deleted), plan.pending)).fetchone()
        if (parked >= REBUILD_SHARE * after and self.exact_max < after <= REBUILD_MAX_CHUNKS
                and self.has_hnsw()):
            self._drop_hnsw()
            crash_point("hnsw_dropped")
        if parked:
            self._move_parked(plan.pending)
        if self._needs_hnsw(after):
            self.ensure_hnsw()
        crash_point("index_written")

    def publish(self, run_id: str | None, *args, **kwargs) -> int:
        try:
            return super().publish(run_id, *args, **kwargs)
        finally:
            self._release_run(run_id)

    def _commit(self, conn, plan: PublishPlan, version: int, meta: dict) -> None:
        """The shared commit, and in the same transaction what a replica reads to catch up by
        delta: the version each document goes live in (`live_from`) and the vids of the live
        chunks this publish retires (a row of `index_changes`, written for every publish, so
        a version without one says a writer that does not log changes published it)."""
        self._exec("INSERT INTO index_changes (version, retired) SELECT ?, "
                   "coalesce(array_agg(c.vid ORDER BY c.vid), '{}'::bigint[]) FROM chunks c "
                   "JOIN documents d ON d.id = c.doc_id WHERE d.status = 'live' AND d.id = ANY(?)",
                   (version, sorted(plan.deleted)), conn)
        if plan.run_id:
            self._exec("UPDATE documents SET live_from = ? WHERE status = 'pending' AND run_id = ?",
                       (version, plan.run_id), conn)
        super()._commit(conn, plan, version, meta)

    def _after_publish(self, version: int) -> None:
        """Fresh planner statistics on `documents`: the HNSW query joins it on status = 'live',
        and until autovacuum gets round to it (a minute or more) the planner believes what it
        last sampled, say no live document at all after a first big publish. It then scans and
        sorts every chunk instead of using the index: 224 ms instead of 8 ms a dense search at
        30,000 chunks (bench/pg_scale.py). A sample of 30,000 rows of a small table: cheap.
        And index_changes forgets versions older than KEEP_CHANGES."""
        self._exec("ANALYZE documents")
        self._exec("DELETE FROM index_changes WHERE version <= ?", (version - KEEP_CHANGES,))

    def rebuild_index(self) -> int:
        """Nothing derived lives outside the database: each replica builds its BM25 on load
        (this one from scratch, next time); the HNSW index is built when the library is past
        exact search and lacks it."""
        if self._needs_hnsw(len(self.live_vids())):
            self.ensure_hnsw()
        self._snapshot = None
        return self.version()

    # ----------------------------------------------------------------- reads
    def _load(self, version: int) -> Snapshot:
        """The live chunks of the current version, read in one consistent view of the database
        (the version may have moved on since `version` was read: the snapshot says which): by
        delta from the snapshot held when the database has every change since it, else in full."""
        return self._read(self._snapshot)

    def _load_fresh(self, version: int) -> Snapshot:
        return self._read(None)

    def _read(self, base: Snapshot | None) -> Snapshot:
        conn = self.conn
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            version = self.version()
            if version == 0:
                return Snapshot(0, {}, None, None)
            snap = None
            if base is not None and isinstance(base.sparse, LiveBM25) and 0 < base.version < version:
                snap = self._read_delta(conn, base, version)
            return snap or self._read_full(conn, version)

    def _read_full(self, conn, version: int) -> Snapshot:
        """Every live chunk's terms, read and indexed batch by batch (a server-side cursor:
        the terms as text are never all in memory at once)."""
        conn.execute("SET LOCAL cursor_tuple_fraction = 1")  # all rows are read: plan for that
        with conn.cursor(name="live_terms") as cur:
            cur.execute("SELECT c.vid, c.terms FROM chunks c JOIN documents d ON d.id = c.doc_id "
                        "WHERE d.status = 'live' ORDER BY c.vid")

            def batches():
                while rows := cur.fetchmany(TERMS_BATCH):
                    yield _vids_and_terms(rows)
            sparse = LiveBM25.build(batches())
        vids = sparse.slot_vids
        matrix = self._live_matrix(conn, "") if len(vids) <= self.exact_max else None
        return self._snapshot_of(version, PgDense(self, vids, matrix), sparse)

    def _read_delta(self, conn, base: Snapshot, version: int) -> Snapshot | None:
        """`base` brought to `version`: the chunks that went live since, less those retired
        since. None when the database lacks a change (a version published without its row in
        index_changes, or one forgotten) or the result disagrees with the catalog's count."""
        since = base.version
        logged = self._exec("SELECT count(*) FROM index_changes WHERE version > ?", (since,), conn).fetchone()[0]
        if logged != version - since:
            log.info("index versions %s..%s: %s of %s changes logged; loading in full",
                     since + 1, version, logged, version - since)
            return None
        retired = np.asarray([r[0] for r in self._exec(
            "SELECT r FROM index_changes, unnest(retired) r WHERE version > ?", (since,), conn)], dtype=np.int64)
        rows = self._exec("SELECT c.vid, c.terms FROM chunks c JOIN documents d ON d.id = c.doc_id "
                          "WHERE d.status = 'live' AND d.live_from > ? ORDER BY c.vid", (since,), conn).fetchall()
        added, terms = _vids_and_terms(rows)
        sparse = base.sparse.apply(added, terms, retired)
        live = self._exec("SELECT coalesce(sum(n_chunks), 0) FROM documents WHERE status = 'live'",
                          (), conn).fetchone()[0]
        if len(sparse) != live:
            log.warning("index version %s by delta from %s holds %s chunks, the catalog %s; loading in full",
                        version, since, len(sparse), live)
            return None
        if not self.background_reload and sparse.needs_compaction():
            sparse = sparse.compacted()  # no background thread to do it after serving
        vids = np.sort(sparse.vids)
        matrix = None
        if len(vids) <= self.exact_max:
            old = base.dense
            if old.matrix is None:
                matrix = self._live_matrix(conn, "")
            else:
                matrix = np.empty((len(vids), old.matrix.shape[1]), dtype=np.float32)
                known = np.isin(vids, old.vids)
                matrix[known] = old.matrix[np.searchsorted(old.vids, vids[known])]
                if not np.array_equal(vids[~known], added):
                    return None
                if len(added):
                    matrix[~known] = self._live_matrix(conn, "AND d.live_from > %s", (since,))
        return self._snapshot_of(version, PgDense(self, vids, matrix), sparse)

    def _live_matrix(self, conn, where: str, params: tuple = ()) -> np.ndarray:
        """The vectors of live chunks (`where` narrows them), in vid order."""
        with conn.cursor(binary=True) as cur:
            cur.execute("SELECT c.embedding FROM chunks c JOIN documents d ON d.id = c.doc_id "
                        f"WHERE d.status = 'live' {where} ORDER BY c.vid", params)
            vecs = [r[0] for r in cur]
        dim = int(self.meta("embedding_dim") or 0)
        return np.vstack(vecs) if vecs else np.zeros((0, dim), dtype=np.float32)

    def _snapshot_of(self, version: int, dense: PgDense, sparse: LiveBM25) -> Snapshot:
        manifest = {k: self.meta(k) for k in ("embedder_id", "chunker_version", "updated_at")}
        manifest["embedding_dim"] = int(self.meta("embedding_dim") or 0) or None
        manifest.update({
            "index_version": version, "chunks": len(sparse),
            "bm25": {"engine": "live postings (rag/store/bm25_live.py), bm25s's scores",
                     "method": sparse.method, "k1": sparse.k1, "b": sparse.b},
            "dense": {"engine": "pgvector", "kind": dense.kind,
                      "type": "exact in memory" if dense.matrix is not None else "hnsw (vector_cosine_ops)"},
        })
        return Snapshot(version, manifest, dense, sparse)

    def _after_load(self) -> None:
        """Compact the BM25 postings of the snapshot just served when deltas and dead chunks
        have piled up; searches use it as it is meanwhile (the same scores either way)."""
        snap = self._snapshot
        if snap is None or not isinstance(snap.sparse, LiveBM25) or not snap.sparse.needs_compaction():
            return
        try:
            tidy = dataclasses.replace(snap, sparse=snap.sparse.compacted())
        except Exception:  # noqa: BLE001 - the snapshot served is whole; the next load tries again
            log.exception("compacting the BM25 postings of index version %s failed", snap.version)
            return
        with self._snapshot_lock:
            if self._snapshot is snap:
                self._snapshot = tidy

    def hnsw_search(self, query: np.ndarray, k: int, ef_search: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k live chunks from the HNSW index. ef_search at least 2k (pgvector's default of
        40 would cap the results at 40) unless given (recall measurements); iterative scans
        keep going past pending rows."""
        ef = min(MAX_EF_SEARCH, ef_search or max(40, 2 * k))
        q = np.asarray(query, dtype=np.float32)
        with self.transaction() as conn:
            conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
            conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            rows = conn.execute(
                "SELECT c.vid, 1 - (c.embedding <=> %s) FROM chunks c WHERE EXISTS "
                "(SELECT 1 FROM documents d WHERE d.id = c.doc_id AND d.status = 'live') "
                "ORDER BY c.embedding <=> %s LIMIT %s", (q, q, k)).fetchall()
        rows.sort(key=lambda r: -r[1])  # relaxed order: nearly sorted
        return (np.asarray([r[0] for r in rows], dtype=np.int64),
                np.asarray([r[1] for r in rows], dtype=np.float32))

    def exact_search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k live chunks by a full scan, not the HNSW index: what HNSW approximates
        (checks of a copy; recall measurements)."""
        q = np.asarray(query, dtype=np.float32)
        with self.transaction() as conn:
            conn.execute("SET LOCAL enable_indexscan = off")
            conn.execute("SET LOCAL enable_bitmapscan = off")
            rows = conn.execute(
                "SELECT c.vid, 1 - (c.embedding <=> %s) AS score FROM chunks c JOIN documents d "
                "ON d.id = c.doc_id WHERE d.status = 'live' ORDER BY score DESC, c.vid LIMIT %s",
                (q, k)).fetchall()
        return (np.asarray([r[0] for r in rows], dtype=np.int64),
                np.asarray([r[1] for r in rows], dtype=np.float32))

    def check(self) -> list[str]:
        problems = super().check()
        if self.meta("vector_dim") is not None:
            row = self._exec("SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(?)",
                             (HNSW_INDEX,)).fetchone()
            if row is not None and not row[0]:
                problems.append(f"the HNSW index {HNSW_INDEX} is invalid: REINDEX INDEX {HNSW_INDEX}")
            elif row is None and (live := len(self.live_vids())) > self.exact_max:
                problems.append(f"{live} live chunks (more than exact search takes, "
                                f"{self.exact_max}) but no HNSW index: python -m ingest --rebuild-index")
        unmoved = self._exec("SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.doc_id "
                             "WHERE d.status = 'live' AND c.embedding IS NULL").fetchone()[0]
        if unmoved:
            problems.append(f"{unmoved} live chunks without a vector in chunks.embedding")
        return problems


SCHEMA = [
    "CREATE TABLE meta (key text PRIMARY KEY, value text)",
    """CREATE TABLE documents (
        id text PRIMARY KEY, source text NOT NULL, title text, sha256 text, kind text,
        pages integer, n_chunks integer, size_bytes bigint, meta text, chunker_version text,
        status text NOT NULL, run_id text, added_at text)""",
    """CREATE TABLE pages (
        doc_id text NOT NULL REFERENCES documents(id), page integer NOT NULL, text text,
        PRIMARY KEY (doc_id, page))""",
    """CREATE TABLE chunks (
        vid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- search id; never reused
        id text NOT NULL UNIQUE,
        doc_id text NOT NULL REFERENCES documents(id),
        ordinal integer NOT NULL, page integer NOT NULL,
        char_start integer NOT NULL, char_end integer NOT NULL,
        heading text, text text NOT NULL, n_tokens integer,
        terms text NOT NULL,          -- BM25 terms, space separated
        embedding vector,             -- L2-normalised; vector(dim) once the first ingest pins dim;
                                      -- NULL only while pending and parked (pending_embedding)
        sentence_vectors bytea        -- float16 (n_sentences x dim), for the maxsim reranker
    )""",
    """CREATE TABLE ingest_events (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_id text, at text, path text,
        status text, reason text, message text, doc_id text, chunks integer)""",
    "CREATE INDEX documents_source ON documents (source)",
    "CREATE INDEX documents_status ON documents (status)",
    "CREATE INDEX chunks_doc_id ON chunks (doc_id)",
]
# What a replica reads to bring its snapshot up to date by delta (PgStore._read_delta): one row
# per published version with the vids of the live chunks it retired; what it added are the
# chunks of documents whose live_from is past the snapshot's version. Added after schema 1
# shipped: a database without them gets them when a store opens it (PgStore._ensure_schema).
CHANGES_SCHEMA = [
    "ALTER TABLE documents ADD COLUMN IF NOT EXISTS live_from bigint",  # the version it went live in
    "CREATE TABLE index_changes (version bigint PRIMARY KEY, retired bigint[] NOT NULL)",
    "CREATE INDEX documents_live_from ON documents (live_from)",
]
# A pending chunk's vector, parked outside the HNSW index until its publish (see the module
# doc). Added after schema 1 shipped, like CHANGES_SCHEMA.
PARKED_SCHEMA = [
    "ALTER TABLE chunks ALTER COLUMN embedding DROP NOT NULL",
    "ALTER TABLE chunks ADD COLUMN IF NOT EXISTS pending_embedding vector",
]
