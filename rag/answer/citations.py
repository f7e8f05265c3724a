"""Citations a person can check.

An LLM answer's `[n]` markers are parsed and mapped to the passages it was given. Markers
that point at nothing are removed and counted. Each citation carries the passage sentence
that best supports the cited answer sentence (the quote) and a verified flag from the
support check. Answer sentences without a marker are listed; where the model left markers
out, the best-supporting passage is attached and the citation is marked inferred.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from ingest.chunk import split_sentences
from ingest.pdf_layout import is_row_line
from rag.answer.support import SupportModel, passage_sentences
from rag.types import Hit

MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
# "... sentence. [1][2]" -> "... sentence [1][2]." so markers stay with their sentence.
_TRAILING_MARKERS = re.compile(r"([.!?])((?:\s*\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\])+)")
# Sentences that carry no claim: preambles and sign-offs need no citation.
_NO_CLAIM = re.compile(r"^(based on|according to|in summary|to summari[sz]e|here is|here are|sure|"
                       r"i hope|let me know)\b", re.I)
_MIN_CLAIM_WORDS = 4
# Sentences that only say where the previous one came from.
_ATTRIBUTION = re.compile(r"^(this|that|these|the (above|information|answer|details?|figure)|it|which|all of this)"
                          r"( information| answer| detail| figure)?( (is|are|was|can be|could be|may be))?"
                          r"( (found|stated|mentioned|given|shown|listed|noted|described|explained|provided|"
                          r"taken|from|based|cited|reported))\b", re.I)


@dataclass
class Citation:
    n: int                 # passage number in the answer's context (the [n] in the text)
    source: str
    page: int
    chunk_id: str
    quote: str             # the passage sentence that best supports the answer sentence
    verified: bool         # the support check passed
    inferred: bool         # attached by the app, not by the model
    support: float         # the support score the check compared with its threshold
    sentence: str          # the answer sentence this citation backs

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class CheckedAnswer:
    text: str                       # markers that point at nothing removed; inferred ones added
    citations: list[Citation]
    removed_markers: int
    uncited_sentences: list[str]    # claims the model gave no marker for


def _claims(text: str) -> list[tuple[str, list[int]]]:
    """Split an answer into (sentence without markers, marker numbers) pairs."""
    text = _TRAILING_MARKERS.sub(lambda m: m.group(2) + m.group(1), text)
    out = []
    for s, e in split_sentences(text):
        sentence = text[s:e]
        numbers = [int(x) for m in MARKER.finditer(sentence) for x in re.split(r"\s*[,;]\s*", m.group(1))]
        bare = re.sub(r"\s+([.!?,;:])", r"\1", MARKER.sub("", sentence)).strip()
        bare = re.sub(r"\s{2,}", " ", bare)
        if not bare:
            if out:  # a marker on its own: it belongs to the sentence before
                out[-1] = (out[-1][0], out[-1][1] + numbers)
            continue
        if numbers and out and _ATTRIBUTION.match(bare):
            # "This is stated in [2] on page 5." cites the previous sentence and says nothing itself.
            out[-1] = (out[-1][0], out[-1][1] + numbers)
            continue
        out.append((bare, numbers))
    return out


def reflow(text: str) -> str:
    """A passage for reading: the PDF's hard line breaks inside prose become spaces (same
    length, so offsets still hold); blank lines and the lines of table rows stay."""
    lines = text.split("\n")
    rows = [is_row_line(line.strip()) for line in lines]
    out = []
    for i, line in enumerate(lines):
        out.append(line)
        if i + 1 < len(lines):
            keep = not line.strip() or not lines[i + 1].strip() or rows[i] or rows[i + 1]
            out.append("\n" if keep else " ")
    return "".join(out)


def quote_spans(text: str, quotes: list[str]) -> list[tuple[int, int]]:
    """Where each quote (whitespace-normalised, as citations carry them) sits in the passage
    text, as (start, end) offsets of the original text, in order and not overlapping. The
    source panel highlights exactly these: a table row, a sentence, or the cut part of one."""
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    flat = " ".join(text[a:b] for a, b in words)
    starts, pos = [], 0
    for a, b in words:  # offset in `flat` of each word
        starts.append(pos)
        pos += (b - a) + 1
    spans: list[tuple[int, int]] = []
    cursor = 0
    for q in quotes:
        q = " ".join(q.split())
        at = flat.find(q, cursor) if q else -1
        if at < 0:
            continue
        first = max(i for i, st in enumerate(starts) if st <= at)
        last = max(i for i, st in enumerate(starts) if st < at + len(q))
        start = words[first][0] + (at - starts[first])
        end = words[last][0] + min(at + len(q) - starts[last], words[last][1] - words[last][0])
        spans.append((start, end))
        cursor = at + len(q)
    return spans


def is_claim(sentence: str) -> bool:
    return len(sentence.split()) >= _MIN_CLAIM_WORDS and not _NO_CLAIM.match(sentence)


def check_citations(answer: str, hits: list[Hit], model: SupportModel, threshold: float) -> CheckedAnswer:
    """Parse markers, verify each against its passage, infer the missing ones."""
    sentences = passage_sentences(hits)
    claims = _claims(answer)
    removed = 0
    valid: list[list[int]] = []
    for _, numbers in claims:
        keep = []
        for n in numbers:
            if 1 <= n <= len(hits):
                if n not in keep:
                    keep.append(n)
            else:
                removed += 1
        valid.append(keep)
    support = model.support_matrix([c for c, _ in claims], sentences)  # [claims x sentences]
    by_passage: dict[int, list[int]] = {}
    for j, s in enumerate(sentences):
        by_passage.setdefault(s.passage, []).append(j)

    def cite(i: int, n: int, inferred: bool) -> Citation:
        cols = by_passage.get(n, [])
        if cols:
            j = cols[int(np.argmax(support[i, cols]))]
            quote, score = sentences[j].text, float(support[i, j])
        else:
            quote, score = "", 0.0
        hit = hits[n - 1]
        return Citation(n, hit.source, hit.chunk.page, hit.chunk.id, quote, score >= threshold, inferred,
                        round(score, 4), claims[i][0])

    citations: list[Citation] = []
    uncited: list[str] = []
    parts: list[str] = []
    for i, (claim, _) in enumerate(claims):
        numbers = valid[i]
        if numbers:
            citations += [cite(i, n, inferred=False) for n in numbers]
        elif is_claim(claim):
            uncited.append(claim)
            if sentences:
                best = sentences[int(np.argmax(support[i]))].passage
                citations.append(cite(i, best, inferred=True))
                numbers = [best]
        marks = "".join(f"[{n}]" for n in numbers)
        if marks and claim[-1:] in ".!?":
            parts.append(f"{claim[:-1]} {marks}{claim[-1]}")
        else:
            parts.append(f"{claim} {marks}".rstrip())
    return CheckedAnswer(" ".join(parts), citations, removed, uncited)


__all__ = ["CheckedAnswer", "Citation", "MARKER", "check_citations", "is_claim", "quote_spans", "reflow"]
