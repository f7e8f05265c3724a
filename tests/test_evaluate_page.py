"""The Evaluate page starts an answer-evaluation run (AppTest, real index, no LLM)."""
from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, index_plants

CASES = [
    {"id": "plants-1", "question": "How often does the office ficus need watering?", "answer": "every Tuesday",
     "unanswerable": False, "source": "plants.md", "page": 1},
    {"id": "plants-2", "question": "How often is the snake plant in the lobby watered?", "answer": "once a month",
     "unanswerable": False, "source": "plants.md", "page": 1},
    {"id": "plants-3", "question": "What is the population of the capital of Mongolia?", "answer": None,
     "unanswerable": True},
]


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAG_LLM_BASE_URL", "")
    index_plants(tmp_path / "docs", tmp_path / "data")
    reviewed = tmp_path / "data" / "eval" / "reviewed.jsonl"
    reviewed.parent.mkdir(parents=True)
    reviewed.write_text("".join(json.dumps(c) + "\n" for c in CASES))
    return tmp_path / "data"


def page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / "evaluate.py"), default_timeout=180)


def test_a_run_started_on_the_page_is_stored_and_reported(data):
    at = page().run()
    assert not at.exception
    assert any("0 stored run(s)" in i.value for i in at.info)  # no runs yet: the form is still there
    qset = at.selectbox[0]
    assert qset.label == "Question set" and qset.value.startswith("reviewed.jsonl")
    assert at.selectbox[1].label == "Prompt version"
    at.selectbox[1].set_value("answer-v2")
    assert at.radio[0].value == "Extractive (no LLM)"
    at.number_input[0].set_value(2)
    next(b for b in at.button if b.label == "Run").click()
    at.run()
    assert not at.exception and not at.error
    (ok,) = at.success
    stored = sorted((data / "eval_runs").glob("*.json"))
    assert len(stored) == 1 and stored[0].name.endswith("-answer-v2.json")
    assert stored[0].name in ok.value and str(data) not in ok.value
    assert "2 cases" in ok.value and "hit@k" in ok.value
    run = json.loads(stored[0].read_text())
    assert [r["id"] for r in run["records"]] == ["plants-1", "plants-2"]
    assert any("1 stored run(s)" in i.value for i in at.info)  # the comparison below sees it


def test_llm_run_without_an_llm_shows_what_to_do(data):
    at = page().run()
    assert "no LLM configured" in at.radio[0].proto.captions[1]  # the option says why it cannot work
    at.radio[0].set_value("LLM")
    next(b for b in at.button if b.label == "Run").click()
    at.run()
    assert not at.exception
    assert any("RAG_LLM_BASE_URL" in e.value for e in at.error)
    assert not (data / "eval_runs").exists() or not list((data / "eval_runs").glob("*.json"))
