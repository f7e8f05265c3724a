"""Figures and periods: a generated earnings-release PDF with a two-period table, indexed with
the real model, asked as a person would (issue 10)."""
from __future__ import annotations

import numpy as np
import pytest

from rag.answer.citations import quote_spans
from rag.answer.extractive import extract, trim_quote
from rag.answer.periods import agreement, header_period, question_period
from rag.answer.rewrite import heuristic_rewrite, subject_of
from rag.answer.support import Sentence
from rag.types import Chunk, Hit


# ---------------------------------------------------------------- periods
@pytest.mark.parametrize("question,months,year,end_month", [
    ("What were eBay's net revenues in the second quarter of 2023?", 3, 2023, 6),
    ("What was McDonald's operating income for the six months ended June 30, 2023?", 6, 2023, 6),
    ("What were Oracle's total revenues in fiscal 2023?", 12, 2023, None),
    ("Q4 2022 revenue?", 3, 2022, 12),
    ("What was the revenue for the nine months ended October 31, 2022?", 9, 2022, 10),
    ("What is the company's mission?", None, None, None),
    # the release's own period names the document; the guidance asked is for another period
    ("What full-year fiscal 2024 EPS guidance did Salesforce give in its Q1 FY24 earnings release?", 12, 2024, None),
    ("In its Q1 2023 earnings release, what EPS range did eBay guide to for Q2 2023?", 3, 2023, 6),
    ("What revenue did eBay report in its Q1 2023 earnings release?", 3, 2023, 3),  # the only period named
    ("What operating margin did McDonald's expect for 2023 in its 2022 annual report?", 12, 2023, None),
])
def test_question_period(question, months, year, end_month):
    p = question_period(question)
    assert (p.months, p.year, p.end_month) == (months, year, end_month)


def test_header_period_and_agreement():
    q2 = question_period("net revenues in the second quarter of 2023")
    assert agreement(q2, header_period("Three Months Ended June 30 2023")) == 1.0
    assert agreement(q2, header_period("Three Months Ended June 30 2022")) < 0       # prior year
    assert agreement(q2, header_period("Six Months Ended June 30 2023")) < 0         # year to date
    assert agreement(q2, header_period("Quarters Ended June 30 Inc/ (Dec)")) < 0     # a change column
    assert agreement(q2, header_period("Three Months Ended June 30, 2023 Compared to Three Months Ended "
                                       "June 30, 2022")) < 0                          # a growth rate
    # ... which answers a question about growth, for the period before "Compared to"
    grew = question_period("How much did revenue in Europe grow in the second quarter of 2023?")
    assert grew.change
    compared = "Three Months Ended June 30, 2023 Compared to Three Months Ended June 30, 2022"
    assert agreement(grew, header_period(compared)) == 1.0
    assert agreement(grew, header_period(compared.replace("2023", "2024").replace("2022", "2023"))) < 0
    assert agreement(q2, header_period("Quarters Ended June 30 2023")) == 1.0
    q3 = question_period("revenues in the third quarter of 2023")
    assert agreement(q3, header_period("Quarters Ended June 30 2023")) < 0           # Q2 is not Q3
    q1 = question_period("Salesforce's revenue guidance for Q1 FY24")
    assert agreement(q1, header_period("Q2 FY24 Guidance")) < 0                      # fiscal quarters differ
    assert agreement(q1, header_period("Q1 FY24 Guidance")) == 1.0
    fiscal = question_period("Salesforce revenue in the third quarter of fiscal 2023")
    assert agreement(fiscal, header_period("Three Months Ended October 31 2022")) > 0  # FY ends in January


# ---------------------------------------------------------------- extractive answers on rows
ROW = ("Net revenues (in millions) | Three Months Ended June 30 2023: $2,540 | Three Months Ended June 30 2022: "
       "$2,422 | Six Months Ended June 30 2023: $5,050 | Six Months Ended June 30 2022: $4,905")
PROSE = "Net revenues grew because of strong demand in collectibles and a favourable currency effect."


def _hits_units(texts):
    text = "\n".join(texts)
    chunk = Chunk("c1", "d1", 0, text, 5, 0, len(text), "STATEMENT OF INCOME")
    units, pos = [], 0
    for t in texts:
        units.append(Sentence(1, t, pos, pos + len(t)))
        pos += len(t) + 1
    return [Hit(chunk, "release.pdf")], units


def _vectors(n):  # equal cosines: the choice is left to terms, labels and periods
    v = np.ones((n, 4), dtype=np.float32) / 2.0
    return v[0], v


def _ranks_above(question: str, better: str, worse: str) -> bool:
    """Whether the vector-free features put one unit above another for the question."""
    from rag.answer.extractive import unit_features

    low, high = unit_features(question, [Sentence(1, worse, 0, 1), Sentence(1, better, 0, 1)])
    return high.score > low.score


@pytest.mark.parametrize("question,figure,period", [
    ("What were net revenues in the second quarter of 2023?", "$2,540", "Three Months Ended June 30 2023"),
    ("What were net revenues for the six months ended June 30, 2022?", "$4,905", "Six Months Ended June 30 2022"),
    ("What were net revenues in Q2 2022?", "$2,422", "Three Months Ended June 30 2022"),
])
def test_a_row_answers_with_the_cell_of_the_asked_period(question, figure, period):
    hits, units = _hits_units([PROSE, ROW])
    qvec, uvecs = _vectors(len(units))
    text, cites, declined = extract(question, qvec, units, uvecs, hits)
    assert declined is None
    first = text.split("[1]")[0]
    assert figure in first and period in first and "(in millions)" in first
    assert len(text.split()) <= 60
    assert cites[0].quote == ROW  # the whole row is the quoted unit: the highlight covers exactly it


@pytest.mark.parametrize("answer,wrong", [
    ("Net revenues were $2,422 million [2].", "Three Months Ended June 30 2022: $2,422"),   # the prior year's
    ("Net revenues were $5,050 million in the quarter [2].", "Six Months Ended June 30 2023: $5,050"),  # year to date
    ("Net revenues were $2,540 million [2].", None),                                         # the asked column
    ("Net revenues were $2,540 million, up from $2,422 million [2].", None),                 # both, the asked one said
    ("Net revenues in Q2 2023 grew strongly [1].", None),                                    # no figure: not judged here
])
def test_a_model_answer_with_another_columns_figure_is_caught(answer, wrong):
    from rag.answer.extractive import other_period_figures

    hits, units = _hits_units([PROSE, ROW])
    found = other_period_figures("What were net revenues in the second quarter of 2023?", answer, units, hits)
    assert found == ([wrong] if wrong else [])


def test_a_figure_stated_in_prose_is_not_called_another_periods():
    from rag.answer.extractive import other_period_figures

    hits, units = _hits_units(["In the second quarter of 2023 net revenues of $2,422 million were restated.", ROW])
    assert other_period_figures("What were net revenues in the second quarter of 2023?",
                                "Net revenues were $2,422 million [1].", units, hits) == []


