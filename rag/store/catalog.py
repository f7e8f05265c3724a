"""The catalog: documents, pages, chunks (with their vectors and BM25 terms), meta and the
ingestion log, in SQL written once for SQLite and PostgreSQL.

Subclasses supply the connection and the few dialect differences: the placeholder style
(queries here use `?`), how a transaction starts, how a vector is stored, and the schema.
Readers only ever see `live` documents; ingestion adds `pending` ones that a publish turns
live (rag/store/publish.py).
"""
from __future__ import annotations

import contextlib
import json
from typing import Any, Iterable

import numpy as np

from rag.errors import NotFound
from rag.store import rules
from rag.types import Chunk, Document, Page

# Ids per IN (...) list: below SQLite's default limit of 999 parameters.
IN_BATCH = 900


class Catalog:
    """Shared SQL over a DB-API connection. Subclasses set `where` (shown in messages) and
    implement `conn`, `transaction`, `_ensure_schema`, `_vector_param` and `_vector_of`."""

    where: str = ""
    # SQLite's planner walks every live document for "d.status = 'live'" unless told not to use
    # that index ("+d.status"); 76 ms -> 0.2 ms for 100 ids on SciFact. PostgreSQL needs no hint.
    live_hint = "d.status"

    # ---------------------------------------------------------------- dialect
    @property
    def conn(self):
        raise NotImplementedError

    def transaction(self) -> contextlib.AbstractContextManager:
        raise NotImplementedError

    def _q(self, sql: str) -> str:
        """Queries are written with `?` placeholders (SQLite's); PostgreSQL rewrites them."""
        return sql

    def _vector_param(self, vector: np.ndarray) -> Any:
        raise NotImplementedError

    def _vector_of(self, value: Any) -> np.ndarray:
        raise NotImplementedError

    def read_view(self) -> contextlib.AbstractContextManager:
        """A read-only transaction on this thread's connection: every query in it sees one
        consistent state of the catalog (a copy reads a whole library through one)."""
        raise NotImplementedError

    # Inserting chunks with their vids given (a copy keeps them, so search ties break alike).
    INSERT_CHUNK_WITH_VID = "INSERT INTO chunks ({columns}) VALUES ({marks})"

    def _sync_vids(self, conn) -> None:
        """After chunks were inserted with given vids: new chunks must get higher ones."""

    def _exec(self, sql: str, params: Iterable = (), conn=None):
        return (conn or self.conn).execute(self._q(sql), tuple(params))

    def _many(self, conn, sql: str, rows: list[tuple]) -> None:
        if rows:
            conn.cursor().executemany(self._q(sql), rows)

    def _insert(self, conn, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        """Insert many rows into one table (PostgreSQL streams them with COPY)."""
        self._many(conn, f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({rules.marks(len(columns))})", rows)

    def query(self, sql: str, params: Iterable = ()) -> list[dict]:
        """Rows as dicts, for read-only questions the store has no method for (status pages,
        tests, benchmarks). Portable SQL with `?` placeholders."""
        cur = self._exec(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    # ------------------------------------------------------------------ meta
    def meta(self, key: str) -> str | None:
        row = self._exec("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, conn, key: str, value: Any) -> None:
        self._exec("INSERT INTO meta (key, value) VALUES (?, ?) "
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, str(value)), conn)

    def version(self) -> int:
        return int(self.meta("index_version") or 0)

    def check_embedder(self, embedder_id: str, dim: int | None = None) -> None:
        """Refuse to mix vectors from different embedders in one index."""
        rules.check_embedder(self.where, self.meta("embedder_id"), self.meta("embedding_dim"),
                             embedder_id, dim)

    # --------------------------------------------------------------- lookups
    def live_document(self, source: str) -> dict | None:
        rows = self.query("SELECT * FROM documents WHERE source = ? AND status = 'live'", [source])
        return rows[0] if rows else None

    def known_documents(self, docs: list[tuple[str, str]]) -> tuple[dict[str, dict], set[str]]:
        """For (source, document id) pairs: the live document of each source that has one (as
        `live_document` gives it), and the ids that have a pending copy. A few queries for
        many documents, where asking per document was a round trip each on PostgreSQL."""
        sources = list(dict.fromkeys(source for source, _ in docs))
        live: dict[str, dict] = {}
        for start in range(0, len(sources), IN_BATCH):
            part = sources[start:start + IN_BATCH]
            for row in self.query(f"SELECT d.* FROM documents d WHERE {self.live_hint} = 'live' "
                                  f"AND d.source IN ({rules.marks(len(part))})", part):
                live[row["source"]] = row
        return live, self._pending_among(self.conn, [doc_id for _, doc_id in docs])

    def document(self, doc_id: str) -> dict | None:
        rows = self.query("SELECT * FROM documents WHERE id = ?", [doc_id])
        return rows[0] if rows else None

    def documents(self, status: str = "live") -> list[dict]:
        return self.query(
            "SELECT id, source, title, sha256, kind, pages, n_chunks, size_bytes, "
            "chunker_version, status, added_at FROM documents WHERE status = ? ORDER BY added_at, source",
            [status])

    def _run_alive(self, run_id: str | None) -> bool:
        """Is another ingest still working on `run_id`? One writer at a time: never."""
        return False

    def claim_pending(self, doc_id: str, run_id: str) -> bool:
        """Resume: a pending copy of this exact document from an interrupted run is reused. One
        that a running ingest is still working on is left to it (and counts as taken care of)."""
        row = self._exec("SELECT run_id FROM documents WHERE id = ? AND status = 'pending'",
                         (doc_id,)).fetchone()
        if row is None:
            return False
        if row[0] != run_id and self._run_alive(row[0]):
            return True
        with self.transaction() as conn:
            cur = self._exec("UPDATE documents SET run_id = ? WHERE id = ? AND status = 'pending'",
                             (run_id, doc_id), conn)
        return cur.rowcount > 0

    def page_text(self, doc_id: str, page: int) -> str:
        row = self._exec("SELECT text FROM pages WHERE doc_id = ? AND page = ?", (doc_id, page)).fetchone()
        if row is None:
            raise NotFound(f"no page {page} in document {doc_id}")
        return row[0]

    def chunks_by_vid(self, vids: Iterable[int]) -> dict[int, tuple[Chunk, str, dict]]:
        """vid -> (Chunk, document source, facts about its document) for live chunks. The facts:
        "fiscal_calendar" (when the document states one), "ocr_pages" (pages read by OCR),
        "report_period" (the period a filing reports, when it says)."""
        vids = [int(v) for v in vids]
        out: dict[int, tuple[Chunk, str, dict]] = {}
        facts: dict[str, dict] = {}
        for start in range(0, len(vids), IN_BATCH):
            part = vids[start:start + IN_BATCH]
            for row in self._exec(
                    "SELECT c.vid, c.id, c.doc_id, c.ordinal, c.text, c.page, c.char_start, c.char_end, "
                    "c.heading, d.source, d.meta FROM chunks c JOIN documents d ON d.id = c.doc_id "
                    f"WHERE c.vid IN ({rules.marks(len(part))}) AND {self.live_hint} = 'live'", part):
                if row[2] not in facts:
                    facts[row[2]] = rules.hit_facts(row[10])
                out[row[0]] = (Chunk(id=row[1], doc_id=row[2], ordinal=row[3], text=row[4], page=row[5],
                                     char_start=row[6], char_end=row[7], heading=row[8]), row[9], facts[row[2]])
        return out

    def fiscal_calendars(self) -> dict[str, dict]:
        """Document source -> its fiscal calendar, for the live documents that state one."""
        out = {}
        for source, meta in self._exec("SELECT source, meta FROM documents WHERE status = 'live'").fetchall():
            calendar = rules.hit_facts(meta).get("fiscal_calendar")
            if calendar:
                out[source] = calendar
        return out

    def live_sources(self) -> dict[int, str]:
        """vid -> document source, for every live chunk (evaluation maps chunks to documents)."""
        return dict(self._exec(
            "SELECT c.vid, d.source FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE d.status='live'"
        ).fetchall())

    def live_vids(self) -> np.ndarray:
        return np.asarray(sorted(r[0] for r in self._exec(
            "SELECT c.vid FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE d.status='live'")),
            dtype=np.int64)

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        return [Chunk(id=r[0], doc_id=doc_id, ordinal=r[1], text=r[2], page=r[3], char_start=r[4],
                      char_end=r[5], heading=r[6])
                for r in self._exec(
                    "SELECT id, ordinal, text, page, char_start, char_end, heading FROM chunks "
                    "WHERE doc_id = ? ORDER BY ordinal", (doc_id,))]

    def sentence_vectors(self, chunk_ids: list[str], dim: int) -> dict[str, np.ndarray]:
        """chunk id -> its sentence vectors (float32); chunks without them are left out."""
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(chunk_ids), IN_BATCH):
            part = chunk_ids[start:start + IN_BATCH]
            for cid, blob in self._exec(
                    f"SELECT id, sentence_vectors FROM chunks WHERE id IN ({rules.marks(len(part))}) "
                    "AND sentence_vectors IS NOT NULL", part):
                out[cid] = rules.from_f16(blob, dim)
        return out

    def live_chunks_and_vectors(self) -> tuple[list[tuple[int, str, int, str | None, str]], np.ndarray]:
        """Every live chunk as (vid, document source, page, heading, text), in vid order, and
        their vectors, one row each (rag/tune.py mines training pairs from them)."""
        rows, vectors = [], []
        for vid, source, page, heading, text, value in self._exec(
                "SELECT c.vid, d.source, c.page, c.heading, c.text, c.embedding FROM chunks c "
                "JOIN documents d ON d.id = c.doc_id WHERE d.status = 'live' ORDER BY c.vid"):
            rows.append((vid, source, page, heading, text))
            vectors.append(np.asarray(self._vector_of(value), dtype=np.float32))
        return rows, (np.vstack(vectors) if vectors else np.zeros((0, 0), dtype=np.float32))

    def chunk_vectors(self, chunk_ids: list[str]) -> dict[str, np.ndarray]:
        """chunk id -> its chunk vector as a 1 x dim matrix."""
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(chunk_ids), IN_BATCH):
            part = chunk_ids[start:start + IN_BATCH]
            for cid, value in self._exec(
                    f"SELECT id, embedding FROM chunks WHERE id IN ({rules.marks(len(part))})", part):
                out[cid] = self._vector_of(value).reshape(1, -1)
        return out

    def count_without_sentence_vectors(self) -> int:
        return self._exec("SELECT count(*) FROM chunks WHERE sentence_vectors IS NULL").fetchone()[0]

    def chunks_without_sentence_vectors(self, limit: int) -> list[tuple[str, str | None, str]]:
        return [tuple(r) for r in self._exec(
            "SELECT id, heading, text FROM chunks WHERE sentence_vectors IS NULL ORDER BY vid LIMIT ?",
            (limit,))]

    def set_sentence_vectors(self, rows: dict[str, np.ndarray]) -> None:
        """Sentence vectors are an addition to a chunk, not part of the index version."""
        with self.transaction() as conn:
            self._many(conn, "UPDATE chunks SET sentence_vectors = ? WHERE id = ?",
                       [(rules.f16(m), cid) for cid, m in rows.items()])

    def ingest_events(self, status: str | None = None, path: str | None = None,
                      limit: int = 20) -> list[dict]:
        """The newest ingestion log rows, optionally of one status and/or one path."""
        where, params = [], []
        for column, value in (("status", status), ("path", path)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = ("SELECT at, path, status, reason, message, doc_id, chunks FROM ingest_events"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?")
        return self.query(sql, [*params, limit])

    def stats(self) -> dict:
        one = lambda sql: self._exec(sql).fetchone()[0]  # noqa: E731
        return {
            "data_dir": self.where,
            "index_version": self.version(),
            "documents": one("SELECT count(*) FROM documents WHERE status='live'"),
            "pages": one("SELECT coalesce(sum(pages),0) FROM documents WHERE status='live'"),
            "chunks": one("SELECT coalesce(sum(n_chunks),0) FROM documents WHERE status='live'"),
            "pending_documents": one("SELECT count(*) FROM documents WHERE status='pending'"),
            "embedder_id": self.meta("embedder_id"),
            "embedding_dim": int(self.meta("embedding_dim") or 0) or None,
            "chunker_version": self.meta("chunker_version"),
            "updated_at": self.meta("updated_at"),
            "chunks_with_sentence_vectors": one(
                "SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.doc_id "
                "WHERE d.status='live' AND c.sentence_vectors IS NOT NULL"),
        }

    def catalog_problems(self) -> list[str]:
        """Catalog rows that disagree with each other (independent of any index)."""
        problems = []
        live = len(self.live_vids())
        n_doc_chunks = self._exec(
            "SELECT coalesce(sum(n_chunks),0) FROM documents WHERE status='live'").fetchone()[0]
        if n_doc_chunks != live:
            problems.append(f"documents say {n_doc_chunks} chunks, chunks table has {live}")
        orphans = self._exec(
            "SELECT count(*) FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents)").fetchone()[0]
        if orphans:
            problems.append(f"{orphans} chunks without a document")
        return problems

    # ---------------------------------------------------------------- writes
    def _prepare_pending(self, conn, doc_id: str, run_id: str) -> bool:
        """Before (re)adding a pending document: may this run write it? Drops an earlier pending
        copy of it. One writer at a time, so always yes."""
        for sql in ("DELETE FROM chunks WHERE doc_id = ? AND doc_id IN "
                    "(SELECT id FROM documents WHERE status='pending')",
                    "DELETE FROM pages WHERE doc_id = ? AND doc_id IN "
                    "(SELECT id FROM documents WHERE status='pending')",
                    "DELETE FROM documents WHERE id = ? AND status = 'pending'"):
            self._exec(sql, (doc_id,), conn)
        return True

    def add_pending(self, run_id: str, items: list[tuple[Document, list[Page], list[Chunk], np.ndarray, list[int]]],
                    kind_of: dict[str, str], chunker_version: str, size_of: dict[str, int],
                    sentence_vectors: dict[str, np.ndarray] | None = None) -> None:
        """Store documents with their pages, chunks and vectors as pending, in one transaction."""
        sv = sentence_vectors or {}
        doc_rows, page_rows, chunk_rows, added = [], [], [], set()
        with self.transaction() as conn:
            # One look for earlier pending copies, not one per document: a round trip each
            # was most of an ingest's store time on PostgreSQL.
            earlier = self._pending_among(conn, [doc.id for doc, *_ in items])
            for doc, pages, chunks, vectors, n_tokens in items:
                if doc.id in earlier and not self._prepare_pending(conn, doc.id, run_id):
                    continue
                if doc.id in added:
                    continue  # the same source and content twice in one call: one copy
                added.add(doc.id)
                doc_rows.append((doc.id, doc.source, doc.title, doc.sha256, kind_of.get(doc.id, ""), doc.pages,
                                 len(chunks), size_of.get(doc.id, 0), json.dumps(doc.meta), chunker_version,
                                 "pending", run_id, rules.now_iso()))
                page_rows += [(doc.id, p.number, p.text) for p in pages]
                chunk_rows += [(c.id, c.doc_id, c.ordinal, c.page, c.char_start, c.char_end, c.heading, c.text,
                                nt, rules.chunk_terms(c), self._vector_param(v), rules.f16(sv.get(c.id)))
                               for c, v, nt in zip(chunks, vectors, n_tokens)]
            self._insert(conn, "documents", ("id", "source", "title", "sha256", "kind", "pages", "n_chunks",
                                             "size_bytes", "meta", "chunker_version", "status", "run_id",
                                             "added_at"), doc_rows)
            self._insert(conn, "pages", ("doc_id", "page", "text"), page_rows)
            self._insert(conn, "chunks", ("id", "doc_id", "ordinal", "page", "char_start", "char_end", "heading",
                                          "text", "n_tokens", "terms", self._pending_vector_column(conn),
                                          "sentence_vectors"), chunk_rows)

    def _pending_vector_column(self, conn) -> str:
        """The column a pending chunk's vector is written to (PostgreSQL may park it elsewhere)."""
        return "embedding"

    def _pending_among(self, conn, doc_ids: list[str]) -> set[str]:
        """Which of these documents already have a pending copy (from an earlier run)."""
        found: set[str] = set()
        for start in range(0, len(doc_ids), IN_BATCH):
            part = doc_ids[start:start + IN_BATCH]
            found |= {r[0] for r in self._exec(
                f"SELECT id FROM documents WHERE status = 'pending' AND id IN ({rules.marks(len(part))})",
                part, conn)}
        return found

    def log_events(self, rows: list[dict]) -> None:
        if rows:
            with self.transaction() as conn:
                self._many(conn, "INSERT INTO ingest_events (run_id, at, path, status, reason, message, "
                           "doc_id, chunks) VALUES (?,?,?,?,?,?,?,?)",
                           [(r["run_id"], rules.now_iso(), r["path"], r["status"], r.get("reason"),
                             r.get("message"), r.get("doc_id"), r.get("chunks")) for r in rows])

    def _delete_docs(self, conn, doc_ids: Iterable[str]) -> None:
        ids = [(d,) for d in doc_ids]
        for table, column in (("chunks", "doc_id"), ("pages", "doc_id"), ("documents", "id")):
            self._many(conn, f"DELETE FROM {table} WHERE {column} = ?", ids)

    def resolve_sources(self, sources: list[str]) -> list[str]:
        """Live document ids for sources given by a person: the stored source, its absolute
        path, or an unambiguous bare file name."""
        ids: list[str] = []
        for source in sources:
            exact, absolute, by_name = rules.source_forms(source)
            rows = [r[0] for r in self._exec(
                "SELECT id FROM documents WHERE status='live' AND (source = ? OR source = ?)", (exact, absolute))]
            if not rows:
                rows = [r[0] for r in self._exec(
                    "SELECT id FROM documents WHERE status='live' AND (source LIKE ? ESCAPE '\\')", (by_name,))]
                if len(rows) > 1:
                    raise NotFound(f"{source!r} matches {len(rows)} documents; give the full path")
            if not rows:
                raise NotFound(f"no indexed document has source {source!r}; "
                               "`python -m ingest --list --data-dir DIR` shows what is indexed")
            ids.extend(rows)
        return ids

