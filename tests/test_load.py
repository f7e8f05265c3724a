"""Tests of ingest.load on real files generated in tmp_path (no mocks)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

from ingest.load import PdfParser, detect_kind, load_file, sniff
from rag.errors import (EmptyFile, FileRejected, FileTooLarge, MalformedFile, MislabelledType,
                        NoTextLayer, ParseTimeout, PasswordProtected, UnsupportedType)
from rag.types import Page

MAX = 10 * 2**20


# ------------------------------------------------------------------ helpers
def make_pdf(path: Path, pages: list[str]) -> Path:
    pdf = FPDF()
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def make_blank_pdf(path: Path) -> Path:
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60)
    pdf.output(str(path))
    return path


def encrypt_pdf(src: Path, dst: Path, user_password: str) -> Path:
    w = PdfWriter(clone_from=PdfReader(src))
    w.encrypt(user_password=user_password, owner_password="owner", algorithm="AES-128")
    w.write(dst)
    return dst


def load_all(path: Path, max_bytes: int = MAX, parser: PdfParser | None = None):
    if parser is not None:
        return list(load_file(path, max_bytes, parser))
    with PdfParser(timeout_s=30) as p:
        return list(load_file(path, max_bytes, p))


PAGE1 = "Alpha page one talks about quantum gravity and loop corrections."
PAGE2 = "Beta page two discusses the migration of arctic terns."


@pytest.fixture
def two_page_pdf(tmp_path: Path) -> Path:
    return make_pdf(tmp_path / "two.pdf", [PAGE1, PAGE2])


# ------------------------------------------------------------ type checks
def test_text_named_pdf_is_mislabelled(tmp_path: Path):
    p = tmp_path / "notes.pdf"
    p.write_text("just some plain text, not a PDF at all\n")
    with pytest.raises(MislabelledType) as ei:
        load_all(p)
    assert ei.value.reason == "mislabelled_type"
    assert "notes.pdf" in str(ei.value)
    assert "not a PDF" in str(ei.value)


def test_png_named_txt_is_mislabelled(tmp_path: Path):
    p = tmp_path / "picture.txt"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(MislabelledType) as ei:
        load_all(p)
    assert ei.value.reason == "mislabelled_type"
    assert "picture.txt" in str(ei.value)
    assert "PNG" in str(ei.value)


def test_detect_kind_direct():
    assert detect_kind(Path("a.md"), b"# hello\n") == "markdown"
    assert detect_kind(Path("a.HTM"), b"<html></html>") == "html"
    assert detect_kind(Path("a.pdf"), b"%PDF-1.4\n") == "pdf"
    assert detect_kind(Path("a.jsonl"), b'{"_id": 1}\n') == "jsonl"
    with pytest.raises(MislabelledType):
        detect_kind(Path("a.md"), b"%PDF-1.4\n")


def test_opendocument_is_unsupported(tmp_path: Path):
    """.docx is read now (tests/test_office.py); an OpenDocument text file is still refused."""
    p = tmp_path / "report.odt"
    p.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(UnsupportedType) as ei:
        load_all(p)
    assert ei.value.reason == "unsupported_type"
    assert "report.odt" in str(ei.value)
    assert ".odt" in str(ei.value) and ".docx" in str(ei.value)  # the message lists what is supported


def test_empty_file(tmp_path: Path):
    p = tmp_path / "empty.txt"
    p.write_bytes(b"")
    with pytest.raises(EmptyFile) as ei:
        load_all(p)
    assert ei.value.reason == "empty"
    assert "empty.txt" in str(ei.value)


def test_whitespace_only_file_is_empty(tmp_path: Path):
    p = tmp_path / "blank.md"
    p.write_text("   \n\n\t  \n")
    with pytest.raises(EmptyFile):
        load_all(p)


def test_too_large_rejected_before_parsing(tmp_path: Path):
    # Content is not a PDF: were it sniffed/parsed first, this would be MislabelledType.
    p = tmp_path / "huge.pdf"
    p.write_bytes(b"x" * 5000)
    with PdfParser(timeout_s=30) as parser:
        with pytest.raises(FileTooLarge) as ei:
            list(load_file(p, 1000, parser))
        assert parser._proc is None  # the PDF worker was never started
    assert ei.value.reason == "too_large"
    assert "huge.pdf" in str(ei.value)


def test_exactly_max_bytes_is_allowed(tmp_path: Path):
    p = tmp_path / "fits.txt"
    p.write_bytes(b"a" * 100)
    docs = load_all(p, max_bytes=100)
    assert docs[0].pages[0].text == "a" * 100


# -------------------------------------------------------------- text kinds
def test_html_extraction(tmp_path: Path):
    html = """<!doctype html>