def test_a_figure_from_a_sentence_about_another_year_is_caught():
    from rag.answer.extractive import other_period_figures

    hits, units = _hits_units(["2023 EPS guidance was reaffirmed in the range of $1.19 to $1.23 per share.", ROW])
    found = other_period_figures("What EPS guidance was given for 2024?",
                                 "EPS guidance for 2024 is $1.19 to $1.23 per share [1].", units, hits)
    assert found and "2023 EPS guidance" in found[0]


def test_an_unreported_period_names_the_periods_covered():
    hits, units = _hits_units([PROSE, ROW])
    qvec, uvecs = _vectors(len(units))
    text, cites, declined = extract("What were net revenues in the third quarter of 2023?", qvec, units, uvecs, hits)
    assert declined and "do not report" in text
    assert "Three Months Ended June 30 2023" in text and "Six Months Ended June 30 2022" in text
    assert "$2,540" not in text and cites and cites[0].n == 1


def test_long_sentences_are_cut_around_the_matched_terms():
    words = [f"w{i}" for i in range(150)]
    words[100:103] = ["comparable", "sales", "grew"]
    shown, verbatim = trim_quote(" ".join(words), "How did comparable sales change?")
    assert len(verbatim.split()) == 60 and "comparable sales grew" in verbatim
    assert shown.startswith("… ") and shown.endswith(" …")


def test_quote_spans_cover_exactly_the_quoted_unit():
    text = f"Intro sentence here.\n{ROW}\n{PROSE}"
    (a, b), = quote_spans(text, [ROW])
    assert text[a:b] == ROW
    wrapped = "Net revenues grew because\nof strong   demand."
    (a, b), = quote_spans(wrapped, ["Net revenues grew because of strong demand."])
    assert (a, b) == (0, len(wrapped))


# ---------------------------------------------------------------- follow-ups without an LLM
@pytest.mark.parametrize("previous,follow_up,expected", [
    ("What was Ulta Beauty's net sales in fiscal 2023?", "And how did comparable sales change?",
     "How did Ulta Beauty's comparable sales change?"),
    ("What were eBay's net revenues in the second quarter of 2023?", "And for the first six months?",
     "What were eBay's net revenues for the first six months of 2023?"),
    ("What was Oracle's operating income in fiscal 2023?", "And in fiscal 2022?",
     "What was Oracle's operating income in fiscal 2022?"),
    ("What was McDonald's operating income for 2022?", "And what was the operating margin?",
     "What was McDonald's operating margin?"),
    ("What were McDonald's total revenues in the first quarter of 2023?",
     "What was operating income in the same quarter a year earlier?",
     "What was McDonald's operating income in the first quarter of 2022?"),
    ("What was eBay's U.S. gross merchandise volume in the first quarter of 2023?", "And international?",
     "What was eBay's international gross merchandise volume in the first quarter of 2023?"),
    ("What was McDonald's GAAP diluted EPS in the second quarter of 2023?", "And on a non-GAAP basis?",
     "What was McDonald's non-GAAP diluted EPS in the second quarter of 2023?"),
    # a fragment that names only a period, once "the same quarter a year earlier" is read
    ("What was Acme's operating income in the second quarter of 2023?", "And in the same quarter a year earlier?",
     "What was Acme's operating income in the second quarter of 2022?"),
    # another line item: the question about it, with the subject and the period kept
    ("What did eBay spend on product development in the second quarter of 2023?",
     "How about general and administrative?",
     "What was eBay's general and administrative in the second quarter of 2023?"),
    # another "in ..." qualifier takes the place of the previous one, not beside it
    ("How much stock-based compensation did Acme record in research and development for the nine months "
     "ended October 31, 2022?", "And in marketing and sales?",
     "How much stock-based compensation did Acme record in marketing and sales for the nine months "
     "ended October 31, 2022?"),
    # a fiscal year stays fiscal when only the quarter changes
    ("What were Salesforce's subscription and support revenues in the third quarter of fiscal 2023?",
     "And in the fourth quarter?",
     "What were Salesforce's subscription and support revenues in the fourth quarter of fiscal 2023?"),
    # "of that" is the previous figure: its question, for the part asked
    ("What were McDonald's total assets at the end of 2022?", "How much of that was in the U.S. segment?",
     "What were McDonald's assets at the end of 2022 in the U.S. segment?"),
])
def test_follow_ups_keep_the_subject_and_drop_the_old_predicate(previous, follow_up, expected):
    assert heuristic_rewrite(follow_up, [previous]) == expected


def test_a_why_question_with_its_own_subject_is_not_a_follow_up():
    from rag.answer.rewrite import looks_like_follow_up

    previous = ["What was McDonald's revenue in the first quarter of 2025?"]
    new = "Why did eBay's net revenues change in the second quarter of 2023?"
    assert not looks_like_follow_up(new) and heuristic_rewrite(new, previous) == new
    assert looks_like_follow_up("Why did revenue fall?") and looks_like_follow_up("Why did it fall?")


@pytest.mark.parametrize("follow_up,model_rewrite,kept", [
    # Qwen 1.5B's rewrite lost "fiscal 2023": a calendar quarter of no year
    ("How much of that was Marketing and Commerce?",
     "What was the portion of Salesforce's subscription and support revenues in the third quarter that came "
     "from Marketing and Commerce?", False),
    ("How much of that was Marketing and Commerce?",
     "How much of subscription and support revenues in the third quarter of fiscal 2023 was Marketing and "
     "Commerce?", False),  # the company is gone
    ("How much of that was Marketing and Commerce?",
     "How much of Salesforce's subscription and support revenues in the third quarter of fiscal 2023 was "
     "Marketing and Commerce?", True),
    ("And in the fourth quarter?", "What were Salesforce's revenues in the fourth quarter of fiscal 2023?", True),
    ("And excluding the restructuring charges, on a non-GAAP basis?",  # "non-GAAP" is gone
     "What were Salesforce's subscription and support revenues in the third quarter of fiscal 2023, excluding "
     "restructuring charges?", False),
])
def test_a_models_rewrite_must_keep_the_period_and_the_subject(follow_up, model_rewrite, kept):
    from rag.answer.rewrite import check_rewrite

    history = ["What were Salesforce's subscription and support revenues in the third quarter of fiscal 2023?"]
    assert (check_rewrite(model_rewrite, follow_up, history) == model_rewrite) is kept


def test_what_about_a_region_narrows_the_previous_question_instead_of_replacing_its_line():
    rewritten = heuristic_rewrite("What about the Americas?", ["What were Oracle's total revenues in fiscal 2023?"])
    assert "Americas" in rewritten and "total revenues" in rewritten


