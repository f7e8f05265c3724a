"""Ingest progress as a person sees it: per file, per stage, moving forward, with an estimate."""
from __future__ import annotations

from ingest.pipeline import ProgressEvent, ingest_paths
from tests.conftest import SAMPLES


def test_progress_names_each_file_and_stage_and_only_moves_forward(tmp_path, settings, embedder, sample_pdf):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nthis is not a pdf body")
    events: list[ProgressEvent] = []
    ingest_paths([sample_pdf, broken, SAMPLES / "user-guide.md"], settings, embedder=embedder,
                 progress=events.append)

    stages = [(e.stage, e.file) for e in events]
    pages = [(e.done, e.total) for e in events if e.stage == "read" and e.file == "user-guide.pdf" and e.total]
    assert pages and pages[-1][0] == pages[-1][1] >= 2, "the PDF's pages are counted as they are read"
    assert ("chunk", "user-guide.pdf") in stages and ("error", "broken.pdf") in stages
    assert ("chunk", "user-guide.md") in stages
    embeds = [e for e in events if e.stage == "embed"]
    assert embeds and embeds[-1].done == embeds[-1].total > 0
    assert "user-guide.pdf" in embeds[-1].file and "user-guide.md" in embeds[-1].file
    assert [e.stage for e in events[-2:]] == ["publish", "done"] and events[-1].fraction == 1.0
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions), "the bar never goes back"
    assert all(e.files == 3 for e in events)

    labels = [e.label() for e in events]
    assert "Reading user-guide.pdf (file 1 of 3): page 1 of" in " | ".join(labels)
    assert any(x.startswith("Refused broken.pdf (file 2 of 3)") for x in labels)
    assert any(x.startswith("Embedding passages") for x in labels)
    assert ProgressEvent("read", "a.pdf", 1, 2, 3, 10, 0.4, 75.0).label() == \
        "Reading a.pdf (file 1 of 2): page 4 of 10 · about 75 s left"
    assert ProgressEvent("embed", "a.pdf", 1, 1, 128, 480, 0.6, 300.0).label() == \
        "Embedding passages 128 of 480 (a.pdf) · about 5 min left"
    assert ProgressEvent("read", "scan.pdf", 1, 1, 0, 1, 0.01, part=0.4).label() == \
        "Reading scan.pdf (file 1 of 1): page 1 of 1 (OCR: 40% of its lines read)"

    again: list[ProgressEvent] = []
    ingest_paths([sample_pdf], settings, embedder=embedder, progress=again.append)
    assert ("unchanged", "user-guide.pdf") in [(e.stage, e.file) for e in again]
    assert not any(e.stage == "embed" for e in again)
