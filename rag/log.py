"""Every answer, the feedback on it, and the answer cache, in `DATA_DIR/log.sqlite`.

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
SCHEMA_VERSION = 1


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
        db["answers"].create_index(["created_at"], if_not_exists=True)
        db["feedback"].create_index(["answer_id"], if_not_exists=True)

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
            "SELECT a.*, f.rating, f.comment, f.correction FROM answers a LEFT JOIN feedback f ON f.id = "
            "(SELECT max(id) FROM feedback WHERE answer_id = a.id) ORDER BY a.created_at DESC LIMIT ?", [limit])]

    # -- feedback
    def feedback(self, answer_id: str, rating: int | None = None, comment: str | None = None,
                 correction: str | None = None) -> int:
        if rating not in (None, 1, -1):
            raise RagError("rating must be 1 (thumbs up), -1 (thumbs down) or empty")
        if self.get(answer_id) is None:
            raise RagError(f"no logged answer with id {answer_id!r}")
        row = {"answer_id": answer_id, "created_at": now_iso(), "rating": rating,
               "comment": comment or None, "correction": correction or None}
        return retry_busy(lambda: self.db["feedback"].insert(row).last_pk)

    def feedback_for(self, answer_id: str) -> list[dict]:
        return list(self.db.query("SELECT * FROM feedback WHERE answer_id = ? ORDER BY id", [answer_id]))

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


def _decode(row: dict) -> dict:
    for key in ("citations", "passages", "trace"):
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


__all__ = ["AnswerLog", "retry_busy"]
