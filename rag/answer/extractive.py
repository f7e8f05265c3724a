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
from dataclasses import dataclass

import numpy as np

from ingest.pdf_layout import Row, parse_row
from rag.answer.citations import Citation
from rag.answer.periods import PERIOD_WORDS, Period, agreement, header_period, question_period
from rag.answer.support import Sentence, lexical_support
from rag.store.sparse import analyse

LEXICAL_WEIGHT = 0.25
LABEL_WEIGHT = 0.35      # a row whose label names the asked metric
PERIOD_WEIGHT = 0.25     # ... and has a column for the asked period
WRONG_PERIOD_PENALTY = 0.3
RUNNER_UP_MARGIN = 0.08
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


def metric_terms(question: str) -> set[str]:
    """Content terms of the question that are not period words: the metric and the subject."""
    return set(analyse(PERIOD_WORDS.sub(" ", question)))


def choose_cell(row: Row, asked: Period, latest_year: int | None) -> tuple[int | None, float]:
    """The column to answer from and its period agreement (-1 when every column disagrees)."""
    best, fit = None, -2.0
    for i, (header, _value) in enumerate(row.cells):
        a = agreement(asked, header_period(header), latest_year)
        if a > fit:
            best, fit = i, a
    return best, fit


def score_units(question: str, qvec: np.ndarray, units: list[Sentence], uvecs: np.ndarray) -> list[UnitScore]:
    asked = question_period(question)
    terms = metric_terms(question)
    latest = _latest_year(units)
    out = []
    for j, u in enumerate(units):
        base = float(uvecs[j] @ qvec) + LEXICAL_WEIGHT * lexical_support(question, u.text)
        row = parse_row(u.text)
        if row is None:
            if asked.year and re.search(r"\b(?:19|20)\d\d\b", u.text) and str(asked.year) not in u.text:
                base -= WRONG_PERIOD_PENALTY / 2  # a sentence about other years only
            out.append(UnitScore(base))
            continue
        label_terms = set(analyse(row.label))
        label_fit = len(terms & label_terms) / len(label_terms) if label_terms else 0.0
        cell, fit = choose_cell(row, asked, latest)
        s = base + LABEL_WEIGHT * label_fit
        s += PERIOD_WEIGHT * max(fit, 0.0) if fit > -1 else -WRONG_PERIOD_PENALTY
        out.append(UnitScore(s, row, cell, fit, label_fit))
    return out


def _latest_year(units: list[Sentence]) -> int | None:
    years = [int(y) for u in units for y in re.findall(r"\b((?:19|20)\d\d)\b", u.text)]
    return max(years) if years else None


def row_statement(row: Row, cell: int) -> str:
    header, value = row.cells[cell]
    unit = f" ({row.unit})" if row.unit else ""
    return f"{row.label}, {header}: {value}{unit}" if header else f"{row.label}: {value}{unit}"


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
    if not units:
        return "", [], None
    asked = question_period(question)
    scored = score_units(question, qvec, units, uvecs)
    order = sorted(range(len(units)), key=lambda j: -scored[j].score)
    top = order[0]

    if asked.explicit:
        declined = _unreported(question, asked, units, scored, order, hits)
        if declined is not None:
            return declined

    chosen: list[int] = []
    facts: set[str] = set()
    for j in order:
        if len(chosen) >= MAX_UNITS or scored[j].score < scored[top].score - RUNNER_UP_MARGIN:
            break
        fact = _fact(units[j], scored[j])
        if fact in facts or any(float(uvecs[j] @ uvecs[c]) >= REDUNDANT_COS for c in chosen):
            continue
        if chosen and scored[j].row is not None and scored[j].period_fit < 0 and asked.explicit:
            continue  # never add another period's figure as a runner-up
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
    return " ".join(parts), citations, None


def _fact(u: Sentence, sc: UnitScore) -> str:
    if sc.row is not None and sc.cell is not None:
        return f"{sc.row.label.lower()}|{sc.row.cells[sc.cell][1]}"
    return " ".join(u.text.lower().split())


def _unreported(question: str, asked: Period, units: list[Sentence], scored: list[UnitScore], order: list[int],
                hits) -> tuple[str, list[Citation], str] | None:
    """When the best rows for the asked metric have no column for the asked period and no
    sentence mentions it: say so, and name the periods the documents do report."""
    rows = [j for j in order[:8] if scored[j].row is not None and scored[j].label_fit >= 0.5]
    if not rows:
        return None
    if any(scored[j].period_fit > -1 for j in rows):
        return None
    if asked.year is not None and any(scored[j].row is None and str(asked.year) in units[j].text
                                      for j in order[:3]):
        return None  # a top sentence talks about the asked year: let it answer
    j = rows[0]
    u, row = units[j], scored[j].row
    assert row is not None
    covered = []
    for header, _ in row.cells:
        p = header_period(header)
        if not p.change and header and header not in covered:
            covered.append(header)
    hit = hits[u.passage - 1]
    text = (f"The documents do not report {row.label} for the {asked.describe()} asked about. "
            f"They report it for: {'; '.join(covered) or 'other periods'} [{u.passage}].")
    cite = Citation(u.passage, hit.source, hit.chunk.page, hit.chunk.id, u.text, True, False, 1.0, text)
    return text, [cite], f"the asked period ({asked.describe()}) is not among the columns of the best rows"


__all__ = ["NOTICE", "embed_text", "extract", "metric_terms", "row_statement", "score_units", "trim_quote"]
