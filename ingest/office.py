"""Office and tabular files -> pages of text that the chunker understands.

- `.docx`: paragraphs in order; Word headings become Markdown "#" lines (so they become the
  chunks' heading path); pages follow the page breaks Word saved with the file; footnotes follow
  the paragraph that refers to them, text boxes follow the paragraph they are anchored in (once,
  though Word stores each twice), endnotes and then comments end the document, page headers and
  footers are furniture left out unless they hold text found nowhere else (see read_docx).
- `.pptx`: one page per slide: its title (a heading), text, tables and speaker notes ("Notes: ...").
- `.xlsx` / `.csv`: each sheet (or each ROWS_PER_PAGE rows of a big one) is a page headed by
  the sheet's name and row span; every row carries its column headers, those of its own table
  when a sheet holds several one below another (SheetTables).

Table rows are written in the row format of ingest/pdf_layout.py (`parse_row` reads them):
text cells lead as the row's label, figures follow as "Header: value" cells,

    Region: Americas | Revenue: 5,482 | Units: 310

so the answerer treats a spreadsheet row like a row of a PDF table. A row without figures is a
line of "Header: value" pairs joined by "; ".

Office files are ZIP packages, and hostile ones are refused before a library opens them: a
compression ratio no real file has or too much unpacked data (zip bombs), a DTD in any XML
part (entity-expansion "billion laughs"), too many parts. Python's zipfile never inflates a
part past its declared size (it fails the CRC check), so the declared sizes bound the work.
Macros (vbaProject.bin) are never read, let alone run: `.docm`, `.pptm` and `.xlsm` (saved with
macros) are read as `.docx`, `.pptx` and `.xlsx`; python-docx and python-pptx hold the VBA
project as an opaque part that nothing here opens, openpyxl skips it (keep_vba=False). An
encrypted package is an OLE file with an EncryptionInfo stream: PasswordProtected.

Parsing runs in this process, not in a worker like the PDF parser's: the caps bound what a
file can cost (at most MAX_PARSED_XML of XML is parsed whole; the costliest such file, 31 MB
of tiny paragraphs, takes 7 s and 760 MB at peak), worksheets and CSV rows are streamed, and
the loops over paragraphs, slides and rows check a deadline (ParseTimeout). Every crafted
hostile file is refused in milliseconds (bench/office_bench.py --hostile).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
import time
import xml.etree.ElementTree as ET
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import lxml.etree
import openpyxl
import pptx
from docx.enum.style import WD_STYLE_TYPE
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.part import PartFactory
from docx.oxml.ns import qn
from docx.oxml.parser import parse_xml
from docx.package import Package
from docx.parts.document import DocumentPart
from docx.table import Table
from docx.text.paragraph import Paragraph
from openpyxl.utils.exceptions import InvalidFileException
from pptx.shapes.group import GroupShape

from ingest.load import OLE_MAGIC, PACKAGES
from ingest.pdf_layout import CELL_SEP, is_figure_cell, parse_row
from rag.errors import FileTooLarge, MalformedFile, MislabelledType, ParseTimeout, PasswordProtected
from rag.types import Page

ROWS_PER_PAGE = 200
ROWS_PER_REPORT = 5000      # progress of a CSV file, or of a workbook over this many rows, counts rows
MAX_PARTS = 20_000
MAX_RATIO = 100              # uncompressed / compressed, for a part over RATIO_MIN_BYTES
RATIO_MIN_BYTES = 1 << 20
MAX_UNPACKED = 256 << 20     # all parts together (the libraries hold parts such as images in memory)
# XML parsed into memory whole (all but worksheets, which are streamed): a parsed tree takes 12 to
# 22 bytes of memory per byte of XML (measured: 31 MB of tiny paragraphs, 770 MB peak, 11 s).
MAX_PARSED_XML = 32 << 20
PROLOG_SCAN = 64 << 10       # an XML part's prolog (before its root element) must end within this
EXCEL_MAX_ROWS = 1_048_576

# What each package is, by the main content type that [Content_Types].xml declares.
_MAIN_TYPES = {
    "docx": ("wordprocessingml.document.main+xml", "ms-word.document.macroenabled.main+xml"),
    "pptx": ("presentationml.presentation.main+xml", "ms-powerpoint.presentation.macroenabled.main+xml"),
    "xlsx": ("spreadsheetml.sheet.main+xml", "ms-excel.sheet.macroenabled.main+xml"),
}
_SAVE_AS = {"docx": "Word", "pptx": "PowerPoint", "xlsx": "Excel"}
_ENCRYPTED_STREAMS = ("EncryptionInfo".encode("utf-16-le"), "EncryptedPackage".encode("utf-16-le"))
_PROLOG = re.compile(r"\s*(?:<\?.*?\?>\s*|<!--.*?-->\s*)*", re.S)
_YEAR = re.compile(r"^(?:19|20)\d\d$")
_HEADING_STYLE = re.compile(r"^heading (\d)$", re.I)
_W_TBL = qn("w:tbl")
_W = {"w": "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
      "mc": "http://schemas.openxmlformats.org/markup-compatibility/2006"}
# A paragraph's text: the runs in it, in hyperlinks, tracked insertions, fields and content controls
# (not its text boxes: _TEXT_BOXES reads those). Tabs and breaks separate words.
_RUNS = "./w:r | ./w:hyperlink/w:r | ./w:ins/w:r | ./w:fldSimple/w:r | ./w:smartTag/w:r | ./w:sdt/w:sdtContent/w:r"
_P_TEXT = lxml.etree.XPath(f"({_RUNS})/*[self::w:t or self::w:tab or self::w:br or self::w:cr]", namespaces=_W)
_W_T = qn("w:t")
_P_STYLE = lxml.etree.XPath("string(./w:pPr/w:pStyle/@w:val)", namespaces=_W, smart_strings=False)
# Footnotes and endnotes: the references in the body, and the notes in their parts (but for the
# separator lines, which Word keeps there as notes with a type).
_NOTE_REFS = lxml.etree.XPath(".//w:footnoteReference | .//w:endnoteReference", namespaces=_W)
_W_FOOTNOTE_REF, _W_ID = qn("w:footnoteReference"), qn("w:id")
_NOTES = lxml.etree.XPath("./w:footnote[not(@w:type)] | ./w:endnote[not(@w:type)]", namespaces=_W)
# A story's paragraphs, those in text boxes once (Word keeps a second, fallback copy of each).
_PARAGRAPHS = lxml.etree.XPath(".//w:p[not(ancestor::mc:Fallback)]", namespaces=_W)
# Text boxes, each once: Word writes a text box twice, as a DrawingML shape (mc:Choice) and as a
# VML one (mc:Fallback) holding the same w:txbxContent; older files have the VML one alone. A text
# box inside a text box is read with the one that holds it.
_TEXT_BOXES = lxml.etree.XPath(".//w:txbxContent[not(ancestor::mc:Fallback or ancestor::w:txbxContent)]",
                               namespaces=_W)
# Comments (word/comments.xml), and where their ranges start and end among the body's text.
_COMMENTS = lxml.etree.XPath("./w:comment", namespaces=_W)
_COMMENT_MARKS = lxml.etree.XPath(
    "(.//w:commentRangeStart | .//w:commentRangeEnd | .//w:p | .//w:t)[not(ancestor::mc:Fallback)]", namespaces=_W)
_W_RANGE_START, _W_RANGE_END, _W_AUTHOR, _W_P = (qn("w:commentRangeStart"), qn("w:commentRangeEnd"),
                                                  qn("w:author"), qn("w:p"))
QUOTE_WORDS = 12  # of the text a comment is on, quoted with it
# Page headers and footers: a paragraph's text outside fields (PAGE, NUMPAGES, DATE, STYLEREF...:
# runs of a w:fldSimple are left out, w:fldChar marks the others), split at its tabs.
_HF_RUNS = "./w:r | ./w:hyperlink/w:r | ./w:ins/w:r | ./w:smartTag/w:r | ./w:sdt/w:sdtContent/w:r"
_HF_TEXT = lxml.etree.XPath(f"({_HF_RUNS})/*[self::w:t or self::w:tab or self::w:fldChar]", namespaces=_W)
_W_FLD_CHAR, _W_FLD_TYPE = qn("w:fldChar"), qn("w:fldCharType")
MAX_FURNITURE_TEXTS = 20  # header and footer texts looked for in the body (each a search of it)
_PAGE_FURNITURE = re.compile(r"^[\W\d_]*(?:(?:page|pages|pg|p)\b[\W\d_]*)?(?:of\b[\W\d_]*)?$", re.I)
# What the parsing libraries raise on a damaged or hostile file (not bugs of ours).
LIBRARY_ERRORS = (ValueError, KeyError, TypeError, IndexError, AttributeError, EOFError, zlib.error,
                  zipfile.BadZipFile, zipfile.LargeZipFile, lxml.etree.LxmlError, ET.ParseError,
                  InvalidFileException, NotImplementedError, RecursionError, csv.Error)

# A .docx saved with macros (a .docm renamed) has another main content type; its text reads the same.
PartFactory.part_type_for.setdefault("application/vnd.ms-word.document.macroEnabled.main+xml", DocumentPart)


@dataclass
class Extracted:
    """What a file yields before it becomes a LoadedDoc: pages, a metadata title, and the text
    a title may be taken from (the first page of a document or deck; nothing for data files)."""

    pages: list[Page]
    meta_title: str | None = None
    title_text: str = ""
    meta: dict = field(default_factory=dict)


Progress = Callable[[int, int, str], None]  # (done, total, unit): 3 of 60 "slide"s read


class Deadline:
    """A time budget for reading one file; `check()` raises ParseTimeout once it is spent.
    It also carries the file's progress callback: `report(done, total, unit)`."""

    def __init__(self, path: Path, seconds: float, progress: Progress | None = None):
        self.path, self.seconds = path, seconds
        self.end = time.monotonic() + seconds
        self.progress = progress

    def report(self, done: int, total: int, unit: str) -> None:
        if self.progress is not None:
            self.progress(done, total, unit)

    def check(self, where: str = "") -> None:
        if time.monotonic() > self.end:
            at = f" (stopped at {where})" if where else ""
            raise ParseTimeout(f"{self.path}: reading took longer than {self.seconds:g} s and was stopped{at}; "
                               "split the file, or raise RAG_PARSE_TIMEOUT_S for very large files")


