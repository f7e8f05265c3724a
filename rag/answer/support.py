"""Sentence-level evidence: which sentence of a passage supports a claim, and how strongly.

One measure serves three jobs, so they agree with each other:
- the extractive answerer picks the passage sentences closest to the question;
- the citation check asks whether a cited passage holds a sentence that supports the
  answer sentence (the quote) and flags it verified or not;
- abstention reads how close the best passage sentence comes to the question.

Support of a claim by a sentence = max(cosine of their MiniLM vectors, share of the claim's
content terms (stemmed, stop words out) found in the sentence). The lexical half catches
numbers, names and dates that embeddings blur; the cosine half catches paraphrase.
"""
from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np

from ingest.chunk import MAX_TITLE_WORDS, split_sentences
from ingest.pdf_layout import CELL_SEP, is_row_line
from rag.answer.guard import is_instruction
from rag.store.sparse import analyse
from rag.types import Hit

_MIN_SENTENCE_CHARS = 12
_WS = re.compile(r"\s+")
_BULLET = re.compile(r"\s+[\u2022\u25aa\u25e6\u00b7\u2023\u2043]\s+")


@dataclass(frozen=True)
class Sentence:
    passage: int      # 1-based number of the passage in the answer's context
    text: str
    start: int        # offsets in the passage's chunk text
    end: int
    caption: str = ""  # for a table row: the line over its table in the passage ("Subscription
                       # and Support Revenue by the Company's service offerings" over "Service")


def passage_sentences(hits: list[Hit]) -> list[Sentence]:
    """Every sentence of the given passages, in passage order, whitespace-normalised;
    instruction-like sentences (rag/answer/guard.py) are left out: they are never evidence."""
    out = []
    titles: dict[str, str] = {}  # a row -> the title over its table, where a passage shows it
    untitled: list[int] = []
    for n, hit in enumerate(hits, 1):
        text = hit.chunk.text
        for s, e in split_sentences(text):
            # Bullet lists read as one "sentence" to the splitter; each item is a claim of its own.
            cuts = [s] + [m.end() for m in _BULLET.finditer(text, s, e)]
            ends = [m.start() for m in _BULLET.finditer(text, s, e)] + [e]
            for a, b in zip(cuts, ends):
                clean = _WS.sub(" ", text[a:b]).strip(" \u2022")
                if len(clean) >= _MIN_SENTENCE_CHARS and not is_instruction(clean) and not _caption(clean) \
                        and not _table_title(clean, text, b):
                    over = table_caption(text, a) if CELL_SEP in clean else ""
                    if over:
                        titles.setdefault(clean, over)
                    elif CELL_SEP in clean:
                        untitled.append(len(out))
                        over = heading_title(hit.chunk.heading)
                    out.append(Sentence(n, clean, a, b, over))
    # A row that the chunk overlap repeats at the top of the next chunk has no title over it
    # there; where another passage shows it under its table's title, that title is its own.
    for i in untitled:
        if out[i].text in titles:
            out[i] = replace(out[i], caption=titles[out[i].text])
    return out


def table_caption(text: str, start: int) -> str:
    """The lines just above the table of the row at offset `start`, when they are short enough
    to be its title (a sentence of prose above a table names nothing in particular). A title
    may take two or three lines ("COMPARABLE SALES" over "Increase/(Decrease)")."""
    title: list[str] = []
    for line in reversed(text[:start].split("\n")):
        line = _WS.sub(" ", line).strip()
        if not title and (not line or CELL_SEP in line):
            continue  # the rows above this one, up to the table's top
        words = len(" ".join([line, *title]).split())
        if not line or CELL_SEP in line or words > MAX_TITLE_WORDS or (title and line.endswith(".")):
            break
        title.insert(0, line)
    return " ".join(title)


def heading_title(heading: str | None) -> str:
    """The innermost part of a chunk's heading path under the document's name: the title of
    the table its rows belong to, when the chunk starts below it ("SALESFORCE 2024Q1 EARNINGS >
    Subscription and Support Revenue by the Company's service offerings")."""
    parts = (heading or "").split(" > ")
    return parts[-1] if len(parts) > 1 else ""


def _table_title(clean: str, text: str, end: int) -> bool:
    """A title over a table ("Yoga for a Healthy Heart Protocol" over its rows): short, no
    sentence end, and the next line is a row. It names the table; its rows say what is in it."""
    if CELL_SEP in clean or len(clean.split()) > MAX_TITLE_WORDS or clean.rstrip().endswith((".", "!", "?")):
        return False
    following = next((l.strip() for l in text[end:].split("\n")[1:] if l.strip()), "")
    return is_row_line(following)


def _caption(text: str) -> bool:
    """A heading or caption left in the text ("ABOUT McDONALD'S"): under four words, no figure,
    no sentence end. It states nothing, so it is never an answer or a quote."""
    return len(text.split()) < 4 and not re.search(r"\d", text) and not text.rstrip().endswith((".", "!", "?"))


def lexical_support(claim: str, sentence: str) -> float:
    """Share of the claim's content terms present in the sentence (0 when the claim has none)."""
    terms = set(analyse(claim))
    if not terms:
        return 0.0
    return len(terms & set(analyse(sentence))) / len(terms)


class SupportModel:
    """Scores claims against passage sentences with the configured embedder.

    Unit vectors are kept for the last `cache_size` unit texts: questions about the same
    documents meet the same passages (a follow-up, a second figure from one table), and
    embedding the units is nearly all of the evidence step's time."""

    def __init__(self, embedder, cache_size: int = 4096):
        self.embedder = embedder
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def vectors(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        with self._lock:
            known = {t: self._cache[t] for t in texts if t in self._cache}
            for t in known:
                self._cache.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            fresh = np.asarray(self.embedder.embed(missing), dtype=np.float32)
            with self._lock:
                for t, v in zip(missing, fresh):
                    known[t] = self._cache[t] = v
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return np.stack([known[t] for t in texts])

    def support_matrix(self, claims: list[str], sentences: list[Sentence],
                       sentence_vecs: np.ndarray | None = None) -> np.ndarray:
        """[claims x sentences] support scores in [0, 1]-ish."""
        if not claims or not sentences:
            return np.zeros((len(claims), len(sentences)), dtype=np.float32)
        cv = self.vectors(claims)
        sv = sentence_vecs if sentence_vecs is not None else self.vectors([s.text for s in sentences])
        cos = cv @ sv.T
        lex = np.array([[lexical_support(c, s.text) for s in sentences] for c in claims], dtype=np.float32)
        return np.maximum(cos, lex)


__all__ = ["Sentence", "SupportModel", "lexical_support", "passage_sentences"]
