"""The embedded answerer: no LLM, no network. It leads with the one unit that answers.

Units are the passages' sentences and table rows (a row carries its column headers, see
ingest/pdf_layout.py). Each is scored against the question (MiniLM cosine plus a share of the
question's content terms); a table row also by how well its label names the asked metric and
whether one of its columns is the asked period (rag/answer/periods.py).

- A row answers with the one cell whose column is the asked period, the period and unit
  spelled out: "Net revenues, Three Months Ended June 30 2023: $2,540 (in millions) [1]".
- A sentence is quoted, cut to about 60 words around the matched terms ("…" marks a cut).
- A runner-up is added only when it states a different fact, close in score.
- When the question names a period that no unit of the passages covers, the answer says
  so and names the periods the documents do cover, cited, instead of another period's figure.
A quote is its own evidence, so these citations are verified by construction.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from ingest.pdf_layout import Row, parse_row
from rag.answer.citations import Citation
from rag.answer.rewrite import owner_of
from rag.answer.periods import (PERIOD_WORDS, YEAR, Period, agreement, durations, header_period, header_words,
                                 names_month, names_period, on_calendar, quarters, question_period)
from rag.answer.support import Sentence, passage_sentences
from rag.store.sparse import analyse
from rag.types import Hit

LEXICAL_WEIGHT = 0.25
LABEL_WEIGHT = 0.35      # a row whose label names the asked metric
PERIOD_WEIGHT = 0.25     # ... and has a column for the asked period
WRONG_PERIOD_PENALTY = 0.3
# a sentence naming no period, in a filing that reports the asked one (tune: 0.1 best; 0.15 and
# above answer unreported periods)
REPORT_PERIOD_WEIGHT = 0.1
# A sentence with a figure that names the asked period (prose_states). Chosen on the financial
# tune/dev/dev2/dev3 sets (0.1-0.3): at 0.15 citation precision rose (tune 0.84 -> 0.86, dev
# 0.86 -> 0.90) and dev3's wrong-period share fell (4.8% -> 2.4%), with no figure lost; at 0.2 and
# up dev2's unreported periods were answered from sentences about other metrics (0.6 -> 0.4).
PROSE_PERIOD_WEIGHT = 0.15
RUNNER_UP_MARGIN = 0.1  # 0.08 until the share-table clash; at 0.1 tune/dev/dev2/dev3 figures are as before it
MAX_UNITS = 2
MAX_QUOTE_WORDS = 60
REDUNDANT_COS = 0.9

NOTICE = ("Extractive answer: these sentences are quoted from your documents, not written by a "
          "language model. To get written answers, connect an LLM: set RAG_LLM_BASE_URL (any "
          "OpenAI-compatible server) or run `make llm` for the local one.")


@dataclass
class UnitScore:
    score: float
    row: Row | None = None
    cell: int | None = None        # the chosen column of a row
    period_fit: float = 0.0        # agreement of that column with the asked period
    label_fit: float = 0.0
    of_asked_period: bool = False  # a sentence naming no period, in a filing reporting the asked one


_INITIALS = re.compile(r"\bU\.S\.(?!\w)|\bU\.K\.(?!\w)")


def _terms(text: str) -> list[str]:
    """analyse(), with "U.S." and "U.K." kept as words (else single letters, dropped as terms:
    a question about U.S. sales would match the row of total sales as well as the U.S. row)."""
    return analyse(_INITIALS.sub(lambda m: "USA" if m.group() == "U.S." else "UK", text))


def metric_terms(question: str) -> set[str]:
    """Content terms of the question that are not period words: the metric and the subject
    (one-letter leftovers such as the "s" of "Acme's" dropped)."""
    return {t for t in _terms(PERIOD_WORDS.sub(" ", question)) if len(t) > 1}


_PHRASE_BREAK = re.compile(r"[^A-Za-z\s-]+")


def acronyms(question: str) -> dict[str, set[str]]:
    """Acronyms a filing may write for a phrase of the question, with the phrase's terms:
    "gross merchandise volume" is "GMV", "free cash flow" "FCF". A phrase is the last three to
    five of a run of lower-case words, none a stopword, question word or period word ("total
    gross merchandise volume" is "TGMV" or "GMV"; a capitalised run is a name, written out as
    the question writes it); an acronym that is itself a stopword ("its") is left out."""
    out: dict[str, set[str]] = {}
    for part in _PHRASE_BREAK.split(PERIOD_WORDS.sub(",", question)):
        run: list[str] = []
        for w in re.split(r"[\s-]+", part) + [""]:
            terms = analyse(w) if len(w) > 1 and w.islower() else []
            if terms and terms[0] not in _QUESTION_WORDS:
                run.append(w)
                continue
            for tail in (run[-n:] for n in range(3, min(len(run), 5) + 1)):  # "total [gross merchandise volume]"
                short = "".join(x[0] for x in tail)
                if analyse(short) == [short]:
                    out[short] = set(analyse(" ".join(tail)))
            run = []
    return out


def with_aliases(terms: set[str], aliases: dict[str, set[str]]) -> set[str]:
    """A unit's terms with each acronym of the question read as its phrase ("gmv" -> gross,
    merchandise, volume)."""
    for short, phrase in aliases.items():
        if short in terms:
            terms = (terms - {short}) | phrase
    return terms


def transposed(row: Row) -> bool:
    """A table whose rows are periods and columns metrics ("As of October 31, 2022 | Current:
    $20.9 | Noncurrent: $19.1 | Total: $40.0"): the label dates every cell."""
    return names_period(row.label) and not any(names_period(h) for h, _ in row.cells)


def choose_cell(row: Row, asked: Period, latest_year: int | None, terms: set[str] | None = None,
                dated: Period | None = None, annual: bool = False) -> tuple[int | None, float]:
    """The column to answer from and its period agreement (-1 when every column disagrees).
    Among columns of the same period, the one whose header names more of the asked metric
    ("Earnings per share - diluted" rather than "Net Income" for an EPS question).
    `dated` is the asked fiscal period in calendar terms (see periods.on_calendar), for the
    headers that name a month ("Three Months Ended April 30 2023"). In an `annual` report a
    column headed by a bare year ("2022" in a 10-K) holds that whole year."""
    best, fit, named = None, -2.0, -1.0
    open_from = _unfilled_from(row)
    flipped = transposed(row)
    for i, (header, _value) in enumerate(row.cells):
        dating = row.label if flipped else header
        want = dated if dated is not None and names_month(dating) else asked
        period = header_period(dating)
        if annual and period.year is not None and period.months is None and period.end_month is None:
            period = replace(period, months=12)
        a = agreement(want, period, latest_year) if i < open_from else -1.0
        m = _metric_share(terms, header) if terms else 0.0
        if a > fit or (a == fit and m > named):
            best, fit, named = i, a, m
    return best, fit


MAX_EMBEDDED_UNITS = 12
SUBJECT_PENALTY = 0.5
def prose_disagrees(asked: Period, question: str, text: str) -> bool:
    """A sentence that names periods, none of them the asked one ("First quarter GAAP EPS was
    $0.20" for a third-quarter question; figures for 2021 and 2022 for a 2023 question)."""
    if asked.year is not None:
        years = {int(y) for y in YEAR.findall(text)}
        ok = asked.calendar_years()
        if years and not years & ok:
            return True
    want = quarters(question)
    have = quarters(text)
    if want and have and not want & have:
        return True
    # "first half of 2023" for a fourth-quarter question: only other lengths of period named
    named = durations(text)
    return asked.months is not None and bool(named) and asked.months not in named


# A figure in prose: a currency amount, a percentage, or a number with a thousands separator or
# decimals (not a year, a day or a footnote mark)
_PROSE_FIGURE = re.compile(r"[$€£]\s?\d|\d\s?%|\d,\d{3}|\d\.\d")


def prose_states(asked: Period, question: str, text: str) -> bool:
    """A sentence with a figure that names the asked year (and quarter, when one is asked):
    "Contract assets were $762 million as of October 31, 2022 ..." for an October 31, 2022
    question. It is weighed like a row's column for the asked period."""
    if asked.year is None or not _PROSE_FIGURE.search(text):
        return False
    if not {int(y) for y in YEAR.findall(text)} & asked.calendar_years():
        return False
    want = quarters(question)
    return not want or bool(want & quarters(text))


# "non-GAAP", "adjusted" and "core" figures are other metrics than the GAAP ones of the same name
_NON_GAAP = re.compile(r"\bnon[- ]?gaap\b|\badjusted\b|\bcore\b", re.I)
_GAAP = re.compile(r"(?<!non-)(?<!non )\bgaap\b", re.I)  # "GAAP" alone, not "non-GAAP"
_DAY = re.compile(r"\b\d{1,2}\b")  # "June 30": the day of a period header, no metric word
_GLUED = re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")  # "2023Q2", "10K"
QUALIFIER_PENALTY = 0.3
NIL_PENALTY = 0.2
RARE_WEIGHT = 0.3  # chosen on the financial tune split (0.1-0.5)
# How much of the asked metric a unit says: for a row, its label, column header and the title
# of its table together (support.table_caption); for prose, its own words. Chosen on the
# financial tune split: figure-first-60 0.69 at 0, 0.72 at 0.2, 0.77 at 0.3-0.4 (citation
# precision 0.69 / 0.72), wrong-period answers doubled at 0.5.
COVERAGE_WEIGHT = 0.4
# (not "outlook" or "expects" alone: "rated BBB+ with a stable outlook" is a reported fact)
# "Three Months Ending June 30, 2023" in an April release is the coming quarter's guidance; a
# period that has passed is "ended"; "expects 2023 capital expenditures to be between $2.2 and $2.4
# billion" is a forecast, "better than expected" is not
_FORECAST = re.compile(r"\bguidance\b|\bforecast|\bprojected\b|\bprojections?\b|\b(?:months|quarter|year) ending\b"
                       r"|\bexpects?\s+(?:\S+\s+){0,4}?to\s+(?:be|range|grow|increase|decrease|decline|total|remain)\b",
                       re.I)


def forecast_clash(question: str, text: str) -> bool:
    """A forecast ("2023 EPS guidance ... $1.04 to $1.13") given for a question about what was
    reported: guidance answers only questions that ask for guidance, outlook or expectations."""
    return bool(_FORECAST.search(text)) and not _ASKS_FORECAST.search(question)


# a question that asks for a forecast: "What revenue range did eBay guide to ...?" as well as "guidance"
_ASKS_FORECAST = re.compile(r"\bguid(?:ance|ed?|ing)\b|\boutlook\b|\bexpect|\bforecast|\bproject(?:ed|ion)", re.I)
# what a unit that answers a guidance question speaks of: a forecast as _FORECAST names one, or the
# looser words that _FORECAST leaves out on purpose ("outlook", "expects", "guided")
_FORECAST_TEXT = re.compile(_FORECAST.pattern + r"|\bguid(?:ed?|ing)\b|\boutlook\b|\bexpect|\banticipat", re.I)


def actual_clash(question: str, text: str, heading: str = "") -> bool:
    """A reported figure for a question that asks for guidance or an outlook: PG&E's second-quarter
    core EPS ($0.23) is not its 2023 guidance ($1.19 to $1.23). The unit or its heading ("2023
    Guidance", "OUTLOOK") must speak of a forecast."""
    return bool(_ASKS_FORECAST.search(question)) and not _FORECAST_TEXT.search(f"{heading} {text}")


_EPS = re.compile(r"\beps\b", re.I)
_SHARE_ROW = re.compile(r"^\s*%|%\s*of\b|\bpercent(?:age)? of\b", re.I)
_ASKS_SHARE = re.compile(r"%|\bpercent|\bshare of\b|\bproportion|\bportion\b|\bmix\b", re.I)


# a table stated in shares, as its unit line says: Salesforce's statement of operations "(As a
# percentage of total revenues)", whose "Total revenues" row reads 100
_SHARE_TABLE = re.compile(r"\(\s*as a percent(?:age)? of\b", re.I)


def share_clash(question: str, label: str, caption: str = "") -> bool:
    """A row of shares ("% of Total Revenues", "% Revenues by Geography", any row of a table "(As
    a percentage of total revenues)") for a question that asks for an amount ("What were
    Oracle's total revenues for fiscal 2023?")."""
    return bool(_SHARE_ROW.search(label) or _SHARE_TABLE.search(caption)) and not _ASKS_SHARE.search(question)


# A row for a part of the metric or its opposite: "Notes payable and other borrowings, current",
# "Total non-operating expenses, net"
_PART = re.compile(r"\b(?:non-?current|current|non-?operating|long-term|short-term)\b", re.I)


_PART_ASKED = re.compile(_PART.pattern + r"(?!\s+(?:quarter|year|period|fiscal|month|guidance|outlook))", re.I)


def _parts(text: str, pattern: re.Pattern = _PART) -> set[str]:
    return {m.lower().replace("-", "") for m in pattern.findall(text)}


def part_missing(question: str, named: str) -> bool:
    """The question asks for a part ("current remaining performance obligation") and the row's
    label, column header and table title (`named`) do not name it: the total row ("Remaining
    performance obligation | As of October 31, 2022: 40.0") is not the current part (20.9).
    ("the current quarter" asks for no part.)"""
    return bool(_parts(question, _PART_ASKED) - _parts(named))


def part_clash(question: str, label: str) -> bool:
    """A row whose own label (not its section, "Current liabilities:") names a part or the
    opposite of the metric that the question does not ask for: "..., current" for "the total of
    Oracle's notes payable", "non-operating expenses" for "total operating expenses"."""
    own = label.rsplit(":", 1)[-1]
    asked = {m.lower().replace("-", "") for m in _PART.findall(question)}
    return any(m.lower().replace("-", "") not in asked for m in _PART.findall(own))


_EFFECT = re.compile(r"\b(?:effects?|impacts?)\s+(?:on|of)\b", re.I)
_ASKS_EFFECT = re.compile(r"\b(?:effects?|impacts?|affect(?:ed)?)\b", re.I)


def effect_clash(question: str, caption: str) -> bool:
    """A row of a table of effects ("Share-based compensation expense and the effect on diluted
    earnings per share": its "Earnings per common share-diluted" row is $0.16, not the EPS) for
    a question that asks for the figure itself."""
    return bool(_EFFECT.search(caption)) and not _ASKS_EFFECT.search(question)


def qualifier_clash(question: str, text: str, heading: str = "") -> bool:
    """The question asks for a non-GAAP (adjusted, core) figure and the unit is not one (its
    heading may say so: a table under "Non-GAAP results"; but a unit that says "GAAP" itself is
    the GAAP figure, whatever its heading), or the question asks for a GAAP
    figure and the unit is only a non-GAAP one (whatever the heading: "Non-GAAP operating
    margin" under "Reconciliation of GAAP to Non-GAAP" is still the non-GAAP figure)."""
    if _NON_GAAP.search(question):
        if _GAAP.search(text) and not _NON_GAAP.search(text):
            return True  # "GAAP diluted net income per share" is the GAAP figure, under any heading
        return not _NON_GAAP.search(f"{heading} {text}")
    if _GAAP.search(question):
        return bool(_NON_GAAP.search(text)) and not _GAAP.search(text)
    return False


def _no_period_words(text: str) -> str:
    """A header or label without its period words and days, which name no metric."""
    return _DAY.sub(" ", PERIOD_WORDS.sub(" ", text))


def _share(terms: set[str], found: set[str]) -> float:
    return len(terms & found) / len(terms) if terms else 0.0


def _metric_share(terms: set[str], text: str) -> float:
    return _share(terms, set(_terms(text)))


def unit_features(question: str, units: list[Sentence], headings: dict[int, str | None] | None = None,
                  calendars: dict[int, dict | None] | None = None,
                  reports: dict[int, str | None] | None = None) -> list[UnitScore]:
    """Everything about each unit that needs no vectors: lexical match (a row by its label and
    the cell for the asked period), label fit, chosen cell, period agreement.

    The lexical match counts the question's metric terms only: period words are judged by
    period agreement, and words of the passage's heading (the company in "MCDONALDS 2023Q2
    EARNINGS") say nothing about which of its units answers. `calendars` gives a passage's
    document's fiscal calendar, so that its dated columns answer fiscal questions; `reports`
    the period its document reports, which dates the sentences that name no period."""
    asked = question_period(question)
    dated = {n: on_calendar(asked, question, c) for n, c in (calendars or {}).items() if c}
    reported = {n: header_period(report) for n, report in (reports or {}).items() if report}
    plain = calendar_year_passages(calendars or {}, reported)
    annual = {n for n, period in reported.items() if period.months == 12}
    terms = metric_terms(question)
    latest = _latest_year(units)
    own: dict[int, set[str]] = {}
    elsewhere: set[int] = set()  # passages of documents that do not name the question's subject
    subject = subject_terms(owner_of(question))
    for n, heading in (headings or {}).items():
        name = (heading or "").split(" > ")[0]  # the document's name, not its captions
        name_terms = set(analyse(_GLUED.sub(" ", name)))
        own[n] = (terms - name_terms) or terms
        if subject and not subject <= name_terms:
            elsewhere.add(n)
    if len(elsewhere) == len(headings or {}):
        elsewhere = set()  # no passage's document is named after the subject: nothing to tell apart
    # Question terms that few units contain ("Platform" among rows of "subscription and support
    # revenues"): a unit with them is about the specific thing asked, not its total.
    aliases = acronyms(question)  # "GMV" in a row says "gross merchandise volume"

    def terms_of(text: str) -> set[str]:
        return with_aliases(set(_terms(text)), aliases)

    unit_terms = [terms_of(u.text) for u in units]
    # A row says what its table's title says ("Platform and Other" under "Subscription and Support
    # Revenue by ... Service Offerings"), and the same row in two overlapping passages is one row:
    # else the title's words look rare, found only in the total's own label, and the total wins.
    described = {u.text: terms_of(f"{u.text} {u.caption}") for u in units}
    df = {t: sum(t in ts for ts in described.values()) for t in terms}
    rare = {t for t, n in df.items() if 0 < n <= max(2, len(described) // 10)}
    # "EPS" names the "Earnings per Common Share" column of a row that also has "Earnings"
    eps_words = set(analyse("earnings per share")) if _EPS.search(question) else set()
    out = []
    for u, uterms in zip(units, unit_terms):
        row = parse_row(u.text)
        heading = (headings or {}).get(u.passage) or ""
        clash = qualifier_clash(question, u.text, heading) or forecast_clash(question, u.text) or \
            actual_clash(question, u.text, f"{u.caption} {heading}")
        mine = own.get(u.passage, terms)
        if u.passage in elsewhere and not subject <= uterms:
            out.append(UnitScore(-SUBJECT_PENALTY, period_fit=0.0))  # another company's report
            continue
        # how the period its filing reports fits the asked one, for a unit that names none
        report_fit = _report_fit(dated.get(u.passage, asked), reported.get(u.passage), u.text) \
            if asked.explicit else None
        if row is None:
            s = (LEXICAL_WEIGHT + (0.0 if clash else COVERAGE_WEIGHT)) * _share(mine, uterms) - (
                QUALIFIER_PENALTY if clash else 0.0)
            if asked.explicit and (prose_disagrees(asked, question, u.text) or (report_fit or 0.0) < 0):
                s -= WRONG_PERIOD_PENALTY
                out.append(UnitScore(s, period_fit=-1.0))
            else:
                if report_fit and not clash:
                    s += REPORT_PERIOD_WEIGHT * report_fit
                elif not clash and prose_states(asked, question, u.text):
                    s += PROSE_PERIOD_WEIGHT
                out.append(UnitScore(s, of_asked_period=(report_fit or 0.0) > 0))
            continue
        clash = clash or share_clash(question, row.label, u.caption) or effect_clash(question, u.caption) or \
            part_clash(question, row.label)
        # "fiscal 2024" of a company reporting calendar quarters is calendar 2024, not maybe 2023
        asked_here = replace(asked, fiscal=False) if u.passage in plain else asked
        cell, fit = choose_cell(row, asked_here, latest, mine | eps_words, dated.get(u.passage),
                                annual=u.passage in annual)
        clash = clash or part_missing(question, f"{row.label} {row.cells[cell][0] if cell is not None else ''} "
                                                f"{u.caption}")
        if fit == 0 and asked.explicit and cell is not None and not names_period(row.cells[cell][0]):
            # a cell under no period header ("... core earnings were | $494") is its filing's period
            if (report_fit or 0.0) < 0:
                fit = -1.0
        # the row's label and its cell's header name the metric ("GAAP" under "Net Income")
        header = _no_period_words(row.cells[cell][0]) if cell is not None else ""
        label = _no_period_words(row.label) if transposed(row) else row.label
        label_terms = terms_of(f"{label} {header}")
        # "EPS" asked is the "Earnings per share - diluted" column
        label_fit = len((mine | eps_words) & label_terms) / len(label_terms) if label_terms else 0.0
        # how much of the asked metric the row's label, header and table title say together
        named = _share(mine, label_terms | terms_of(u.caption))
        statement = row_statement(row, cell if cell is not None else 0)
        # the title over a row's table says what its rows are ("Service" under "Subscription and
        # Support Revenue by ... service offerings")
        s = LEXICAL_WEIGHT * _share(mine, terms_of(f"{statement} {u.caption}")) + LABEL_WEIGHT * label_fit
        s += PERIOD_WEIGHT * max(fit, 0.0) if fit > -1 else -WRONG_PERIOD_PENALTY
        if clash:  # another metric: neither the answer nor the row that says the period is missing
            s -= QUALIFIER_PENALTY
            label_fit = 0.0
        if cell is not None and _NIL.match(row.cells[cell][1].strip()):
            s -= NIL_PENALTY  # a dash: a row with the figure itself answers better
        if rare and not clash:  # another metric's row does not name the specific thing asked
            s += RARE_WEIGHT * len(rare & uterms) / len(rare)
        if not clash:
            s += COVERAGE_WEIGHT * named
        out.append(UnitScore(s, row, cell, fit, label_fit))
    return out


def calendar_year_passages(calendars: dict[int, dict | None], reported: dict[int, Period]) -> set[int]:
    """Passages of documents that state no fiscal calendar and report a period ending with a
    calendar quarter (March, June, September, December): their years are calendar years."""
    return {n for n, period in reported.items() if calendars.get(n) is None and period.end_month in {3, 6, 9, 12}}


# "... increased 11.7% for the quarter": the period of the filing, of that length
_THIS_PERIOD = re.compile(r"\b(?:for|in|during|over|of) (?:the|this) (quarter|half|year)\b", re.I)
_THIS_LENGTH = {"quarter": 3, "half": 6, "year": 12}


def _report_fit(asked: Period, reported: Period | None, text: str) -> float | None:
    """A sentence that names no period speaks of the period its filing reports: how well that
    answers the asked one (agreement; negative for another period: eBay's first-quarter "Non-GAAP
    net income was $600 million" for a second-quarter question). None when the filing's period is
    unknown or the sentence names its own. So does a sentence that names only "the quarter"
    ("Global comparable sales increased 11.7% for the quarter" in McDonald's second-quarter
    release is the second quarter, not the first asked), "the half year" or "the year"."""
    if reported is None or YEAR.search(text) or quarters(text) or names_month(text):
        return None
    lengths = durations(text)
    if lengths:  # only a length of period: it must be "the quarter" (or year), nothing else
        if len(lengths) != 1 or lengths != {_THIS_LENGTH[m.lower()] for m in _THIS_PERIOD.findall(text)}:
            return None
        if reported.months != (n := next(iter(lengths))):  # "for the year" in a second-quarter release
            reported = replace(reported, months=n, quarter=None)
    return agreement(asked, reported)


def passage_headings(hits) -> dict[int, str | None]:
    return {n: h.chunk.heading for n, h in enumerate(hits, 1)}


def passage_calendars(hits) -> dict[int, dict | None]:
    return {n: h.calendar for n, h in enumerate(hits, 1)}


def passage_reports(hits) -> dict[int, str | None]:
    return {n: h.period for n, h in enumerate(hits, 1)}


def shortlist(question: str, units: list[Sentence], limit: int | None = None,
              headings: dict[int, str | None] | None = None,
              calendars: dict[int, dict | None] | None = None,
              reports: dict[int, str | None] | None = None) -> list[Sentence]:
    """The units worth embedding at question time: all when few, else the `limit` best by
    their vector-free features (passage order kept). Embedding every unit of five table-heavy
    passages was most of an answer's time."""
    limit = MAX_EMBEDDED_UNITS if limit is None else limit
    if len(units) <= limit:
        return units
    feats = unit_features(question, units, headings, calendars, reports)
    keep = sorted(sorted(range(len(units)), key=lambda j: -feats[j].score)[:limit])
    return [units[j] for j in keep]


def score_units(question: str, qvec: np.ndarray, units: list[Sentence], uvecs: np.ndarray,
                headings: dict[int, str | None] | None = None,
                calendars: dict[int, dict | None] | None = None,
                reports: dict[int, str | None] | None = None) -> list[UnitScore]:
    out = unit_features(question, units, headings, calendars, reports)
    for j, sc in enumerate(out):
        sc.score += float(uvecs[j] @ qvec)
    return out


def _latest_year(units: list[Sentence]) -> int | None:
    years = [int(y) for u in units for y in YEAR.findall(u.text)]
    return max(years) if years else None


_PER_SHARE_COLUMN = re.compile(r"per (?:common )?share|earnings per|\beps\b", re.I)


def row_statement(row: Row, cell: int) -> str:
    header, value = row.cells[cell]
    # a table "in millions, except per share amounts": not the unit of its per-share column or row
    unit = f" ({row.unit})" if row.unit and not _PER_SHARE_COLUMN.search(f"{row.label} {header}") else ""
    return f"{row.label}, {header}: {value}{unit}" if header else f"{row.label}: {value}{unit}"


UNIT_RERANK_WEIGHT = 2.0  # chosen on the financial tune split (pool 1-6, weight 0.5-2)


def rerank_by_units(question: str, hits: list, k: int) -> list:
    """The L3 stage of the funnel for the answerer: the retriever's top candidates re-ordered by
    their best answer unit (metric terms, a row's label, a column for the asked period) blended
    with their fused retrieval score, min-max normalised. Pure Python on a few dozen chunks: a
    few milliseconds, no model. Each hit keeps the score as `units` (and its rank)."""
    if len(hits) <= 1:
        return hits[:k]
    units = passage_sentences(hits)
    best = [0.0] * len(hits)
    feats = unit_features(question, units, passage_headings(hits), passage_calendars(hits), passage_reports(hits))
    for u, sc in zip(units, feats):
        best[u.passage - 1] = max(best[u.passage - 1], sc.score)
    fused = [h.scores.get("fused", h.scores.get("final", 0.0)) for h in hits]
    lo, hi = min(fused), max(fused)
    norm = [(f - lo) / (hi - lo) if hi > lo else 1.0 for f in fused]
    blended = [n + UNIT_RERANK_WEIGHT * b for n, b in zip(norm, best)]
    order = sorted(range(len(hits)), key=lambda i: -blended[i])[:k]
    out = []
    for rank, i in enumerate(order, 1):
        h = hits[i]
        out.append(Hit(h.chunk, h.source, {**h.scores, "units": round(blended[i], 5)}, {**h.ranks, "units": rank},
                       h.calendar, h.ocr, h.period))
    return out


def subject_terms(subject: str | None) -> set[str]:
    """The terms that name a subject: "McDonald's" is {"mcdonald"}, its possessive "s" left out
    (a passage under "MCDONALDS 2023Q2 EARNINGS" has no such term)."""
    return {t for t in analyse(subject or "") if len(t) > 1}


def passage_terms(n: int, hits, headings: dict[int, str | None]) -> set[str]:
    """The terms of passage n (1-based) and its heading: where a question's subject may be named."""
    return set(analyse(f"{headings.get(n) or ''} {hits[n - 1].chunk.text}"))


def strong_row(question: str, units: list[Sentence], hits) -> bool:
    """A table row that names the asked metric and has a column for the asked period is
    evidence enough, whatever the cosine of a long row says: the abstention threshold was
    calibrated on sentences. The question's subject (a company) must be in the passage."""
    asked = question_period(question)
    if not asked.explicit:
        return False
    headings = passage_headings(hits)
    want = subject_terms(owner_of(question))
    for u, sc in zip(units, unit_features(question, units, headings, passage_calendars(hits), passage_reports(hits))):
        if sc.row is None or sc.label_fit < 0.5 or sc.period_fit <= 0:
            continue
        if want <= passage_terms(u.passage, hits, headings):
            return True
    return False


_QUESTION_WORDS = frozenset(analyse("what which how much many were did does do has have had"))
COVER_SHARE = 0.8  # chosen on the financial tune/dev/dev2 and real sets (see covering_sentence)
COVER_MIN_TERMS = 4


def covering_sentence(question: str, units: list[Sentence], hits) -> bool:
    """A unit that holds nearly every content word of the question (COVER_SHARE of at least
    COVER_MIN_TERMS), every number and date of it and its subject, is evidence enough whatever
    its cosine: MiniLM scores a long sentence low ("On June 8, 2022, we completed our
    acquisition of Cerner ..." is 0.30 to "What acquisition did Oracle complete on June 8,
    2022?"). A question about a year the documents lack misses that number, so it stays out."""
    want = {t for t in _terms(question) if len(t) > 1 and t not in _QUESTION_WORDS}
    if len(want) < COVER_MIN_TERMS:
        return False
    numbers = {t for t in want if any(ch.isdigit() for ch in t)}
    subject = subject_terms(owner_of(question))
    headings = passage_headings(hits)
    for u in units:
        found = set(_terms(u.text))
        if not numbers <= found:
            continue
        found |= subject & passage_terms(u.passage, hits, headings)
        if subject <= found and len(want & found) >= COVER_SHARE * len(want):
            return True
    return False


def strong_evidence(question: str, units: list[Sentence], hits) -> bool:
    """Evidence enough to answer below the abstention threshold: a row of the asked metric and
    period, or a sentence holding the question's words."""
    return strong_row(question, units, hits) or covering_sentence(question, units, hits)


_NON_WORD = re.compile(r"[\W_]+")  # a file name's separators: "mcdonalds_2023q2.pdf"
_NOT_A_FIGURE = re.compile(r"^\s*(?:who|whom|whose|why|where)\b", re.I)


def period_terms(question: str, calendars: Callable[[], dict[str, dict]]) -> list[str]:
    """BM25 terms for a figure question that names its period: its metric and subject, and the
    period as the filings' column headers name it ("second quarter of 2023" is "Three Months
    Ended June 30 2023"; a fiscal period on the calendar of the subject's filings, from
    `calendars()`: source -> fiscal calendar). [] for other questions."""
    asked = question_period(question)
    if asked.year is None or _NOT_A_FIGURE.match(question):
        return []
    phrases = {header_words(asked)}
    if asked.fiscal:
        want = subject_terms(owner_of(question))
        mine = [c for source, c in calendars().items()
                if want & set(analyse(_NON_WORD.sub(" ", re.split(r"[\\/]", source)[-1])))]
        phrases = {header_words(on_calendar(asked, question, c)) for c in mine} or phrases
    words = " ".join(sorted(p for p in phrases if p))
    if not words:
        return []
    return [t for t in analyse(PERIOD_WORDS.sub(" ", question)) if t not in _QUESTION_WORDS] + \
        sorted(acronyms(question)) + analyse(words)


def absent_subject(question: str, hits) -> str | None:
    """The company (or other named subject) the question asks about when no passage found
    names it, neither in its text nor in its document's name: "What was Tesla's revenue in
    2023?" over McDonald's and EPA reports. Another subject's figure must not answer it."""
    subject = owner_of(question)
    if not subject or not hits or not _POSSESSIVE.search(subject):
        return None  # only an owner ("Tesla's revenue"): "Americans" or "CEO" are no company
    terms = subject_terms(subject)
    terms |= set(analyse(re.sub(r"[&.'’-]", "", _POSSESSIVE.sub("", subject))))  # "PG&E" is also "pge-scan.pdf"
    return None if not terms or terms & _named_in(hits) else _POSSESSIVE.sub("", subject)


_POSSESSIVE = re.compile(r"['’]s$")


def _named_in(hits) -> set[str]:
    """The terms of the passages found, their headings and their documents' names."""
    seen: set[str] = set()
    for h in hits:
        seen |= set(analyse(f"{_GLUED.sub(' ', h.chunk.heading or '')} {h.chunk.text} {_NON_WORD.sub(' ', h.source)}"))
    return seen


# A run of capitalised words inside a question (not its first word), with the small words that
# join a name's parts: a place, product or other proper noun, "Antarctica" in "How many employees
# does McDonald's have in Antarctica?", "Department of Veterans Affairs" in "... the Department of
# Veterans Affairs FY 2022-2026 strategic plan ...". Its capitalised words of four letters or
# more are the ones checked, and the whole run is named.
_NAME = re.compile(r"(?<=\s)[A-Z][\w'’-]*(?:\s+(?:(?:of|and|for|the|on|de)\s+)*[A-Z][\w'’-]*)*")
_NAME_WORD = re.compile(r"[A-Z][a-z]{3,}")
# Capitalised words that name no subject: periods, and words people capitalise in a question.
_NOT_A_NAME = frozenset(analyse("quarter year fiscal half annual report company total net gross operating "
                                "adjusted diluted basic revenue revenues income sales segment"))


def _period_word(word: str) -> bool:
    return bool(PERIOD_WORDS.fullmatch(word)) or word.upper() == "FY"


def absent_name(question: str, hits, indexed: Callable[[str], bool] = lambda _term: False) -> str | None:
    """A proper noun of the question that no passage found names, in its text, its heading or
    its document's name, and that no indexed chunk holds (`indexed(term)`, the BM25 index's
    say): documents that never mention Antarctica cannot say how many people work there. The
    first word of the question, period words and an owner (absent_subject's) are left out."""
    if not hits:
        return None
    owner = owner_of(question) or ""
    skip = _NOT_A_NAME | (subject_terms(owner) if _POSSESSIVE.search(owner) else set())
    names = []
    for run in _NAME.findall(question):
        words = run.split()
        while words and _period_word(words[-1]):  # "Veterans Affairs FY": the name ends before "FY"
            words.pop()
        names.append((" ".join(words), [w for w in words if _NAME_WORD.fullmatch(w) and not _period_word(w)]))
    seen = _named_in(hits)
    for run, words in names:
        for word in words:
            terms = set(analyse(word)) - skip
            if terms and not terms & seen and not any(map(indexed, terms)):
                return run
    return None


def embed_text(question: str, text: str, limit: int = 240) -> str:
    """What to embed for a unit at question time: a table row as its label and the one cell
    for the asked period ("Operating income, Three Months Ended June 30 2023: 518 (in
    millions)"), so that twelve other columns do not drown the match; a sentence as it is."""
    row = parse_row(text)
    if row is not None and row.cells:
        cell, _ = choose_cell(row, question_period(question), None)
        return row_statement(row, cell if cell is not None else 0)[:limit]
    return text[:limit]


def trim_quote(text: str, question: str, max_words: int = MAX_QUOTE_WORDS) -> tuple[str, str]:
    """(shown text with "…" at cuts, the verbatim part) at most `max_words` words, the window
    holding the most of the question's terms."""
    words = text.split()
    if len(words) <= max_words:
        return text, text
    terms = set(analyse(question))
    hits = [1 if set(analyse(w)) & terms else 0 for w in words]
    runs, run = [], sum(hits[:max_words])
    for i in range(0, len(words) - max_words + 1):
        if i:
            run += hits[i + max_words - 1] - hits[i - 1]
        runs.append(run)
    best = max(runs)
    matched = [i for i, h in enumerate(hits) if h]

    def off_centre(i: int) -> float:  # the matched words in the middle of the window, not at its edge
        inside = [m for m in matched if i <= m < i + max_words]
        return abs(i + max_words / 2 - sum(inside) / len(inside)) if inside else 0.0

    at = min((i for i, r in enumerate(runs) if r == best), key=off_centre)
    part = " ".join(words[at:at + max_words])
    shown = ("… " if at > 0 else "") + part + (" …" if at + max_words < len(words) else "")
    return shown, part


def extract(question: str, qvec: np.ndarray, units: list[Sentence], uvecs: np.ndarray, hits
            ) -> tuple[str, list[Citation], str | None]:
    """(answer text with [n] markers, its citations, why it declines or None).

    The third value is set when the question names a period that the passages do not cover:
    the text then says so and lists the periods they do cover."""
    return extract_settled(question, qvec, units, uvecs, hits)[:3]


def extract_settled(question: str, qvec: np.ndarray, units: list[Sentence], uvecs: np.ndarray, hits
                    ) -> tuple[str, list[Citation], str | None, str | None]:
    """`extract`, and why its answer can stand without a language model, or None (see `settles`)."""
    if not units:
        return "", [], None, None
    asked = question_period(question)
    scored = score_units(question, qvec, units, uvecs, passage_headings(hits), passage_calendars(hits),
                         passage_reports(hits))
    order = sorted(range(len(units)), key=lambda j: -scored[j].score)
    top = order[0]

    if asked.explicit:
        declined = _year_missing(asked, units, order, hits) or _unreported(question, asked, units, scored, order, hits)
        if declined is None and scored[top].period_fit <= -1:
            declined = _other_period(asked, units[top], scored[top], hits, question)
        if declined is not None:
            return (*declined, "the passages found report other periods than the asked one")

    chosen: list[int] = []
    facts: set[str] = set()
    for j in order:
        if len(chosen) >= MAX_UNITS or scored[j].score < scored[top].score - RUNNER_UP_MARGIN:
            break
        fact = _fact(units[j], scored[j])
        if fact in facts:
            continue
        # a row with the label and column header of a chosen row but another figure (a pro forma
        # table's "Diluted earnings per share" beside the statement's: Oracle, $1.79 and $2.41)
        # embeds alike but disagrees: both are shown, each cited, rather than one chosen by a
        # hair of cosine. Other near-duplicates stay out (dev3 +1 figure; tune/dev/dev2 unchanged)
        if not any(_same_cell(scored[j], scored[c]) for c in chosen) and \
                any(float(uvecs[j] @ uvecs[c]) >= REDUNDANT_COS for c in chosen):
            continue
        if chosen and scored[j].row is not None and scored[j].period_fit < 0 and asked.explicit:
            continue  # never add another period's figure as a runner-up
        if chosen and scored[j].row is None and len(units[j].text.split()) > MAX_QUOTE_WORDS:
            continue  # a runner-up that must be cut (a table read as a run of words) is no clear fact
        chosen.append(j)
        facts.add(fact)
    parts, citations = [], []
    for j in chosen:
        u, sc = units[j], scored[j]
        hit = hits[u.passage - 1]
        if sc.row is not None and sc.cell is not None:
            shown, quote = row_statement(sc.row, sc.cell), u.text
        else:
            shown, quote = trim_quote(u.text, question)
        parts.append(f"{shown} [{u.passage}]")
        citations.append(Citation(u.passage, hit.source, hit.chunk.page, hit.chunk.id, quote, True, False,
                                  1.0, shown))
    return " ".join(parts), citations, None, settles(question, asked, scored[top])


SETTLING_LABEL_FIT = 0.5  # chosen on the financial tune/dev/dev2 sets (see the README's issue 10)


def settles(question: str, asked: Period, lead: UnitScore) -> str | None:
    """Why the extracted answer can stand without a language model, or None.

    A question for a figure that names its period, answered by a table row whose label names
    the asked metric and that has a column for that period: the answer is the cell with its
    row label, column header and unit as printed, which a model can only restate or get wrong
    (the local 1.5B model gave another period's figure for 17% of such questions). "Why did
    revenues change?" asks for reasons, which a row does not give."""
    if not asked.explicit or lead.row is None or lead.cell is None or _NOT_A_FIGURE.match(question):
        return None
    if lead.period_fit > 0 and lead.label_fit >= SETTLING_LABEL_FIT:
        return ("a table row names the asked metric and has a column for the asked period, so its figure is "
                "quoted as printed")
    return None


_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")  # not the 2 of "Q2"
_MARKER = re.compile(r"\[\d+\]")


def numbers(text: str) -> set[str]:
    """Figures as printed, without thousands separators or citation markers: "$6,497.5 [2]" ->
    {"6497.5"}. (The evaluation has its own reader, so that the measure shares no code with
    what it measures.)"""
    return {m.group().replace(",", "").rstrip(".") for m in _NUMBER.finditer(_MARKER.sub(" ", text))}


def other_period_figures(question: str, text: str, units: list[Sentence], hits) -> list[str]:
    """The cells ("Three Months Ended June 30 2023: $0.23") whose figure `text` (a model's
    answer) gives, when those cells are another period's column of a row of the asked metric
    that has a column for the asked period, or sentences about another period that state them:
    another period's figure given as the asked one. Empty when the text also gives the asked
    column's figure of such a row, or a sentence not about another period states it."""
    asked = question_period(question)
    # "June 30, 2023" asked is no figure; a single digit matches too much by chance
    given = {x for x in numbers(text) - numbers(question) if len(x) > 1}
    if not asked.explicit or not given:
        return []
    wrong: list[str] = []
    scored = unit_features(question, units, passage_headings(hits), passage_calendars(hits), passage_reports(hits))
    for u, sc in zip(units, scored):
        if sc.row is None:
            if numbers(u.text) & given:
                if sc.period_fit > -1:
                    return []
                wrong.append(trim_quote(u.text, question, 25)[0])  # a sentence about another period
            continue
        if sc.cell is None or sc.period_fit <= 0 or sc.label_fit <= 0:
            continue
        for i, (header, value) in enumerate(sc.row.cells):
            if numbers(value) & given:
                if i == sc.cell:
                    return []
                wrong.append(f"{header}: {value}")
    return wrong


def _described(asked: Period, question: str, hit) -> str:
    """The asked period in words; a fiscal one also in calendar terms when the document's
    fiscal calendar is known: "second quarter of fiscal 2024 (three months ended July 2023)"."""
    dated = on_calendar(asked, question, hit.calendar)
    named = quarters(question)
    words = asked.describe()
    if asked.fiscal and asked.year and len(named) == 1:
        words = f"{('first', 'second', 'third', 'fourth')[named.pop() - 1]} quarter of fiscal {asked.year}"
    return words if dated == asked else f"{words} ({dated.describe()})"


def _closest_passage(u: Sentence, hit) -> str:
    """The closest passage, said to be about another period; for undated prose in a filing,
    which period: the one its filing reports."""
    quote = trim_quote(u.text, u.text, 40)[0]
    if hit.period and not names_period(u.text):
        reported = header_period(hit.period).describe()
        period = f"the period {reported}" if reported.startswith("ended") else f"the {reported}"
        return f"The closest passage is from a report on {period}: \"{quote}\""
    return f"The closest passage is about another period: \"{quote}\""


def _other_period(asked: Period, u: Sentence, sc: UnitScore, hits, question: str = ""
                  ) -> tuple[str, list[Citation], str]:
    """The best unit is about another period: say the asked one is not found and show what
    the documents do say, as such, rather than pass it off as the answer."""
    hit = hits[u.passage - 1]
    if sc.row is not None:
        what = f"{sc.row.label} is reported for: {'; '.join(covered_periods(sc.row)) or 'other periods'}"
    else:
        what = _closest_passage(u, hit)
    text = (f"The documents do not report this for the {_described(asked, question, hit)} asked about. "
            f"{what} [{u.passage}].")
    cite = Citation(u.passage, hit.source, hit.chunk.page, hit.chunk.id, u.text if sc.row is not None
                    else trim_quote(u.text, u.text, 40)[1], True, False, 1.0, text)
    return text, [cite], f"the best passage is about another period than the asked {asked.describe()}"


def _year_missing(asked: Period, units: list[Sentence], order: list[int], hits
                  ) -> tuple[str, list[Citation], str] | None:
    """The asked year appears nowhere in the passages found, which name other years: the
    documents are about other periods (fiscal 2020 asked of a 10-K covering fiscal 2021-2023)."""
    if asked.year is None:
        return None
    ok = asked.calendar_years()
    # headings name the document, its year often glued to letters ("MCDONALDS 2023Q2 EARNINGS")
    texts = [u.text for u in units] + [_GLUED.sub(" ", h.chunk.heading or "") for h in hits]
    found = {int(y) for t in texts for y in YEAR.findall(t)}
    if not found or found & ok:
        return None
    u = units[order[0]]
    hit = hits[u.passage - 1]
    years = ", ".join(str(y) for y in sorted(found) if 1990 <= y <= asked.year + 5)
    text = (f"The documents found do not mention {asked.describe()}. The passages closest to the question are "
            f"about {years or 'other years'} [{u.passage}].")
    quote = trim_quote(u.text, u.text, 40)[1]
    cite = Citation(u.passage, hit.source, hit.chunk.page, hit.chunk.id, quote, True, False, 1.0, text)
    return text, [cite], f"the asked year ({asked.year}) is not named in any passage found"


_NIL = re.compile(r"^\$?\s*[—–-]+$")


def _unfilled_from(row: Row) -> int:
    """Where a row's trailing dashes begin: quarters not reported yet in a quarterly table
    ("Q1 $2,510 | Q2 $2,540 | Q3 $— | Q4 $—"). A dash before a figure stays a zero."""
    n = len(row.cells)
    while n > 0 and _NIL.match(row.cells[n - 1][1].strip()):
        n -= 1
    return n if n > 0 else len(row.cells)  # a row of dashes only: zeros throughout


def covered_periods(row: Row) -> list[str]:
    """The periods a row has figures for: its column headers, change columns and columns not
    filled yet left out, once each."""
    return list(dict.fromkeys(h for h, _ in row.cells[:_unfilled_from(row)] if h and not header_period(h).change))


def _same_cell(a: UnitScore, b: UnitScore) -> bool:
    """Whether two rows' chosen cells have the same row label and column header."""
    if a.row is None or b.row is None or a.cell is None or b.cell is None:
        return False
    return (a.row.label, a.row.cells[a.cell][0]) == (b.row.label, b.row.cells[b.cell][0])


def _fact(u: Sentence, sc: UnitScore) -> str:
    """What a unit says, to tell a runner-up that says something else: a row's figure (another
    row with the same figure, "GAAP earnings per share-diluted: $10.04" under "Earnings per
    common share-diluted: $10.04", repeats it), or a sentence's words."""
    if sc.row is not None and sc.cell is not None:
        return "figure " + re.sub(r"[\s$]", "", sc.row.cells[sc.cell][1])
    return " ".join(u.text.lower().split())


def _unreported(question: str, asked: Period, units: list[Sentence], scored: list[UnitScore], order: list[int],
                hits) -> tuple[str, list[Citation], str] | None:
    """When the best rows for the asked metric have no column for the asked period and no
    sentence mentions it: say so, and name the periods the documents do report."""
    rows = [j for j in order if scored[j].row is not None and scored[j].label_fit >= 0.5]
    if not rows:
        return None
    if any(scored[j].period_fit > -1 for j in rows):
        return None
    if any(scored[j].row is None and ((asked.year is not None and str(asked.year) in units[j].text)
                                      or scored[j].of_asked_period) for j in order[:3]):
        return None  # a top sentence talks about the asked year, or its filing reports the asked period
    j = rows[0]
    u, row = units[j], scored[j].row
    assert row is not None
    hit = hits[u.passage - 1]
    text = (f"The documents do not report {row.label} for the {_described(asked, question, hit)} asked about. "
            f"They report it for: {'; '.join(covered_periods(row)) or 'other periods'} [{u.passage}].")
    cite = Citation(u.passage, hit.source, hit.chunk.page, hit.chunk.id, u.text, True, False, 1.0, text)
    return text, [cite], f"the asked period ({asked.describe()}) is not among the columns of the best rows"


__all__ = ["MAX_EMBEDDED_UNITS", "absent_name", "absent_subject", "acronyms", "NOTICE", "embed_text", "extract",
           "extract_settled", "metric_terms", "numbers", "other_period_figures", "period_terms", "prose_disagrees",
           "row_statement", "rerank_by_units", "score_units", "settles", "strong_evidence", "strong_row",
           "shortlist", "trim_quote", "unit_features"]
