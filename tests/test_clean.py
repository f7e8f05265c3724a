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