def test_the_asked_period_is_searched_for_as_column_headers_name_it():
    from rag.answer.extractive import period_terms
    from rag.answer.periods import header_words
    from rag.store.sparse import analyse

    assert header_words(question_period("eBay's net revenues in the second quarter of 2023")) == \
        "Three Months Ended June 30 2023"
    assert header_words(question_period("net income for the first half of 2024")) == "Six Months Ended June 30 2024"
    assert header_words(question_period("revenues in fiscal 2023")) == "Year Ended 2023"
    assert header_words(question_period("What is the revenue?")) == ""
    calendars = {"/docs/SALESFORCE_2023Q3_10Q.pdf": {"end_month": 1, "lag": 0},
                 "/docs/RETAILER_10K.pdf": {"end_month": 1, "lag": 1}}
    terms = period_terms("What were Salesforce's subscription revenues in the third quarter of fiscal 2023?",
                         lambda: calendars)
    # the fiscal quarter on Salesforce's own calendar (not the retailer's), and no question words
    assert terms == analyse("Salesforce's subscription revenues") + analyse("Three Months Ended October 31 2022")
    asked = []
    # a calendar period needs no fiscal calendar, so the library is not asked for one
    assert period_terms("What was Acme's net income in the first quarter of 2022?",
                        lambda: asked.append(1) or {}) and not asked
    assert period_terms("Who was Oracle's CEO in fiscal 2023?", lambda: calendars) == []
    assert period_terms("What are Oracle's main risks?", lambda: calendars) == []


def test_the_owner_of_a_subject_is_the_company_whose_filings_answer():
    from rag.answer.rewrite import owner_of
    q = "What were revenues of McDonald's International Operated Markets segment in the second quarter of 2023?"
    assert subject_of(q) == "McDonald's International Operated Markets" and owner_of(q) == "McDonald's"
    assert owner_of("What diluted non-GAAP EPS range did eBay guide to for Q2 2023?") == "eBay"
    assert owner_of("Who was the EPA's first Administrator?") == "EPA's"
    assert owner_of("What damage did the Beech A23 suffer?") == "Beech A23"


def test_another_companys_row_does_not_answer_for_the_owner_of_a_segment():
    """eBay's "International - net revenues" row names the asked quarter; McDonald's segment row
    only other years. Before: the subject was the whole run, which no document name holds."""
    from rag.answer.extractive import unit_features
    ebay = "International - net revenues | Three Months Ended June 30 2023: 1,275 | Three Months Ended June 30 2022: 1,223"
    mcd = "International Operated Markets - revenues (in millions) | 2022: 11,297.0 | 2021: 12,219.8"
    hits = [Hit(Chunk("c1", "d1", 0, ebay, 48, 0, len(ebay), "EBAY 2023Q2 10Q > RESULTS OF OPERATIONS"), "ebay.pdf"),
            Hit(Chunk("c2", "d2", 0, mcd, 30, 0, len(mcd), "MCDONALDS 2022 10K > SEGMENTS"), "mcd.pdf")]
    units = [Sentence(1, ebay, 0, len(ebay)), Sentence(2, mcd, 0, len(mcd))]
    q = "What were revenues of McDonald's International Operated Markets segment in the second quarter of 2023?"
    f = unit_features(q, units, {1: hits[0].chunk.heading, 2: hits[1].chunk.heading})
    assert f[0].score < 0 < f[1].score


def test_subject_of_skips_sentence_capitals_and_periods():
    assert subject_of("Tell me about the snake plant") is None
    assert subject_of("What was PG&E's core EPS in Q2 2023?") == "PG&E's"
    assert subject_of("What were eBay's net revenues in June?") == "eBay's"


# ---------------------------------------------------------------- end to end on a generated PDF
@pytest.mark.slow
def test_a_generated_release_answers_figures_by_period(tmp_path):
    from fpdf import FPDF

    from ingest.pipeline import ingest_paths
    from rag.answer import Answerer
    from rag.config import Settings

    pdf = FPDF()
    pdf.set_font("Helvetica", size=9)
    for page in range(1, 4):
        pdf.add_page()
        pdf.cell(0, 6, "Acme Corp - Second Quarter 2023 Results", new_x="LMARGIN", new_y="NEXT")
        if page == 1:
            pdf.cell(0, 6, "Acme Corp today reported results for its second quarter ended June 30, 2023.",
                     new_x="LMARGIN", new_y="NEXT")
        if page == 2:
            pdf.cell(0, 6, "CONDENSED CONSOLIDATED STATEMENT OF INCOME", new_x="LMARGIN", new_y="NEXT")
            pdf.cell(80, 6, "")
            pdf.cell(50, 6, "Three Months Ended June 30,", align="C")
            pdf.cell(50, 6, "Six Months Ended June 30,", align="C", new_x="LMARGIN", new_y="NEXT")
            pdf.cell(80, 6, "(In millions)")
            for y in ["2023", "2022", "2023", "2022"]:
                pdf.cell(25, 6, y, align="R")
            pdf.ln()
            for label, vals in [("Net revenues", ["$ 2,540", "$ 2,422", "$ 5,050", "$ 4,905"]),
                                ("Operating income", ["518", "525", "1,076", "1,217"]),
                                ("Net income", ["$ 171", "$ (531)", "$ 738", "$ (1,872)"])]:
                pdf.cell(80, 6, label)
                for v in vals:
                    pdf.cell(25, 6, v, align="R")
                pdf.ln()
            pdf.ln()
        pdf.multi_cell(0, 5, "Acme's marketplace grew in every region. The company thanks its customers "
                             "and employees for a strong quarter. " * 3)
        pdf.cell(0, 6, f"Page {page}", align="C")
    path = tmp_path / "acme-q2.pdf"
    pdf.output(str(path))
    settings = Settings.load(data_dir=tmp_path / "data", answer_cache=False)
    report = ingest_paths([path], settings)
    assert report.files[0].status == "indexed", report.files[0].message
    a = Answerer(settings)
    q2 = a.ask("What was Acme's operating income in the second quarter of 2023?")
    assert "518" in " ".join(q2.text.split()[:60]) and not q2.abstained, q2.text
    assert q2.citations[0].page == 2 and "Three Months Ended June 30" in q2.text
    ytd = a.ask("And for the first six months?", history=[q2.standalone])
    assert ytd.standalone == "What was Acme's operating income for the first six months of 2023?"
    assert "1,076" in ytd.text and "518" not in ytd.text, ytd.text
    q3 = a.ask("What was Acme's operating income in the third quarter of 2023?")
    assert q3.abstained and "1,076" not in q3.text and "518" not in q3.text.split("They report")[0], q3.text
    hits = a.retriever.search("Acme operating income").hits  # the release's period is kept with its passages
    assert hits and all(h.period == "Three Months Ended June 2023" for h in hits)


def test_reflow_joins_prose_lines_and_keeps_rows():
    from rag.answer.citations import reflow

    text = f"Revenue grew in\nevery region.\n\nNext paragraph.\n{ROW}\nAfter the table\ncomes prose."
    out = reflow(text)
    assert len(out) == len(text)
    assert "grew in every region." in out and "\n\nNext paragraph.\n" + ROW + "\nAfter the table comes" in out


