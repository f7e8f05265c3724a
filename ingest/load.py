"""Load files into documents: size check, type sniffing, format-specific extraction.

Every failure is a FileRejected naming the file and a reason a person understands.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

from ingest.chunk import OFFICE_KINDS
from ingest.clean import clean_text
from rag.errors import (EmptyFile, FileRejected, FileTooLarge, MalformedFile, MislabelledType,
                        NoTextLayer, ParseTimeout, PasswordProtected, UnsupportedType)
from rag.types import Page

KINDS = {".pdf": "pdf", ".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text",
         ".html": "html", ".htm": "html", ".jsonl": "jsonl",
         ".docx": "docx", ".pptx": "pptx", ".xlsx": "xlsx", ".csv": "csv",  # these and the next: ingest/office.py
         ".docm": "docx", ".pptm": "pptx", ".xlsm": "xlsx"}  # macro-enabled: read as the others, macros never read

# The Office kinds that are ZIP packages (ingest/office.py looks inside), as a person names them.
PACKAGES = {"docx": "a Word document", "pptx": "a PowerPoint presentation", "xlsx": "an Excel workbook"}
_OLD_OFFICE = {".doc": ".docx", ".xls": ".xlsx", ".ppt": ".pptx"}  # binary formats: save as these
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # an old binary Office file, or an encrypted Office package
_MAGIC = [(b"%PDF-", "a PDF"), (ZIP_MAGIC, "a ZIP archive (e.g. .docx/.xlsx)"),
          (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
          (b"\x1f\x8b", "gzip-compressed data"), (OLE_MAGIC, "an old MS Office file"),
          (b"\x7fELF", "a program (ELF)"), (b"Rar!", "a RAR archive"), (b"7z\xbc\xaf", "a 7-Zip archive")]


@dataclass
class LoadedDoc:
    """One document's cleaned pages, before chunking."""

    source: str
    title: str
    sha256: str
    pages: list[Page]
    kind: str
    size_bytes: int
    meta: dict = field(default_factory=dict)


def sniff(head: bytes) -> str | None:
    """What the first bytes say a file is: a description for binaries, None for text."""
    stripped = head.lstrip()
    for magic, what in _MAGIC:
        if stripped.startswith(magic) or (magic == b"%PDF-" and magic in head[:1024]):
            return what
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None  # UTF-16 text
    if b"\x00" in head:
        return "binary data"
    return None


def detect_kind(path: Path, head: bytes) -> str:
    """The kind of a file by its extension, checked against its first bytes. An Office package
    is only known to be a ZIP (or an encrypted OLE file) here; ingest/office.py looks inside."""
    suffix = path.suffix.lower()
    kind = KINDS.get(suffix)
    if suffix in _OLD_OFFICE:
        raise UnsupportedType(f"{path}: the old binary {suffix} format is not supported; open it in Office "
                              f"(or LibreOffice), save it as {_OLD_OFFICE[suffix]} and add that file")
    if kind is None:
        raise UnsupportedType(f"{path}: {path.suffix or 'files without an extension'} is not supported "
                              f"(supported: {', '.join(sorted(KINDS))})")
    what = sniff(head)
    if kind == "pdf" and what != "a PDF":
        raise MislabelledType(f"{path}: named .pdf but the content is {what or 'text'}, not a PDF")
    if kind in PACKAGES and not head.startswith((ZIP_MAGIC, OLE_MAGIC)):
        raise MislabelledType(f"{path}: named {path.suffix} but the content is {what or 'text'}, "
                              f"not {PACKAGES[kind]}")
    if kind not in PACKAGES and kind != "pdf" and what is not None:
        raise MislabelledType(f"{path}: named {path.suffix} but the content is {what}")
    return kind


