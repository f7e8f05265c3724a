"""Follow-up questions become standalone queries before retrieval.

With an LLM: the `rewrite-v1` prompt, output checked (one line, not empty, not absurdly
long), else the heuristic. Without: a follow-up (pronoun reference, "what about ...",
or very short) borrows the content words of the previous question it does not have.
"""
from __future__ import annotations

import re

from rag.answer.periods import MONTH_NAMES, Period, question_period
from rag.store.sparse import analyse

_REFERS_BACK = re.compile(r"\b(it|its|they|them|their|this|that|these|those|he|she|his|her|him|there|"
                          r"the same|the former|the latter)\b", re.I)
_CONTINUES = re.compile(r"^\s*(and|also|what about|how about|and what|why|how so|what else|which one)\b", re.I)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'\-.]*[A-Za-z0-9]|[A-Za-z0-9]")


def _refers_back(question: str) -> bool:
    """A pronoun that points at the previous question; "IT" (support, department) is no "it"."""
    return any(not (m.group().isupper() and len(m.group()) > 1) for m in _REFERS_BACK.finditer(question))


def looks_like_follow_up(question: str) -> bool:
    if _refers_back(question) or len(analyse(question)) <= 1:
        return True
    lead = _CONTINUES.search(question)
    # "Why did eBay's net revenues change ...?" names its own subject: a new question, not a
    # follow-up to borrow the previous one's words (and period) for
    return bool(lead) and not (lead.group(1).lower() == "why" and subject_of(question))


_SUBJECT_WORD = re.compile(r"^[A-Za-z0-9&.\-]*[A-Z][A-Za-z0-9&.\-]*(?:['’]s)?$")
_LEAD = re.compile(r"^\s*(?:and|also|so|ok(?:ay)?|then)\b[\s,]*", re.I)
_WH_AUX = re.compile(r"^(?P<wh>(?:how|what|which|why|when|where|who)(?: (?:much|many))?) "
                     r"(?P<aux>did|does|do|was|were|is|are|has|have|had|will|would|can) (?P<rest>.+)$", re.I)
_NOT_SUBJECT = re.compile(r"^(?:what|how|which|why|when|where|who|and|the|in|for|q[1-4]|fy\d*|fiscal|gaap|"
                          r"non-gaap|eps|ebitda|i|us|u\.s\.|" + "|".join(MONTH_NAMES) + r")$", re.I)
_PERIOD_PHRASE = re.compile(
    r"\s*\b(?:in|for|during|of|over)?\s*(?:the\s+)?(?:(?:first|second|third|fourth|1st|2nd|3rd|4th)\s+quarter|"
    r"q[1-4]|(?:first\s+)?(?:three|six|nine|twelve|3|6|9|12)\s+months(?:\s+ended\s+\w+\s+\d{1,2},?)?|first half|full year|"
    r"fiscal year|year)(?:\s+(?:of\s+)?(?:fiscal\s+|fy\s*)?(?:19|20)\d\d)?\b|"
    r"\s*\b(?:in|for|during)?\s*(?:fiscal\s+|fy\s*)?(?:19|20)\d\d\b", re.I)
_THAT_PERIOD = re.compile(r"\s*\b(?:in|for|during)\s+(?:that|the same|this)\s+(?:quarter|period|year|half)\b", re.I)
_YEAR_EARLIER = re.compile(r"\s*\b(?:a year (?:earlier|before|ago)|(?:in )?the (?:prior|previous) year|last year)\b", re.I)
_LEAD_ONLY = re.compile(r"^(?:and |what about |how about )", re.I)
_ONLY_PERIOD = re.compile(r"^(?:and |what about |how about )?(?:in |for |during |over )?(?:the )?", re.I)