def test_non_gaap_guidance_and_other_lengths_of_period_are_not_the_answer():
    from rag.answer.extractive import forecast_clash, prose_disagrees, qualifier_clash

    q = "What was eBay's non-GAAP earnings per diluted share for the second quarter of 2023?"
    assert qualifier_clash(q, "Income (loss) per share - diluted | Three Months Ended June 30 2023: $0.32")
    assert not qualifier_clash(q, "Non-GAAP net income per diluted share | First Quarter 2023: $1.11")
    gaap = "What were PG&E's GAAP earnings per diluted share for the second quarter of 2023?"
    assert qualifier_clash(gaap, "PG&E Corporation's Non-GAAP Core Earnings/EPS | Three Months Ended June 30 2023: $0.23")
    assert not qualifier_clash(gaap, "PG&E Corporation's Earnings/EPS on a GAAP basis | Three Months Ended June 30: $0.19")
    # a reconciliation table's heading names both: the row's own label decides
    margin = "What was eBay's GAAP operating margin in the first quarter of 2023?"
    heading = "EBAY 2023Q1 EARNINGS > Reconciliation of GAAP Operating Margin to Non-GAAP Operating Margin"
    assert qualifier_clash(margin, "Non-GAAP operating margin | Three Months Ended March 31 2023: 29.6%", heading)
    assert not qualifier_clash("What was the non-GAAP operating income?", "Operating income | 2023: 744",
                               "Non-GAAP results")
    # ... and a row that says "GAAP" itself is the GAAP figure, under a non-GAAP heading too
    assert qualifier_clash("What was Salesforce's non-GAAP diluted EPS?",
                           "GAAP diluted net income per share | Three Months Ended April 30 2023: $0.20",
                           "SALESFORCE 2024Q1 EARNINGS > Non-GAAP diluted net income per share")
    # a forecast is no answer to what was reported, but a rating "with a stable outlook" is a fact
    assert forecast_clash(q, "2023 EPS guidance updated for GAAP earnings to $1.04 to $1.13 per share.")
    assert not forecast_clash("What EPS guidance did PG&E give for 2023?", "2023 EPS guidance updated to $1.04")
    assert not forecast_clash("What credit ratings did eBay have?", "rated BBB+ with a stable outlook")
    # "expects ... to be" is a forecast; "better than expected" is a reported result
    q2 = "How much did McDonald's spend on capital expenditures in the first half of 2023?"
    assert forecast_clash(q2, "The Company expects 2023 capital expenditures to be between $2.2 and $2.4 billion")
    assert not forecast_clash(q2, "eBay Reports Better Than Expected First Quarter 2023 Results")
    # a question that asks what a company "guided to" asks for its guidance
    assert not forecast_clash("What revenue range did eBay guide to for Q2 2023?",
                              "Revenue (in billions) | Q2 2023 Guidance: $2.47 - $2.54")
    q4 = "What were PG&E's GAAP earnings per diluted share for the fourth quarter of 2023?"
    assert prose_disagrees(question_period(q4), q4, "Recorded GAAP earnings were $0.46 per diluted share for the "
                                                    "first half of 2023.")
    assert not prose_disagrees(question_period(q4), q4, "Fourth-quarter and full-year 2023 earnings were $0.30.")
    assert header_period("Year Ended May 31 Constant").change  # a constant-currency growth rate, not a period


def test_a_year_named_nowhere_in_the_passages_is_declined():
    from rag.answer.extractive import _year_missing

    def hit(heading: str) -> Hit:
        return Hit(Chunk("c1", "d1", 0, "text", 3, 0, 4, heading), "ORACLE_2023_10K.pdf")

    units = [Sentence(1, "Cloud services revenues | Year Ended May 31 2023: 18,656 | 2022: 17,562", 0, 10)]
    asked = question_period("What were Oracle's cloud services revenues in fiscal 2020?")
    text, cites, why = _year_missing(asked, units, [0], [hit("ORACLE 2023 10K > Revenues")])
    assert "do not mention" in text and "2022, 2023" in text and cites[0].page == 3 and "2020" in why
    # fiscal 2024 may end in calendar 2023; a year glued to letters in a document's name counts
    assert _year_missing(question_period("Revenues in fiscal 2024?"), units, [0], [hit("X")]) is None
    assert _year_missing(question_period("Revenues in 2021?"), units, [0], [hit("ORACLE 2021Q2 EARNINGS")]) is None


def test_quarters_not_filled_yet_are_not_figures_but_a_dash_before_a_figure_is_a_zero():
    from rag.answer.extractive import choose_cell, covered_periods
    from ingest.pdf_layout import parse_row

    row = parse_row("Net revenues | Quarter Ended March 31 2023: $2,510 | Quarter Ended June 30 2023: $2,540 | "
                    "Quarter Ended September 30 2023: $— | Quarter Ended December 31 2023: $—")
    asked = question_period("What were eBay's net revenues for the third quarter of 2023?")
    assert choose_cell(row, asked, 2023)[1] == -1  # no column answers: the period is not reported
    assert covered_periods(row) == ["Quarter Ended March 31 2023", "Quarter Ended June 30 2023"]
    zero = parse_row("Impairment charges | Year Ended 2023: $— | Year Ended 2022: $45")
    cell, fit = choose_cell(zero, question_period("What were impairment charges in 2023?"), 2023)
    assert zero.cells[cell] == ("Year Ended 2023", "$—") and fit > 0


def test_a_transposed_table_is_dated_by_its_row_label():
    """Salesforce's 10-Q: periods down the side, parts of the metric across the top."""
    from rag.answer.extractive import choose_cell
    from ingest.pdf_layout import parse_row

    asked = question_period("What was the current remaining performance obligation as of October 31, 2022?")
    terms = {"current", "remain", "perform", "oblig"}
    row = parse_row("As of October 31, 2022 (in billions) | Current: $20.9 | Noncurrent: $19.1 | Total: $40.0")
    cell, fit = choose_cell(row, asked, 2022, terms)
    assert row.cells[cell] == ("Current", "$20.9") and fit == 1.0
    earlier = parse_row("As of January 31, 2022 (in billions) | Current: $22.0 | Noncurrent: $21.7 | Total: $43.7")
    assert choose_cell(earlier, asked, 2022, terms)[1] < 0  # another date


def test_a_row_with_the_figure_outranks_a_row_with_a_dash():
    assert _ranks_above("What were the International Operated Markets franchised revenues in 2022?",
                        "International Operated Markets franchised revenues | 2022: 5,985 | 2021: 5,466",
                        "International Operated Markets franchised revenues | 2022: — | 2021: 12")


def test_the_row_named_by_the_rare_words_of_the_question_outranks_its_total():
    from rag.answer.extractive import unit_features

    q = "What were Salesforce's Platform and Other subscription and support revenues in the third quarter of fiscal 2023?"
    head = "Subscription and support - revenues | Three Months Ended October 31 2022: $7,196"
    rows = [f"{name} (in millions) | Three Months Ended October 31 2022: {v}" for name, v in
            [("Sales", "$1,717"), ("Service", "1,856"), ("Platform and Other", "1,513"), ("Marketing and Commerce", "1,129"),
             ("Integration and Analytics", "981")]]
    prose = ["Subscription and support revenues grew 12% in the quarter.",
             "Subscription and support revenues are recognized ratably over the contract term.",
             "Professional services and other revenues | Three Months Ended October 31 2022: $641",
             "Subscription and support revenues by service offering were as follows."]
    units = [Sentence(1, t, 0, 1) for t in [head, *rows, *prose]]
    scores = [sc.score for sc in unit_features(q, units)]
    assert max(range(len(units)), key=scores.__getitem__) == 3  # "Platform and Other", not the total