T = TypeVar("T")


def _damaged(path: Path, what: str, e: Exception) -> MalformedFile:
    return MalformedFile(f"{path}: this {what} could not be read: it is damaged or not a valid file "
                         f"({type(e).__name__}: {str(e)[:200]}); open and save it again, then add it again")


def _library(path: Path, what: str, fn: Callable[[], T]) -> T:
    """Call a parsing library; what it raises on a damaged file becomes MalformedFile."""
    try:
        return fn()
    except LIBRARY_ERRORS as e:
        raise _damaged(path, what, e) from e


def _guarded(path: Path, what: str, items: Iterable[T]) -> Iterator[T]:
    """Iterate over what a parsing library yields, as `_library` does for one call."""
    it = iter(items)
    while True:
        try:
            item = next(it)
        except StopIteration:
            return
        except LIBRARY_ERRORS as e:
            raise _damaged(path, what, e) from e
        yield item


# ------------------------------------------------------------ the container
def describe_ole(path: Path, data: bytes, kind: str) -> MislabelledType | PasswordProtected:
    """The error for an OLE compound file named like an Office package: an encrypted Office file
    (password-protected OOXML is stored this way), or an old binary .doc/.xls/.ppt."""
    if any(name in data for name in _ENCRYPTED_STREAMS):
        return PasswordProtected(f"{path}: password-protected (encrypted) {_SAVE_AS[kind]} file; "
                                 "remove the password and add it again")
    return MislabelledType(f"{path}: named {path.suffix} but the content is an old binary MS Office file "
                           f"(.doc/.xls/.ppt); open it in {_SAVE_AS[kind]} and save it as .{kind}, then add it again")


