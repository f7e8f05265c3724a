"""Structure-aware chunking: pages -> headings -> paragraphs -> sentences -> token windows.

Guarantees (tested):
- a chunk never spans pages, and `chunk.text == page.text[char_start:char_end]`;
- `chunk.index_text()` (heading + text) fits the embedding window (MAX_WINDOW tokens);
- consecutive chunks of one section overlap by up to `overlap_tokens` of whole sentences;
- a chunk records the heading path it sits under.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from ingest.pdf_layout import is_row_line
from rag.types import Chunk, Page

CHUNKER_VERSION = "struct-14"  # a sentence ends before a curly opening quote; words mended from pdfium's reading of the page (ligatures, letter spacing); a line introducing a table "as follows:" titles its rows; guidance ranges ("$0.79 - $0.80", "N/A", "~10%") are table cells; a short title line right over table rows heads them, so a chunk that starts mid-table says what its rows are; a run of dates heads one column each, table titles over the period line stay titles; scanned grids of word cells read as rows; OCR headers set tight ("Six MonthsEnded June30") read as periods; OCR lines keep their columns, so scanned tables are rows too; a sentence ending ":" above a table is not its header; section labels ending ":" name the rows level with them, footnote marks and no-break spaces out of cells, period headers split evenly; ligature glyphs put back (ingest/clean.py); rows are units, named by their block total; captions end with their table; document name leads headings
MAX_WINDOW = 254  # MiniLM's 256 positions minus [CLS] and [SEP]
MAX_HEADING_CHARS = 120

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_NUMBERED_HEADING = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[IVX]+\.|[A-Z]\.|(?:section|chapter|part|appendix)\s+\w+)\s+\S",
                               re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]\u201d\u2019]*\s+(?=[\"'(\[\u201c\u2018]?[A-Z0-9])")  # also “curly” quotes
_ABBREV = re.compile(r"\b(?:e\.g|i\.e|etc|vs|Dr|Mr|Mrs|Ms|Prof|Fig|No|Inc|Ltd|Co|St|al|approx|U\.S)\.$")

TokenCounter = Callable[[list[str]], list[int]]
# The kinds ingest/office.py reads. They write their headings (Word styles, slide titles, sheet
# names) as Markdown "#" lines: real headings, never guessed, and never a table's caption.
OFFICE_KINDS = {"docx", "pptx", "xlsx", "csv"}


@dataclass
class _Unit:
    start: int
    end: int
    tokens: int
    heading: str | None


def _is_heading_line(line: str, kind: str) -> tuple[int, str] | None:
    """(level, text) when the line is a heading; PDFs and plain text use a cautious heuristic."""
    m = _MD_HEADING.match(line)
    if m and (kind in {"markdown", "html", "text"} or kind in OFFICE_KINDS):
        return len(m.group(1)), m.group(2).strip()
    if kind in {"pdf", "text"} and 3 <= len(line) <= 80 and not line.endswith((".", ",", ";", ":")):
        words = line.split()
        if len(words) <= 10 and _NUMBERED_HEADING.match(line) and any(c.isalpha() for c in line):
            return 2, line
        letters = [c for c in line if c.isalpha()]
        if len(words) <= 8 and len(letters) >= 4 and all(c.isupper() for c in letters):
            return 2, line
    return None


TITLE_LEVEL = 9  # below every real heading: the next title or heading replaces it
MAX_TITLE_WORDS = 15
_TITLE_NUMBER = re.compile(r"^(?:(?:19|20)\d\d|\(\d{1,2}\))$")  # a year, a footnote mark
_NIL_CELLS = {"—", "–", "-", "n/m", "N/M", "**", "*"}
_MARKS = re.compile(r"\(\w{1,2}\)")
_JOINING = {"of", "and", "or", "in", "for", "to", "by", "the", "on", "with", "before", "from", "at", "per", "a", "an"}


_AS_FOLLOWS = re.compile(r"\s+(?:(?:were|are|was|is)\s+)?as follows:$")


def _table_title(line: str, lines: list[str], i: int, kind: str) -> tuple[int, str] | None:
    """A short line right over a table's rows in a PDF ("Subscription and Support Revenue by the
    Company's service offerings" over "Service | ... 1,964"): the table's title. It heads the
    rows, so a chunk that starts mid-table still says what its rows are. Not a sentence, not a
    section label ("Operating activities:", which the rows already carry); but a line that
    introduces the table ("Revenue constant currency growth rates by geographical region were as
    follows:") is its title without "were as follows:"."""
    intro = _AS_FOLLOWS.search(line)  # "Revenue constant currency growth rates ... were as follows:"
    if intro:
        line = line[:intro.start()]
    if kind != "pdf" or len(line.split()) > MAX_TITLE_WORDS or line.endswith((".", "!", "?", ":", ";", ",")):
        return None
    first = next((c for c in line if c.isalpha()), "")
    if not first.isupper() or "$" in line or "%" in line or line.count(")") > line.count("("):
        return None  # a wrapped label's tail ("amounts and percentages)"), a row left unparsed
    words = line.split()
    if any(any(c.isdigit() for c in w) and not _TITLE_NUMBER.match(w) for w in words):
        return None  # figures: a row whose cells were not found keeps its text
    if sum(w in _NIL_CELLS for w in words) >= 2 or (line.startswith("(") and line.endswith(")")):
        return None  # a row of dashes ("Discontinued operations — —"); "(Unaudited)"
    if words[-1].lower() in _JOINING or len(_MARKS.findall(line)) >= 2:
        return None  # a label wrapped onto the next line; column headers "(a) (b) (c)"
    following = next((x.strip() for x in lines[i + 1:] if x.strip()), "")
    return (TITLE_LEVEL, line) if is_row_line(following) else None


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans inside text[start:end], trimmed of surrounding whitespace."""
    spans, cur = [], start
    for m in _SENTENCE_END.finditer(text, start, end):
        if _ABBREV.search(text, max(cur, m.start() - 6), m.start()):
            continue
        spans.append((cur, m.start()))
        cur = m.end()
    spans.append((cur, end))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            out.append((s, e))
    return out


def document_label(source: str, title: str | None = None) -> str:
    """A short, readable name for a document: its file name without extension and separators
    ("MCDONALDS_2023Q2_EARNINGS.pdf" -> "MCDONALDS 2023Q2 EARNINGS"). Metadata titles of filings
    are often accession numbers or "Exhibit 99.1", so the file name is the better label."""
    name = re.split(r"[\\/]", source)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    label = re.sub(r"[_\-\s]+", " ", stem).strip()
    return label[:60] or (title or "")[:60]


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Answer units of a passage (no heading line): sentences of prose, and each table row
    (a line written by ingest/pdf_layout.py, carrying its column headers) as one unit."""
    spans: list[tuple[int, int]] = []
    pos, block = 0, None
    for line in text.split("\n"):
        start, end = pos, pos + len(line)
        pos = end + 1
        if is_row_line(line.strip()):
            if block is not None:
                spans += _sentences(text, block, start)
                block = None
            s, e = start + len(line) - len(line.lstrip()), end - (len(line) - len(line.rstrip()))
            spans.append((s, e))
        elif block is None:
            block = start
    if block is not None:
        spans += _sentences(text, block, len(text))
    return spans or ([(0, len(text))] if text.strip() else [])


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentences of an index text (for sentence vectors); a heading line is one of its own."""
    spans: list[tuple[int, int]] = []
    body_start = 0
    first_nl = text.find("\n")
    if first_nl > 0:
        spans.append((0, first_nl))
        body_start = first_nl + 1
    spans += _sentences(text, body_start, len(text))
    return spans or [(0, len(text))]


def _split_long(text: str, s: int, e: int, tokens: int, limit: int) -> list[tuple[int, int]]:
    """Cut an over-long span into pieces of roughly `limit` tokens, at whitespace when one
    is near the cut point, else right at it (URLs, base64 and other unbroken runs)."""
    pieces = max(2, -(-tokens // limit))
    step = (e - s) / pieces
    out, cur = [], s
    for i in range(1, pieces):
        target = int(s + i * step)
        ws = text.rfind(" ", max(cur + 1, int(target - step / 2)), target + 1)
        cut = ws if ws > cur else target
        if cut > cur:
            out.append((cur, cut))
            cur = cut
    out.append((cur, e))
    spans = []
    for a, b in out:
        while a < b and text[a].isspace():
            a += 1
        if a < b:
            spans.append((a, b))
    return spans


def _units_of_page(page: Page, kind: str, count: TokenCounter, limit: int,
                   heading_path: list[tuple[int, str]]) -> list[_Unit]:
    """Sentence units of one page with the heading each falls under (heading_path is carried)."""
    text = page.text
    spans: list[tuple[int, int, str | None, bool]] = []  # start, end, heading, paragraph_start
    pos, new_para = 0, True
    fresh = caption = False  # the last heading has only table rows under it so far / it captions a table
    lines = text.split("\n")
    for i, line in enumerate(lines):
        line_start, line_end = pos, pos + len(line)
        pos = line_end + 1
        stripped = line.strip()
        if not stripped:
            new_para = True
            continue
        row = is_row_line(stripped)
        h = None if row else _is_heading_line(stripped, kind) or _table_title(stripped, lines, i, kind)
        if h is not None:
            level = h[0]
            while heading_path and heading_path[-1][0] >= level:
                heading_path.pop()
            heading_path.append((level, h[1][:MAX_HEADING_CHARS]))
            new_para, fresh, caption = True, True, False
            continue
        # section labels inside a table ("Revenues", "Operating expenses:") are not prose
        prose = not row and (len(stripped) > 60 or stripped.endswith((".", "?", "!")))
        if row:
            caption = caption or fresh
        elif prose and heading_path and kind not in OFFICE_KINDS and (caption or heading_path[-1][0] == TITLE_LEVEL):
            heading_path.pop()  # prose after a table: its caption is not its heading (a title on the
            caption = False     # page before too: the table went on overleaf, the prose does not)
        if prose:
            fresh = False
        heading = " > ".join(t for _, t in heading_path)[-MAX_HEADING_CHARS:] or None
        if row:
            spans.append((line_start, line_end, heading, True))
            new_para = True
            continue
        if spans and not new_para and spans[-1][2] == heading:  # continue the paragraph
            s = spans[-1][0]
            spans[-1] = (s, line_end, heading, spans[-1][3])
        else:
            spans.append((line_start, line_end, heading, True))
        new_para = False
    sent_spans: list[tuple[int, int, str | None]] = []
    for s, e, heading, _ in spans:
        sent_spans.extend((a, b, heading) for a, b in _sentences(text, s, e))  # rows are spans of their own
    counts = count([text[a:b] for a, b, _ in sent_spans])
    units: list[_Unit] = []
    for (a, b, heading), n in zip(sent_spans, counts):
        if n > limit:
            parts = _split_long(text, a, b, n, limit)
            for (pa, pb), pn in zip(parts, count([text[x:y] for x, y in parts])):
                units.append(_Unit(pa, pb, pn, heading))
        else:
            units.append(_Unit(a, b, n, heading))
    return units


def chunk_pages(doc_id: str, pages: list[Page], kind: str, count: TokenCounter,
                max_tokens: int = 200, overlap_tokens: int = 40,
                heading: str | None = None, context: str | None = None) -> tuple[list[Chunk], list[int]]:
    """Chunks of a document and their token counts (of index_text).

    `heading`, when given (e.g. a jsonl record's title), is the heading of every chunk.
    `context`, when given (the document's name), leads every chunk's heading path, so that a
    table row of a report ("Net revenues | ...") is found by the company it belongs to.
    """
    chunks: list[Chunk] = []
    heading_path: list[tuple[int, str]] = []
    for page in pages:
        head_tokens: dict[str | None, int] = {}
        units = _units_of_page(page, kind, count, max_tokens, heading_path)
        if heading is not None:
            for u in units:
                u.heading = heading[:MAX_HEADING_CHARS]
        elif context:
            room = MAX_HEADING_CHARS - len(context) - 3
            for u in units:
                u.heading = f"{context} > {u.heading[-room:]}" if u.heading and room > 10 else context
        for h in {u.heading for u in units}:
            head_tokens[h] = count([h])[0] + 1 if h else 0
        current: list[_Unit] = []

        def emit(group: list[_Unit]) -> None:
            s, e = group[0].start, group[-1].end
            text = page.text[s:e]
            chunks.append(Chunk(Chunk.make_id(doc_id, len(chunks), text), doc_id, len(chunks), text,
                                page.number, s, e, group[0].heading))

        for u in units:
            budget = max(max_tokens - head_tokens[u.heading], 32)
            used = sum(x.tokens for x in current)
            if current and (u.heading != current[0].heading or used + u.tokens > budget):
                same_section = u.heading == current[0].heading
                emit(current)
                tail: list[_Unit] = []
                if same_section:
                    for x in reversed(current[1:]):  # never repeat a whole chunk
                        if sum(t.tokens for t in tail) + x.tokens > overlap_tokens:
                            break
                        tail.insert(0, x)
                    if sum(t.tokens for t in tail) + u.tokens > budget:
                        tail = []
                current = tail
            current.append(u)
        if current:
            emit(current)
    return _fit_window(chunks, pages, count)


def _fit_window(chunks: list[Chunk], pages: list[Page], count: TokenCounter) -> tuple[list[Chunk], list[int]]:
    """Exact token counts; a chunk still over the window (tokenizer joins) is split until it fits."""
    counts = count([c.index_text() for c in chunks])
    if all(n <= MAX_WINDOW for n in counts):
        return chunks, counts
    page_text = {p.number: p.text for p in pages}
    for _ in range(20):
        if all(n <= MAX_WINDOW for n in counts):
            break
        fixed: list[Chunk] = []
        for c, n in zip(chunks, counts):
            if n <= MAX_WINDOW:
                fixed.append(c)
                continue
            text = page_text[c.page]
            for a, b in _split_long(text, c.char_start, c.char_end, n, MAX_WINDOW * 3 // 4):
                fixed.append(Chunk("", c.doc_id, 0, text[a:b], c.page, a, b, c.heading))
        chunks = fixed
        counts = count([c.index_text() for c in chunks])
    else:
        raise RuntimeError(f"chunker bug: could not fit chunks of {chunks[0].doc_id} into {MAX_WINDOW} tokens")
    renumbered = [Chunk(Chunk.make_id(c.doc_id, i, c.text), c.doc_id, i, c.text, c.page, c.char_start,
                        c.char_end, c.heading) for i, c in enumerate(chunks)]
    return renumbered, counts
