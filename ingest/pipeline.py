"""Ingestion: files -> documents -> chunks -> vectors -> pending rows -> one atomic publish.

Embedding dominates the cost, so chunks from many documents are embedded together in
large batches, and a document whose content hash is already live is never re-embedded.
"""
from __future__ import annotations

import hashlib
import itertools
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ingest.chunk import CHUNKER_VERSION, chunk_pages, document_label, sentence_spans
from ingest.load import LoadedDoc, PdfParser, load_file
from rag.answer.periods import fiscal_calendar, report_period
from rag.config import Settings
from rag.embed import Embedder, embedder_from_settings, token_counter
from rag.errors import EmptyFile, FileRejected
from rag.store import LocalStore, open_store
from rag.types import Document, content_id, index_text

Progress = Callable[["ProgressEvent"], None]
STAGE_WORDS = {"read": "Reading", "chunk": "Chunking", "embed": "Embedding", "publish": "Publishing",
               "unchanged": "Unchanged", "error": "Refused", "done": "Done"}


@dataclass(frozen=True)
class ProgressEvent:
    """Where an ingest run stands: the file and stage now being worked on, and the whole run.

    stage: read (done/total = pages, or the `unit` an Office file counts), chunk, embed (done/total =
    passages of the current batch, `file` names the batch's files), publish, unchanged or error (a
    file finished early), done.
    """
    stage: str
    file: str
    index: int  # 1-based position of `file` in the run (the batch's last file while embedding)
    files: int
    done: int = 0
    total: int = 0
    fraction: float = 0.0  # of the whole run's work
    eta_s: float | None = None
    unit: str = "page"  # what done/total count while reading: page, slide, sheet, row
    part: float = 0.0  # while a scanned page is OCR'd: the share of its lines read so far

    def label(self) -> str:
        word = STAGE_WORDS.get(self.stage, self.stage)
        if self.stage == "embed":
            text = f"{word} passages {self.done} of {self.total} ({self.file})"
        elif self.stage in ("publish", "done"):
            text = f"{word} the index" if self.stage == "publish" else f"{word}: {self.files} file(s)"
        else:
            text = f"{word} {self.file} (file {self.index} of {self.files})"
            if self.stage == "read" and self.total:  # the page being read, or all read
                text += (f": {self.unit} {self.done + 1:,} of {self.total:,}" if self.done < self.total
                         else f": {self.total:,} {self.unit}s read")
                if self.part and self.done < self.total:
                    text += f" (OCR: {self.part:.0%} of its lines read)"
        if self.eta_s is not None and self.stage != "done":
            text += f" · about {_duration(self.eta_s)} left"
        return text


def _duration(seconds: float) -> str:
    s = max(1, round(seconds))
    return f"{s} s" if s < 90 else f"{round(s / 60)} min"


READ_SHARE = 0.3  # of a file's work: reading and chunking (the rest is embedding)
EMBED_SHARE = 1 - READ_SHARE


class _Tracker:
    """Turns pipeline steps into ProgressEvents with a run-wide fraction and a time estimate.

    Work is counted in bytes: READ_SHARE of a file's weight for reading and chunking it, the rest
    for embedding its passages; a file skipped or refused counts whole at once. The share was
    measured on a 104-page 10-K (read 10 s, embed 25 s on 2 cores), so the bar and the estimate
    move with the time it takes rather than jumping through reading."""

    def __init__(self, progress: Progress | None, sizes: list[int]):
        self.progress = progress
        self.weights = [max(s, 4096) for s in sizes]
        self.total = float(sum(self.weights)) or 1.0
        self.done = 0.0
        self.started = time.monotonic()

    def add(self, work: float) -> None:
        self.done += work

    def emit(self, stage: str, file: str, index: int, done: int = 0, total: int = 0, partial: float = 0.0,
             unit: str = "page", part: float = 0.0) -> None:
        if self.progress is None:
            return
        fraction = 1.0 if stage == "done" else min(0.99, (self.done + partial) / self.total)
        elapsed = time.monotonic() - self.started
        eta = elapsed * (1 - fraction) / fraction if fraction >= 0.05 and elapsed >= 2 else None
        self.progress(ProgressEvent(stage, file, index, len(self.weights), done, total, fraction, eta, unit, part))


