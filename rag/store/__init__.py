"""Storage behind a narrow interface (add/delete documents, dense and sparse search,
get chunks, logs): SQLite + FAISS + BM25 files in a data dir (local.py), or one PostgreSQL
database (postgres.py) when RAG_DATABASE_URL is set. Both share catalog.py, publish.py and
rules.py."""
from __future__ import annotations

from typing import TYPE_CHECKING, Union

from rag.store.local import LocalStore
from rag.store.rules import Snapshot

if TYPE_CHECKING:
    from rag.store.postgres import PgStore

__all__ = ["LocalStore", "Snapshot", "Store", "open_store"]

Store = Union[LocalStore, "PgStore"]


def open_store(settings) -> Store:
    """The store the settings describe: PostgreSQL when settings.database_url is set (psycopg is
    imported only then), else the local SQLite + FAISS + BM25 one in settings.data_dir."""
    if getattr(settings, "database_url", None):
        from rag.store.postgres import PgStore

        # A non-zero ann_threshold also bounds exact search (as it bounds FAISS's exact index).
        exact_max = settings.pg_exact_max_chunks
        if settings.ann_threshold:
            exact_max = min(exact_max, settings.ann_threshold)
        return PgStore(settings.database_url, exact_max=exact_max)
    return LocalStore(settings.data_dir, ann_threshold=settings.ann_threshold)