def open_package(path: Path, data: bytes, kind: str) -> zipfile.ZipFile:
    """The ZIP package of a .docx/.pptx/.xlsx, checked before any library parses it."""
    if data.startswith(OLE_MAGIC):
        raise describe_ole(path, data, kind)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
        raise MalformedFile(f"{path}: damaged ZIP package, not a readable .{kind} ({e}); "
                            "open and save it again, then add it again") from e
    check_sizes(path, infos, kind)
    xml = {i.filename for i in infos if check_xml_part(path, zf, i)}
    types = content_types(path, zf)
    what = package_kind(set(types.values()))
    if what != kind:
        found = PACKAGES[what] if what else "a ZIP archive that is not " + PACKAGES[kind]
        macros = what is not None and any(c.endswith(_MAIN_TYPES[what][1]) for c in types.values())
        raise MislabelledType(f"{path}: named {path.suffix} but the content is {found}"
                              + (f"; rename it to .{what[:-1] + 'm' if macros else what}" if what else ""))
    parsed = sum(i.file_size for i in infos if _parsed_whole(i.filename in xml, types.get(i.filename, "")))
    if parsed > MAX_PARSED_XML:
        raise FileTooLarge(f"{path}: its XML unpacks to {parsed / 2**20:,.0f} MB, over the "
                           f"{MAX_PARSED_XML / 2**20:,.0f} MB that are read for a .{kind}; split it and add the parts")
    return zf


def check_sizes(path: Path, infos: list[zipfile.ZipInfo], kind: str) -> None:
    """Refuse zip bombs by the sizes the package declares (zipfile never inflates past them)."""
    if len(infos) > MAX_PARTS:
        raise MalformedFile(f"{path}: {len(infos):,} parts in the package; a real .{kind} has far fewer "
                            f"(at most {MAX_PARTS:,} are read) - refused as malformed or hostile")
    for i in infos:
        if i.file_size > RATIO_MIN_BYTES and i.file_size > MAX_RATIO * max(i.compress_size, 1):
            raise MalformedFile(f"{path}: part {i.filename} expands {i.file_size / max(i.compress_size, 1):,.0f} "
                                f"times ({i.compress_size:,} to {i.file_size:,} bytes), as a zip bomb does; "
                                "no real Office file compresses that much, so it was not opened")
    total = sum(i.file_size for i in infos)
    if total > MAX_UNPACKED:
        raise FileTooLarge(f"{path}: its contents unpack to {total / 2**20:,.0f} MB, over the "
                           f"{MAX_UNPACKED / 2**20:,.0f} MB allowed for a .{kind}; split the file and add the parts")


def check_xml_part(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """Whether a part is XML; refuse one that declares a DTD (entity expansion: "billion laughs",
    external entities). Office never writes one; only the part's prolog, before its root element,
    is read."""
    try:
        with zf.open(info) as f:
            head = f.read(PROLOG_SCAN)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
        raise MalformedFile(f"{path}: damaged ZIP package, part {info.filename} cannot be read ({e}); "
                            "open and save it again, then add it again") from e
    utf16 = head[:2] in (b"\xff\xfe", b"\xfe\xff") or head[:4] in (b"<\x00?\x00", b"\x00<\x00?")
    text = head.decode("utf-16" if utf16 else "utf-8", errors="replace").lstrip("\ufeff")
    if not text.lstrip().startswith("<"):
        return False  # not XML (an image, a macro project): no library parses it as XML
    rest = text[_PROLOG.match(text).end():]
    if rest[:9].upper() == "<!DOCTYPE":
        raise MalformedFile(f"{path}: part {info.filename} declares a DTD (<!DOCTYPE>), which Office files "
                            "never contain; refused as hostile (entity expansion)")
    if len(head) == PROLOG_SCAN and not (rest[:1] == "<" and rest[1:2] not in ("!", "?", "")):
        raise MalformedFile(f"{path}: part {info.filename} starts with over {PROLOG_SCAN // 1024} KB of "
                            "comments or declarations before its content; refused as malformed")
    return True


def content_types(path: Path, zf: zipfile.ZipFile) -> dict[str, str]:
    """Part name -> content type (lower case), from [Content_Types].xml; empty when there is none."""
    try:
        info = zf.getinfo("[Content_Types].xml")
    except KeyError:
        return {}
    if info.file_size > RATIO_MIN_BYTES:
        raise MalformedFile(f"{path}: its [Content_Types].xml is {info.file_size:,} bytes; a real one has a few "
                            "kilobytes - refused as malformed or hostile")
    try:
        root = ET.fromstring(zf.read(info))
    except ET.ParseError as e:
        raise MalformedFile(f"{path}: damaged package, [Content_Types].xml is not valid XML ({e}); "
                            "open and save it again, then add it again") from e
    defaults, overrides = {}, {}
    for el in root:
        name, ctype = el.tag.rsplit("}", 1)[-1], el.get("ContentType", "").lower()
        if name == "Default":
            defaults[el.get("Extension", "").lower()] = ctype
        elif name == "Override":
            overrides[el.get("PartName", "").lstrip("/").lower()] = ctype
    return {i: overrides.get(i.lower(), defaults.get(i.rsplit(".", 1)[-1].lower(), ""))
            for i in zf.namelist()}


def _parsed_whole(looks_xml: bool, ctype: str) -> bool:
    """Whether a part may be parsed into memory whole: XML by its content or its declared type,
    but for worksheets (openpyxl streams them)."""
    return (looks_xml or ctype.endswith("xml")) and not ctype.endswith("worksheet+xml")


def package_kind(ctypes: set[str]) -> str | None:
    """docx, pptx or xlsx by the main content type its parts declare; None when none matches."""
    for kind, markers in _MAIN_TYPES.items():
        if any(c.endswith(m) for c in ctypes for m in markers):
            return kind
    return None


# ------------------------------------------------------------------- rows
def _clean_cell(value: str) -> str:
    """A cell's text on one line, without the row format's separator."""
    return " ".join(value.split()).replace(CELL_SEP.strip(), "/")


def _header_like(values: list[str]) -> bool:
    """A header row: no figures in it, other than years ("2023")."""
    return all(not v or _YEAR.match(v) or not is_figure_cell(v) for v in values)


class TableRows:
    """A table's rows, top to bottom, as row lines. The first row with two or more filled cells is
    the header when it has no figures. A second header row joins it when the first spans columns
    (merged or gapped cells: "Three Months Ended" over "2023", "2022") and the second leaves the
    label column empty. Before the header, a row with one filled cell is kept as text (a title)."""

    def __init__(self):
        self.header: list[str] | None = None
        self.started = False  # the first row of two or more cells was seen: the header is decided
        self.spanning = False  # the header may take a second row
        self.blank = False  # the last row added had no text

    def add(self, values: list[str], merged: list[bool] | None = None) -> str | None:
        """The line for one row (None for a header or an empty row). `merged[i]` marks a cell that
        continues a horizontally merged cell (Word tables): a header repeats it, a data row skips it."""
        merged = merged or [False] * len(values)
        values = [_clean_cell(v) for v in values]
        header = _fill_spans(values, merged, gaps=False)
        values = ["" if m else v for v, m in zip(values, merged)]
        filled = [v for v in values if v]
        self.blank = not filled
        if not filled:
            return None
        if not self.started and sum(1 for v in header if v) >= 2:  # a merged cell counts for each column
            self.started = True
            if _header_like(values):
                self.header, self.spanning = header, _spans(values, merged)
                return None
        elif self.spanning and len(filled) >= 2 and not values[0] and _header_like(values):
            top = _fill_spans(self.header, [False] * len(self.header), gaps=True)
            width = max(len(top), len(values))
            top += [top[-1]] * (width - len(top))
            self.header = [f"{h} {v}".strip() for h, v in zip(top, values + [""] * (width - len(values)))]
            self.spanning = False
            return None
        self.spanning = False
        if self.header is None and len(filled) == 1:
            return filled[0]
        return row_line(self.header or [], values)


def _spans(values: list[str], merged: list[bool]) -> bool:
    """Whether a header row spans columns: a merged cell, or an empty cell after a filled one
    (past the label column)."""
    seen = False
    for i, (v, m) in enumerate(zip(values, merged)):
        if m or (seen and not v):
            return True
        seen = seen or (i > 0 and bool(v))
    return False


def _fill_spans(values: list[str], merged: list[bool], gaps: bool) -> list[str]:
    """A header row with each merged cell's text repeated over the columns it covers, and with
    `gaps`, each text repeated over the empty cells after it (past the label column)."""
    out: list[str] = []
    for i, (v, m) in enumerate(zip(values, merged)):
        out.append(out[-1] if out and (m or (gaps and not v and i > 1)) else v)
    return out


def row_line(header: list[str], values: list[str]) -> str:
    """One row as a self-contained line: text cells (with their headers) as the label, figures as
    "Header: value" cells; "Header: value; ..." when the row has no figures."""
    label, cells = [], []
    for i, v in enumerate(values):
        if not v:
            continue
        name = header[i] if i < len(header) else ""
        cell = f"{name}: {v}" if name and name != v else v
        (cells if is_figure_cell(cell) else label).append(cell)
    if not cells:
        return "; ".join(label)
    if not label:
        label = [cells.pop(0)]
    return CELL_SEP.join(["; ".join(label), *cells])


def _own_paragraph(line: str) -> str:
    """A row line, with a blank line after it when it has no figures: the chunker then keeps it a
    paragraph of its own (a row with figures is a unit of its own anyway)."""
    return line if parse_row(line) is not None else line + "\n"


def table_lines(rows: Iterable[tuple[list[str], list[bool] | None]]) -> list[str]:
    """The lines of one table (see TableRows)."""
    table, out = TableRows(), []
    for values, merged in rows:
        line = table.add(values, merged)
        if line:
            out.append(_own_paragraph(line))
    return out


# ------------------------------------------------------------------ values
def format_number(value: float | int, number_format: str | None = None) -> str:
    """A spreadsheet number as its format shows it, near enough: thousands separators, decimals,
    percent and a "$" when the format has them; integers without ".0"."""
    fmt = (number_format or "General").split(";")[0]
    plain = re.sub(r'"[^"]*"|\\.|\[[^\]]*\]', "", fmt)  # without quoted text, escapes, [$-409] and colours
    percent = "%" in plain
    v = value * 100 if percent else value
    if plain.strip().lower() in {"general", "@", ""}:
        return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:.15g}"
    m = re.search(r"\.(0+)", plain)
    text = f"{abs(v):{',' if ',' in plain else ''}.{len(m.group(1)) if m else 0}f}"
    money = "$" if "$" in fmt and not any(c in fmt for c in "€£¥") else ""
    return ("-" if v < 0 else "") + money + text + ("%" if percent else "")


