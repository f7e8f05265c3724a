"""Core types: frozen dataclasses with content-hash ids."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


def content_id(*parts: str, length: int = 16) -> str:
    """A short, stable id from the given parts (sha256 hex prefix)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:length]


def file_sha256(path) -> str:
    """sha256 hex of a file, read in 1 MiB blocks (model weights are large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def index_text(heading: str | None, text: str) -> str:
    """What embedders and BM25 see for a passage: the heading gives it its context."""
    return f"{heading}\n{text}" if heading else text


@dataclass(frozen=True)
class Page:
    """One page of extracted text, numbered as a reader counts (1-based)."""

    number: int
    text: str


@dataclass(frozen=True)
class Document:
    id: str
    source: str  # file path, or the `_id` of a jsonl record
    title: str
    sha256: str  # of the document's content
    pages: int
    meta: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def make_id(source: str, sha256: str) -> str:
        return content_id(source, sha256)


@dataclass(frozen=True)
class Chunk:
    """A passage: `text == page_text[char_start:char_end]` of its document's page."""

    id: str
    doc_id: str
    ordinal: int
    text: str
    page: int
    char_start: int
    char_end: int
    heading: str | None = None

    @staticmethod
    def make_id(doc_id: str, ordinal: int, text: str) -> str:
        return content_id(doc_id, str(ordinal), text)

    def index_text(self) -> str:
        return index_text(self.heading, self.text)


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with every stage's score and rank kept."""

    chunk: Chunk
    source: str
    scores: dict[str, float] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)
    calendar: dict | None = None  # its document's fiscal calendar, when the document states one
    ocr: bool = False  # its page's text was read by OCR (a scanned page)
    period: str | None = None  # the period its document reports ("Three Months Ended March 2023")
