"""The shared evaluation PDFs: 120 adversarial + 9 real reports, in one ingest run."""
from __future__ import annotations

import pytest

from ingest.pipeline import ingest_paths
from rag.search import search
from rag.store import LocalStore
from tests.conftest import shared_eval

REASONS = {"password_protected", "no_text_layer", "malformed", "too_large", "unsupported_type",
           "mislabelled_type", "empty", "timeout"}


@pytest.mark.slow
def test_every_pdf_indexed_or_explained_and_good_ones_searchable(settings, embedder, monkeypatch):
    monkeypatch.delenv("RAG_OCR", raising=False)  # OCR on, the default
    folder = shared_eval("pdfs")
    report = ingest_paths([folder], settings.__class__.load(data_dir=settings.data_dir, parse_timeout_s=30),
                          embedder=embedder)
    pdfs = [f for f in report.files if f.path.endswith(".pdf")]
    assert len(pdfs) == 129
    for f in pdfs:
        assert f.status == "indexed" or (f.status == "error" and f.reason in REASONS and f.message), f
        if f.status == "error":
            assert f.path.rsplit("/", 1)[-1] in f.message  # the message names the file
    by_name = {f.path.rsplit("/", 1)[-1]: f for f in pdfs}
    assert by_name["NCT06155240_Prot_SAP_000.pdf"].status == "indexed"  # the scanned page, read by OCR
    assert all(by_name[n].status == "indexed" for n in
               ["20071231X02009.pdf", "EPA2022.pdf", "GSA2022.pdf", "NARA2022.pdf", "NCT06158269_Prot_000.pdf"])
    assert sum(f.reason == "password_protected" for f in pdfs) >= 30
    store = LocalStore(settings.data_dir)
    assert store.check() == []
    hits = search(store, embedder, "National Archives strategic goals", k=5)
    assert any(h.source.endswith("NARA2022.pdf") for h in hits)
    hits = search(store, embedder, "chair-based yoga class procedures, week by week", k=5)
    assert any(h.source.endswith("NCT06155240_Prot_SAP_000.pdf") for h in hits)