def decode_text(data: bytes, path: Path) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------- HTML
class _HTMLText(HTMLParser):
    """HTML -> text with Markdown-style headings; scripts, styles and forms are dropped."""

    SKIP = {"script", "style", "noscript", "template", "svg", "head", "iframe", "object", "form"}
    BLOCK = {"p", "div", "section", "article", "li", "tr", "br", "table", "ul", "ol", "blockquote",
             "pre", "header", "footer", "main", "nav", "aside", "dd", "dt", "hr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.title: list[str] = []
        self.in_title = False

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
        elif tag == "body":
            self.skip = 0  # <body> ends <head>, also where </head> was left out (valid HTML)
        elif tag in self.SKIP:
            self.skip += 1
        elif tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in self.BLOCK:
            self.parts.append("\n\n" if tag not in {"br", "li", "tr"} else "\n")

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        elif tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in {"h1", "h2", "h3", "h4", "h5", "h6"} or tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if self.in_title:
            self.title.append(data)
        elif not self.skip:
            self.parts.append(data.replace("\n", " "))


def html_to_text(html: str) -> tuple[str, str | None]:
    p = _HTMLText()
    p.feed(html)
    p.close()
    title = " ".join("".join(p.title).split()) or None
    return "".join(p.parts), title


# ------------------------------------------------------------------ PDF
# The parse worker runs at a lower CPU priority: a question asked while files are being parsed
# gets the cores first, and the parse loses nothing when nobody is asking. Its niceness is
# raised to WORKER_NICE, not by it: `python -m ingest`, already at 10, keeps its worker at 10.
WORKER_NICE = 10
# A file's budget counts the worker's CPU seconds: a parse that the machine starved of the cores
# (other work, the lower priority) gets the time it did not get, up to this many times its
# budget in wall-clock time. A page that stops making progress is still stopped by the stall limit.
STARVED_WALL_FACTOR = 10.0


def _cpu_seconds(pid: int) -> float | None:
    """CPU time a process has used (all its threads), or None where /proc cannot tell."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def starved_seconds(budget_s: float, wall_s: float, cpu_s: float | None,
                    factor: float | None = None) -> float:
    """Wall-clock seconds to add to a file's budget when, `wall_s` seconds in, its worker has used
    only `cpu_s` of its `budget_s` CPU seconds: the time it went without the CPU, at most
    (factor - 1) x budget. 0 when the CPU budget is spent or /proc could not tell."""
    if cpu_s is None or budget_s - cpu_s < 0.5:
        return 0.0
    factor = STARVED_WALL_FACTOR if factor is None else factor
    return max(0.0, min(wall_s - cpu_s, (factor - 1) * budget_s))


class PdfParser:
    """Runs pypdf in a worker process with a time limit that scales with the page count, and a
    memory cap.

    The worker reports each page it finishes. A file is stopped when no page finishes within
    `timeout_s` (a stalled or hostile parse), or when the whole file takes longer than
    `timeout_s + per_page_s * pages`: a 300-page annual report gets its time, a file that
    hangs on one page does not. That budget counts the worker's CPU seconds where /proc tells
    them: time the machine gave to other work is added, up to STARVED_WALL_FACTOR x the budget.

    With `ocr`, pages without a usable text layer are OCR'd in the same worker (ingest/ocr.py)
    and each page sent to OCR adds `ocr_page_s` to the file's budget (a dense page takes about
    3.5 s on 2 cores, see bench/ocr_bench.py). The worker runs with MALLOC_ARENA_MAX=2: ONNX
    Runtime's threads otherwise reserve glibc malloc arenas, address space that counts against
    the memory cap (peak 1.35 GB instead of 1.6 GB on a scanned page, under the 2 GB cap).
    """

    def __init__(self, timeout_s: float = 60.0, memory_mb: int = 2048, per_page_s: float = 2.0,
                 on_page=None, ocr: bool = True, ocr_page_s: float = 20.0):
        self.timeout_s = timeout_s
        self.per_page_s = per_page_s
        self.memory_mb = memory_mb
        self.ocr = ocr
        self.ocr_page_s = ocr_page_s
        # callback(path, done, total[, unit]) for progress reports: PDF pages; Office files (read by
        # load_office in this process) add the unit they count: "page", "slide", "sheet" or "row"
        self.on_page = on_page
        self._proc: subprocess.Popen | None = None
        self._lines: queue.Queue | None = None

    def _start(self) -> None:
        limit = self.memory_mb * 1024 * 1024

        def limits():
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            os.nice(max(0, WORKER_NICE - os.getpriority(os.PRIO_PROCESS, 0)))

        self._proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.pdf_worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, preexec_fn=limits,
            cwd=str(Path(__file__).resolve().parent.parent), env={**os.environ, "MALLOC_ARENA_MAX": "2"})
        self._lines = queue.Queue()
        proc, lines = self._proc, self._lines

        def pump():
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def parse(self, path: Path) -> dict:
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        assert self._proc is not None and self._lines is not None
        self._proc.stdin.write(json.dumps({"path": str(path), "ocr": self.ocr}) + "\n")
        self._proc.stdin.flush()
        started = time.monotonic()
        cpu_start = _cpu_seconds(self._proc.pid)
        budget = self.timeout_s  # until the page count is known
        extra = 0.0  # wall-clock seconds the worker was starved of, within STARVED_WALL_FACTOR
        done, total, last = 0, None, started
        while True:
            now = time.monotonic()
            deadline = started + budget + extra
            wait = min(deadline, last + self.timeout_s) - now  # the stall limit, within the file's budget
            try:
                line = self._lines.get(timeout=max(wait, 0.01))
            except queue.Empty:
                now = time.monotonic()
                stalled = bool(total) and now < deadline - 0.5  # the stall limit, not the file's budget
                if total and not stalled and cpu_start is not None:
                    cpu = _cpu_seconds(self._proc.pid)
                    starved = starved_seconds(budget, now - started, None if cpu is None else cpu - cpu_start)
                    if started + budget + starved > now + 0.5:
                        extra = starved
                        continue
                self.close()
                elapsed = time.monotonic() - started
                where = f" (stopped at page {done + 1} of {total})" if total else ""
                if stalled:
                    raise ParseTimeout(f"{path}: a page took longer than {self.timeout_s:g} s to read{where}; "
                                       "the file is probably malformed (raise RAG_PARSE_TIMEOUT_S to allow "
                                       "slower pages)") from None
                raise ParseTimeout(f"{path}: parsing took longer than {elapsed:.0f} s and was stopped{where} "
                                   "(raise RAG_PARSE_TIMEOUT_S for very slow PDFs)") from None
            if line is None:
                code = self._proc.wait()
                self._proc = None
                raise MalformedFile(f"{path}: the PDF parser crashed on this file (exit status {code}); "
                                    "it is probably malformed or needs more memory than allowed")
            msg = json.loads(line)
            if "progress" not in msg:
                return msg
            done, total = msg["progress"], msg["pages"]
            ocr_tried = msg.get("ocr", 0)
            budget = self.timeout_s + self.per_page_s * total + self.ocr_page_s * ocr_tried
            part = msg.get("part")
            if part is None:
                last = time.monotonic()  # a page read: the stall limit counts from here
            if self.on_page is not None:  # the lines of a page being OCR'd move the bar within it
                self.on_page(path, done if part is None else done + min(part, 0.99), total)


def _no_text_message(path: Path, n_pages: int, ocr: bool, warnings: list[str]) -> str:
    """Why a PDF has no text: OCR is off, OCR failed (its first warning), or OCR found nothing."""
    if not ocr:
        return (f"{path}: no text layer on any of its {n_pages} page(s) - probably a scan; OCR is off "
                "(RAG_OCR=off), so turn it on or run the file through OCR first")
    failed = next((w for w in warnings if "OCR" in w), None)
    if failed:
        return f"{path}: no text layer on any of its {n_pages} page(s), and OCR failed ({failed})"
    return (f"{path}: no text layer on any of its {n_pages} page(s), and OCR found no text either - "
            "blank or unreadable pages")


def load_pdf(path: Path, data: bytes, parser: PdfParser) -> LoadedDoc:
    """A PDF's pages from the worker: text layers, and OCR text for scanned pages when
    parser.ocr is on (their page numbers in meta["ocr_pages"]). NoTextLayer when no page has text."""
    result = parser.parse(path)
    if not result["ok"]:
        reason, detail = result["reason"], result["detail"]
        if reason == "password_protected":
            raise PasswordProtected(f"{path}: password-protected PDF ({detail}); "
                                    "remove the password and add it again")
        raise MalformedFile(f"{path}: malformed PDF that could not be read ({detail})")
    pages = [Page(i + 1, clean_text(t)) for i, t in enumerate(result["pages"])]
    if not pages:
        raise MalformedFile(f"{path}: the PDF has no pages")
    if not any(p.text for p in pages):
        raise NoTextLayer(_no_text_message(path, len(pages), parser.ocr, result["warnings"]))
    meta = {"warnings": result["warnings"]} if result["warnings"] else {}
    if result.get("ocr_pages"):
        meta["ocr_pages"] = result["ocr_pages"]  # page numbers whose text came from OCR
    first = next((p.text for p in pages if p.text), "")
    return LoadedDoc(str(path), readable_title(result["title"], first, path.name), sha256_bytes(data), pages,
                     "pdf", len(data), meta)


# ----------------------------------------------------------------- titles
_WORD = re.compile(r"[^\W\d_]{2,}")  # two or more letters in a row
_OFFICE_PREFIX = re.compile(r"^microsoft\s+(?:office\s+)?(?:word|excel|powerpoint)\s*-\s*", re.I)
_EXTENSION = re.compile(r"\.(?:docx?|dotx?|rtf|odt|pptx?|xlsx?|pdf|txt|md|html?|indd|pages|tex)$", re.I)
_PLACEHOLDERS = {"untitled", "untitled document", "no title", "title", "document", "none", "null", "unknown",
                 "anonymous", "(anonymous)", "(untitled)"}
# Words that alone make a line a date or a page number ("March 31, 2023", "Page 3 of 10").
_DATE_WORDS = re.compile(
    r"\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|mon(?:day)?|tue(?:sday)?|wed(?:nesday)?|thu(?:rsday)?|"
    r"fri(?:day)?|sat(?:urday)?|sun(?:day)?|page|of|st|nd|rd|th)\b\.?", re.I)


def _words_title(title: str | None) -> str | None:
    """A metadata title that reads as words, cleaned up; None when it is opaque."""
    title = " ".join((title or "").split())
    title = _OFFICE_PREFIX.sub("", title)
    if " " not in title and ("_" in title or _EXTENSION.search(title)):
        return None  # a file name or an id joined by underscores: "annual_report_v3.pdf"
    title = _EXTENSION.sub("", title).strip()
    if title.lower() in _PLACEHOLDERS or len(_WORD.findall(title)) < 2:
        return None  # "untitled", "0000764478-23-000041", "doc1", "Exhibit 99.1"
    return title


def _first_line_title(text: str) -> str | None:
    """The first short line with words that is not only a date or a page number."""
    for line in (text or "").split("\n"):
        line = " ".join(line.split()).strip(" #|")
        if not line or len(line) > 120:
            continue
        if _WORD.search(_DATE_WORDS.sub(" ", line)):
            return line
    return None


def readable_title(meta_title: str | None, first_page_text: str, filename: str) -> str:
    """A title a person can read: the metadata title when it looks like words (an Office
    "Microsoft Word - " prefix and a file extension removed), else the first short line of the
    first page, else the file name without extension, "_" and "-" read as spaces.

    Metadata titles are often opaque: SEC filings carry accession numbers ("0000764478-23-000041"),
    converters write "untitled" or the source file's name."""
    title = _words_title(meta_title) or _first_line_title(first_page_text)
    if title:
        return title
    stem = Path(filename).stem if Path(filename).suffix else filename
    return " ".join(re.sub(r"[_\-]+", " ", stem).split()) or filename