def cell_text(value, number_format: str | None = None) -> str:
    """A cell value (openpyxl types) as text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return format_number(value, number_format)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d" if value.time() == dt.time() else "%Y-%m-%d %H:%M")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


# ------------------------------------------------------------------- .docx
def _heading_levels(document) -> dict[str, int]:
    """Paragraph style id -> heading level: Title 1, Heading N -> N + 1, and a custom style based
    on one of those takes its level. Worked out once: looking a style up per paragraph is slow."""
    def level(style, depth: int = 0) -> int | None:
        if style is None or depth > 10:
            return None
        if style.name == "Title":
            return 1
        m = _HEADING_STYLE.match(style.name or "")
        return min(int(m.group(1)) + 1, 6) if m else level(style.base_style, depth + 1)

    styles = [s for s in document.styles if s.type == WD_STYLE_TYPE.PARAGRAPH]
    return {s.style_id: lv for s in styles if (lv := level(s)) is not None}


def _docx_table(tbl, document) -> list[tuple[list[str], list[bool]]]:
    """A Word table's rows: cell texts, and which cells continue a merged cell on their left."""
    rows = []
    for row in Table(tbl, document).rows:
        values, merged, prev = [], [], None
        for cell in row.cells:
            values.append(cell.text)
            merged.append(cell._tc is prev)
            prev = cell._tc
        rows.append((values, merged))
    return rows


def _page_breaks(body) -> tuple[dict, bool]:
    """The paragraphs with page breaks -> how many, and whether they are the breaks Word rendered
    when it last saved the file (else hard page breaks, for files Word did not lay out)."""
    rendered = body.xpath(".//w:p[.//w:lastRenderedPageBreak]")
    found = rendered or body.xpath(".//w:p[.//w:br[@w:type='page']]")
    what = ".//w:lastRenderedPageBreak" if rendered else ".//w:br[@w:type='page']"
    return {p: len(p.xpath(what)) for p in found}, bool(rendered)


def _paragraph_text(p) -> str:
    return " ".join("".join((x.text or "") if x.tag == _W_T else " " for x in _P_TEXT(p)).split())


def _related_parts(document, reltype: str) -> list:
    """The parts the main document part relates to by `reltype` (its footnotes, its headers...)."""
    return [r.target_part for r in document.part.rels.values() if r.reltype == reltype and not r.is_external]