def subject_of(question: str) -> str | None:
    """The named subject of a question: its run of capitalised words ("Ulta Beauty's",
    "eBay's", "PG&E"), period words and question words left out."""
    words = question.rstrip("?.! ").split()
    best: list[str] = []
    run: list[str] = []
    for i, w in enumerate(words + [""]):
        bare = w.strip(",;:()\"")
        if i == 0 and not re.search(r"['’]s$|^.+[A-Z]", bare):
            continue  # "Tell me about ...": a capital that only starts the sentence
        if bare and _SUBJECT_WORD.match(bare) and not _NOT_SUBJECT.match(bare.rstrip("'’s")):
            run.append(bare)
            continue
        if run and not best:
            best = run
        run = []
    return " ".join(best) or None


def owner_of(question: str) -> str | None:
    """The subject's owner, the company whose documents answer: "McDonald's" of "McDonald's
    International Operated Markets", "Salesforce's" of "Salesforce's Slack"; else the subject."""
    subject = subject_of(question)
    owner = re.match(r"^.*?['’]s\b", subject or "")
    return owner.group() if owner else subject


def _possessive(subject: str) -> str:
    return subject if subject.endswith(("'s", "’s")) else f"{subject}'s"


def _period_only(question: str) -> bool:
    """A follow-up that only moves the period: "And for the first six months?", "What about 2022?"."""
    rest = _PERIOD_PHRASE.sub(" ", _ONLY_PERIOD.sub("", question.strip().rstrip("?.! ")))
    return bool(_PERIOD_PHRASE.search(question)) and not analyse(re.sub(r"\b(about|and|what|how)\b", " ", rest, flags=re.I))


# "How much of that was in the U.S. segment?", "And how much of it came from subscriptions?"
_PART_OF = re.compile(r"^(?:and\s+)?how (?:much|many) of (?:that|this|it|those|these|them|the total)\s+"
                      r"(?:was|were|is|are|came|comes|went)\s+(?P<rest>(?:in|from|for|at|by|to)\s+.+)$", re.I)


def heuristic_rewrite(question: str, history: list[str]) -> str:
    """`history`: earlier standalone user questions, oldest first.

    - A follow-up that only changes the period takes the previous question and swaps its
      period: "And for the first six months?" after "What were eBay's net revenues in the
      second quarter of 2023?" -> "What were eBay's net revenues for the first six months of 2023?".
    - A follow-up with its own predicate keeps the previous question's subject and drops its
      predicate: "And how did comparable sales change?" after "What was Ulta Beauty's net sales
      in fiscal 2023?" -> "How did Ulta Beauty's comparable sales change?".
    - "How much of that was in the U.S. segment?" asks the previous question for a part:
      "What were McDonald's assets at the end of 2022 in the U.S. segment?" (a part, so not the
      previous question's "total").
    - Otherwise it borrows the previous question's content words it does not have."""
    if not history or not looks_like_follow_up(question):
        return question
    prev = history[-1]
    part = _PART_OF.match(question.strip())
    if part:  # without "total": "total revenues ... in Europe" still led with the total row
        whole = re.sub(r"\btotal\s+(?=\w)", "", prev.rstrip("?.! "), flags=re.I)
        return f"{whole} {part.group('rest').rstrip('?.! ')}?"
    q = _that_period(question.strip(), prev)
    if _period_only(q):
        new_period = _LEAD_ONLY.sub("", q.rstrip("?.! ")).strip()
        base = _PERIOD_PHRASE.sub("", prev.rstrip("?.! ")).strip()
        years = re.findall(r"\b(?:19|20)\d\d\b", prev)
        if years and not re.search(r"\b(?:19|20)\d\d\b", new_period):
            # "the fourth quarter" after "the third quarter of fiscal 2023" is fiscal 2023's
            year = f"fiscal {years[-1]}" if re.search(rf"\bfiscal\s+{years[-1]}\b", prev, re.I) else years[-1]
            if re.search(r"\bof the year\b", new_period, re.I):
                new_period = re.sub(r"\bof the year\b", f"of {year}", new_period, flags=re.I)
            else:
                new_period += f" of {year}"
        prep = "" if re.match(r"^(in|for|during|over)\b", new_period, re.I) else "for "
        if not re.match(r"^(the|fiscal|fy|q[1-4]|(19|20)\d\d)\b", new_period, re.I) and prep:
            new_period = "the " + new_period
        return f"{base} {prep}{new_period}?"
    fragment = _LEAD.sub("", q).rstrip("?.! ")
    swapped = _swap_sibling(prev, fragment) or _swap_phrase(prev, fragment)
    if swapped:  # "And international?" after "What was eBay's U.S. gross merchandise volume ...?"
        return swapped
    subject = subject_of(prev)
    item = _other_item(fragment)
    period = _PERIOD_PHRASE.search(prev)
    if item and subject and period and period.group().strip():
        # "How about general and administrative?" after "What did eBay spend on product
        # development in Q2 2023?": the same question about another line
        return f"What was {_possessive(subject)} {item} {period.group().strip()}?"
    if subject and subject_of(q) is None:
        body = _LEAD.sub("", q).strip()
        body = body[:1].upper() + body[1:]
        m = _WH_AUX.match(body.rstrip("?"))
        if m:
            rest = re.sub(r"^(?:the|its|their|his|her)\s+", "", m.group("rest"), flags=re.I)
            rest = re.sub(r"^(?:it|they|he|she)\b\s*", "", rest, flags=re.I) if rest.split()[0].lower() in {
                "it", "they", "he", "she"} else rest
            if rest:
                return f"{m.group('wh')} {m.group('aux')} {_possessive(subject)} {rest}?"
        if not re.match(r"^(?:how|what|which|why|when|where|who|is|are|was|were|did|does|do)\b", body, re.I):
            # a fragment ("And on a non-GAAP basis?"): the previous question, so qualified
            return f"{prev.rstrip('?.! ')}, {body[:1].lower() + body[1:].rstrip('?.! ')}?"
        return f"{body.rstrip('?')} ({subject})?"
    have = set(analyse(question))
    borrowed = []
    for word in _WORD.findall(prev):
        stem = analyse(word)
        if stem and stem[0] not in have and word not in borrowed:
            borrowed.append(word)
            have.add(stem[0])
    return f"{question.rstrip()} ({' '.join(borrowed)})" if borrowed else question


