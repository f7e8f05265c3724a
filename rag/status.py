"""What the app shows about the index: counts, versions, the embedder, and any problems."""
from __future__ import annotations

from rag.config import Settings
from rag.store import open_store


def index_status(settings: Settings) -> dict:
    store = open_store(settings)
    stats = store.stats()
    stats["documents_list"] = store.documents()
    stats["recent_errors"] = store.ingest_events(status="error", limit=20)
    stats["configured_embedder"] = settings.embedder
    return stats