@dataclass
class FileResult:
    path: str
    status: str = "pending"  # indexed | unchanged | error
    reason: str | None = None
    message: str | None = None
    doc_id: str | None = None
    documents: int = 0
    pages: int = 0
    chunks: int = 0
    size_bytes: int = 0
    _new_docs: int = 0
    _duplicates: int = 0


@dataclass
class IngestReport:
    files: list[FileResult]
    index_version: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    embedded_chunks: int = 0

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "error"]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.files:
            out[f.status] = out.get(f.status, 0) + 1
        return out

    def to_dict(self) -> dict:
        return {
            "index_version": self.index_version,
            "files": [{k: v for k, v in asdict(f).items() if not k.startswith("_")} for f in self.files],
            "summary": self.counts(),
            "embedded_chunks": self.embedded_chunks,
            "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


def expand_paths(paths: Iterable[Path | str]) -> list[Path]:
    """Files, and the files under folders (recursively, sorted); hidden entries are skipped."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file()
                              and not any(part.startswith(".") for part in f.relative_to(p).parts)))
        else:
            out.append(p)
    return out


def document_meta(loaded: LoadedDoc) -> dict:
    """What is kept about a document besides its text: the loader's notes (warnings) and the
    fiscal calendar it states, which the answerer needs for "second quarter of fiscal 2024", and
    the period it reports ("results for the first quarter ended March 31, 2023"), which dates
    its sentences that name no period."""
    text = "\n".join(p.text for p in loaded.pages)
    meta = dict(loaded.meta)
    calendar, period = fiscal_calendar(text), report_period(text)
    if calendar:
        meta["fiscal_calendar"] = calendar
    if period:
        meta["report_period"] = period
    return meta


def document_id(loaded: LoadedDoc) -> str:
    # The chunker version is part of the id: a new chunker re-chunks (and re-embeds) a document.
    return content_id(loaded.source, loaded.sha256, CHUNKER_VERSION)


def _unchanged_file(store: LocalStore, path: Path, source: str, size: int, max_bytes: int,
                    res: FileResult) -> bool:
    """Fast path: a single-document file whose bytes are already live is not even parsed."""
    if path.suffix.lower() == ".jsonl" or not 0 < size <= max_bytes:
        return False
    live = store.live_document(source)
    if live is None or live["chunker_version"] != CHUNKER_VERSION or live["size_bytes"] != size:
        return False
    if live["sha256"] != hashlib.sha256(path.read_bytes()).hexdigest():
        return False
    res.status, res.doc_id, res.documents = "unchanged", live["id"], 1
    res.pages, res.chunks = live["pages"], live["n_chunks"]
    return True


def embed_sentences(embedder: Embedder, chunks: list[tuple[str, str]]) -> dict[str, np.ndarray]:
    """chunk id -> vectors of the sentences of its index text; each distinct sentence once."""
    sentences = {cid: [text[a:b] for a, b in sentence_spans(text)] for cid, text in chunks}
    unique = list(dict.fromkeys(x for xs in sentences.values() for x in xs))
    vectors = embedder.embed(unique)
    row = {x: i for i, x in enumerate(unique)}
    return {cid: vectors[[row[x] for x in xs]] for cid, xs in sentences.items()}


LOOKAHEAD = 256  # documents of one file (a jsonl's records) looked up in the store together


def _looked_up(store: LocalStore, loaded_docs: Iterable[LoadedDoc]
               ) -> Iterator[tuple[LoadedDoc, str, dict | None, bool]]:
    """Each loaded document with its id, its source's live document (None if none) and whether
    a pending copy of it exists (an interrupted run's), read LOOKAHEAD documents ahead: two
    questions to the store per document (a round trip each on PostgreSQL) were 2.2 s of a
    store-only ingest of 1,000 SciFact documents taking 9.7 s (bench/pg_ingest.py)."""
    docs = iter(loaded_docs)
    while group := list(itertools.islice(docs, LOOKAHEAD)):
        ids = [document_id(loaded) for loaded in group]
        live, pending = store.known_documents([(loaded.source, i) for loaded, i in zip(group, ids)])
        for loaded, doc_id in zip(group, ids):
            yield loaded, doc_id, live.get(loaded.source), doc_id in pending


EMBED_SLICE = 64  # passages per embedding call within a batch, at least (progress granularity)


class _Batch:
    """Chunked documents waiting for one embedding call."""

    def __init__(self):
        self.items: list[tuple[FileResult, Document, LoadedDoc, list, list[int]]] = []
        self.n_chunks = 0
        self.weight = 0.0  # the run-wide work its embedding stands for (see _Tracker)


def ingest_paths(paths: Iterable[Path | str], settings: Settings, embedder: Embedder | None = None,
                 progress: Progress | None = None,
                 source_of: Callable[[Path], str] | None = None) -> IngestReport:
    """Index files into settings.data_dir. Per-file failures are reported, never raised.

    `source_of` maps a path to the document's source id (default: the path as given).
    """
    started = time.perf_counter()
    timings = {"load": 0.0, "chunk": 0.0, "embed": 0.0, "store": 0.0, "publish": 0.0}
    embedder = embedder or embedder_from_settings(settings)
    store = open_store(settings)
    files = expand_paths(paths)
    results = [FileResult(str(f)) for f in files]
    sizes = [f.stat().st_size if f.is_file() else 0 for f in files]
    track = _Tracker(progress, sizes)
    count = token_counter()
    run_id = uuid.uuid4().hex
    embedded = 0
    batch = _Batch()
    seen_sources: set[str] = set()
    current = {"file": "", "index": 0, "weight": 0}

    def on_page(path: Path, done: float, total: int, unit: str = "page") -> None:
        """`done` may be fractional: a page being OCR'd reports the share of its lines read."""
        partial = current["weight"] * READ_SHARE * min(done, total) / total if total else 0.0
        track.emit("read", current["file"], current["index"], int(done), total, partial, unit, done - int(done))

    def flush() -> None:
        nonlocal batch, embedded
        if not batch.items:
            return
        texts = [c.index_text() for *_, chunks, _n in batch.items for c in chunks]
        names = list(dict.fromkeys(Path(res.path).name for res, *_ in batch.items))
        label = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        t = time.perf_counter()
        # In slices, so that progress moves within a batch; longest first, so that each slice
        # pads to similar lengths (what one big encode call would do by itself).
        order = sorted(range(len(texts)), key=lambda j: -len(texts[j]))
        vectors = None
        step = max(EMBED_SLICE, -(-len(texts) // 20))
        for a in range(0, len(texts), step):
            track.emit("embed", label, current["index"], a, len(texts), batch.weight * EMBED_SHARE * a / len(texts))
            rows = order[a:a + step]
            part = embedder.embed([texts[j] for j in rows])
            if vectors is None:
                vectors = np.zeros((len(texts), part.shape[1]), dtype=part.dtype)
            vectors[rows] = part
        timings["embed"] += time.perf_counter() - t
        store.check_embedder(embedder.id, int(vectors.shape[1]))
        sentence_vectors = None
        if settings.sentence_vectors:
            t = time.perf_counter()
            sentence_vectors = embed_sentences(embedder, [(c.id, c.index_text()) for *_, chunks, _n
                                                          in batch.items for c in chunks])
            timings["embed_sentences"] = timings.get("embed_sentences", 0.0) + time.perf_counter() - t
        t = time.perf_counter()
        rows, kinds, sizes_of, pos = [], {}, {}, 0
        for res, doc, loaded, chunks, ntok in batch.items:
            rows.append((doc, loaded.pages, chunks, vectors[pos:pos + len(chunks)], ntok))
            kinds[doc.id], sizes_of[doc.id] = loaded.kind, loaded.size_bytes
            pos += len(chunks)
        store.add_pending(run_id, rows, kinds, CHUNKER_VERSION, sizes_of, sentence_vectors)
        timings["store"] += time.perf_counter() - t
        embedded += len(texts)
        track.add(batch.weight * EMBED_SHARE)
        track.emit("embed", label, current["index"], len(texts), len(texts))
        batch = _Batch()

    with store.writer(), PdfParser(settings.parse_timeout_s, on_page=on_page, ocr=settings.ocr) as pdf:
        store.check_embedder(embedder.id)
        for i, (path, res, size) in enumerate(zip(files, results, sizes)):
            res.size_bytes = size
            weight = track.weights[i]
            current.update(file=path.name, index=i + 1, weight=weight)
            consumed = 0
            try:
                track.emit("read", path.name, i + 1)
                if not path.exists():
                    raise FileRejected(f"{path}: no such file or folder")
                source = source_of(path) if source_of else str(path)
                if _unchanged_file(store, path, source, size, settings.max_file_bytes, res):
                    track.add(weight)
                    track.emit("unchanged", path.name, i + 1)
                    continue
                t = time.perf_counter()
                for loaded, doc_id, live, pending in _looked_up(
                        store, load_file(path, settings.max_file_bytes, pdf, source=source)):
                    timings["load"] += time.perf_counter() - t
                    if loaded.source in seen_sources:  # e.g. a repeated `_id` in a jsonl file
                        res._duplicates += 1
                        continue
                    seen_sources.add(loaded.source)
                    doc = Document(doc_id, loaded.source, loaded.title, loaded.sha256,
                                   len(loaded.pages), document_meta(loaded))
                    res.documents += 1
                    res.pages += doc.pages
                    res.doc_id = doc.id if res.documents == 1 else None
                    if live is not None and live["id"] == doc.id:
                        res.chunks += live["n_chunks"]
                    elif pending and store.claim_pending(doc.id, run_id):  # resume an interrupted run
                        res._new_docs += 1
                        res.chunks += store.document(doc.id)["n_chunks"]
                    else:
                        track.emit("chunk", path.name, i + 1, partial=weight * READ_SHARE)
                        t = time.perf_counter()
                        heading = loaded.title if loaded.kind == "jsonl-record" else None
                        context = None if heading else document_label(loaded.source, loaded.title)
                        chunks, ntok = chunk_pages(doc.id, loaded.pages, loaded.kind, count,
                                                   settings.chunk_tokens, settings.chunk_overlap_tokens,
                                                   heading=heading, context=context)
                        timings["chunk"] += time.perf_counter() - t
                        if not chunks:
                            raise EmptyFile(f"{path}: nothing to index besides headings")
                        res._new_docs += 1
                        res.chunks += len(chunks)
                        share = min(loaded.size_bytes, size - consumed)
                        consumed += share
                        batch.items.append((res, doc, loaded, chunks, ntok))
                        batch.n_chunks += len(chunks)
                        batch.weight += weight * share / size if size else weight
                        if batch.n_chunks >= settings.ingest_batch_chunks:
                            flush()
                    t = time.perf_counter()
                res.status = "indexed" if res._new_docs else "unchanged"
                if res._duplicates:
                    res.message = (f"{path}: {res._duplicates} document(s) skipped because their id "
                                   "was already used earlier in this run")
            except FileRejected as e:
                res.status, res.reason, res.message = "error", e.reason, e.message
                if res._new_docs:
                    res.message += f" ({res._new_docs} document(s) from it were indexed)"
                track.emit("error", path.name, i + 1)
            # reading is done; the embedding share of what was batched counts when it is embedded
            track.add(weight * READ_SHARE + weight * EMBED_SHARE * ((size - consumed) / size if size else 1.0))
        flush()
        track.emit("publish", "", len(files))
        t = time.perf_counter()
        version = store.publish(run_id, embedder_id=embedder.id, dim=embedder.dim if embedded else None,
                                chunker_version=CHUNKER_VERSION)
        timings["publish"] = time.perf_counter() - t
        store.log_events([{"run_id": run_id, "path": r.path, "status": r.status, "reason": r.reason,
                           "message": r.message, "doc_id": r.doc_id, "chunks": r.chunks} for r in results])
    track.emit("done", "", len(files))
    return IngestReport(results, version, time.perf_counter() - started, timings, embedded)


def delete_sources(sources: list[str], settings: Settings) -> tuple[list[str], int]:
    """Remove documents (by source) from SQLite, FAISS and BM25 in one publish."""
    store = open_store(settings)
    with store.writer():
        return store.delete_sources(sources)


def rebuild_index(settings: Settings) -> int:
    store = open_store(settings)
    with store.writer():
        return store.rebuild_index()



def backfill_sentence_vectors(settings: Settings, embedder: Embedder | None = None,
                              progress: Callable[[int, int, str], None] | None = None, batch: int = 2048) -> int:
    """Compute sentence vectors for chunks that lack them (indexes built without). Returns count."""
    embedder = embedder or embedder_from_settings(settings)
    store = open_store(settings)
    with store.writer():
        store.check_embedder(embedder.id)
        total = store.count_without_sentence_vectors()
        done = 0
        while rows := store.chunks_without_sentence_vectors(batch):
            store.set_sentence_vectors(embed_sentences(
                embedder, [(cid, index_text(h, t)) for cid, h, t in rows]))
            done += len(rows)
            if progress:
                progress(done, total, "sentence vectors")
    return done