# -------------------------------------------------------------- dispatch
def _title_from_markdown(text: str) -> str | None:
    for line in text.split("\n"):
        if line.startswith("# "):
            return line[2:].strip() or None
    return None


def load_file(path: Path, max_bytes: int, pdf_parser: PdfParser, source: str | None = None) -> Iterator[LoadedDoc]:
    """Yield the documents in one file (several for .jsonl). Raises FileRejected."""
    size = path.stat().st_size
    if size > max_bytes:
        raise FileTooLarge(f"{path}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:.1f} MB limit "
                           "(raise RAG_MAX_FILE_MB to allow it)")
    if size == 0:
        raise EmptyFile(f"{path}: the file is empty")
    with open(path, "rb") as f:
        head = f.read(2048)
    kind = detect_kind(path, head)
    data = path.read_bytes()
    source = source or str(path)
    if kind == "pdf":
        doc = load_pdf(path, data, pdf_parser)
        doc.source = source
        yield doc
        return
    if kind in OFFICE_KINDS:
        yield load_office(path, data, kind, source, pdf_parser.timeout_s, pdf_parser.on_page)
        return
    text = decode_text(data, path)
    if kind == "jsonl":
        yield from load_jsonl(path, text)
        return
    title = None
    if kind == "html":
        text, title = html_to_text(text)
    text = clean_text(text)
    if not text:
        raise EmptyFile(f"{path}: no text in the file")
    if kind == "markdown":
        title = _title_from_markdown(text)
    yield LoadedDoc(source, title or path.name, sha256_bytes(data), [Page(1, text)], kind, size)