def _that_period(q: str, prev: str) -> str:
    """ "in that quarter", "for the same period" become the previous question's period, "the same
    quarter a year earlier" that period one year back."""
    that = _THAT_PERIOD.search(q)
    period = _PERIOD_PHRASE.search(prev)
    if not that or not period or not period.group().strip():
        return q
    phrase = period.group().strip()
    if _YEAR_EARLIER.search(q):
        phrase = re.sub(r"\b(?:19|20)\d\d\b", lambda m: str(int(m.group()) - 1), phrase)
        q = _YEAR_EARLIER.sub("", q)
        that = _THAT_PERIOD.search(q)
        if that is None:
            return q
    return re.sub(r"\s+", " ", q[:that.start()] + " " + phrase + q[that.end():]).replace(" ?", "?").strip()


_ABOUT = re.compile(r"^(?:how|what) about\s+(?:the\s+)?", re.I)
_NOT_ITEM = re.compile(r"^(?:in|on|for|from|at|during|over|by|with|without|excluding|including|as|per|"
                       r"it|its|that|this|those|these|them|they)\b", re.I)


def _other_item(fragment: str) -> str | None:
    """The line item a "How about X?" follow-up asks instead of the previous one ("general and
    administrative"); None when X is a period, a qualifier of the kind `_SIBLINGS` knows (that
    narrows the previous question, it does not replace its line), or not a bare noun phrase."""
    if not _ABOUT.match(fragment):
        return None
    item = _ABOUT.sub("", fragment).strip()
    if not item or _NOT_ITEM.match(item) or _PERIOD_PHRASE.fullmatch(item) or not analyse(item):
        return None
    if any(re.search(rf"(?<![\w-])(?:{group})(?![\w-])", item, re.I) for group in _SIBLINGS):
        return None
    return item


_PREP_PHRASE = r"(?P<prep>in|from|for)\s+(?P<what>(?!the\s+(?:same|prior|previous)\b)[^,?]+?)"