# ---------------------------------------------------------------- fiscal calendars
@pytest.mark.parametrize("text,calendar", [
    ("Salesforce announced results for its first quarter fiscal 2024 ended April 30, 2023.", {"end_month": 1, "lag": 0}),
    ("References to fiscal 2023, for example, refer to the fiscal year ending January 31,\n2023.",
     {"end_month": 1, "lag": 0}),
    ('Form 10-K for the fiscal year ended May 31, 2023 ("fiscal 2023").', {"end_month": 5, "lag": 0}),
    ("Net sales for the fourth quarter of fiscal 2022 ended January 28, 2023 rose 18%.", {"end_month": 1, "lag": 1}),
    ("Net revenues in the second quarter of 2023 were $2.5 billion.", None),  # a calendar-year filer
])
def test_a_documents_fiscal_calendar_is_read_from_its_own_sentences(text, calendar):
    from rag.answer.periods import fiscal_calendar

    assert fiscal_calendar(text) == calendar


def test_a_fiscal_quarter_is_answered_from_its_dated_column_and_another_one_is_not():
    from rag.answer.periods import on_calendar

    salesforce = {"end_month": 1, "lag": 0}
    q = "What were Salesforce's total revenues for the second quarter of fiscal 2024?"
    dated = on_calendar(question_period(q), q, salesforce)
    assert (dated.months, dated.year, dated.end_month) == (3, 2023, 7)
    row = ("Total revenues (in millions) | Three Months Ended April 30 2023: 8,247 | "
           "Three Months Ended April 30 2022: 7,411")
    hits, units = _hits_units([row])
    qvec, uvecs = _vectors(len(units))
    without = extract(q, qvec, units, uvecs, hits)  # no calendar known: April 2023 may be fiscal 2024's Q2
    assert without[2] is None and "8,247" in without[0]
    hits = [Hit(hits[0].chunk, hits[0].source, calendar=salesforce)]
    text, cites, declined = extract(q, qvec, units, uvecs, hits)
    assert declined and "do not report" in text and "second quarter of fiscal 2024 (three months ended July 2023)" in text
    assert "Three Months Ended April 30 2023" in text  # the period it does report, cited
    q1 = "What were Salesforce's total revenues for the first quarter of fiscal 2024?"
    text, _, declined = extract(q1, qvec, units, uvecs, hits)
    assert declined is None and "8,247" in text.split("[1]")[0]


def test_it_support_is_a_department_not_a_pronoun_and_dec_is_december():
    from rag.answer.rewrite import looks_like_follow_up

    assert not looks_like_follow_up("How many people worked in IT support in December 2025?")
    assert looks_like_follow_up("How much did it grow?") and looks_like_follow_up("It grew by how much?")
    asked = question_period("How many people worked in IT support in December 2025?")
    assert agreement(asked, header_period("Headcount Dec 2025")) == 1.0
    assert agreement(asked, header_period("Headcount Jan 2025")) < 0


def test_a_row_named_only_by_its_table_title_answers_the_metric_in_the_title():
    """Salesforce: "Service" under "Subscription and Support Revenue by the Company's service
    offerings" is the service subscription revenue; "Service" under another title is not."""
    from rag.answer.support import passage_sentences

    q = "What were Salesforce's Service subscription and support revenues in the first quarter of fiscal 2024?"
    titled = ("Subscription and Support Revenue by the Company's service offerings\n"
              "Sales (in millions) | Three Months Ended April 30 2023: $1,846\n"
              "Service (in millions) | Three Months Ended April 30 2023: 1,964\n")
    other = "Professional Services Revenue by offering\nService (in millions) | Three Months Ended April 30 2023: 412\n"
    hits = [Hit(Chunk(f"c{i}", "d1", i, text, 10, 0, len(text), "SALESFORCE 2024Q1 EARNINGS"), "crm.pdf")
            for i, text in enumerate([other, titled])]
    units = passage_sentences(hits)
    service = [u for u in units if u.text.startswith("Service")][-1]
    assert service.caption.startswith("Subscription and Support Revenue")
    qvec, uvecs = _vectors(len(units))
    text, _cites, declined = extract(q, qvec, units, uvecs, hits)
    assert declined is None and text.startswith("Service, Three Months Ended April 30 2023: 1,964")


@pytest.mark.parametrize("text,period", [
    ("FORM 10-Q (Mark One) QUARTERLY REPORT ... For the quarterly period ended June 30, 2023 OR", "Ended June 2023"),
    ("ANNUAL REPORT PURSUANT TO SECTION 13 For the ﬁscal year ended May 31, 2023 OR", "Year Ended May 2023"),
    ("eBay Inc. today reported financial results for its first quarter ended March 31, 2023.",
     "Three Months Ended March 2023"),
    ("Salesforce announced results for its first quarter fiscal 2024 ended April 30, 2023.",
     "Three Months Ended April 2023"),
    ("PG&E Corporation Reports Second-Quarter Results ... recorded second quarter 2023 income available",
     "Three Months Ended June 2023"),
    ("Our fiscal year ends in January. Revenue for the second quarter of 2023 grew.", None),  # which quarter?
    ("The office ficus needs watering every Tuesday.", None),
])
def test_the_period_a_filing_reports_is_read_from_its_start(text, period):
    from rag.answer.periods import report_period

    assert report_period(text) == period


def test_a_sentence_naming_no_period_speaks_of_its_reports_period():
    """eBay's first-quarter release: "Non-GAAP net income ... was $600 million, or $1.11 per
    diluted share" names no period; asked about the second quarter, it is not the answer."""
    text = "Non-GAAP net income from continuing operations was $600 million, or $1.11 per diluted share."
    chunk = Chunk("c1", "d1", 0, text, 2, 0, len(text), "EBAY 2023Q1 EARNINGS")
    units = [Sentence(1, text, 0, len(text))]
    qvec, uvecs = _vectors(1)
    q2 = "What was eBay's non-GAAP earnings per diluted share for the second quarter of 2023?"
    q1 = "What was eBay's non-GAAP earnings per diluted share for the first quarter of 2023?"
    dated = [Hit(chunk, "ebay.pdf", period="Three Months Ended March 2023")]
    answer, _c, declined = extract(q2, qvec, units, uvecs, dated)
    assert declined is not None and "$1.11" not in answer.split("[1]")[0].split('"')[0]
    answer, _c, declined = extract(q1, qvec, units, uvecs, dated)
    assert declined is None and "$1.11" in answer
    answer, _c, declined = extract(q2, qvec, units, uvecs, [Hit(chunk, "ebay.pdf")])  # period unknown: as before
    assert declined is None and "$1.11" in answer


def test_a_row_of_shares_does_not_answer_an_amount():
    from rag.answer.extractive import unit_features

    share = Sentence(1, "% of Total Revenues (in millions) | Year Ended May 31 2023: 3% | Year Ended May 31 2022: 3%", 0, 1)
    amount = Sentence(1, "Total revenues - revenues by geography (in millions) | Year Ended May 31 2023: $49,954", 0, 1)
    pct, total = unit_features("What were Oracle's total revenues for fiscal 2023?", [share, amount])
    assert total.score > pct.score
    pct, total = unit_features("What percent of total revenues came from services in fiscal 2023?", [share, amount])
    assert pct.label_fit > 0  # asked for a share, the share row may answer


