"""The embedded answerer: no LLM, no network. It quotes the best-supported sentences.

Sentences of the reranked passages are scored against the question (MiniLM cosine plus a
share of the question's content terms); the best one and any close runners-up from other
places are returned verbatim, each cited with its passage number. A quote is its own
evidence, so these citations are verified by construction.
"""
from __future__ import annotations

import numpy as np

from rag.answer.citations import Citation
from rag.answer.support import Sentence, lexical_support

LEXICAL_WEIGHT = 0.25
RUNNER_UP_MARGIN = 0.08
MAX_SENTENCES = 3
REDUNDANT_COS = 0.9

NOTICE = ("Extractive answer: these sentences are quoted from your documents, not written by a "
          "language model. To get written answers, connect an LLM: set RAG_LLM_BASE_URL (any "
          "OpenAI-compatible server) or run `make llm` for the local one.")


def sentence_scores(question: str, qvec: np.ndarray, sentences: list[Sentence], svecs: np.ndarray) -> np.ndarray:
    if not sentences:
        return np.zeros(0, dtype=np.float32)
    lex = np.array([lexical_support(question, s.text) for s in sentences], dtype=np.float32)
    return svecs @ qvec + LEXICAL_WEIGHT * lex


def extract(question: str, qvec: np.ndarray, sentences: list[Sentence], svecs: np.ndarray, hits
            ) -> tuple[str, list[Citation]]:
    """The answer text with [n] markers, and its citations."""
    scores = sentence_scores(question, qvec, sentences, svecs)
    if scores.size == 0:
        return "", []
    order = np.argsort(-scores, kind="stable")
    chosen: list[int] = []
    for j in order.tolist():
        if chosen and (scores[j] < scores[chosen[0]] - RUNNER_UP_MARGIN or len(chosen) >= MAX_SENTENCES):
            break
        if any(float(svecs[j] @ svecs[c]) >= REDUNDANT_COS for c in chosen):
            continue
        chosen.append(j)
    parts, citations = [], []
    for j in chosen:
        s = sentences[j]
        hit = hits[s.passage - 1]
        parts.append(f"{s.text} [{s.passage}]")
        citations.append(Citation(s.passage, hit.source, hit.chunk.page, hit.chunk.id, s.text, True, False,
                                  1.0, s.text))
    return " ".join(parts), citations


__all__ = ["NOTICE", "extract", "sentence_scores"]
