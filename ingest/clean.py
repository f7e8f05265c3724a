"""Text clean-up applied to every page before chunking (offsets refer to the cleaned text)."""
from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff\ufffe]")
_HYPHEN_BREAK = re.compile(r"(?<=[a-z])-\n(?=[a-z])")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u3000]+")
_TRAILING = re.compile(r" +\n")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_LEADERS = re.compile(r"(?:\. ?){4,}|_{4,}|-{4,}")  # table-of-contents dot leaders, rules


def clean_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)  # also unfolds ligatures such as "ﬁ"
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _HYPHEN_BREAK.sub("", text)
    text = _LEADERS.sub(" ... ", text)
    text = _SPACES.sub(" ", text)
    text = _TRAILING.sub("\n", text)
    text = _MANY_NEWLINES.sub("\n\n", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()