def test_eps_picks_the_earnings_per_share_column_of_a_row_that_has_both():
    from rag.answer.extractive import unit_features

    row = Sentence(1, "Non-GAAP Core Earnings/EPS | Six Months Ended June 30 Earnings 2023: $1,109 | "
                      "Six Months Ended June 30 Earnings per Common Share 2023: $0.52", 0, 1)
    [sc] = unit_features("What was PG&E's non-GAAP core EPS for the first half of 2023?", [row])
    assert sc.row.cells[sc.cell][1] == "$0.52"


def test_a_per_share_column_is_not_in_millions():
    from rag.answer.extractive import row_statement
    from ingest.pdf_layout import parse_row

    row = parse_row("Bankruptcy and legal costs (in millions) | Six Months Ended June 30 Earnings 2022: 186 | "
                    "Six Months Ended June 30 Earnings per Common Share 2022: 0.09")
    assert row_statement(row, 0).endswith("186 (in millions)")
    assert row_statement(row, 1).endswith("Share 2022: 0.09")
    per_share_row = parse_row("Net Income Per Common Share, Diluted (in millions) | "
                              "Three Months Ended June 30 2023: $0.19")
    assert row_statement(per_share_row, 0).endswith("June 30 2023: $0.19")


def test_a_table_title_may_take_two_lines_and_prose_is_no_title():
    from rag.answer.support import table_caption
    text = ("Comparable sales rose in every segment.\nCOMPARABLE SALES\nIncrease/(Decrease)\n"
            "U.S. | Quarters Ended June 30 2023: 10.3%\nTotal | Quarters Ended June 30 2023: 11.7%\n")
    assert table_caption(text, text.index("Total")) == "COMPARABLE SALES Increase/(Decrease)"
    prose = ("The table below shows how our revenues from each of the segments we report grew over the "
             "last two fiscal years.\nU.S. | 2023: 10.3%\n")
    assert table_caption(prose, prose.index("U.S.")) == ""


def test_a_row_the_chunk_overlap_repeats_keeps_its_tables_title_and_effects_do_not_answer():
    """McDonald's 10-K: the share-based compensation table's "Earnings per common share-diluted"
    row ($0.16, the effect on EPS) is repeated at the top of the next chunk, where only the
    heading ("DEBT OBLIGATIONS") is over it. It kept answering "diluted EPS for 2021"."""
    from rag.answer.extractive import effect_clash, extract
    from rag.answer.support import passage_sentences
    effect = "Earnings per common share-diluted | 2022: $0.20 | 2021: $0.16 | 2020: $0.10"
    first = ("Share-based compensation expense and the effect on diluted earnings per common share were as "
             f"follows:\nShare-based compensation expense (in millions) | 2022: $166.7 | 2021: $139.2\n{effect}")
    second = f"{effect}\n\nAs of December 31, 2022, there was $161.1 million of unrecognized cost."
    eps = "Earnings per common share–diluted | Years ended December 31, 2022: $8.33 | 2021: $10.04 | 2020: $6.31"
    hits = [Hit(Chunk(f"c{i}", "d1", i, t, 56, 0, len(t), f"MCDONALDS 2022 10K > {h}"), "mcd.pdf")
            for i, (t, h) in enumerate([(second, "DEBT OBLIGATIONS"), (eps, "Net income"), (first, "DEBT OBLIGATIONS")])]
    units = passage_sentences(hits)
    assert [u.caption for u in units if u.text == effect] == [
        "Share-based compensation expense and the effect on diluted earnings per common share were as follows:"] * 2
    qvec, uvecs = _vectors(len(units))
    text, _, _ = extract("What were McDonald's diluted earnings per share for full-year 2021?", qvec, units, uvecs, hits)
    assert "$10.04" in text and "$0.16" not in text
    caption = units[0].caption
    assert not effect_clash("What was the effect of share-based compensation on McDonald's diluted EPS?", caption)
    assert effect_clash("What was McDonald's diluted EPS?", caption)


def test_a_runner_up_row_with_the_same_figure_is_not_added():
    from rag.answer.extractive import extract
    texts = ["Earnings per common share–diluted | Years ended December 31, 2022: $8.33 | 2021: $10.04",
             "GAAP earnings per share-diluted | 2022: $8.33 | Amount 2021: $10.04"]
    hits, units = _hits_units(texts)
    uvecs = np.eye(2, 4, dtype=np.float32)  # equally close to the question, not near-duplicates
    qvec = uvecs.sum(axis=0) / np.sqrt(2)
    text, cites, _ = extract("What were McDonald's diluted earnings per share for 2021?", qvec, units, uvecs, hits)
    assert text.count("$10.04") == 1 and len(cites) == 1


def test_a_runner_up_that_would_have_to_be_cut_is_not_added():
    """PG&E's guidance table read as one run of words ("2023 EPS Guidance Low High Estimated EPS
    on a GAAP basis ~ $ 1.04 ~ $ 1.13 ...") is no clear second fact beside the guidance sentence."""
    from rag.answer.extractive import MAX_QUOTE_WORDS, extract
    blob = ("PG&E Corporation's 2023 non-GAAP EPS guidance Low High " +  # within the runner-up margin
            " ".join(f"item{i} ~ $ 0.{i:02d}" for i in range(MAX_QUOTE_WORDS)))
    texts = ["2023 EPS guidance reaffirmed for non-GAAP core earnings in the range of $1.19 to $1.23 per share.", blob]
    hits, units = _hits_units(texts)
    uvecs = np.eye(2, 4, dtype=np.float32)
    qvec = uvecs.sum(axis=0) / np.sqrt(2)
    question = "What 2023 non-GAAP core EPS guidance range did PG&E give?"
    text, cites, _ = extract(question, qvec, units, uvecs, hits)
    assert "$1.19 to $1.23" in text and "item1" not in text and len(cites) == 1


def test_a_question_for_a_part_is_not_answered_by_the_whole():
    from rag.answer.extractive import part_missing
    q = "What was Salesforce's current remaining performance obligation as of October 31, 2022?"
    assert part_missing(q, "Remaining performance obligation (in billions) As of October 31, 2022")
    assert not part_missing(q, "As of October 31, 2022 (in billions) Current")  # the "Current" column
    assert not part_missing("What were revenues in the current quarter?", "Total revenues")
    total = "Remaining performance obligation (in billions) | As of October 31, 2022: 40.0 | As of January 31, 2022: 43.7"
    part = "As of October 31, 2022 (in billions) | Current: 20.9 | Noncurrent: 19.1 | Total: 40.0"
    assert _ranks_above(q, part, total)