def _part_xml(part):
    """A part's XML root: python-docx parsed the parts it knows (headers, footers); the others
    (footnotes, endnotes) are bytes, parsed here by python-docx's own parser (entities are not
    resolved; open_package refused any part declaring a DTD, and counted it in MAX_PARSED_XML)."""
    element = getattr(part, "element", None)
    return element if element is not None else parse_xml(part.blob)


# How Word prints note numbers unless the document's settings say otherwise (w:footnotePr,
# w:endnotePr): footnotes 1, 2, 3 and endnotes i, ii, iii
_NOTE_FORMATS = {"Footnote": "decimal", "Endnote": "lowerRoman"}
_ROMAN = [(1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"), (50, "l"), (40, "xl"),
          (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")]


def note_mark(n: int, fmt: str) -> str:
    """The n-th note's mark in a Word number format: 4 is "iv" (lowerRoman), "D" (upperLetter;
    Word goes on "aa", "bb" after "z"); formats not listed here print as 1, 2, 3."""
    if fmt in {"lowerRoman", "upperRoman"}:
        out = ""
        for value, letters in _ROMAN:
            count, n = divmod(n, value)
            out += letters * count
        return out.upper() if fmt == "upperRoman" else out
    if fmt in {"lowerLetter", "upperLetter"}:
        mark = chr(ord("a") + (n - 1) % 26) * ((n - 1) // 26 + 1)
        return mark.upper() if fmt == "upperLetter" else mark
    return str(n)


def _note_formats(document) -> dict[str, str]:
    formats = dict(_NOTE_FORMATS)
    settings = document.settings.element
    for kind, tag in (("Footnote", "w:footnotePr"), ("Endnote", "w:endnotePr")):
        fmt = settings.find(f"{qn(tag)}/{qn('w:numFmt')}")
        if fmt is not None and fmt.get(qn("w:val")):
            formats[kind] = fmt.get(qn("w:val"))
    return formats


class _Notes:
    """A document's footnotes and endnotes: the text of each, and where the body refers to them.
    Notes are numbered in the order the body first refers to them, in the document's format
    (Word's default: footnotes 1, 2, endnotes i, ii); an empty note is left out."""

    def __init__(self, document):
        self.text: dict[tuple[str, str], str] = {}
        self.numbers = {"Footnote": 0, "Endnote": 0}
        self.formats = _note_formats(document)
        self.done: set[tuple[str, str]] = set()
        self.endnotes: list[tuple[str, str]] = []  # in the order the body refers to them
        for kind, reltype in (("Footnote", RT.FOOTNOTES), ("Endnote", RT.ENDNOTES)):
            for part in _related_parts(document, reltype):
                for note in _NOTES(_part_xml(part)):
                    text = " ".join(t for t in map(_paragraph_text, _PARAGRAPHS(note)) if t)
                    if text:
                        self.text.setdefault((kind, note.get(_W_ID, "")), text)

    def line(self, key: tuple[str, str]) -> str | None:
        """ "Footnote 3: its text", once per note."""
        if key in self.done or key not in self.text:
            return None
        self.done.add(key)
        self.numbers[key[0]] += 1
        return f"{key[0]} {note_mark(self.numbers[key[0]], self.formats[key[0]])}: {self.text[key]}"

    def after(self, block) -> Iterator[str]:
        """The footnotes a body block (a paragraph, a table) refers to, to follow it (on its page,
        as Word prints them); its endnotes are kept for the end. Blocks do not nest, so the
        searches cost one pass over the body."""
        for ref in _NOTE_REFS(block):
            key = ("Footnote" if ref.tag == _W_FOOTNOTE_REF else "Endnote", ref.get(_W_ID, ""))
            if key[0] == "Endnote":
                self.endnotes.append(key)
            elif line := self.line(key):
                yield line

    def end(self) -> Iterator[str]:
        """The endnotes, under an "Endnotes" heading, then any note no body block references
        (one in a text box, say) under "Notes": at the end of the document."""
        endnotes = [line for k in self.endnotes if (line := self.line(k))]
        if endnotes:
            yield "# Endnotes"
            yield from endnotes
        rest = [line for k in list(self.text) if (line := self.line(k))]
        if rest:
            yield "# Notes"
            yield from rest


def _comments(document) -> Iterator[str]:
    """The document's comments under a "# Comments" heading at its end, in the order their ranges
    start in the body (those on no range last), each with its author and the start of the text it
    is on: 'Comment by Ann Lee on "Revenue grew 12% in the quarter.": Check the audited figure.'"""
    texts: dict[str, tuple[str, str]] = {}  # comment id -> (author, text)
    for part in _related_parts(document, RT.COMMENTS):
        for comment in _COMMENTS(_part_xml(part)):
            text = " ".join(t for t in map(_paragraph_text, _PARAGRAPHS(comment)) if t)
            if text:
                texts.setdefault(comment.get(_W_ID, ""), (" ".join(comment.get(_W_AUTHOR, "").split()), text))
    if not texts:
        return
    quotes: dict[str, str] = {}  # the text each range holds (its start), in the order the ranges start
    open_ids: set[str] = set()
    for x in _COMMENT_MARKS(document.element.body):
        if x.tag == _W_RANGE_START:
            open_ids.add(x.get(_W_ID, ""))
            quotes.setdefault(x.get(_W_ID, ""), "")
        elif x.tag == _W_RANGE_END:
            open_ids.discard(x.get(_W_ID, ""))
        else:
            for i in open_ids:
                if len(quotes[i]) < 20 * QUOTE_WORDS:  # enough for QUOTE_WORDS words
                    quotes[i] += " " if x.tag == _W_P else (x.text or "")
    yield "# Comments"
    for i in [i for i in quotes if i in texts] + [i for i in texts if i not in quotes]:
        author, text = texts[i]
        words = quotes.get(i, "").split()
        quote = " ".join(words[:QUOTE_WORDS]) + (" ..." if len(words) > QUOTE_WORDS else "")
        yield ("Comment" + (f" by {author}" if author else "") + (f' on "{quote}"' if quote else "")
               + f": {text}")


def _static_parts(p) -> list[str]:
    """A header or footer paragraph's text outside fields (page numbers, dates, the heading a
    running header repeats), in the pieces its tabs separate (left, centre and right)."""
    parts, current, depth = [], [], 0
    for x in _HF_TEXT(p):
        if x.tag == _W_FLD_CHAR:
            kind = x.get(_W_FLD_TYPE)
            depth += 1 if kind == "begin" else -1 if kind == "end" and depth else 0
        elif x.tag == _W_T:
            if depth == 0:
                current.append(x.text or "")
        else:  # a tab
            parts.append("".join(current))
            current = []
    parts.append("".join(current))
    return [" ".join(t.split()) for t in parts]


def _page_furniture(document, seen: Callable[[], str]) -> Iterator[str]:
    """The text of the page headers and footers that is not furniture: not page numbers or
    fields, not what the body or the title already say (a running title). Usually nothing;
    a letterhead, a project name or a classification that the body never states is kept,
    once, at the end of the document (`seen`: the body's text, lower case)."""
    found: dict[str, list[str]] = {"Page header": [], "Page footer": []}
    for what, reltype in (("Page header", RT.HEADER), ("Page footer", RT.FOOTER)):
        for part in _related_parts(document, reltype):
            for p in _PARAGRAPHS(_part_xml(part)):
                found[what] += [t for t in _static_parts(p) if t and not _PAGE_FURNITURE.match(t)]
    if not any(found.values()):
        return
    body = seen()
    title = " ".join((document.core_properties.title or "").split()).lower()
    lines, budget = [], MAX_FURNITURE_TEXTS  # real headers hold a few; a crafted one could hold a million
    for what, texts in found.items():
        texts = list(dict.fromkeys(texts))[:budget]
        budget -= len(texts)
        unique = [t for t in texts if t.lower() not in body and t.lower() != title]
        if unique:
            lines.append(f"{what}: " + "; ".join(unique))
    if lines:
        yield "# Page headers and footers"
        yield from lines


def _text_boxes(body, blocks: list) -> dict:
    """Body block -> the text of the text boxes anchored in it; None -> those of boxes in no block.
    One search of the whole body (most documents have none), not one per block: a long document
    has tens of thousands of paragraphs."""
    found: dict = {}
    block_set = set(blocks)
    for box in _TEXT_BOXES(body):
        block = next((a for a in box.iterancestors() if a in block_set), None)
        found.setdefault(block, []).extend(t for t in map(_paragraph_text, _PARAGRAPHS(box)) if t)
    return found


def _docx_blocks(document) -> Iterator[tuple[str, object]]:
    """("pages", how many) first, then ("page", None) at each page break, ("text", line) and
    ("table", rows), in document order (content controls opened: cover pages and tables of
    contents sit in them), then the end matter (see read_docx). Works on the XML elements:
    python-docx's per-paragraph objects cost a millisecond each on a long document."""
    body = document.element.body
    levels = _heading_levels(document)
    breaks, rendered = _page_breaks(body)
    yield "pages", 1 + sum(breaks.values())
    blocks = body.xpath("./w:p | ./w:tbl | ./w:sdt/w:sdtContent/w:p | ./w:sdt/w:sdtContent/w:tbl")
    notes = _Notes(document)
    boxes = _text_boxes(body, blocks)
    seen: list[str] = []  # the body's text, for telling page furniture from what the body says
    for el in blocks:
        n = 0
        if el.tag == _W_TBL:
            rows = _docx_table(el, document)
            seen.extend(v for values, _ in rows for v in values)
            yield "table", rows
        else:
            n = breaks.get(el, 0)
            if n and rendered:
                before = Paragraph(el, document).rendered_page_breaks[0].preceding_paragraph_fragment
                if before is None or not before.text.strip():  # the break comes first: a page starts here
                    yield "page", None
                    n -= 1
            text = _paragraph_text(el)
            if text:
                seen.append(text)
                level = levels.get(_P_STYLE(el))
                yield "text", ("#" * level + " " + text) if level else text
        for text in boxes.get(el, ()):
            seen.append(text)
            yield "text", text
        if notes.text:
            for line in notes.after(el):
                yield "text", line
        for _ in range(n):
            yield "page", None
    for text in boxes.get(None, ()):
        seen.append(text)
        yield "text", text
    for line in notes.end():
        yield "text", line
    for line in _comments(document):
        yield "text", line
    for line in _page_furniture(document, lambda: " ".join(" ".join(seen).split()).lower()):
        yield "text", line


def read_docx(path: Path, data: bytes, deadline: Deadline) -> Extracted:
    """Pages of a Word document: paragraphs, "#" headings and table rows, cut at page breaks.

    Footnotes are read: each follows the paragraph (or table) that references it, on its page,
    as "Footnote 1: text" (the body keeps no mark: a "1" or "[1]" would spoil a figure in a table
    cell, and "[n]" reads as a citation). Endnotes end the document under "# Endnotes", as Word
    prints them; comments follow under "# Comments", each with its author and the start of the
    text it is on. Text boxes are read after the paragraph they are anchored in. Page headers and
    footers are page furniture, kept out of the chunks as the PDF
    path keeps it out: page numbers and other fields, text the body or the title already holds
    (a running title), are dropped; what is left is text found nowhere else (a letterhead, a
    project name, a "Confidential" notice), added once at the end of the document under
    "# Page headers and footers", so that a question about it finds it without it repeating in
    every chunk."""
    what = "Word document"
    document = _library(path, what, lambda: Package.open(io.BytesIO(data)).main_document_part.document)
    pages: list[Page] = []
    lines: list[str] = []
    for n, (kind, item) in enumerate(_guarded(path, what, _docx_blocks(document))):
        if n % 100 == 0:
            deadline.check(f"page {len(pages) + 1}")
        if kind == "page":
            pages.append(Page(len(pages) + 1, "\n\n".join(lines)))
            lines = []
            deadline.report(len(pages), total, "page")
        elif kind == "pages":
            total = item
            deadline.report(0, total, "page")
        elif kind == "text":
            lines.append(item)
        else:
            lines.append("\n".join(table_lines(item)))
    pages.append(Page(len(pages) + 1, "\n\n".join(lines)))
    deadline.report(len(pages), len(pages), "page")
    title = _library(path, what, lambda: document.core_properties.title)
    return Extracted(pages, title, next((p.text for p in pages if p.text.strip()), ""))


# ------------------------------------------------------------------- .pptx
def _shapes(shapes) -> list:
    """The shapes of a slide, groups opened, top to bottom and left to right."""
    flat = []
    for shape in shapes:
        if isinstance(shape, GroupShape):
            flat.extend(_shapes(shape.shapes))
        else:
            flat.append(shape)
    return sorted(flat, key=lambda s: (s.top or 0, s.left or 0))


def _slide(slide) -> tuple[str | None, list[str | list], str]:
    """(title, body: text lines and tables' rows, speaker notes) of one slide."""
    title_shape = slide.shapes.title
    title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
    body: list[str | list] = []
    for shape in _shapes(slide.shapes):
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        if shape.has_text_frame:
            body.extend(" ".join(p.text.split()) for p in shape.text_frame.paragraphs)
        elif shape.has_table:
            body.append([([c.text for c in row.cells], [c.is_spanned for c in row.cells])
                         for row in shape.table.rows])
    notes = ""
    if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
        notes = " ".join(slide.notes_slide.notes_text_frame.text.split())
    return title or None, [b for b in body if b], notes


def read_pptx(path: Path, data: bytes, deadline: Deadline) -> Extracted:
    """One page per slide: "# title" (or "# Slide N"), its text and tables, then "Notes: ..."."""
    what = "PowerPoint presentation"
    prs = _library(path, what, lambda: pptx.Presentation(io.BytesIO(data)))
    pages = []
    total = _library(path, what, lambda: len(prs.slides))
    deadline.report(0, total, "slide")
    for number, (title, body, notes) in enumerate(_guarded(path, what, (_slide(s) for s in prs.slides)), 1):
        deadline.check(f"slide {number}")
        lines = [f"# {title or f'Slide {number}'}"]
        lines += [item if isinstance(item, str) else "\n".join(table_lines(item)) for item in body]
        if notes:
            lines.append(f"Notes: {notes}")
        pages.append(Page(number, "\n\n".join(lines)))
        deadline.report(number, total, "slide")
    title = _library(path, what, lambda: prs.core_properties.title)
    first_title = pages[0].text.split("\n", 1)[0][2:] if pages else ""
    return Extracted(pages, title, first_title)


# -------------------------------------------------------- .xlsx and .csv
def _filled(values: list[str]) -> list[int]:
    return [i for i, v in enumerate(values) if v]


class SheetTables:
    """The row lines of a sheet (or a CSV file) that may hold several tables, one below another.

    TableRows finds the first table's header. After blank rows, a new table starts when the rows
    there read as a header over its first row: a row of text cells (no figures but years), under
    an optional one-cell title row and over an optional second header row (when the first spans
    columns, as TableRows joins them), then a row of two or more cells, none right of the header's
    last column, with either
      - a figure, each of its figures under a header cell (text over numbers; but a year over a
        year is data over data: "Acme", "1998" over "Beta", "2001"), or
      - a title row over the header, or
      - a header over other columns than the table above's header.
    Otherwise the rows after the gap continue the table above: a blank row between groups of one
    table keeps its header. So a second all-text table of the same columns, with no title, is read
    with the first table's header (nothing tells it from more rows). Only the rows after a gap are
    looked at twice; a sheet without blank rows costs what one table does.

    Lines go to `emit(row number, line)`: rows after a gap are held until they are decided."""

    def __init__(self, emit: Callable[[int, str], None]):
        self.emit = emit
        self.table = TableRows()
        self.last = 0  # the number of the last row with text
        self.held: list[tuple[int, list[str], list[str]]] = []  # after a gap, undecided: number, values, cleaned

    def add(self, number: int, values: list[str]) -> None:
        """Row `number` (1-based, as the spreadsheet counts) with its cells' texts."""
        if not self.held and (number == self.last + 1 or not self.table.started):
            line = self.table.add(values)  # the common case: the next row of the table
            if not self.table.blank:
                self.last = number
                if line:
                    self.emit(number, line)
            return
        if not any(v and not v.isspace() for v in values):
            return
        gap, self.last = number > self.last + 1, number
        clean = [_clean_cell(v) for v in values]
        if self.held and gap:
            self.release()
        if self.held:
            if self._extends_head(clean):
                self.held.append((number, values, clean))
                return
            if self._new_table(clean):
                self.table, held, self.held = TableRows(), self.held + [(number, values, clean)], []
                for n, v, _ in held:
                    if line := self.table.add(v):
                        self.emit(n, line)
                return
            self.release()
        elif gap and (self._header_row(clean)
                      or len(cells := _filled(clean)) == 1 and not is_figure_cell(clean[cells[0]])):
            self.held = [(number, values, clean)]
            return
        if line := self.table.add(values):
            self.emit(number, line)

    def release(self) -> None:
        """The held rows, as rows of the table above (at a further gap, a non-header, the end)."""
        held, self.held = self.held, []
        for n, v, _ in held:
            if line := self.table.add(v):
                self.emit(n, line)

    @staticmethod
    def _header_row(clean: list[str]) -> bool:
        return len(_filled(clean)) >= 2 and _header_like(clean)

    def _heads(self) -> list[list[str]]:
        """The held header rows (the held rows but a title)."""
        return [c for _, _, c in self.held if len(_filled(c)) >= 2]

    def _extends_head(self, clean: list[str]) -> bool:
        """Whether a row continues the held head: a header under a title, or a second header row
        under a first that spans columns, its label column empty."""
        heads = self._heads()
        if not heads:
            return self._header_row(clean)
        return (len(heads) == 1 and not clean[0] and self._header_row(clean)
                and _spans(heads[0], [False] * len(heads[0])))

    def _new_table(self, clean: list[str]) -> bool:
        """Whether the held rows head a new table whose first row is `clean` (see the class)."""
        heads = self._heads()
        cells = _filled(clean)
        if not heads or len(cells) < 2:
            return False
        named = {i for h in heads for i in _filled(h)}
        if max(cells) > max(named):
            return False
        figures = [i for i in cells if is_figure_cell(clean[i])]
        if figures:  # each under a header cell; a year over a year is data over data ("Acme", "1998")
            return all(i in named for i in figures) and not any(
                i < len(h) and _YEAR.match(h[i]) and _YEAR.match(clean[i]) for h in heads for i in figures)
        above = self.table.header
        return len(heads) < len(self.held) or (above is not None and _filled(heads[0]) != _filled(above))


class _SheetPages:
    """The row lines of one sheet, cut into pages of ROWS_PER_PAGE rows, each headed by the
    sheet's name ("# Revenue"), with the row span when it takes several ("# Revenue, rows
    201-400"). A CSV file has no name: several pages are headed "# Rows 201-400", one none."""

    def __init__(self, name: str | None, pages: list[Page], deadline: Deadline):
        self.name, self.pages, self.deadline = name, pages, deadline
        self.tables = SheetTables(self._place)
        self.done: list[tuple[int, int, list[str]]] = []  # first row, last row, lines
        self.lines: list[str] = []
        self.first = self.last = 0

    def add(self, row: int, values: list[str]) -> None:
        """Row number `row` (1-based, as the spreadsheet counts) with its cells' texts."""
        if row % 1000 == 0:
            self.deadline.check(f"row {row:,}" if self.name is None else f"sheet {self.name} row {row:,}")
        self.tables.add(row, values)

    def _place(self, row: int, line: str) -> None:
        if self.lines and row - self.first >= ROWS_PER_PAGE:
            self.done.append((self.first, self.last, self.lines))
            self.lines = []
        if not self.lines:
            self.first = row
        self.lines.append(_own_paragraph(line))
        self.last = row

    def close(self) -> None:
        """Add this sheet's pages."""
        self.tables.release()
        if self.lines:
            self.done.append((self.first, self.last, self.lines))
        single = len(self.done) == 1
        for first, last, lines in self.done:
            if self.name is None:
                head = "" if single else f"# Rows {first}-{last}\n"
            else:
                head = f"# {self.name}\n" if single else f"# {self.name}, rows {first}-{last}\n"
            self.pages.append(Page(len(self.pages) + 1, head + "\n".join(lines)))


def _sheet_rows(path: Path, ws, deadline: Deadline) -> Iterator[tuple[int, list[str]]]:
    """(row number, cell texts) of a read-only worksheet's non-empty rows. Its declared dimensions
    are not trusted (a hostile one pads every row to 16,384 columns); openpyxl yields an empty row
    for each number skipped, so a row numbered past Excel's limit is refused as soon as it is reached."""
    ws.reset_dimensions()
    for number, row in enumerate(ws.iter_rows(), 1):
        if number & 4095 == 0:
            deadline.check(f"sheet {ws.title} row {number:,}")
        if number > EXCEL_MAX_ROWS:
            raise MalformedFile(f"{path}: sheet {ws.title} has a row numbered over {EXCEL_MAX_ROWS:,}, the most "
                                "a sheet can have; refused as malformed")
        if row:
            yield number, [cell_text(c.value, c.number_format if type(c.value) in (int, float) else None)
                           for c in row]


def read_xlsx(path: Path, data: bytes, deadline: Deadline) -> Extracted:
    """Pages of a workbook: its sheets in order, ROWS_PER_PAGE rows a page. Progress counts sheets,
    or rows (every ROWS_PER_REPORT) when the sheets declare more rows than that in all: a single
    100,000-row sheet would otherwise show no progress until it is read. The declared sizes (the
    sheets' dimension records) only scale the progress bar; reading does not trust them."""
    what = "Excel workbook"
    book = _library(path, what, lambda: openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True,
                                                               keep_links=False))
    try:
        pages: list[Page] = []
        sheets = _library(path, what, lambda: book.worksheets)
        declared = [ws.max_row for ws in sheets]  # None where a sheet declares no dimension
        rows = sum(declared) if None not in declared and sum(declared) > ROWS_PER_REPORT else 0
        deadline.report(0, rows or len(sheets), "row" if rows else "sheet")
        before = 0  # rows of the sheets already read
        for done, ws in enumerate(sheets, 1):
            sheet = _SheetPages(ws.title, pages, deadline)
            number = reported = 0
            for number, values in _guarded(path, what, _sheet_rows(path, ws, deadline)):
                sheet.add(number, values)
                if rows and number >= reported + ROWS_PER_REPORT:
                    reported = number - number % ROWS_PER_REPORT
                    deadline.report(before + reported, rows, "row")
            sheet.close()
            before += max(number, declared[done - 1] or 0)
            if not rows:
                deadline.report(done, len(sheets), "sheet")
        if rows:
            deadline.report(before, before, "row")
        title = _library(path, what, lambda: book.properties.title if book.properties is not None else None)
    finally:
        book.close()
    return Extracted(pages, title, "")


def read_csv(path: Path, text: str, deadline: Deadline) -> Extracted:
    """Pages of a CSV file (its dialect sniffed: comma, semicolon, tab...), ROWS_PER_PAGE rows a page."""
    try:
        dialect = csv.Sniffer().sniff(text[:16384], delimiters=",;\t|")
    except csv.Error:  # one column, or no consistent delimiter: read it as plain comma-separated
        dialect = csv.excel
    pages: list[Page] = []
    sheet = _SheetPages(None, pages, deadline)
    # the rows at most: one a line break (\n, \r\n or \r), and the last (a quoted cell may hold breaks)
    total = text.count("\n") + text.count("\r") - text.count("\r\n") + 1
    deadline.report(0, total, "row")
    number = 0
    for number, values in enumerate(_guarded(path, "CSV file", csv.reader(io.StringIO(text, newline=""), dialect)), 1):
        sheet.add(number, values)
        if number % ROWS_PER_REPORT == 0:
            deadline.report(number, total, "row")
    sheet.close()
    deadline.report(number, number, "row")
    return Extracted(pages, None, "")


def extract(path: Path, data: bytes, kind: str, timeout_s: float, text: str | None = None,
            progress: Progress | None = None) -> Extracted:
    """The pages of an Office or CSV file (`text`: a CSV file's decoded text). Raises FileRejected.
    `progress(done, total, unit)` hears how far reading is, by page (.docx, as Word's saved page
    breaks count them), slide, sheet, or row (.csv, of an estimate from its line breaks)."""
    deadline = Deadline(path, timeout_s, progress)
    if kind == "csv":
        return read_csv(path, text or "", deadline)
    open_package(path, data, kind).close()
    reader: Callable[[Path, bytes, Deadline], Extracted] = {"docx": read_docx, "pptx": read_pptx,
                                                            "xlsx": read_xlsx}[kind]
    return reader(path, data, deadline)
