"""The local store: SQLite (source of truth) + FAISS and BM25 (derived, versioned).

Layout of a data dir:
    rag.sqlite              documents, pages, chunks (with vectors and BM25 terms), log
    index/v<N>/             the derived indexes for index version N (rag/store/files.py)
    ingest.lock             held by the one writer

Writes happen in two phases so a crash (even kill -9) never damages what is indexed:
1. Ingest adds documents as `pending` rows (with their vectors), batch by batch. Readers
   ignore pending rows; a later run that sees the same file resumes from them.
2. `publish` (rag/store/publish.py) builds the indexes for version N+1 into index/v<N+1>,
   and only then, in one SQLite transaction, turns pending rows live, drops replaced
   documents and sets the version to N+1.
A crash before that transaction leaves version N (its folder untouched) in force; a crash
after it finds index/v<N+1> complete. Readers always load the folder of SQLite's version.

The SQL itself is shared with the PostgreSQL store (rag/store/catalog.py); what is here is
SQLite's: the connection, the schema, the one-writer file lock, and the index folders.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import sqlite_utils

from rag.errors import IndexBusy, RagError
from rag.store.catalog import Catalog
from rag.store.files import IndexFolders
from rag.store.publish import Publisher, no_lock
from rag.store.rules import SCHEMA_VERSION, PublishPlan, Snapshot, crash_point, now_iso

__all__ = ["LocalStore", "Snapshot", "crash_point", "now_iso"]


class LocalStore(Publisher, Catalog):
    """SQLite + FAISS + BM25 in one folder. Safe for many reader threads, one writer process."""

    live_hint = "+d.status"

    def __init__(self, data_dir: Path | str, ann_threshold: int = 1_000_000):
        self.data_dir = Path(data_dir)
        self.ann_threshold = ann_threshold
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.where = str(self.data_dir)
        self.db_path = self.data_dir / "rag.sqlite"
        self.index_dir = self.data_dir / "index"
        self.folders = IndexFolders(self.index_dir, ann_threshold)
        self._local = threading.local()
        self._init_snapshots()
        self._ensure_schema()

    # ---------------------------------------------------------------- SQLite
    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # Autocommit mode: every multi-statement write is an explicit BEGIN ... COMMIT.
            conn = sqlite3.connect(self.db_path, isolation_level=None, timeout=30.0,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @property
    def db(self) -> sqlite_utils.Database:
        return sqlite_utils.Database(self.conn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def read_view(self) -> Iterator[sqlite3.Connection]:
        """WAL mode: a read transaction sees the database as of its first read."""
        conn = self.conn
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def _ensure_schema(self) -> None:
        db = self.db
        if "meta" in db.table_names():
            found = int(self.meta("schema_version") or 0)
            if found != SCHEMA_VERSION:
                raise RagError(f"{self.db_path} has schema version {found}; this version of the app "
                               f"reads {SCHEMA_VERSION}. Use a new --data-dir or re-ingest.")
            if "sentence_vectors" not in db["chunks"].columns_dict:  # added after schema 1 shipped
                self.conn.execute("ALTER TABLE chunks ADD COLUMN sentence_vectors BLOB")
            return
        with self.transaction():
            db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
            db["documents"].create({
                "id": str, "source": str, "title": str, "sha256": str, "kind": str,
                "pages": int, "n_chunks": int, "size_bytes": int, "meta": str,
                "chunker_version": str, "status": str, "run_id": str, "added_at": str,
            }, pk="id", not_null={"source", "status"}, if_not_exists=True)
            db["pages"].create({"doc_id": str, "page": int, "text": str},
                               pk=("doc_id", "page"), foreign_keys=[("doc_id", "documents", "id")],
                               if_not_exists=True)
            self.conn.execute("""
                CREATE TABLE IF NOT EXISTS chunks (
                    vid INTEGER PRIMARY KEY AUTOINCREMENT,  -- FAISS/BM25 id; never reused
                    id TEXT NOT NULL UNIQUE,
                    doc_id TEXT NOT NULL REFERENCES documents(id),
                    ordinal INTEGER NOT NULL, page INTEGER NOT NULL,
                    char_start INTEGER NOT NULL, char_end INTEGER NOT NULL,
                    heading TEXT, text TEXT NOT NULL, n_tokens INTEGER,
                    terms TEXT NOT NULL,       -- BM25 terms, space separated
                    embedding BLOB NOT NULL,   -- float32, L2-normalised
                    sentence_vectors BLOB      -- float16 (n_sentences x dim), for the maxsim reranker
                )""")
            db["ingest_events"].create({
                "id": int, "run_id": str, "at": str, "path": str, "status": str,
                "reason": str, "message": str, "doc_id": str, "chunks": int,
            }, pk="id", if_not_exists=True)
            db["documents"].create_index(["source"], if_not_exists=True)
            db["documents"].create_index(["status"], if_not_exists=True)
            db["chunks"].create_index(["doc_id"], if_not_exists=True)
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                              (str(SCHEMA_VERSION),))
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('index_version', '0')")

    def _vector_param(self, vector: np.ndarray) -> bytes:
        return np.asarray(vector, dtype=np.float32).tobytes()

    def _vector_of(self, value: bytes) -> np.ndarray:
        return np.frombuffer(value, dtype=np.float32)

    # ------------------------------------------------------------- writer lock
    @contextlib.contextmanager
    def writer(self, wait_s: float = 0.0) -> Iterator["LocalStore"]:
        """Exclusive right to change this data dir (one ingest or delete at a time)."""
        lock_path = self.data_dir / "ingest.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise IndexBusy(f"another ingest is running on {self.data_dir}; "
                                        "wait for it to finish and try again") from None
                    time.sleep(0.2)
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            yield self
        finally:
            os.close(fd)  # closing releases the lock, also when the process dies


    # ------------------------------------------------------------- publishing
    def _publish_lock(self):
        return no_lock()  # the caller holds writer(): one publisher per data dir

    def _stale_runs(self, conn, run_id: str | None) -> list[str]:
        """With one writer, every other run's pending rows are from an interrupted run."""
        return [r[0] for r in self._exec(
            "SELECT DISTINCT run_id FROM documents WHERE status='pending' AND run_id IS NOT ?",
            (run_id,), conn)]

    def _prepare_indexes(self, plan: PublishPlan, version: int, dim: int,
                         embedder_id: str | None, chunker_version: str | None) -> None:
        """Build index/v<version> for (live - deleted + pending) before the commit."""
        where_after = ("(d.status = 'live' AND d.id NOT IN (SELECT value FROM json_each(?))) "
                       "OR (d.status = 'pending' AND d.id IN (SELECT value FROM json_each(?)))")
        vids, vectors, terms = self._vectors(where_after, [json.dumps(sorted(plan.deleted)),
                                                           json.dumps(plan.pending)])
        self.folders.write(version, vids, vectors, terms, plan.base_version, dim, embedder_id, chunker_version)

    def _after_publish(self, version: int) -> None:
        self.folders.prune(version)

    def _vectors(self, where: str, params: list) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
        vids, vecs, terms = [], [], []
        for vid, blob, t in self.conn.execute(
                f"SELECT c.vid, c.embedding, c.terms FROM chunks c JOIN documents d ON d.id = c.doc_id "
                f"WHERE {where} ORDER BY c.vid", params):
            vids.append(vid)
            vecs.append(np.frombuffer(blob, dtype=np.float32))
            terms.append(t.split() if t else [])
        arr = np.vstack(vecs) if vecs else np.zeros((0, 0), dtype=np.float32)
        return np.asarray(vids, dtype=np.int64), arr, terms

    def rebuild_index(self) -> int:
        """Rebuild the live version's indexes from SQLite (the caller holds `writer()`)."""
        version = self.version()
        if version == 0:
            return 0
        vids, vectors, terms = self._vectors("d.status = 'live'", [])
        self.folders.write(version, vids, vectors, terms, 0, int(self.meta("embedding_dim") or 0),
                           self.meta("embedder_id"), self.meta("chunker_version"))
        self._after_publish(version)
        return version

    # ------------------------------------------------------------------ reads
    def _load(self, version: int) -> Snapshot:
        if version == 0:
            return Snapshot(0, {}, None, None)
        if not self.folders.complete(version):
            # Lost or deleted derived files: rebuild them from SQLite, the source of truth.
            with self.writer(wait_s=600):
                if self.version() == version and not self.folders.complete(version):
                    self.rebuild_index()
            return self._load(self.version())
        return self.folders.load(version)