def test_a_tables_title_counts_as_the_words_of_its_rows_and_a_repeated_row_once():
    """Salesforce's "Platform and Other" row under "Subscription and Support Revenue by ...
    Service Offerings", twice (two overlapping passages): the words of the title are not rare
    words that only the total's label ("Subscription and support") has."""
    from rag.answer.extractive import unit_features
    q = "What were Salesforce's Platform and Other subscription and support revenues in the third quarter of 2023?"
    total = "Revenues: Subscription and support (in millions) | Three Months Ended October 31 2023: $7,233"
    part = "Platform and Other (in millions) | Three Months Ended October 31 2023: 1,513"
    nine = "Platform and Other | Nine Months Ended October 31 2023: 4,410"
    title = "Subscription and Support Revenue by the Company's Service Offerings"
    units = [Sentence(1, total, 0, 1)] + [Sentence(2, t, 0, 1, caption=title) for t in (part, nine, nine)]
    scores = [f.score for f in unit_features(q, units)]
    assert scores[1] > scores[0]


def test_a_change_column_answers_a_question_about_a_change_only():
    growth = question_period("What was McDonald's U.S. comparable sales increase in the second quarter of 2023?")
    amount = question_period("What were McDonald's U.S. revenues in the second quarter of 2023?")
    column = header_period("Increase/(Decrease) Quarters Ended June 30 2023")
    assert agreement(growth, column) == 1.0 and agreement(amount, column) < 0


def _row_fit(question, row, report):
    from rag.answer.extractive import unit_features
    hits, units = _hits_units([row])
    return unit_features(question, units, calendars={1: None}, reports={1: report})[0]


def test_a_bare_year_column_is_a_whole_year_in_an_annual_report_and_a_calendar_year_without_fiscal_calendar():
    row = "International Operated Markets | 2022: 13.3 | 2021: 21.6"
    quarter = "What was International Operated Markets comparable sales in the first quarter of 2022?"
    assert _row_fit(quarter, row, "Year Ended December 2022").period_fit < 0   # 10-K: 2022 is the year
    assert _row_fit(quarter, row, None).period_fit > 0                         # unknown filing: maybe
    fiscal = "What were eBay's net revenues for fiscal 2024?"
    revenues = "Total net revenues (in millions) | 2023: $2,510 | 2022: $2,422"
    assert _row_fit(fiscal, revenues, "Three Months Ended March 2023").period_fit < 0  # calendar quarters
    assert _row_fit(fiscal, revenues, "Year Ended May 2023").period_fit > 0            # may end in 2023


def test_us_is_a_term_so_the_us_row_outranks_the_total():
    from rag.answer.extractive import unit_features
    rows = ["Total Gross Merchandise Volume (in millions) | Three Months Ended March 31, 2023: 18,410",
            "Gross Merchandise Volume (3): U.S. (in millions) | Three Months Ended March 31, 2023: $9,010"]
    hits, units = _hits_units(rows)
    total, us = unit_features("What was eBay's U.S. gross merchandise volume in the first quarter of 2023?", units)
    assert us.score > total.score


def test_a_sentence_naming_no_period_gains_from_a_filing_of_the_asked_period():
    from rag.answer.extractive import unit_features
    prose = "GAAP and Non-GAAP operating margin was 22.2% and 29.6%, respectively."
    hits, units = _hits_units([prose])
    q = "What was eBay's GAAP operating margin in the first quarter of 2023?"
    same = unit_features(q, units, reports={1: "Three Months Ended March 2023"})[0].score
    unknown = unit_features(q, units, reports={1: None})[0].score
    other = unit_features(q, units, reports={1: "Three Months Ended June 2023"})[0].score
    assert other < unknown < same


def test_a_row_of_the_asked_metric_and_period_is_strong_evidence_under_the_companys_document_name():
    """"McDonald's" analyses to "mcdonald" + "s": the possessive is no term a passage must hold."""
    from rag.answer.extractive import strong_row
    row = ("Operating income (in millions) | Quarters Ended June 30 2023: 3,104.1 | "
           "Quarters Ended June 30 2022: 1,711.8")
    chunk = Chunk("c1", "d1", 0, row, 5, 0, len(row), "MCDONALDS 2023Q2 EARNINGS")
    hits, units = [Hit(chunk, "mcd.pdf")], [Sentence(1, row, 0, len(row))]
    assert strong_row("What was McDonald's operating income in the second quarter of 2023?", units, hits)
    assert not strong_row("What was Oracle's operating income in the second quarter of 2023?", units, hits)
    assert not strong_row("What was McDonald's operating income in the third quarter of 2023?", units, hits)


def test_a_sentence_holding_the_questions_words_dates_and_subject_is_strong_evidence():
    """MiniLM scores this long sentence 0.30 against the question, under the abstention
    threshold; it holds every word of the question but "terms", its date and its subject."""
    from rag.answer.extractive import covering_sentence, strong_evidence
    text = ("Oracle Corporation. On June 8, 2022, we completed our acquisition of Cerner Corporation, a "
            "provider of digital information systems used within hospitals, by means of a merger.")
    sentence = text.split(". ", 1)[1]
    chunk = Chunk("c1", "d1", 0, text, 71, 0, len(text), "Basis of Presentation")
    hits, units = [Hit(chunk, "orcl.pdf")], [Sentence(1, sentence, 20, len(text))]
    q = "What acquisition did Oracle complete on June 8, 2022, and on what terms?"
    assert covering_sentence(q, units, hits) and strong_evidence(q, units, hits)
    assert not covering_sentence(q.replace("2022", "2021"), units, hits)  # the year must be in the sentence
    assert not covering_sentence(q.replace("Oracle", "Salesforce"), units, hits)  # so must the subject
    assert not covering_sentence("What did Oracle pay for the hospital data business?", units, hits)
    assert not covering_sentence("What did Oracle acquire?", units, hits)  # too few words to judge by


def test_acronyms_of_the_questions_phrases():
    from rag.answer.extractive import acronyms
    assert acronyms("What gross merchandise volume did eBay report for the second quarter of 2023?") == {
        "gmv": {"gross", "merchandis", "volum"}}
    assert set(acronyms("What was eBay's total gross merchandise volume in Q3 2022?")) == {"gmv", "tgmv"}
    assert "fcf" in acronyms("How much free cash flow did Oracle generate in fiscal 2023?")
    assert acronyms("Who is the Administrator of the General Services Administration?") == {}  # a name
    assert acronyms("What was McDonald's revenue in 2023?") == {}  # no phrase of three words


def test_a_row_labelled_with_the_acronym_of_the_asked_metric_answers_for_the_asked_period():
    """eBay's 10-Q labels the row "GMV"; its earnings release spells it out, for other quarters."""
    from rag.answer.extractive import extract
    texts = ["Total Gross Merchandise Volume (in millions) | Three Months Ended March 31, 2023: 18,410 | "
             "Three Months Ended December 31, 2022: $18,227",
             "Supplemental data: GMV (in millions) | Three Months Ended June 30 2023: $18,214 | "
             "Three Months Ended June 30 2022: $18,549"]
    hits, units = _hits_units(texts)
    qvec, uvecs = _vectors(len(units))
    text, cites, declined = extract("What gross merchandise volume did eBay report for the second quarter of 2023?",
                                    qvec, units, uvecs, hits)
    assert declined is None and text.startswith("Supplemental data: GMV, Three Months Ended June 30 2023: $18,214")


