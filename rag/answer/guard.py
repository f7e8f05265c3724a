"""Text inside documents is data. Instruction-like sentences are withheld from the model.

The prompt already tells the model that passages are data; small models still obey (or
parrot) "ignore all previous instructions...". So sentences that address an assistant -
override attempts, role changes, demands for an exact reply - are replaced by a marker
before the passages reach the model, and are never picked as extractive quotes. Each one
withheld is reported (source, page, sentence) so nothing is hidden from the user.
"""
from __future__ import annotations

import re

from ingest.chunk import split_sentences

WITHHELD = "[instruction-like text withheld]"

_PATTERNS = [
    re.compile(r"\b(ignore|disregard|forget|override)\b[^.!?\n]{0,40}\b(previous|prior|above|earlier|preceding|all|any|your)\b"
               r"[^.!?\n]{0,30}\b(instructions?|prompts?|rules|directions|guidelines|messages?)\b", re.I),
    re.compile(r"\b(system prompt|developer mode|jailbreak|you are now|from now on,? you|new instructions)\b", re.I),
    re.compile(r"\b(?i:reply|respond|answer|say|output|print|write)\s+(?i:only|exactly|just)(\s+(?i:with|the word))?\s+"
               r"[\"'“]?[A-Z]{3,}\b"),
    re.compile(r"\b(do not|don't|never)\s+(cite|give citations|use the (passages|documents|context))\b", re.I),
]


def is_instruction(sentence: str) -> bool:
    return any(p.search(sentence) for p in _PATTERNS)


def neutralise(text: str) -> tuple[str, list[str]]:
    """(text with instruction-like sentences replaced, the sentences withheld)."""
    withheld: list[str] = []
    parts: list[str] = []
    cur = 0
    for s, e in split_sentences(text):
        if is_instruction(text[s:e]):
            parts.append(text[cur:s])
            parts.append(WITHHELD)
            withheld.append(" ".join(text[s:e].split()))
            cur = e
    parts.append(text[cur:])
    return "".join(parts), withheld


__all__ = ["WITHHELD", "is_instruction", "neutralise"]
