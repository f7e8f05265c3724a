"""Every answer, the feedback on it, conversations and the answer cache: in `DATA_DIR/log.sqlite`
(AnswerLog), or in the PostgreSQL database of RAG_DATABASE_URL (PgAnswerLog), so that every app
replica behind a proxy reads and writes the same log. `open_log(settings)` picks one.

Feedback has one current state per answer (`feedback_state`: rating, comment, correction) and
a history (`feedback`: one row per change, holding the state after it). A comment saved after
a rating keeps the rating.

The rules (row encoding, feedback replay, conversation titles) live once in LogRules; the two
classes differ only in how they connect, create their tables and lock:
- SQLite: separate from the index database so chat never waits on an ingest's write lock. WAL
  mode; writes take the write lock up front (BEGIN IMMEDIATE) and retry while SQLite reports
  the database busy or locked, so concurrent writers never lose a row.
- PostgreSQL: one connection per thread; each change is one transaction that locks the row it
  reads before writing (SELECT ... FOR UPDATE), so two replicas giving feedback on the same
  answer at once both land in the history, in order. psycopg is imported only on this path.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import sqlite_utils

from rag.errors import RagError
from rag.store.local import now_iso

T = TypeVar("T")
SCHEMA_VERSION = 2
KEEP: Any = object()  # feedback(): a field left as it is
FEEDBACK_FIELDS = ("rating", "comment", "correction")
JSON_FIELDS = ("citations", "passages", "trace")
ANSWER_COLUMNS = ("id", "created_at", "session", "question", "standalone", "answer", "mode", "abstained",
                  "cached", "prompt_version", "model", "reranker", "index_version", "notice", *JSON_FIELDS)
CONVERSATION_COLUMNS = "c.id, c.owner, c.title, c.created_at, c.updated_at"
TITLE_CHARS = 80
PUT_STATE = ("INSERT INTO feedback_state (answer_id, updated_at, rating, comment, correction) "
             "VALUES (?, ?, ?, ?, ?) ON CONFLICT (answer_id) DO UPDATE SET updated_at = excluded.updated_at, "
             "rating = excluded.rating, comment = excluded.comment, correction = excluded.correction")
PUT_CACHE = ("INSERT INTO cache (key, created_at, index_version, answer) VALUES (?, ?, ?, ?) "
             "ON CONFLICT (key) DO UPDATE SET created_at = excluded.created_at, "
             "index_version = excluded.index_version, answer = excluded.answer")


def retry_busy(fn: Callable[[], T], attempts: int = 20, delay_s: float = 0.05) -> T:
    """Run a write, retrying with backoff while SQLite says busy/locked."""
    for i in range(attempts):
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            if i == attempts - 1:
                raise RagError(f"the answer log stayed locked for too long: {e}") from e
            time.sleep(min(1.0, delay_s * 2 ** i))
    raise AssertionError("unreachable")


def open_log(settings) -> "LogRules":
    """The answer log the settings describe: PostgreSQL when settings.database_url is set (the
    same database as the library, so every replica shares it), else DATA_DIR/log.sqlite."""
    if getattr(settings, "database_url", None):
        return PgAnswerLog(settings.database_url)
    return AnswerLog(settings.data_dir)


class Statements:
    """Runs SQL written with `?` placeholders on one connection and returns rows as dicts:
    the same call shape for sqlite3 and psycopg cursors."""

    def __init__(self, execute: Callable[[str, Any], Any]):
        self._execute = execute

    def rows(self, sql: str, params: Any = ()) -> list[dict]:
        cur = self._execute(sql, params)
        if cur.description is None:
            return []
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def count(self, sql: str, params: Any = ()) -> int:
        """Run a write; the number of rows it changed."""
        return self._execute(sql, params).rowcount


class LogRules:
    """The answer log's behaviour, written once over SQL both SQLite and PostgreSQL accept.
    Subclasses give `_read()` (statements outside a transaction), `_transaction()` (statements
    in one), `_write(fn)` (how a transaction is retried) and the two dialect words below."""

    FOR_UPDATE = ""           # locks the row a transaction reads before it writes (PostgreSQL)
    INSERT_ORDER = "c.rowid"  # conversations in the order they were made, for equal times

    def _read(self) -> Statements:
        raise NotImplementedError

    def _transaction(self) -> contextlib.AbstractContextManager[Statements]:
        raise NotImplementedError

    def _write(self, fn: Callable[[Statements], T]) -> T:
        raise NotImplementedError

    # -- answers
    def record(self, row: dict[str, Any]) -> str:
        row = _encode(row)
        cols = ", ".join(row)
        marks = ", ".join("?" * len(row))
        self._write(lambda tx: tx.count(f"INSERT INTO answers ({cols}) VALUES ({marks})", list(row.values())))
        return row["id"]

    def get(self, answer_id: str) -> dict | None:
        rows = self._read().rows("SELECT * FROM answers WHERE id = ?", [answer_id])
        return _decode(rows[0]) if rows else None

    def answers(self, limit: int = 1000) -> list[dict]:
        return [_decode(r) for r in self._read().rows(
            "SELECT a.*, f.rating, f.comment, f.correction FROM answers a "
            "LEFT JOIN feedback_state f ON f.answer_id = a.id ORDER BY a.created_at DESC LIMIT ?", [limit])]

    # -- feedback
    def feedback(self, answer_id: str, rating: int | None = KEEP, comment: str | None = KEEP,
                 correction: str | None = KEEP) -> int:
        """Change some of an answer's feedback (fields not passed keep their value; None or ""
        clears one). Returns the id of the history row that records the new state."""
        if rating is not KEEP and rating not in (None, 1, -1):
            raise RagError("rating must be 1 (thumbs up), -1 (thumbs down) or empty")
        change = {k: (v or None) for k, v in zip(FEEDBACK_FIELDS, (rating, comment, correction)) if v is not KEEP}

        def write(tx: Statements) -> int:
            # The answer's row is locked first: a second writer waits here, then reads our state.
            if not tx.rows("SELECT id FROM answers WHERE id = ?" + self.FOR_UPDATE, [answer_id]):
                raise RagError(f"no logged answer with id {answer_id!r}")
            old = tx.rows("SELECT rating, comment, correction FROM feedback_state WHERE answer_id = ?",
                          [answer_id])
            state = [change.get(k, (old[0] if old else {}).get(k)) for k in FEEDBACK_FIELDS]
            now = now_iso()
            tx.count(PUT_STATE, [answer_id, now, *state])
            return tx.rows("INSERT INTO feedback (answer_id, created_at, rating, comment, correction) "
                           "VALUES (?, ?, ?, ?, ?) RETURNING id", [answer_id, now, *state])[0]["id"]

        return self._write(write)

    def feedback_state(self, answer_id: str) -> dict | None:
        """The answer's current rating, comment and correction (None when never given)."""
        rows = self._read().rows("SELECT rating, comment, correction, updated_at FROM feedback_state "
                                 "WHERE answer_id = ?", [answer_id])
        return rows[0] if rows else None

    def feedback_for(self, answer_id: str) -> list[dict]:
        """The history: one row per change, each holding the state after it, oldest first."""
        return self._read().rows("SELECT * FROM feedback WHERE answer_id = ? ORDER BY id", [answer_id])

    def _replay_feedback(self, tx: Statements) -> None:
        """Schema 1 kept only change rows (NULL = not given): rebuild each answer's current state.
        A row with no field at all was a rating taken back."""
        state: dict[str, dict] = {}
        for r in tx.rows("SELECT * FROM feedback ORDER BY id"):
            s = state.setdefault(r["answer_id"], {})
            given = {k: r[k] for k in FEEDBACK_FIELDS if r[k] is not None}
            s.update(given if given else {"rating": None})
            s["updated_at"] = r["created_at"]
        for answer_id, s in state.items():
            tx.count(PUT_STATE, [answer_id, s["updated_at"], *[s.get(k) for k in FEEDBACK_FIELDS]])

    # -- conversations (owner: "user:EMAIL" when login is on, "browser:ID" otherwise)
    def new_conversation(self, owner: str, title: str = "New chat") -> str:
        now, cid = now_iso(), uuid.uuid4().hex
        self._write(lambda tx: tx.count(
            "INSERT INTO conversations (id, owner, title, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            [cid, owner, title[:TITLE_CHARS], now, now]))
        return cid

    def conversations(self, owner: str, limit: int = 200) -> list[dict]:
        """The owner's conversations, the most recently used first, each with its turn count."""
        return self._read().rows(
            f"SELECT {CONVERSATION_COLUMNS}, (SELECT count(*) FROM turns t WHERE t.conversation_id = c.id) AS turns "
            f"FROM conversations c WHERE owner = ? ORDER BY c.updated_at DESC, {self.INSERT_ORDER} DESC LIMIT ?",
            [owner, limit])

    def conversation(self, conversation_id: str, owner: str) -> dict | None:
        """One of the owner's conversations with its turns ({question, answer}); None if not theirs."""
        read = self._read()
        rows = read.rows(f"SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE id = ? AND owner = ?",
                         [conversation_id, owner])
        if not rows:
            return None
        turns = [{"question": t["question"], "answer": json.loads(t["answer"])} for t in read.rows(
            "SELECT question, answer FROM turns WHERE conversation_id = ? ORDER BY id", [conversation_id])]
        return {**rows[0], "turns": turns}

    def add_turn(self, conversation_id: str, owner: str, question: str, answer: dict) -> None:
        """Append a question and its answer; the first question names a conversation still called "New chat"."""
        def write(tx: Statements) -> None:
            conv = tx.rows("SELECT title FROM conversations WHERE id = ? AND owner = ?" + self.FOR_UPDATE,
                           [conversation_id, owner])
            if not conv:
                raise RagError("this conversation no longer exists (deleted in another tab?); start a new chat")
            now = now_iso()
            tx.count("INSERT INTO turns (conversation_id, created_at, question, answer_id, answer) "
                     "VALUES (?, ?, ?, ?, ?)", [conversation_id, now, question, answer.get("id"),
                                                json.dumps(answer, default=str)])
            title = conv[0]["title"]
            if title == "New chat":
                title = " ".join(question.split())[:TITLE_CHARS]
            tx.count("UPDATE conversations SET updated_at = ?, title = ? WHERE id = ?", [now, title, conversation_id])

        self._write(write)

    def rename_conversation(self, conversation_id: str, owner: str, title: str) -> None:
        title = " ".join((title or "").split())[:TITLE_CHARS]
        if not title:
            raise RagError("a conversation needs a name: type at least one character")
        changed = self._write(lambda tx: tx.count(
            "UPDATE conversations SET title = ? WHERE id = ? AND owner = ?", [title, conversation_id, owner]))
        if changed == 0:
            raise RagError("this conversation no longer exists (deleted in another tab?)")

    def delete_conversation(self, conversation_id: str, owner: str) -> bool:
        """Remove a conversation and its turns (the answer log keeps its answers for review).
        The turns go first: PostgreSQL checks their reference to the conversation at once."""
        def write(tx: Statements) -> bool:
            if not tx.rows("SELECT id FROM conversations WHERE id = ? AND owner = ?" + self.FOR_UPDATE,
                           [conversation_id, owner]):
                return False
            tx.count("DELETE FROM turns WHERE conversation_id = ?", [conversation_id])
            tx.count("DELETE FROM conversations WHERE id = ?", [conversation_id])
            return True

        return self._write(write)

    # -- cache
    def cached(self, key: str) -> dict | None:
        rows = self._read().rows("SELECT answer FROM cache WHERE key = ?", [key])
        return json.loads(rows[0]["answer"]) if rows else None

    def cache(self, key: str, index_version: int, answer: dict) -> None:
        self._write(lambda tx: tx.count(PUT_CACHE, [key, now_iso(), index_version, json.dumps(answer)]))

    def prune_cache(self, index_version: int) -> int:
        """Drop entries made for other index versions (they can never be hit again)."""
        return self._write(lambda tx: tx.count("DELETE FROM cache WHERE index_version != ?", [index_version]))


    # -- moving a log to another backend (python -m ingest --copy-to / --copy-from)
    def _sync_ids(self, tx: Statements) -> None:
        """After rows were inserted with their ids given: new rows must get higher ones."""

    def refuse_unless_empty(self) -> None:
        for table in ("answers", "conversations"):
            n = self._read().rows(f"SELECT count(*) AS n FROM {table}")[0]["n"]
            if n:
                raise RagError(f"the answer log at {self.where} already holds {n} {table}; "
                               "a copy only goes into an empty log (a new database or data dir)")

    def copy_from(self, source: "LogRules", batch: int = 500) -> dict[str, int]:
        """Copy every answer, feedback row and state, conversation and turn of `source` into
        this empty log, ids kept; the answer cache is left behind (its entries are for the
        source's index versions). Returns rows copied per table."""
        self.refuse_unless_empty()
        copied: dict[str, int] = {}
        for table, columns, key, start, order in LOG_TABLES:
            order = order or key
            if table == "conversations":  # their order of creation breaks ties in the sidebar
                order = source.INSERT_ORDER
            rows = source._read().rows(f"SELECT {', '.join('c.' + c for c in columns)} FROM {table} c "
                                       f"ORDER BY {order}") if key is None else None
            copied[table] = 0
            last = start
            while True:
                if key is not None:
                    rows = source._read().rows(
                        f"SELECT {', '.join(columns)} FROM {table} WHERE {key} > ? ORDER BY {key} LIMIT ?",
                        [last, batch])
                if not rows:
                    break
                marks = ", ".join("?" * len(columns))
                self._write(lambda tx, rows=rows: [tx.count(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                    [r[c] for c in columns]) for r in rows])
                copied[table] += len(rows)
                if key is None:
                    break
                last = rows[-1][key]
        self._write(self._sync_ids)
        return copied


# table, columns, keyset key (None: all at once, in `order`), key's start, order
LOG_TABLES = [
    ("answers", ANSWER_COLUMNS, "id", "", None),
    ("feedback", ("id", "answer_id", "created_at", "rating", "comment", "correction"), "id", -1, None),
    ("feedback_state", ("answer_id", "updated_at", "rating", "comment", "correction"), "answer_id", "", None),
    ("conversations", ("id", "owner", "title", "created_at", "updated_at"), None, None, "id"),
    ("turns", ("id", "conversation_id", "created_at", "question", "answer_id", "answer"), "id", -1, None),
]


class AnswerLog(LogRules):
    """The log in DATA_DIR/log.sqlite: one app process (or several on one machine)."""

    def __init__(self, data_dir: Path | str):
        self.path = Path(data_dir) / "log.sqlite"
        self.where = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection per thread: the app's sessions are threads sharing one AnswerLog, and
        # a shared connection mixes their transactions (sqlite-utils' BEGIN/SAVEPOINT per insert).
        self._local = threading.local()
        self._schema_ready = False

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
            retry_busy(lambda: conn.execute("PRAGMA journal_mode=WAL"))
            conn.execute("PRAGMA synchronous=NORMAL")
            db = self._local.db = sqlite_utils.Database(conn)
            if not self._schema_ready:
                retry_busy(lambda: self._ensure_schema(db))
                self._schema_ready = True
        return db

    def _read(self) -> Statements:
        return Statements(self.db.conn.execute)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Statements]:
        db = self.db
        with db.conn:  # one transaction, holding the write lock from its start
            db.execute("BEGIN IMMEDIATE")
            yield Statements(db.conn.execute)

    def _write(self, fn: Callable[[Statements], T]) -> T:
        def attempt() -> T:
            with self._transaction() as tx:
                return fn(tx)

        return retry_busy(attempt)

    def _ensure_schema(self, db: sqlite_utils.Database) -> None:
        db["answers"].create({
            "id": str, "created_at": str, "session": str, "question": str, "standalone": str,
            "answer": str, "mode": str, "abstained": int, "cached": int, "prompt_version": str,
            "model": str, "reranker": str, "index_version": int, "notice": str,
            "citations": str, "passages": str, "trace": str,
        }, pk="id", if_not_exists=True)
        db["feedback"].create({
            "id": int, "answer_id": str, "created_at": str, "rating": int, "comment": str, "correction": str,
        }, pk="id", foreign_keys=[("answer_id", "answers", "id")], if_not_exists=True)
        db["cache"].create({"key": str, "created_at": str, "index_version": int, "answer": str},
                           pk="key", if_not_exists=True)
        db["feedback_state"].create({
            "answer_id": str, "updated_at": str, "rating": int, "comment": str, "correction": str,
        }, pk="answer_id", foreign_keys=[("answer_id", "answers", "id")], if_not_exists=True)
        db["conversations"].create({"id": str, "owner": str, "title": str, "created_at": str, "updated_at": str},
                                   pk="id", if_not_exists=True)
        db["turns"].create({"id": int, "conversation_id": str, "created_at": str, "question": str,
                            "answer_id": str, "answer": str}, pk="id",
                           foreign_keys=[("conversation_id", "conversations", "id")], if_not_exists=True)
        db["answers"].create_index(["created_at"], if_not_exists=True)
        db["feedback"].create_index(["answer_id"], if_not_exists=True)
        db["conversations"].create_index(["owner", "updated_at"], if_not_exists=True)
        db["turns"].create_index(["conversation_id"], if_not_exists=True)
        if db.execute("PRAGMA user_version").fetchone()[0] < 2:
            with db.conn:
                db.execute("BEGIN IMMEDIATE")
                self._replay_feedback(Statements(db.conn.execute))
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


PG_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS answers (
        id text PRIMARY KEY, created_at text, session text, question text, standalone text, answer text,
        mode text, abstained integer, cached integer, prompt_version text, model text, reranker text,
        index_version bigint, notice text, citations text, passages text, trace text)""",
    """CREATE TABLE IF NOT EXISTS feedback (
        id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, answer_id text REFERENCES answers (id),
        created_at text, rating integer, comment text, correction text)""",
    """CREATE TABLE IF NOT EXISTS feedback_state (
        answer_id text PRIMARY KEY REFERENCES answers (id), updated_at text, rating integer, comment text,
        correction text)""",
    "CREATE TABLE IF NOT EXISTS cache (key text PRIMARY KEY, created_at text, index_version bigint, answer text)",
    """CREATE TABLE IF NOT EXISTS conversations (
        id text PRIMARY KEY, owner text, title text, created_at text, updated_at text,
        seq bigint GENERATED ALWAYS AS IDENTITY)""",
    """CREATE TABLE IF NOT EXISTS turns (
        id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        conversation_id text REFERENCES conversations (id), created_at text, question text, answer_id text,
        answer text)""",
    "CREATE INDEX IF NOT EXISTS answers_created_at ON answers (created_at)",
    "CREATE INDEX IF NOT EXISTS feedback_answer_id ON feedback (answer_id)",
    "CREATE INDEX IF NOT EXISTS conversations_owner ON conversations (owner, updated_at)",
    "CREATE INDEX IF NOT EXISTS turns_conversation_id ON turns (conversation_id)",
    "CREATE TABLE IF NOT EXISTS log_meta (key text PRIMARY KEY, value text)",
]
LOG_SCHEMA_KEY = 4  # under rag.store.postgres.LOCK_NS: creating the log's tables


class PgAnswerLog(LogRules):
    """The log in PostgreSQL: every replica and process shares it; safe for many threads."""

    FOR_UPDATE = " FOR UPDATE"
    INSERT_ORDER = "c.seq"

    def __init__(self, url: str):
        from rag.store.postgres import _psycopg, redact

        self.psycopg = _psycopg()
        self.url = url
        self.where = redact(url)
        self._local = threading.local()
        self._ensure_schema()

    @property
    def conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:  # a restarted server: reconnect
            try:
                conn = self._local.conn = self.psycopg.connect(self.url, autocommit=True)
            except self.psycopg.OperationalError as e:
                raise RagError(f"cannot connect to the answer log's database at {self.where}: {e}. "
                               "Check RAG_DATABASE_URL and that the server is running.") from e
        return conn

    def _statements(self, conn) -> Statements:
        return Statements(lambda sql, params: conn.execute(sql.replace("?", "%s"), params))

    def _read(self) -> Statements:
        return self._statements(self.conn)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Statements]:
        conn = self.conn
        with conn.transaction():
            yield self._statements(conn)

    def _write(self, fn: Callable[[Statements], T]) -> T:
        """One transaction; a lost connection is reported, not retried (the write may have landed)."""
        try:
            with self._transaction() as tx:
                return fn(tx)
        except self.psycopg.OperationalError as e:
            raise RagError(f"the answer log's database at {self.where} failed during a write: {e}. "
                           "Try again; check that the server is running.") from e

    def _sync_ids(self, tx: Statements) -> None:
        for table in ("feedback", "turns"):
            tx.rows(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"greatest((SELECT max(id) FROM {table}), 1))")

    def _ensure_schema(self) -> None:
        """Create the tables once, under an advisory lock (CREATE ... IF NOT EXISTS races itself),
        and refuse a log of another schema version (log_meta says which, as `meta` does for the
        library). A log made before log_meta existed is schema 2: PostgreSQL logs started there."""
        from rag.store.postgres import LOCK_NS

        with self._transaction() as tx:
            if not tx.rows("SELECT to_regclass('log_meta') IS NOT NULL AS ready")[0]["ready"]:
                tx.rows("SELECT pg_advisory_xact_lock(?, ?)", [LOCK_NS, LOG_SCHEMA_KEY])
                for ddl in PG_SCHEMA:
                    tx.count(ddl)
                tx.count("INSERT INTO log_meta VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING",
                         [str(SCHEMA_VERSION)])
            found = int(tx.rows("SELECT value FROM log_meta WHERE key = 'schema_version'")[0]["value"])
        if found != SCHEMA_VERSION:
            raise RagError(f"the answer log in the database at {self.where} has schema version {found}; "
                           f"this version of the app reads {SCHEMA_VERSION}. Use a new database, or the "
                           "version of the app that wrote it.")


def _encode(row: dict[str, Any]) -> dict[str, Any]:
    """An answer as stored: an id and a time, JSON text for the structured fields, 0/1 for
    flags; a column the log does not have is a programming error, said before SQL sees it."""
    row = {k: int(v) if isinstance(v, bool) else v for k, v in row.items()}
    row.setdefault("id", uuid.uuid4().hex)
    row.setdefault("created_at", now_iso())
    for key in JSON_FIELDS:
        if not isinstance(row.get(key), str):
            row[key] = json.dumps(row.get(key), default=str)
    unknown = set(row) - set(ANSWER_COLUMNS)
    if unknown:
        raise RagError(f"the answer log has no column(s) {sorted(unknown)}; known: {', '.join(ANSWER_COLUMNS)}")
    return row


def _decode(row: dict) -> dict:
    for key in JSON_FIELDS:
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


__all__ = ["KEEP", "AnswerLog", "LogRules", "PgAnswerLog", "open_log", "retry_busy"]
