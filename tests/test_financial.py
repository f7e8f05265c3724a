"""Real earnings releases (../shared/eval/financial): figures by period, follow-ups and an
unreported quarter, as a person asks them; and the shape of the financial question set."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from ingest.pipeline import ingest_paths
from rag.answer import Answerer
from tests.conftest import ROOT, shared_eval

SET = ROOT / "tests" / "data" / "financial_questions.jsonl"


def test_the_question_set_has_the_promised_mix():
    cases = [json.loads(line) for line in SET.read_text().splitlines() if line.strip()]
    kinds = Counter(c["kind"] for c in cases)
    assert len(cases) >= 80 and len({c["id"] for c in cases}) == len(cases)
    assert kinds["figure"] >= 40 and kinds["followup"] >= 10 and kinds["unreported"] >= 15
    assert all(c.get("history") for c in cases if c["kind"] == "followup")
    assert all(c["unanswerable"] == (c["kind"] == "unreported") for c in cases)
    splits = Counter(c["split"] for c in cases)
    assert set(splits) == {"tune", "test"} and abs(splits["tune"] - splits["test"]) <= 4


def test_the_dev_set_shares_no_figure_or_question_with_test():
    test = [json.loads(line) for line in SET.read_text().splitlines() if line.strip()]
    test = [c for c in test if c["split"] == "test"]
    dev = [json.loads(line) for line in (SET.parent / "financial_dev_questions.jsonl").read_text().splitlines()]
    assert len(dev) >= 40 and {c["split"] for c in dev} == {"dev"}
    assert all(c["unanswerable"] == (c["kind"] == "unreported") for c in dev)
    figures = {(c["source"], c["answer"]) for c in test if not c["unanswerable"]}
    assert not [c["id"] for c in dev if not c["unanswerable"] and (c["source"], c["answer"]) in figures]
    assert not {c["question"].lower() for c in dev} & {c["question"].lower() for c in test}


@pytest.mark.slow
def test_a_real_release_answers_figures_by_period(settings, embedder):
    release = shared_eval("financial", "MCDONALDS_2023Q2_EARNINGS.pdf")
    report = ingest_paths([release], settings, embedder=embedder)
    assert report.files[0].status == "indexed", report.files[0].message
    a = Answerer(settings)
    q2 = a.ask("What were McDonald's total revenues for the second quarter of 2023?")
    lead = " ".join(q2.text.split()[:60])
    assert "6,497.5" in lead and "June 30 2023" in lead and "12,395.3" not in lead, q2.text
    assert q2.citations and q2.citations[0].page in (2, 5)
    ytd = a.ask("And for the first six months?", history=[q2.standalone])
    assert "12,395.3" in " ".join(ytd.text.split()[:60]), (ytd.standalone, ytd.text)
    q3 = a.ask("What were McDonald's total revenues in the third quarter of 2023?")
    assert q3.abstained and "6,497.5" not in q3.text, q3.text
