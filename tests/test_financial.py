"""Real earnings releases (../shared/eval/financial): figures by period, follow-ups and an
unreported quarter, as a person asks them; and the shape of the financial question set."""
from __future__ import annotations

import functools
import json
import re
from collections import Counter

import pytest

from ingest.pipeline import ingest_paths
from rag.answer import Answerer
from rag.answer.evaluate import figures as figures_in
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


def figure(case: dict) -> tuple:
    """A case's (source, answer), a figure read as the scorer reads it: "(640)" and "$640" are one."""
    if case["kind"] in {"figure", "followup"}:
        return case["source"], frozenset(figures_in(case["answer"]))
    return case["source"], case["answer"]


DEV_SETS = [("financial_dev_questions.jsonl", "dev"), ("financial_dev2_questions.jsonl", "dev2"),
            ("financial_dev3_questions.jsonl", "dev3")]


def _cases(name: str) -> list[dict]:
    return [json.loads(line) for line in (SET.parent / name).read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("name, split", DEV_SETS)
def test_a_dev_set_shares_no_figure_or_question_with_test(name, split):
    test = [c for c in _cases(SET.name) if c["split"] == "test"]
    dev = _cases(name)
    assert len(dev) >= 40 and {c["split"] for c in dev} == {split} and len({c["id"] for c in dev}) == len(dev)
    assert all(c["unanswerable"] == (c["kind"] == "unreported") for c in dev)
    assert all(c.get("history") for c in dev if c["kind"] == "followup")
    # a failure names the dev cases only, so nothing of test is printed
    test_figures = {figure(c) for c in test if not c["unanswerable"]}
    questions = {c["question"].lower() for c in test}
    same_figure = [c["id"] for c in dev if not c["unanswerable"] and figure(c) in test_figures]
    same_question = [c["id"] for c in dev if c["question"].lower() in questions]
    assert not same_figure, f"{split} cases with a test figure: {same_figure}"
    assert not same_question, f"{split} cases with a test question: {same_question}"


@functools.lru_cache(maxsize=None)
def _reader(name: str):
    from pypdf import PdfReader

    return PdfReader(shared_eval("financial", name))


@functools.lru_cache(maxsize=None)
def _page_text(name: str, page: int) -> str:
    """A PDF page's text with "$ 2.45", "17.3 %" and "(27,620 )" closed up as printed."""
    text = _reader(name).pages[page - 1].extract_text() or ""
    return re.sub(r"\s+(?=[%)])", "", re.sub(r"(?<=[$(])\s+", "", text))


def _printed(figure: str, text: str) -> bool:
    """The figure, whole (not 525 in 1,525 or 5,250), is in the text."""
    return re.search(r"(?<![\d,.])" + re.escape(figure) + r"(?![\d]|[,.]\d)", text) is not None


@pytest.mark.parametrize("name, split", DEV_SETS)
def test_every_dev_figure_is_printed_on_its_page(name, split):
    shared_eval("financial")
    cases = [c for c in _cases(name) if c["kind"] in {"figure", "followup"}]
    assert cases
    missing = [(c["id"], c["answer"], c["source"], c["page"]) for c in cases
               if not _printed(c["answer"], _page_text(c["source"], c["page"]))]
    assert not missing
    assert all({"source": c["source"], "page": c["page"]} in c["sources"] for c in cases)


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


def test_a_sentence_about_the_quarter_is_its_releases_quarter():
    """"... increased 11.7% for the quarter" in a second-quarter release is the second quarter:
    a first-quarter question must not get it (the walk of 2026-11-23 led with it)."""
    from rag.answer.extractive import _report_fit
    from rag.answer.periods import Period, question_period

    q1 = question_period("What was McDonald's global comparable sales growth in the first quarter of 2023?")
    q2 = question_period("What was McDonald's global comparable sales growth in the second quarter of 2023?")
    second = Period(months=3, year=2023, end_month=6)
    sentence = "Global comparable sales increased 11.7% for the quarter, with double-digit growth across each segment"
    assert _report_fit(q1, second, sentence) < 0 < _report_fit(q2, second, sentence)
    # "for the year" in the same release is another length of period; a named one is the sentence's own
    assert _report_fit(q2, second, "Capital expenditures for the year are expected to be $2.2 billion") < 0
    assert _report_fit(q1, second, "Comparable sales increased 12.6% in the first quarter") is None
    assert _report_fit(q1, second, "This Annual Report on Form 10-K is incorporated by reference") is None


@pytest.mark.slow
def test_two_quarters_releases_each_answer_their_own_quarter(settings, embedder):
    releases = [shared_eval("financial", f"MCDONALDS_2023Q{n}_EARNINGS.pdf") for n in (1, 2)]
    report = ingest_paths(releases, settings, embedder=embedder)
    assert [f.status for f in report.files] == ["indexed", "indexed"], [f.message for f in report.files]
    a = Answerer(settings)
    for quarter, right, wrong in (("first", "12.6%", "11.7%"), ("second", "11.7%", "12.6%")):
        ans = a.ask(f"What was McDonald's global comparable sales growth in the {quarter} quarter of 2023?")
        lead = " ".join(ans.text.split()[:30])
        assert right in lead and wrong not in lead, ans.text
        assert ans.citations[0].source.endswith(f"Q{1 if quarter == 'first' else 2}_EARNINGS.pdf"), ans.citations
