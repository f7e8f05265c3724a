"""OCR of scanned PDF pages (issue 13): real fpdf2 pages rendered by pypdfium2 and saved as
image-only PDFs, read through the real worker (PdfParser + load_file) with the packaged RapidOCR
models. One worker per module, so the OCR engine loads once."""
from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium
import pytest
from fpdf import FPDF

from ingest.load import PdfParser, load_file
from ingest.ocr import needs_ocr, render_page, repair_spacing
from rag.errors import NoTextLayer
from tests.conftest import shared_eval

MAX = 10 * 2**20
SCANNED = ["Quarterly inspection of the north bridge found corrosion on three girders.",
           "The contractor will replace the bearings before the winter closure."]
TYPED = "Alpha page one talks about quantum gravity and loop corrections."


def text_pdf(path: Path, lines: list[str]) -> Path:
    """A one-page born-digital PDF (real text layer) with these lines."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=14)
    for line in lines:
        pdf.multi_cell(0, 10, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def page_image(pdf_path: Path, dpi: int = 200):
    """Page 1 of a PDF rendered to a greyscale PIL image, as a scanner would produce."""
    doc = pdfium.PdfDocument(str(pdf_path))
    try:
        return render_page(doc[0], dpi).convert("L")
    finally:
        doc.close()


def scanned_pdf(tmp_path: Path, name: str, lines: list[str], turned: int = 0) -> Path:
    """An image-only PDF (no text layer) of a page carrying these lines, the image turned
    `turned` degrees counter-clockwise (a page fed into the scanner sideways)."""
    image = page_image(text_pdf(tmp_path / f"{name}-src.pdf", lines)).rotate(turned, expand=True)
    out = tmp_path / name
    image.save(out, "PDF", resolution=200)
    return out


@pytest.fixture(scope="module")
def parser():
    with PdfParser(timeout_s=60) as p:
        yield p


def words(text: str) -> set[str]:
    return {w.strip(".,").lower() for w in text.split()}


def test_scanned_page_is_ocrd(tmp_path: Path, parser: PdfParser):
    [doc] = load_file(scanned_pdf(tmp_path, "scan.pdf", SCANNED), MAX, parser)
    assert doc.meta["ocr_pages"] == [1]
    found = words(doc.pages[0].text)
    expected = words(" ".join(SCANNED))
    assert len(expected & found) >= 0.9 * len(expected), doc.pages[0].text
    assert {"corrosion", "girders", "bearings", "contractor"} <= found


def test_sideways_scan_is_turned_upright(tmp_path: Path, parser: PdfParser):
    [doc] = load_file(scanned_pdf(tmp_path, "sideways.pdf", SCANNED, turned=270), MAX, parser)
    assert "Quarterly inspection of the north bridge" in doc.pages[0].text


def test_mixed_pdf_keeps_its_text_page_and_ocrs_the_other(tmp_path: Path, parser: PdfParser):
    typed_only = text_pdf(tmp_path / "typed.pdf", [TYPED])
    image_png = tmp_path / "scan.png"
    page_image(text_pdf(tmp_path / "src.pdf", SCANNED)).save(image_png)
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=14)
    pdf.multi_cell(0, 10, TYPED)
    pdf.add_page()
    pdf.image(str(image_png), x=0, y=0, w=pdf.w, h=pdf.h)
    mixed = tmp_path / "mixed.pdf"
    pdf.output(str(mixed))

    [doc] = load_file(mixed, MAX, parser)
    [typed] = load_file(typed_only, MAX, parser)
    assert doc.meta["ocr_pages"] == [2]
    assert doc.pages[0].text == typed.pages[0].text  # the text layer, exactly as without OCR
    assert "ocr_pages" not in typed.meta
    assert {"corrosion", "girders", "bearings"} <= words(doc.pages[1].text)


def test_ocr_off_refuses_a_scan(tmp_path: Path):
    scan = scanned_pdf(tmp_path, "scan-off.pdf", SCANNED)
    with PdfParser(timeout_s=30, ocr=False) as off:
        with pytest.raises(NoTextLayer) as ei:
            list(load_file(scan, MAX, off))
    assert ei.value.reason == "no_text_layer"
    assert "scan-off.pdf" in str(ei.value) and "RAG_OCR=off" in str(ei.value)


def test_blank_scan_is_still_refused(tmp_path: Path, parser: PdfParser):
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60)
    pdf.output(str(tmp_path / "blank.pdf"))
    with pytest.raises(NoTextLayer) as ei:
        list(load_file(tmp_path / "blank.pdf", MAX, parser))
    assert ei.value.reason == "no_text_layer"
    assert "OCR found no text" in str(ei.value)


def test_real_scan_is_indexed(parser: PdfParser):
    path = shared_eval("pdfs", "real", "NCT06155240_Prot_SAP_000.pdf")
    [doc] = load_file(path, MAX, parser)
    assert doc.meta["ocr_pages"] == [1]
    text = doc.pages[0].text
    # the table is printed sideways on the page: read turned upright, the title comes first
    assert text.startswith("V1 4/6/2023\nAPPENDIX D Study Protocol Class Procedures\n"), text[:600]
    for phrase in ["Yoga for a Healthy Heart Protocol", "Chair-based yoga", "Yoga Nidra", "Post-class BP"]:
        assert phrase in text, text[:600]


@pytest.mark.parametrize("text, needed", [
    ("", True),
    ("  \n 3 \n", True),                               # a page number alone
    ("\ufffd" * 40 + " abc", True),                    # replacement characters
    ("\ue000\ue001\ue002 " * 20 + "word", True),       # private-use glyph codes
    (TYPED, False),
    ("Item 16. Form 10-K Summary None.", False),
])
def test_needs_ocr(text: str, needed: bool):
    assert needs_ocr(text) is needed


def test_a_short_label_on_a_page_without_images_is_not_ocrd():
    assert needs_ocr("Potato 3", has_image=True) and not needs_ocr("Potato 3", has_image=False)
    assert needs_ocr("", has_image=False)  # no text at all: vector outlines, or blank


def test_ocr_setting_reads_like_the_other_rag_settings(monkeypatch):
    from rag.config import Settings

    monkeypatch.delenv("RAG_OCR", raising=False)
    assert Settings.load().ocr
    monkeypatch.setenv("RAG_OCR", "on")
    assert Settings.load().ocr
    for off in ("off", "0", "false"):
        monkeypatch.setenv("RAG_OCR", off)
        assert not Settings.load().ocr


def test_repair_spacing():
    assert repair_spacing("buildings,and software.This") == "buildings, and software. This"
    assert repair_spacing("U.S. costs 1,000 e.g.this") == "U.S. costs 1,000 e.g.this"


def test_an_answer_from_a_scanned_page_marks_its_passage_as_ocr_text(tmp_path: Path, settings, embedder):
    from ingest.pipeline import ingest_paths
    from rag.answer import Answerer

    scan = scanned_pdf(tmp_path, "inspection.pdf", SCANNED)
    typed = text_pdf(tmp_path / "typed.pdf", [TYPED])
    report = ingest_paths([scan, typed], settings, embedder=embedder)
    assert [f.status for f in report.files] == ["indexed", "indexed"]
    answerer = Answerer(settings)
    answer = answerer.ask("What did the quarterly inspection of the north bridge find?")
    passages = answer.to_json()["passages"]
    by_source = {Path(p["source"]).name: p["ocr"] for p in passages}
    assert by_source["inspection.pdf"] is True and by_source.get("typed.pdf", False) is False
    assert "corrosion" in answer.text and answer.citations[0].source.endswith("inspection.pdf")
