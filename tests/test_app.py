"""The Streamlit app, run headless with AppTest against a real ingested index."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from ingest.pipeline import ingest_paths
from tests.conftest import ROOT, write_docs


def test_status_page_shows_the_index(tmp_path, settings, embedder, monkeypatch):
    ingest_paths(write_docs(tmp_path / "docs", 2), settings, embedder=embedder)
    monkeypatch.setenv("RAG_DATA_DIR", str(settings.data_dir))
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Documents"] == "2" and metrics["Index version"] == "1"
    assert len(at.dataframe) >= 1


def test_status_page_on_an_empty_index(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert any("No documents are indexed yet" in i.value for i in at.info)