def load_office(path: Path, data: bytes, kind: str, source: str, timeout_s: float, on_page=None) -> LoadedDoc:
    """A .docx, .pptx, .xlsx or .csv file as one document (see ingest/office.py); `on_page` as
    PdfParser's, with the unit counted."""
    from ingest import office  # imported on first use: the Office libraries take 0.4 s to import

    progress = None if on_page is None else (lambda done, total, unit: on_page(path, done, total, unit))
    extracted = office.extract(path, data, kind, timeout_s, decode_text(data, path) if kind == "csv" else None,
                               progress)
    pages = [Page(p.number, clean_text(p.text)) for p in extracted.pages]
    if not any(p.text for p in pages):
        raise EmptyFile(f"{path}: no text in the file")
    title = readable_title(extracted.meta_title, clean_text(extracted.title_text), path.name)
    return LoadedDoc(source, title, sha256_bytes(data), pages, kind, len(data), extracted.meta)


class JsonlErrors(FileRejected):
    reason = "malformed"


def load_jsonl(path: Path, text: str) -> Iterator[LoadedDoc]:
    """One document per line: `_id` or `id`, optional `title`, `text` (the BEIR corpus format)."""
    bad: list[str] = []
    good = 0
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            doc_id = rec.get("_id", rec.get("id"))
            body = rec.get("text")
            if doc_id is None or not isinstance(body, str):
                raise ValueError("needs `_id` (or `id`) and a string `text`")
        except (json.JSONDecodeError, ValueError, AttributeError) as e:
            bad.append(f"line {lineno}: {e}")
            continue
        title = str(rec.get("title") or "").strip()
        body = clean_text(body)
        if not body and not title:
            bad.append(f"line {lineno}: empty text")
            continue
        good += 1
        raw = json.dumps([title, body], ensure_ascii=False).encode()
        yield LoadedDoc(str(doc_id), title or str(doc_id), sha256_bytes(raw), [Page(1, body or title)],
                        "jsonl-record", len(line), {"file": str(path), "line": lineno})
    if bad:
        shown = "; ".join(bad[:3]) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise JsonlErrors(f"{path}: {len(bad)} bad line(s) skipped after {good} good ones ({shown})")