def _swap_phrase(prev: str, fragment: str) -> str | None:
    """ "And in marketing and sales?" after "... expense did Salesforce record in research and
    development for the nine months ...?": the previous question with its "in ..." phrase (not its
    period) replaced by the fragment's."""
    m = re.fullmatch(_PREP_PHRASE, fragment.strip(), re.I)
    if not m or _PERIOD_PHRASE.search(m.group("what")):
        return None
    for old in re.finditer(rf"\b{m.group('prep')}\s+(?P<what>.+?)(?=\s+(?:in|for|during|over|as of|at)\b|[,?]|$)",
                           prev, re.I):
        if not _PERIOD_PHRASE.search(old.group("what")) and not _REFERS_BACK.search(old.group("what")):
            return f"{prev[:old.start('what')]}{m.group('what')}{prev[old.end('what'):]}".rstrip("?.! ") + "?"
    return None


# Qualifiers that stand in for each other in reports: a fragment naming one of them asks the
# previous question about it instead of the one the previous question named
_SIBLINGS = [
    r"U\.S\.|US|United States|domestic|international|Americas|EMEA|Europe|Asia[- ]Pacific|APAC|"
    r"International Operated Markets|International Developmental Licensed Markets",
    r"non-GAAP|GAAP|adjusted|core",
    r"basic|diluted",
]


def _swap_sibling(prev: str, fragment: str) -> str | None:
    """The previous question with its qualifier replaced by the fragment's, when the fragment is
    (about) one qualifier of the same kind: "international" for "U.S.", "diluted" for "basic"."""
    frag = re.sub(r"^(?:(?:for|in|on|the|a|an|what about|how about)\s+)+|\s+(?:basis|segment|figures?|ones?)$", "",
                  fragment.strip(), flags=re.I).strip()
    for group in _SIBLINGS:
        whole = re.compile(rf"(?<![\w-])(?:{group})(?![\w-]|\.\w)", re.I)
        if not whole.fullmatch(frag):
            continue
        old = next((m for m in whole.finditer(prev) if m.group().lower() != frag.lower()), None)
        if old is None:
            return None
        return f"{prev[:old.start()]}{frag}{prev[old.end():]}".rstrip("?.! ") + "?"
    return None


def check_rewrite(text: str, question: str, history: list[str] | None = None) -> str | None:
    """The model's rewrite as one line, or None when it is unusable: empty, far too long, a
    refusal, or (given the history) one that loses what the heuristic rewrite keeps: the
    period and the subject. The local 1.5B model turned "the third quarter of fiscal 2023"
    into "the third quarter", a calendar quarter of no year."""
    line = text.strip().splitlines()[0].strip().strip('"') if text.strip() else ""
    if not line or len(line) > max(300, 3 * len(question)) or "NOT_IN_DOCUMENTS" in line:
        return None
    if history and not keeps_context(line, question, history):
        return None
    return line


KEEP_SHARE = 0.8  # of the follow-up's own terms a model's rewrite must keep


def keeps_context(rewrite: str, question: str, history: list[str]) -> bool:
    """The rewrite asks for the period the heuristic rewrite asks for, names the subjects of
    the question and of the turn before it, and keeps the follow-up's own words (Qwen 1.5B
    rewrote "And excluding the restructuring charges, on a non-GAAP basis?" without "non-GAAP")."""
    own = set(analyse(question))
    if own and len(own & set(analyse(rewrite))) < KEEP_SHARE * len(own):
        return False
    def gist(p: Period) -> tuple:  # "the fourth quarter of fiscal 2023" may come with or without its month
        return p.months, p.year, p.quarter, p.prior, p.change

    if gist(question_period(rewrite)) != gist(question_period(heuristic_rewrite(question, history))):
        return False
    words = set(analyse(rewrite))
    return all(set(analyse(s)) <= words for s in (owner_of(question), owner_of(history[-1])) if s)


__all__ = ["check_rewrite", "heuristic_rewrite", "keeps_context", "looks_like_follow_up"]
