"""Storage behind a narrow interface (add/delete documents, dense and sparse search,
get chunks, logs) so that a PostgreSQL + pgvector backend is an addition, not a rewrite."""
from rag.store.local import LocalStore, Snapshot

__all__ = ["LocalStore", "Snapshot", "open_store"]


def open_store(data_dir) -> LocalStore:
    return LocalStore(data_dir)
