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


def short_count(n: int) -> str:
    """A count that fits a narrow sidebar column: 950, 1.2k, 34k, 1.2M (the sidebar showed
    "1…" for a library of 1,160 chunks)."""
    for size, unit in ((1_000_000, "M"), (1_000, "k")):
        if n >= size:
            value = n / size
            return f"{value:.1f}".rstrip("0").rstrip(".") + unit if value < 10 else f"{value:.0f}{unit}"
    return str(n)
