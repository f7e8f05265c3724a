"""Text clean-up: ligature glyphs that PDFs draw without a character behind them."""
from __future__ import annotations

from pathlib import Path

import pytest

from ingest.clean import clean_text
from ingest.load import PdfParser, load_file
from tests.conftest import ROOT

EBAY = ROOT.parent / "shared" / "eval" / "financial" / "EBAY_2023Q1_EARNINGS.pdf"


@pytest.mark.parametrize("raw,clean", [
    ("results for its \x00rst quarter", "results for its first quarter"),
    ("E\x00ective tax rate; cash \x00ows", "Effective tax rate; cash flows"),
    ("applica\x00ons so\x00ware", "applications software"),  # "ti" and "ft" in another PDF
    ("O\x00cer and liabili\x00es", "Officer and liabilities"),
    ("x\x00qz stays short of a word", "xqz stays short of a word"),  # no ligature makes a word: dropped
])
def test_ligature_glyphs_become_the_letters_that_make_a_word(raw, clean):
    assert clean_text(raw) == clean


@pytest.mark.skipif(not EBAY.exists(), reason="the shared financial filings are not here")
def test_a_real_release_reads_first_quarter_not_rst_quarter():
    with PdfParser() as parser:
        doc = next(load_file(EBAY, 50_000_000, parser))
    first = doc.pages[0].text
    assert "first quarter" in first and "financial results" in first
    assert " rst quarter" not in first and "\x00" not in first


def test_words_are_mended_from_the_pages_other_reading():
    from ingest.clean import page_words, repair_words

    words = page_words("Operating expenses; litigation and amortization. Total Revenue by Geographic "
                       "Locations, a part of fiscal segments")
    assert repair_words("Total operating e xpenses", words) == "Total operating expenses"
    assert repair_words("li\x00ga\x00on and amor\x00za\x00on", words) == "litigation and amortization"
    assert repair_words("To t a l R e v e n u e b y G e o", words) == "Total Revenue by G e o"
    # two words of the page stay two words; pieces that make no word of the page stay apart
    assert repair_words("a part of fisc al segmen ts", words) == "a part of fiscal segments"
    assert repair_words("Robert A Smith", words) == "Robert A Smith"
    assert repair_words("e xpenses", frozenset()) == "e xpenses"  # no other reading: as it was


ORACLE = ROOT.parent / "shared" / "eval" / "financial" / "ORACLE_2023_10K.pdf"


@pytest.mark.skipif(not ORACLE.exists(), reason="the shared financial filings are not here")
def test_a_real_statement_reads_whole_words(tmp_path):
    """Oracle's statement of operations: pypdf's layout mode reads "Operating e xpenses" and
    "Opera\\x00ng" (a "ti" ligature); the parser mends both from pdfium's reading of the page."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.add_page(PdfReader(ORACLE).pages[66])  # page 67
    one = tmp_path / "statement.pdf"
    with one.open("wb") as f:
        writer.write(f)
    with PdfParser() as parser:
        text = next(load_file(one, 50_000_000, parser)).pages[0].text
    assert "Total operating expenses" in text and "Operating income" in text
    assert "e xpenses" not in text and "inc ome" not in text
