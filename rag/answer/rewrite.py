"""Follow-up questions become standalone queries before retrieval.

With an LLM: the `rewrite-v1` prompt, output checked (one line, not empty, not absurdly
long), else the heuristic. Without: a follow-up (pronoun reference, "what about ...",
or very short) borrows the content words of the previous question it does not have.
"""
from __future__ import annotations

import re

from rag.store.sparse import analyse

_REFERS_BACK = re.compile(r"\b(it|its|they|them|their|this|that|these|those|he|she|his|her|him|there|"
                          r"the same|the former|the latter)\b", re.I)
_CONTINUES = re.compile(r"^\s*(and|also|what about|how about|and what|why|how so|what else|which one)\b", re.I)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'\-.]*[A-Za-z0-9]|[A-Za-z0-9]")


def looks_like_follow_up(question: str) -> bool:
    return bool(_REFERS_BACK.search(question) or _CONTINUES.search(question) or len(analyse(question)) <= 1)


def heuristic_rewrite(question: str, history: list[str]) -> str:
    """`history`: earlier standalone user questions, oldest first."""
    if not history or not looks_like_follow_up(question):
        return question
    have = set(analyse(question))
    borrowed = []
    for word in _WORD.findall(history[-1]):
        stem = analyse(word)
        if stem and stem[0] not in have and word not in borrowed:
            borrowed.append(word)
            have.add(stem[0])
    return f"{question.rstrip()} ({' '.join(borrowed)})" if borrowed else question


def check_rewrite(text: str, question: str) -> str | None:
    line = text.strip().splitlines()[0].strip().strip('"') if text.strip() else ""
    if not line or len(line) > max(300, 3 * len(question)) or "NOT_IN_DOCUMENTS" in line:
        return None
    return line


__all__ = ["check_rewrite", "heuristic_rewrite", "looks_like_follow_up"]
