"""The rules both stores follow, written once: what a snapshot is, when an embedder may write,
which facts of a document reach a search hit, how a chunk's BM25 terms are made, where a crash
may be injected, and what "consistent" means for the indexes of the live version.

The stores differ only in where things live (SQLite + files, or one PostgreSQL database);
rag/store/catalog.py holds their shared SQL and rag/store/publish.py their shared publishing.
"""
from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import EmbedderMismatch
from rag.store.sparse import analyse
from rag.types import Chunk

SCHEMA_VERSION = 1
# Facts about a document that travel with every hit from it (see Catalog.chunks_by_vid).
HIT_FACTS = ("fiscal_calendar", "ocr_pages", "report_period")


def marks(n: int) -> str:
    """n query placeholders for an IN (...) list or a VALUES row: "?,?,?"."""
    return ",".join("?" * n)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def crash_point(name: str) -> None:
    """Fault injection for the crash-consistency tests: RAG_CRASH_AT=<name> kills us here."""
    if os.environ.get("RAG_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class Snapshot:
    """The derived indexes of one index version, loaded for searching. `dense` and `sparse`
    answer `search(query, k) -> (vids, scores)` and `len()`, whatever engine is behind them."""

    version: int
    manifest: dict
    dense: Any
    sparse: Any


@dataclass
class PublishPlan:
    """What one publish changes: pending documents of the run that go live, and live documents
    that go (replaced by a pending copy of the same source, or deleted on request)."""

    run_id: str | None
    base_version: int
    pending: list[str] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)

    @property
    def empty(self) -> bool:
        return not self.pending and not self.deleted


def check_embedder(where: str, built_with: str | None, built_dim: str | None,
                   embedder_id: str, dim: int | None) -> None:
    """Refuse to mix vectors from different embedders in one index."""
    if built_with and built_with != embedder_id:
        raise EmbedderMismatch(
            f"the index in {where} was built with embedder {built_with!r} but "
            f"{embedder_id!r} is configured. Set RAG_EMBEDDER back, or use a new --data-dir "
            "(or database) to build a separate index with the new embedder.")
    if dim is not None and built_dim and int(built_dim) != dim:
        raise EmbedderMismatch(f"the index in {where} holds {built_dim}-d vectors; "
                               f"the configured embedder gives {dim}-d")


def hit_facts(meta_json: str | None) -> dict:
    """The document facts a hit carries: its fiscal calendar, and which pages were read by OCR."""
    meta = json.loads(meta_json or "{}")
    return {k: meta[k] for k in HIT_FACTS if k in meta}


def chunk_terms(chunk: Chunk) -> str:
    """BM25 terms of a chunk, stored with it so any index can be rebuilt without re-tokenising."""
    return " ".join(analyse(chunk.index_text()))


def f16(matrix: np.ndarray | None) -> bytes | None:
    """Sentence vectors are stored as float16: half the bytes, no measurable loss for maxsim."""
    return None if matrix is None else np.asarray(matrix, dtype=np.float16).tobytes()


def from_f16(blob: bytes, dim: int) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float16).reshape(-1, dim).astype(np.float32)


def source_forms(source: str) -> tuple[str, str, str]:
    """How a source given for deletion may match: as stored, as an absolute path, or (when it
    is a bare file name) as the last part of a stored path (a LIKE pattern, escaped with \\)."""
    escaped = source.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return source, str(Path(source).resolve()), "%/" + escaped


def index_problems(version: int, live: np.ndarray, snap: Snapshot) -> list[str]:
    """Do the loaded indexes of `version` hold exactly the live chunks the catalog lists?"""
    problems = []
    if snap.manifest.get("index_version") != version:
        problems.append(f"manifest version {snap.manifest.get('index_version')} != catalog {version}")
    if snap.dense is not None and not np.array_equal(np.sort(snap.dense.ids()), live):
        problems.append(f"the dense index holds {len(snap.dense)} ids, the catalog {len(live)} live chunks")
    if snap.sparse is not None and not np.array_equal(np.sort(snap.sparse.vids), live):
        problems.append(f"BM25 holds {len(snap.sparse)} ids, the catalog {len(live)} live chunks")
    return problems
