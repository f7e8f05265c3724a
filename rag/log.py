"""Every answer, the feedback on it, conversations and the answer cache, in `DATA_DIR/log.sqlite`.

Feedback has one current state per answer (`feedback_state`: rating, comment, correction) and
a history (`feedback`: one row per change, holding the state after it). A comment saved after
a rating keeps the rating.

Separate from the index database so chat never waits on an ingest's write lock. WAL mode;
writes retry while SQLite reports the database busy or locked, so concurrent writers never
lose a row.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, TypeVar

import sqlite_utils

from rag.errors import RagError
from rag.store.local import now_iso

T = TypeVar("T")
SCHEMA_VERSION = 2
KEEP: Any = object()  # feedback(): a field left as it is
FEEDBACK_FIELDS = ("rating", "comment", "correction")
TITLE_CHARS = 80


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


class AnswerLog:
    def __init__(self, data_dir: Path | str):
        self.path = Path(data_dir) / "log.sqlite"
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
                _replay_feedback(db)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- answers
    def record(self, row: dict[str, Any]) -> str:
        row = dict(row)
        row.setdefault("id", uuid.uuid4().hex)
        row.setdefault("created_at", now_iso())
        for key in ("citations", "passages", "trace"):
            if not isinstance(row.get(key), str):
                row[key] = json.dumps(row.get(key), default=str)
        retry_busy(lambda: self.db["answers"].insert(row))
        return row["id"]

    def get(self, answer_id: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM answers WHERE id = ?", [answer_id]))
        return _decode(rows[0]) if rows else None

    def answers(self, limit: int = 1000) -> list[dict]:
        return [_decode(r) for r in self.db.query(
            "SELECT a.*, f.rating, f.comment, f.correction FROM answers a "
            "LEFT JOIN feedback_state f ON f.answer_id = a.id ORDER BY a.created_at DESC LIMIT ?", [limit])]

    # -- feedback
    def feedback(self, answer_id: str, rating: int | None = KEEP, comment: str | None = KEEP,
                 correction: str | None = KEEP) -> int:
        """Change some of an answer's feedback (fields not passed keep their value; None or ""
        clears one). Returns the id of the history row that records the new state."""
        if rating is not KEEP and rating not in (None, 1, -1):
            raise RagError("rating must be 1 (thumbs up), -1 (thumbs down) or empty")
        if self.get(answer_id) is None:
            raise RagError(f"no logged answer with id {answer_id!r}")
        change = {k: (v or None) for k, v in zip(FEEDBACK_FIELDS, (rating, comment, correction)) if v is not KEEP}

        def write() -> int:
            db = self.db
            with db.conn:  # one transaction: the state and its history row land together
                db.execute("BEGIN IMMEDIATE")
                old = self.feedback_state(answer_id) or {}
                state = [change.get(k, old.get(k)) for k in FEEDBACK_FIELDS]
                now = now_iso()
                _put_state(db, answer_id, now, state)
                cur = db.execute("INSERT INTO feedback (answer_id, created_at, rating, comment, correction) "
                                 "VALUES (?, ?, ?, ?, ?)", [answer_id, now, *state])
                return cur.lastrowid

        return retry_busy(write)

    def feedback_state(self, answer_id: str) -> dict | None:
        """The answer's current rating, comment and correction (None when never given)."""
        rows = list(self.db.query("SELECT rating, comment, correction, updated_at FROM feedback_state "
                                  "WHERE answer_id = ?", [answer_id]))
        return rows[0] if rows else None

    def feedback_for(self, answer_id: str) -> list[dict]:
        """The history: one row per change, each holding the state after it, oldest first."""
        return list(self.db.query("SELECT * FROM feedback WHERE answer_id = ? ORDER BY id", [answer_id]))

    # -- conversations (owner: "user:EMAIL" when login is on, "browser:ID" otherwise)
    def new_conversation(self, owner: str, title: str = "New chat") -> str:
        now = now_iso()
        row = {"id": uuid.uuid4().hex, "owner": owner, "title": title[:TITLE_CHARS], "created_at": now,
               "updated_at": now}
        retry_busy(lambda: self.db["conversations"].insert(row))
        return row["id"]

    def conversations(self, owner: str, limit: int = 200) -> list[dict]:
        """The owner's conversations, the most recently used first, each with its turn count."""
        return list(self.db.query(
            "SELECT c.*, (SELECT count(*) FROM turns t WHERE t.conversation_id = c.id) AS turns "
            "FROM conversations c WHERE owner = ? ORDER BY updated_at DESC, rowid DESC LIMIT ?", [owner, limit]))

    def conversation(self, conversation_id: str, owner: str) -> dict | None:
        """One of the owner's conversations with its turns ({question, answer}); None if not theirs."""
        rows = list(self.db.query("SELECT * FROM conversations WHERE id = ? AND owner = ?", [conversation_id, owner]))
        if not rows:
            return None
        turns = [{"question": t["question"], "answer": json.loads(t["answer"])} for t in self.db.query(
            "SELECT question, answer FROM turns WHERE conversation_id = ? ORDER BY id", [conversation_id])]
        return {**rows[0], "turns": turns}

    def add_turn(self, conversation_id: str, owner: str, question: str, answer: dict) -> None:
        """Append a question and its answer; the first question names a conversation still called "New chat"."""
        def write() -> None:
            db = self.db
            with db.conn:
                db.execute("BEGIN IMMEDIATE")
                conv = db.execute("SELECT title FROM conversations WHERE id = ? AND owner = ?",
                                  [conversation_id, owner]).fetchone()
                if conv is None:
                    raise RagError("this conversation no longer exists (deleted in another tab?); start a new chat")
                now = now_iso()
                db.execute("INSERT INTO turns (conversation_id, created_at, question, answer_id, answer) "
                           "VALUES (?, ?, ?, ?, ?)", [conversation_id, now, question, answer.get("id"),
                                                     json.dumps(answer, default=str)])
                title = conv[0]
                if title == "New chat":
                    title = " ".join(question.split())[:TITLE_CHARS]
                db.execute("UPDATE conversations SET updated_at = ?, title = ? WHERE id = ?",
                           [now, title, conversation_id])

        retry_busy(write)

    def rename_conversation(self, conversation_id: str, owner: str, title: str) -> None:
        title = " ".join((title or "").split())[:TITLE_CHARS]
        if not title:
            raise RagError("a conversation needs a name: type at least one character")
        cur = retry_busy(lambda: self.db.execute(
            "UPDATE conversations SET title = ? WHERE id = ? AND owner = ?", [title, conversation_id, owner]))
        if cur.rowcount == 0:
            raise RagError("this conversation no longer exists (deleted in another tab?)")

    def delete_conversation(self, conversation_id: str, owner: str) -> bool:
        """Remove a conversation and its turns (the answer log keeps its answers for review)."""
        def write() -> bool:
            db = self.db
            with db.conn:
                db.execute("BEGIN IMMEDIATE")
                cur = db.execute("DELETE FROM conversations WHERE id = ? AND owner = ?", [conversation_id, owner])
                if cur.rowcount:
                    db.execute("DELETE FROM turns WHERE conversation_id = ?", [conversation_id])
                return cur.rowcount > 0

        return retry_busy(write)

    # -- cache
    def cached(self, key: str) -> dict | None:
        rows = list(self.db.query("SELECT answer FROM cache WHERE key = ?", [key]))
        return json.loads(rows[0]["answer"]) if rows else None

    def cache(self, key: str, index_version: int, answer: dict) -> None:
        row = {"key": key, "created_at": now_iso(), "index_version": index_version, "answer": json.dumps(answer)}
        retry_busy(lambda: self.db["cache"].upsert(row, pk="key"))

    def prune_cache(self, index_version: int) -> int:
        """Drop entries made for other index versions (they can never be hit again)."""
        cur = retry_busy(lambda: self.db.execute("DELETE FROM cache WHERE index_version != ?", [index_version]))
        return cur.rowcount


def _replay_feedback(db: sqlite_utils.Database) -> None:
    """Schema 1 kept only change rows (NULL = not given): rebuild each answer's current state.
    A row with no field at all was a rating taken back."""
    state: dict[str, dict] = {}
    for r in db.query("SELECT * FROM feedback ORDER BY id"):
        s = state.setdefault(r["answer_id"], {})
        given = {k: r[k] for k in FEEDBACK_FIELDS if r[k] is not None}
        s.update(given if given else {"rating": None})
        s["updated_at"] = r["created_at"]
    for answer_id, s in state.items():
        _put_state(db, answer_id, s["updated_at"], [s.get(k) for k in FEEDBACK_FIELDS])


def _put_state(db: sqlite_utils.Database, answer_id: str, at: str, state: list) -> None:
    """Write an answer's current feedback: `state` holds FEEDBACK_FIELDS' values, in order."""
    db.execute("INSERT OR REPLACE INTO feedback_state (answer_id, updated_at, rating, comment, correction) "
               "VALUES (?, ?, ?, ?, ?)", [answer_id, at, *state])


def _decode(row: dict) -> dict:
    for key in ("citations", "passages", "trace"):
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


__all__ = ["KEEP", "AnswerLog", "retry_busy"]
