"""Storage behind a narrow interface (add/delete documents, dense and sparse search,
get chunks, logs) so that a PostgreSQL + pgvector backend is an addition, not a rewrite."""
from rag.store.local import LocalStore, Snapshot

__all__ = ["LocalStore", "Snapshot", "open_store"]


def open_store(settings) -> LocalStore:
    """The store the settings describe (today always the local SQLite + FAISS + BM25 one)."""
    return LocalStore(settings.data_dir, ann_threshold=settings.ann_threshold)