<html><head><title>  My   Page Title </title>
<style>body { color: red; font-family: serif; }</style>
<script>alert(1)</script></head>
<body>
<h2>First Heading</h2>
<p>Some paragraph text here.</p>
<script type="text/javascript">alert(1); var x = 2;</script>
<style>.cls { margin: 0 }</style>
<h2>Second Heading</h2>
<p>More &amp; more text.</p>
</body></html>"""
    p = tmp_path / "page.html"
    p.write_text(html)
    (doc,) = load_all(p)
    text = doc.pages[0].text
    assert doc.kind == "html"
    assert doc.title == "My Page Title"
    assert "alert" not in text
    assert "color" not in text and "margin" not in text and "{" not in text
    lines = text.split("\n")
    assert "## First Heading" in lines
    assert "## Second Heading" in lines
    assert "Some paragraph text here." in lines
    assert "More & more text." in lines
    assert "My Page Title" not in text  # the title is not part of the body


def test_html_without_title_uses_file_name(tmp_path: Path):
    p = tmp_path / "notitle.html"
    p.write_text("<html><body><p>hello there</p></body></html>")
    (doc,) = load_all(p)
    assert doc.title == "notitle.html"
    assert doc.pages[0].text == "hello there"


def test_markdown_title_from_first_h1(tmp_path: Path):
    p = tmp_path / "doc.md"
    p.write_text("Intro line without heading.\n\n## Not the title\n\n# Real Title\n\nBody.\n\n# Second H1\n")
    (doc,) = load_all(p)
    assert doc.kind == "markdown"
    assert doc.title == "Real Title"
    assert doc.source == str(p)
    assert len(doc.pages) == 1 and doc.pages[0].number == 1


def test_markdown_without_h1_uses_file_name(tmp_path: Path):
    p = tmp_path / "plain.md"
    p.write_text("## only h2\n\ntext\n")
    (doc,) = load_all(p)
    assert doc.title == "plain.md"


def test_source_override(tmp_path: Path):
    p = tmp_path / "x.txt"
    p.write_text("hello")
    with PdfParser() as parser:
        (doc,) = list(load_file(p, MAX, parser, source="custom/source.txt"))
    assert doc.source == "custom/source.txt"


def test_utf8_bom_decoded(tmp_path: Path):
    p = tmp_path / "bom.txt"
    p.write_bytes(b"\xef\xbb\xbf" + "Caf\u00e9 na\u00efve r\u00e9sum\u00e9".encode("utf-8"))
    (doc,) = load_all(p)
    assert doc.pages[0].text == "Caf\u00e9 na\u00efve r\u00e9sum\u00e9"
    assert "\ufeff" not in doc.pages[0].text


def test_cp1252_decoded(tmp_path: Path):
    original = "Caf\u00e9 \u2013 \u201cquoted\u201d \u20ac5"
    raw = original.encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # make sure the fallback path is exercised
    p = tmp_path / "legacy.txt"
    p.write_bytes(raw)
    (doc,) = load_all(p)
    assert doc.pages[0].text == original
    assert "\ufffd" not in doc.pages[0].text


def test_utf16_with_bom_decoded(tmp_path: Path):
    p = tmp_path / "wide.txt"
    p.write_bytes("Hello wide world \u00e9".encode("utf-16"))  # has a BOM and NUL bytes
    (doc,) = load_all(p)
    assert doc.pages[0].text == "Hello wide world \u00e9"


def test_sha256_and_size(tmp_path: Path):
    import hashlib

    data = b"some bytes of text\n"
    p = tmp_path / "h.txt"
    p.write_bytes(data)
    (doc,) = load_all(p)
    assert doc.sha256 == hashlib.sha256(data).hexdigest()
    assert doc.size_bytes == len(data)


# -------------------------------------------------------------------- jsonl
def test_jsonl_good_lines_then_malformed(tmp_path: Path):
    lines = [
        json.dumps({"_id": "doc-a", "title": "Title A", "text": "Text of record A."}),
        '{"_id": "doc-b", "text": "broken json',
        json.dumps({"_id": "doc-c", "title": "Title C", "text": "Text of record C."}),
    ]
    p = tmp_path / "corpus.jsonl"
    p.write_text("\n".join(lines) + "\n")
    docs = []
    with PdfParser() as parser:
        gen = load_file(p, MAX, parser)
        with pytest.raises(FileRejected) as ei:
            for d in gen:
                docs.append(d)
    assert [d.source for d in docs] == ["doc-a", "doc-c"]
    assert [d.title for d in docs] == ["Title A", "Title C"]
    assert [d.pages[0].text for d in docs] == ["Text of record A.", "Text of record C."]
    assert all(d.kind == "jsonl-record" for d in docs)
    assert docs[0].meta["line"] == 1 and docs[1].meta["line"] == 3
    assert docs[0].sha256 != docs[1].sha256
    err = ei.value
    assert err.reason == "malformed"
    assert "line 2" in str(err)
    assert "corpus.jsonl" in str(err)
    assert "1 bad line" in str(err) and "2 good" in str(err)


def test_jsonl_id_and_missing_text(tmp_path: Path):
    lines = [
        json.dumps({"id": 7, "text": "uses id not _id"}),
        json.dumps({"_id": "no-text"}),
        json.dumps(["not", "an", "object"]),
    ]
    p = tmp_path / "c.jsonl"
    p.write_text("\n".join(lines))
    docs = []
    with pytest.raises(FileRejected) as ei:
        with PdfParser() as parser:
            for d in load_file(p, MAX, parser):
                docs.append(d)
    assert [d.source for d in docs] == ["7"]
    assert docs[0].title == "7"  # no title: the id stands in
    assert ei.value.reason == "malformed"
    assert "line 2" in str(ei.value) and "line 3" in str(ei.value)


def test_jsonl_all_good_raises_nothing(tmp_path: Path):
    p = tmp_path / "ok.jsonl"
    p.write_text("\n".join(json.dumps({"_id": f"d{i}", "text": f"body {i}"}) for i in range(3)) + "\n\n")
    docs = load_all(p)
    assert [d.source for d in docs] == ["d0", "d1", "d2"]


# --------------------------------------------------------------------- PDFs
def test_two_page_pdf(two_page_pdf: Path):
    with PdfParser(timeout_s=30) as parser:
        (doc,) = list(load_file(two_page_pdf, MAX, parser))
    assert doc.kind == "pdf"
    assert len(doc.pages) == 2
    assert all(isinstance(pg, Page) for pg in doc.pages)
    assert [pg.number for pg in doc.pages] == [1, 2]
    assert "quantum gravity" in doc.pages[0].text
    assert "arctic terns" in doc.pages[1].text
    assert "arctic" not in doc.pages[0].text and "quantum" not in doc.pages[1].text
    assert doc.source == str(two_page_pdf)
    assert doc.size_bytes == two_page_pdf.stat().st_size


def test_pdf_empty_user_password_loads(two_page_pdf: Path, tmp_path: Path):
    dst = encrypt_pdf(two_page_pdf, tmp_path / "enc_empty.pdf", user_password="")
    assert PdfReader(dst).is_encrypted
    with PdfParser(timeout_s=30) as parser:
        (doc,) = list(load_file(dst, MAX, parser))
    assert [pg.number for pg in doc.pages] == [1, 2]
    assert "quantum gravity" in doc.pages[0].text
    assert "arctic terns" in doc.pages[1].text


def test_pdf_with_user_password_rejected(two_page_pdf: Path, tmp_path: Path):
    dst = encrypt_pdf(two_page_pdf, tmp_path / "enc_secret.pdf", user_password="secret")
    with PdfParser(timeout_s=30) as parser:
        with pytest.raises(PasswordProtected) as ei:
            list(load_file(dst, MAX, parser))
    assert ei.value.reason == "password_protected"
    assert "enc_secret.pdf" in str(ei.value)


def test_pdf_without_text_layer(tmp_path: Path):
    p = make_blank_pdf(tmp_path / "scan.pdf")
    with PdfParser(timeout_s=30) as parser:
        with pytest.raises(NoTextLayer) as ei:
            list(load_file(p, MAX, parser))
    assert ei.value.reason == "no_text_layer"
    assert "scan.pdf" in str(ei.value)


def test_truncated_pdf_is_malformed(two_page_pdf: Path, tmp_path: Path):
    p = tmp_path / "truncated.pdf"
    p.write_bytes(two_page_pdf.read_bytes()[:300])
    with PdfParser(timeout_s=30) as parser:
        with pytest.raises(FileRejected) as ei:
            list(load_file(p, MAX, parser))
    assert ei.value.reason == "malformed"
    assert isinstance(ei.value, MalformedFile)
    assert "truncated.pdf" in str(ei.value)


def test_parse_timeout_then_worker_restarts(tmp_path: Path):
    big = make_pdf(tmp_path / "big.pdf", [f"Page {i} text. " * 40 for i in range(1, 21)])
    other = make_pdf(tmp_path / "other.pdf", [PAGE1, PAGE2])
    with PdfParser(timeout_s=0.001) as parser:
        with pytest.raises(ParseTimeout) as ei:
            list(load_file(big, MAX, parser))
        assert ei.value.reason == "timeout"
        assert "big.pdf" in str(ei.value)
        parser.timeout_s = 30
        (doc,) = list(load_file(other, MAX, parser))
        # the answer is for the new file, not a stale line from the killed worker
        assert doc.source == str(other)
        assert [pg.number for pg in doc.pages] == [1, 2]
        assert "quantum gravity" in doc.pages[0].text
        assert "arctic terns" in doc.pages[1].text
        # and the worker keeps serving further files
        (doc2,) = list(load_file(big, MAX, parser))
        assert len(doc2.pages) == 20
        assert "Page 20 text." in doc2.pages[19].text


def test_parser_reused_across_files(tmp_path: Path):
    a = make_pdf(tmp_path / "a.pdf", ["First document body."])
    b = make_pdf(tmp_path / "b.pdf", ["Second document body.", "and its second page"])
    with PdfParser(timeout_s=30) as parser:
        (da,) = list(load_file(a, MAX, parser))
        proc = parser._proc
        (db,) = list(load_file(b, MAX, parser))
        assert parser._proc is proc  # one worker serves both
    assert "First document" in da.pages[0].text and len(da.pages) == 1
    assert "Second document" in db.pages[0].text and len(db.pages) == 2
    assert parser._proc is None  # closed on exit


# -------------------------------------------------------------------- sniff
def test_sniff_plain_text_is_none():
    assert sniff(b"Hello, world!\nThis is text.") is None
    assert sniff("caf\u00e9 \u2603".encode("utf-8")) is None
    assert sniff(b"") is None


def test_sniff_binaries():
    assert sniff(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n") == "a PDF"
    assert sniff(b"  \n%PDF-1.4\n") == "a PDF"  # leading whitespace
    assert sniff(b"junk header " * 10 + b"%PDF-1.4\n") == "a PDF"  # within the first KiB
    zip_desc = sniff(b"PK\x03\x04\x14\x00\x06\x00")
    assert zip_desc is not None and "ZIP" in zip_desc
    assert sniff(b"\x89PNG\r\n\x1a\n\x00\x00") == "a PNG image"
    assert sniff(b"some\x00binary\x00data") == "binary data"


# ------------------------------------------------------------------ titles
@pytest.mark.parametrize("meta, expected", [
    ("Annual Report 2023", "Annual Report 2023"),
    ("  Quarterly   Results\n Q2 ", "Quarterly Results Q2"),
    ("Microsoft Word - Annual Report 2023.docx", "Annual Report 2023"),
    ("0000764478-23-000041", "ACME Corporation Annual Report"),  # an SEC accession number
    ("Microsoft Word - doc1.docx", "ACME Corporation Annual Report"),
    ("untitled", "ACME Corporation Annual Report"),
    ("Untitled", "ACME Corporation Annual Report"),
    ("", "ACME Corporation Annual Report"),
    (None, "ACME Corporation Annual Report"),
    ("Exhibit 99.1", "ACME Corporation Annual Report"),
    ("annual_report_v3.pdf", "ACME Corporation Annual Report"),
])
def test_readable_title_keeps_word_titles_and_replaces_opaque_ones(meta, expected):
    from ingest.load import readable_title

    first_page = "\n".join(["12", "March 31, 2023", "Page 1 of 40", "x" * 130, "ACME Corporation Annual Report",
                            "The company sold widgets."])
    assert readable_title(meta, first_page, "acme_10-K_2023.pdf") == expected


def test_readable_title_falls_back_to_the_file_name():
    from ingest.load import readable_title

    # Nothing usable on the first page either: only a date, a page number and a long line.
    first_page = "2023-03-31\n7\nPage 2 of 9\n" + "word " * 40
    assert readable_title("0000764478-23-000041", first_page, "acme_10-K-2023.pdf") == "acme 10 K 2023"
    assert readable_title(None, "", "notes") == "notes"


def test_pdf_with_an_accession_number_title_takes_its_first_line(tmp_path: Path):
    src = make_pdf(tmp_path / "src.pdf", ["ACME Corporation Annual Report\nThe company sold 4,000 widgets in 2023.",
                                          "Second page about the board."])
    w = PdfWriter(clone_from=PdfReader(src))
    w.add_metadata({"/Title": "0000764478-23-000041"})
    w.write(tmp_path / "0000764478-23-000041.pdf")
    assert PdfReader(tmp_path / "0000764478-23-000041.pdf").metadata.title == "0000764478-23-000041"
    (doc,) = load_all(tmp_path / "0000764478-23-000041.pdf")
    assert doc.title == "ACME Corporation Annual Report"
    # A readable metadata title is kept.
    w = PdfWriter(clone_from=PdfReader(src))
    w.add_metadata({"/Title": "Microsoft Word - ACME Annual Report 2023.docx"})
    w.write(tmp_path / "named.pdf")
    (doc,) = load_all(tmp_path / "named.pdf")
    assert doc.title == "ACME Annual Report 2023"