def test_a_cell_under_no_period_header_speaks_of_its_filings_period():
    from rag.answer.extractive import unit_features
    row = "PG&E Corporation’s non-GAAP core earnings, which exclude non-core items, were | $494"
    hits, units = _hits_units([row])
    q2 = unit_features("What were PG&E's non-GAAP core earnings in Q2 2023?", units,
                       reports={1: "Three Months Ended June 2023"})[0]
    half = unit_features("What were PG&E's non-GAAP core earnings for the first half of 2023?", units,
                         reports={1: "Three Months Ended June 2023"})[0]
    assert q2.period_fit == 0 and half.period_fit == -1 and half.score < q2.score


def test_eps_asked_names_the_earnings_per_share_column_of_a_reconciliation_row():
    """McDonald's "Non-GAAP" row: "Net Income" then "Earnings per share - diluted" columns. The
    day in "June 30" names no metric; "EPS" names the per-share column."""
    from rag.answer.extractive import strong_row, unit_features
    row = ("Non-GAAP | Six Months Ended June 30 Net Income 2023: $4,260.8 | Six Months Ended June 30 Net Income "
           "2022: $3,600.3 | Six Months Ended June 30 Earnings per share - diluted 2023: $5.80 | "
           "Six Months Ended June 30 Earnings per share - diluted 2022: $4.83")
    chunk = Chunk("c1", "d1", 0, row, 3, 0, len(row), "MCDONALDS 2023Q2 EARNINGS")
    hits, units = [Hit(chunk, "mcd.pdf")], [Sentence(1, row, 0, len(row))]
    q = "What was McDonald's non-GAAP diluted EPS for the first half of 2023?"
    f = unit_features(q, units)[0]
    assert f.row.cells[f.cell][1] == "$5.80" and f.label_fit == 1.0
    assert strong_row(q, units, hits)


def test_two_tables_disagreeing_on_one_cell_are_both_quoted():
    rows = ["Diluted earnings per share | Year Ended May 31 2023: $3.06 | Year Ended May 31 2022: $1.79",
            "Diluted earnings per share | Year Ended May 31 2023: $3.07 | Year Ended May 31 2022: $2.41"]
    hits, units = _hits_units(rows)
    qvec, uvecs = _vectors(len(units))  # identical vectors: a cosine test alone would drop one
    text, cites, declined = extract("What were diluted earnings per share for fiscal 2022?", qvec, units, uvecs, hits)
    assert declined is None
    assert "$1.79" in text and "$2.41" in text and len(cites) == 2


def test_a_sentence_stating_the_figure_for_the_asked_period_is_weighed_like_a_rows_column():
    from rag.answer.extractive import prose_states

    q = "What were contract assets as of October 31, 2022?"
    asked = question_period(q)
    stated = "Contract assets were $762 million as of October 31, 2022 as compared to $587 million as of January 31, 2022."
    assert prose_states(asked, q, stated)
    assert not prose_states(asked, q, "Contract assets are recorded when revenue recognized exceeds billings.")
    assert not prose_states(asked, q, "Contract assets were $587 million as of January 31, 2021.")
    assert not prose_states(question_period("What were contract assets in Q3 2022?"), "What were contract assets in Q3 2022?",
                            "Contract assets were $700 million in the second quarter of 2022.")
    assert _ranks_above(q, stated, "Contract assets were $762 million, and are included in prepaid expenses.")


def test_a_sentence_of_a_release_for_the_asked_quarter_answers_where_annual_rows_do_not():
    """McDonald's Q2 2023 release: "... segment increased 14.0%" names no period, but the release
    reports the second quarter of 2023; the 10-K's rows of the segment only have years."""
    row = "International Developmental Licensed Markets & Corporate | 2022: 16.0 | 2021: 16.6 | 2020: (10.5)"
    sentence = "Comparable sales in the International Developmental Licensed Markets segment increased 14.0%"
    annual = Chunk("c1", "d1", 0, row, 14, 0, len(row), "10-K")
    release = Chunk("c2", "d2", 0, sentence, 1, 0, len(sentence), "MCDONALDS 2023Q2 EARNINGS")
    hits = [Hit(annual, "10k.pdf", period="Year Ended December 2022"),
            Hit(release, "q2.pdf", period="Three Months Ended June 2023")]
    units = [Sentence(1, row, 0, len(row)), Sentence(2, sentence, 0, len(sentence))]
    qvec, uvecs = _vectors(len(units))
    q = "How much did comparable sales grow in the International Developmental Licensed Markets segment in Q2 2023?"
    answer, cites, declined = extract(q, qvec, units, uvecs, hits)
    assert declined is None and "14.0%" in answer and cites[0].n == 2


def test_a_row_for_a_part_of_the_metric_does_not_answer_for_the_whole():
    from rag.answer.extractive import part_clash

    assert part_clash("What was the total of Oracle's notes payable?", "Notes payable and other borrowings, current")
    assert part_clash("What were Oracle's total operating expenses?", "Total non-operating expenses, net")
    assert not part_clash("What were total current liabilities?", "Total current liabilities")
    assert not part_clash("What was cash at May 31, 2023?", "Current assets: Cash and cash equivalents")
    assert _ranks_above("What were Oracle's total operating expenses in fiscal 2023?",
                        "Total operating expenses | Year Ended May 31 2023: 36,861",
                        "Total non-operating expenses, net | Year Ended May 31 2023: $(462)")


def test_a_reported_figure_does_not_answer_a_question_about_guidance():
    from rag.answer.extractive import actual_clash

    q = "What 2023 non-GAAP core EPS guidance range did PG&E give?"
    assert actual_clash(q, "Non-GAAP core EPS | Three Months Ended June 30 2023: $0.23")
    assert not actual_clash(q, "2023 EPS guidance reaffirmed for non-GAAP core earnings in the range of $1.19 to $1.23.")
    assert not actual_clash(q, "Revenue | Q2 FY24 Guidance: $8.51 - $8.53")
    assert not actual_clash("What was non-GAAP core EPS in Q2 2023?", "Non-GAAP core EPS | Q2 2023: $0.23")
    assert not actual_clash("What operating margin did McDonald's expect for 2023?", "about 45%", "MCDONALDS 2022 10K > OUTLOOK")
    assert _ranks_above(q, "2023 EPS guidance reaffirmed for non-GAAP core earnings in the range of $1.19 to $1.23.",
                        "Non-GAAP core EPS | Three Months Ended June 30 2023: $0.23 | 2022: $0.29")


def test_a_row_of_a_table_stated_as_percentages_does_not_answer_for_an_amount():
    from rag.answer.extractive import share_clash

    q = "What were Salesforce's total revenues in the first quarter of fiscal 2024?"
    assert share_clash(q, "Revenues: Total revenues", "Condensed Consolidated Statements of Operations "
                                                       "(As a percentage of total revenues) (Unaudited) Revenues:")
    assert not share_clash(q, "Revenues: Total revenues", "Condensed Consolidated Statements of Operations "
                                                           "(in millions, except per share data) (Unaudited) Revenues:")
    assert not share_clash("What share of total revenues was subscription revenue?", "Subscription and support",
                           "(As a percentage of total revenues)")
