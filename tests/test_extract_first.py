"""Cheap first (`RAG_EXTRACT_FIRST`, on by default): with an LLM configured, a question that
names its period and is answered by a table row of the asked metric with that period's
column, or whose period the documents do not report, gets the extracted answer without a
call to the LLM. Everything else still goes to the LLM. Real CSV + Markdown files, the real
index and a real llama.cpp server (SmolLM2-135M)."""
from __future__ import annotations

from pathlib import Path

import pytest

TABLE = """\
,Three Months Ended June 30 2023,Three Months Ended June 30 2022,Six Months Ended June 30 2023
Net revenues,"$2,540","$2,420","$5,050"
Operating income,$612,$580,"$1,190"
Marketing expenses,$301,$288,$590
"""
NOTES = """# Acme Corp company notes

Acme Corp makes garden tools and ships them from its warehouse in Porto. The company was
founded in 1998 by two engineers who wanted sturdier trowels.
"""
FIGURE = "What were Acme's net revenues for the three months ended June 30, 2023?"
UNREPORTED = "What was Acme's operating income in the six months ended June 30, 2022?"
PROSE = "Where does Acme ship its tools from?"


@pytest.fixture(scope="module")
def acme(tmp_path_factory) -> Path:
    from ingest.pipeline import ingest_paths
    from rag.config import Settings

    docs, data = tmp_path_factory.mktemp("acme-docs"), tmp_path_factory.mktemp("acme-data")
    (docs / "acme-q2.csv").write_text(TABLE)
    (docs / "notes.md").write_text(NOTES)
    report = ingest_paths(sorted(docs.iterdir()), Settings.load(data_dir=data), progress=None)
    assert not report.failed
    return data


def answerer(data: Path, base_url: str, **kw):
    from rag.answer import Answerer
    from rag.config import Settings

    return Answerer(Settings.load(data_dir=data, llm_base_url=base_url, answer_cache=False, **kw))


def test_a_row_of_the_asked_metric_and_period_is_answered_without_the_llm(acme, llama):
    a = answerer(acme, llama.base_url).ask(FIGURE)
    assert a.mode == "extractive" and not a.abstained
    assert a.trace["settled"] and a.trace["llm_raw"] is None and a.trace["llm_configured"]
    assert "generate" not in a.trace["timings_ms"]
    assert "$2,540" in a.text and "Three Months Ended June 30 2023" in a.text and "$2,420" not in a.text
    assert any(n.startswith("Answered without the LLM") for n in a.notices)
    assert a.citations and a.citations[0].verified


def test_a_period_the_table_lacks_is_declined_without_the_llm(acme, llama):
    a = answerer(acme, llama.base_url).ask(UNREPORTED)
    assert a.abstained and a.trace["settled"] and a.trace["llm_raw"] is None
    assert "do not report" in a.text and "Six Months Ended June 30 2023" in a.text
    assert "$580" not in a.text  # the 2022 quarter's figure is not passed off as the half year's
    notice = next(n for n in a.notices if n.startswith("Answered without the LLM"))
    assert "other periods" in notice and "quoted as printed" not in notice  # a decline quotes no figure


@pytest.mark.parametrize("question", [PROSE, "Why did Acme's net revenues change in the three months ended June 30, "
                                               "2023?"])
def test_prose_and_why_questions_still_go_to_the_llm(acme, llama, question):
    a = answerer(acme, llama.base_url).ask(question)
    assert a.trace["settled"] is None and a.trace["llm_raw"]
    assert not any(n.startswith("Answered without the LLM") for n in a.notices)


def test_extract_first_off_asks_the_llm_for_figures_too(acme, llama):
    a = answerer(acme, llama.base_url, extract_first=False).ask(FIGURE)
    assert a.trace["settled"] is None and a.trace["llm_raw"] and "generate" in a.trace["timings_ms"]


def test_without_an_llm_nothing_is_said_about_skipping_it(acme):
    from rag.answer import Answerer
    from rag.config import Settings

    a = Answerer(Settings.load(data_dir=acme, answer_cache=False)).ask(FIGURE)
    assert a.mode == "extractive" and "$2,540" in a.text
    assert not any(n.startswith("Answered without the LLM") for n in a.notices)
