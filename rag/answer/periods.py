"""Periods in questions and in table column headers, and whether they agree.

"What were eBay's net revenues in the second quarter of 2023?" asks for a three-month period
ending in June 2023; the column "Six Months Ended June 30 2023" is another period, and so is
"Three Months Ended June 30 2022". A figure from a column whose period disagrees with the
question's is never given as the answer to it.

A period here is (months, year, end month, fiscal): any part may be unknown (None).
"""
from __future__ import annotations

import re
import unicodedata
from calendar import monthrange
from dataclasses import dataclass

MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
               "november", "december")
_MONTHS = {m: i for i, m in enumerate(MONTH_NAMES, 1)}
_MONTHS |= {m[:3]: i for m, i in _MONTHS.items() if m != "may"} | {"sept": 9}  # "Headcount Dec 2025"
_ORDINAL = {"first": 1, "second": 2, "third": 3, "fourth": 4, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4}
_YEAR = re.compile(r"\b(?:fy|fiscal(?: year)?|calendar(?: year)?)?\s*'?((?:19|20)\d\d)\b|\bfy\s?'?(\d\d)\b", re.I)
YEAR = re.compile(r"\b((?:19|20)\d\d)\b")  # a bare calendar year
_QUARTER = re.compile(r"\bq([1-4])\b|\b(first|second|third|fourth|1st|2nd|3rd|4th)[- ]quarter\b", re.I)
_DURATION = [
    (re.compile(r"\b(three|3)[- ]months?\b|\bquarters? ended\b|\bquarterly\b|\bthe quarter\b|\bq[1-4]\b|"
                r"\b(?:first|second|third|fourth|1st|2nd|3rd|4th)[- ]quarter\b|\b13 weeks\b|\b12 weeks\b", re.I), 3),
    (re.compile(r"\b(six|6)[- ]months?\b|\bfirst half\b|\bhalf[- ]year\b|\bh1\b|\b2[46] weeks\b", re.I), 6),
    (re.compile(r"\b(nine|9)[- ]months?\b|\b3[69] weeks\b", re.I), 9),
    (re.compile(r"\b(twelve|12)[- ]months?\b|\bfull[- ]year\b|\bfiscal year\b|\byears? ended\b|\bannual\b|"
                r"\bfiscal (?:19|20)\d\d\b|\bfy ?(?:19|20)?\d\d\b|\b5[23] weeks\b|\bthe year\b", re.I), 12),
]
_PRIOR = re.compile(r"\b(prior|previous|last|preceding) year\b|\byear[- ]ago\b|\ba year earlier\b", re.I)
_CHANGE = re.compile(r"inc/|\(dec\)|change|increase|decrease|growth|variance|%\s*chg|b/\(w\)|better/|"
                     r"\bconstant\b|\bcompared (?:to|with)\b|\bgr[eo]w(?:s|n|ing)?\b",  # "how much did revenue grow"
                     re.I)  # "Constant" (currency): a growth rate column
_COMPARED = re.compile(r"\bcompared (?:to|with)\b", re.I)
_MONTH = re.compile(r"\b(" + "|".join(_MONTHS) + r")\b", re.I)
PERIOD_WORDS = re.compile(r"\b(?:q[1-4]|fy ?\d{2,4}|quarters?|months?|weeks?|year|fiscal|ended|full|first|second|"
                          r"third|fourth|half|six|nine|three|twelve|prior|previous|last|ytd|to|date|"
                          r"(?:19|20)\d\d|" + "|".join(_MONTHS) + r")\b", re.I)


@dataclass(frozen=True)
class Period:
    months: int | None = None
    year: int | None = None
    end_month: int | None = None
    fiscal: bool = False
    prior: bool = False      # "prior year": relative to the documents' latest year
    change: bool = False     # a change column ("Inc/ (Dec)", "% Change"), not a period's figure
    quarter: int | None = None  # the quarter named ("Q2 FY24"): fiscal quarters have no month here

    def calendar_years(self) -> set[int]:
        """The calendar years a statement about this period may name: fiscal 2024 may end in
        calendar 2023 (Salesforce, Oracle). Empty when no year is asked."""
        if self.year is None:
            return set()
        return {self.year, self.year - 1} if self.fiscal else {self.year}

    @property
    def explicit(self) -> bool:
        return self.year is not None or self.months is not None or self.prior

    def describe(self) -> str:
        parts = []
        if self.months:
            parts.append({3: "three months", 6: "six months", 9: "nine months", 12: "year"}.get(self.months,
                                                                                          f"{self.months} months"))
        if self.end_month:
            parts.append("ended " + [*_MONTHS][self.end_month - 1].capitalize())
        if self.year:
            parts.append(("fiscal " if self.fiscal else "") + str(self.year))
        return " ".join(parts) or "unspecified period"


def _quarter_number(m: re.Match) -> int:
    """1-4 from a `_QUARTER` match ("Q2", "second quarter")."""
    return int(m.group(1)) if m.group(1) else _ORDINAL[m.group(2).lower()]


def quarters(text: str) -> set[int]:
    """The quarters a text names: {1, 3} for "first quarter ... Q3"."""
    return {_quarter_number(m) for m in _QUARTER.finditer(text)}


def _year_of(m: re.Match) -> int:
    if m.group(1):
        return int(m.group(1))
    return 2000 + int(m.group(2))


# "... guidance did Salesforce give in its Q1 FY24 earnings release?", "... expect for 2023 in its
# 2022 annual report?": the release's or report's period names the document, not the figure asked for
_SOURCE_PERIOD = re.compile(r"\b(?:(?:in|with|from|of)\s+)?(?:its|the|their)\s+((?:\S+\s+){0,3}?\S*\d\S*)\s+"
                            r"(?:(?:annual|quarterly)\s+)?"
                            r"(?:earnings|results|(?:press |earnings )?release|report|10-?[qk]|filing)\b", re.I)


def _without_source_period(question: str) -> str:
    """The question without the period of the document it names, when it asks for another."""
    m = _SOURCE_PERIOD.search(question)
    if not m:
        return question
    rest = question[:m.start(1)] + question[m.end(1):]
    return rest if _YEAR.search(rest) or _QUARTER.search(rest) else question


def question_period(question: str) -> Period:
    q = _without_source_period(question)
    years = [_year_of(m) for m in _YEAR.finditer(q)]
    fiscal = bool(re.search(r"\bfiscal\b|\bfy ?'?\d", q, re.I))
    months = None
    for rx, n in _DURATION:
        if rx.search(q):
            months = n
            break
    end_month = None
    qm = _QUARTER.search(q)
    if qm and not fiscal:
        if months in (None, 3):
            end_month = 3 * _quarter_number(qm)
    if months == 6 and re.search(r"\bfirst half\b|\bh1\b", q, re.I) and not fiscal:
        end_month = 6
    mm = _MONTH.search(q)
    if mm:
        end_month = _MONTHS[mm.group(1).lower()]
    return Period(months, years[-1] if years else None, end_month, fiscal, bool(_PRIOR.search(q)),
                  bool(_CHANGE.search(q)), _quarter_number(qm) if qm and months in (None, 3) else None)


def names_month(text: str) -> bool:
    """A header dated by a month ("Three Months Ended April 30 2023"), not by a fiscal name."""
    return bool(_MONTH.search(text))


def durations(text: str) -> set[int]:
    """The period lengths a text names, in months: {3, 6} for "second quarter and first half"."""
    return {n for rx, n in _DURATION if rx.search(text)}


def header_period(header: str) -> Period:
    """The period a column header names: "Three Months Ended June 30 2023", "Fiscal 2023",
    "Quarters Ended June 30 Inc/ (Dec)" (a change column)."""
    h = _COMPARED.split(header)[0]  # "Three Months Ended April 30, 2023 Compared to [...] 2022": 2023's
    years = [_year_of(m) for m in _YEAR.finditer(h)]
    trailing = re.search(r"((?:\b(?:19|20)\d\d\b[\s,]*)+)$", h)
    if trailing and len(re.findall(r"(?:19|20)\d\d", trailing.group(1))) > 1:
        years = []  # "Three Months Ended March 31 2023 2022": which column is which is unknown
    elif trailing:
        years = [int(re.findall(r"(?:19|20)\d\d", trailing.group(1))[0])]  # the column's own year
    months = None
    for rx, n in _DURATION:
        if rx.search(h):
            months = n
            break
    if months is None and re.search(r"\bended\b", h, re.I) and re.search(r"\byear", h, re.I):
        months = 12
    mm = _MONTH.search(h)
    end_month = _MONTHS[mm.group(1).lower()] if mm else None
    fiscal = bool(re.search(r"\bfiscal\b|\bfy ?'?\d", h, re.I))
    qm = _QUARTER.search(h)
    if end_month is None and qm and not fiscal:  # "First Quarter 2023" of a calendar-year filer
        end_month = 3 * _quarter_number(qm)
    return Period(months, years[-1] if years else None, end_month, fiscal, False, bool(_CHANGE.search(header)),
                  _quarter_number(qm) if qm and months in (None, 3) else None)


def agreement(asked: Period, cell: Period, latest_year: int | None = None) -> float:
    """How well a column's period answers the asked one: 1 = every stated part agrees,
    0 = nothing known, negative = a stated part disagrees (another period's figure)."""
    if cell.change and not asked.change:
        return -1.0  # a change column ("Inc/ (Dec)") answers only a question about a change
    if not asked.explicit:
        return 0.0
    score, parts = 0.0, 0
    want_year = asked.year
    if want_year is None and asked.prior and latest_year:
        want_year = latest_year - 1
    if want_year is not None:
        parts += 1
        if cell.year is None:
            pass
        elif cell.year == want_year:
            score += 1
        elif asked.fiscal and not cell.fiscal and cell.year == want_year - 1:
            score += 0.6  # fiscal 2024 may end in calendar 2023 (Salesforce, Oracle)
        else:
            return -1.0
    if asked.months is not None:
        parts += 1
        if cell.months is None:
            pass
        elif cell.months == asked.months:
            score += 1
        else:
            return -1.0
    if asked.quarter and cell.quarter and asked.quarter != cell.quarter:
        return -1.0  # "Q2 FY24 Guidance" does not answer Q1 FY24
    if asked.end_month is not None and cell.end_month is not None:
        parts += 1
        if cell.end_month == asked.end_month:
            score += 1
        else:
            return -1.0
    return score / parts if parts else 0.0


# ------------------------------------------------------------------ fiscal calendars
# "results for its first quarter fiscal 2024 ended April 30, 2023"
_MONTH_RX = "(" + "|".join(MONTH_NAMES) + ")"
_QUARTER_WORD = r"(?:(first|second|third|fourth|1st|2nd|3rd|4th) quarter|q([1-4]))"
_FY = r"(?:fiscal(?: year)?|fy) ?'?((?:19|20)?\d\d)"
_ENDED = r",? (?:which )?(?:ended|ending|ends) (?:on )?" + _MONTH_RX + r" \d{1,2},? ((?:19|20)\d\d)"
_QUARTER_ANCHOR = re.compile(_QUARTER_WORD + r",? (?:of )?" + _FY + _ENDED, re.I)
_YEAR_ANCHOR = re.compile(r"\bfiscal (?:year )?((?:19|20)\d\d)" + _ENDED, re.I)
# 'fiscal year ended May 31, 2023 ("fiscal 2023")', the usual 10-K definition
_YEAR_DEFINED = re.compile(r"\bfiscal year (?:ended|ending) " + _MONTH_RX + r" \d{1,2},? ((?:19|20)\d\d)\W{1,4}"
                           r"fiscal ((?:19|20)\d\d)", re.I)
# "References to fiscal 2023, for example, refer to the fiscal year ending January 31, 2023"
_YEAR_REFERS = re.compile(r"\breferences to fiscal ((?:19|20)\d\d),? (?:for example,? )?refers? to the fiscal year"
                          + _ENDED, re.I)


def _fy(text: str) -> int:
    return int(text) if len(text) == 4 else 2000 + int(text)


def fiscal_calendar(text: str) -> dict | None:
    """When a document's fiscal year ends, from the sentences that tie a fiscal period to a
    date: {"end_month": 1, "lag": 0} means fiscal Y ends in January of calendar year Y + 0
    (Salesforce: "first quarter fiscal 2024 ended April 30, 2023"). Retailers name a year by
    the calendar year it starts in (lag 1). None when the document says nothing of the kind."""
    text = " ".join(text.split())
    votes: dict[tuple[int, int], int] = {}

    def vote(quarter: int, fy: int, month: str, year: str) -> None:
        end = int(year) * 12 + _MONTHS[month.lower()] - 1 + 3 * (4 - quarter)  # the fiscal year's last month
        key = (end % 12 + 1, end // 12 - fy)
        if abs(key[1]) <= 1:
            votes[key] = votes.get(key, 0) + 1

    for m in _QUARTER_ANCHOR.finditer(text):
        q = _ORDINAL[m.group(1).lower()] if m.group(1) else int(m.group(2))
        vote(q, _fy(m.group(3)), m.group(4), m.group(5))
    for m in _YEAR_ANCHOR.finditer(text):
        vote(4, int(m.group(1)), m.group(2), m.group(3))
    for m in _YEAR_REFERS.finditer(text):
        vote(4, int(m.group(1)), m.group(2), m.group(3))
    for m in _YEAR_DEFINED.finditer(text):
        vote(4, int(m.group(3)), m.group(1), m.group(2))
    if not votes:
        return None
    (end_month, lag), _n = max(votes.items(), key=lambda kv: kv[1])
    return {"end_month": end_month, "lag": lag}


# What a filing reports, from its cover or first lines: "For the quarterly period ended June 30,
# 2023" (10-Q), "For the fiscal year ended December 31, 2022" (10-K), "results for the first
# quarter ended March 31, 2023" (an earnings release)
_DATE = _MONTH_RX + r" \d{1,2},? ((?:19|20)\d\d)"
_REPORTS = [
    (re.compile(r"\bfor the quarterly period ended " + _DATE, re.I), "Ended"),
    (re.compile(r"\bfor the (?:fiscal )?year ended " + _DATE, re.I), "Year Ended"),
    (re.compile(r"\bresults for (?:its|the) (?:first|second|third|fourth) (?:fiscal )?quarter(?: (?:of )?(?:fiscal )?"
                r"(?:(?:19|20)\d\d))?,? ended " + _DATE, re.I), "Three Months Ended"),
]
REPORT_SCAN_CHARS = 6000  # the cover page and the first lines of a release
# A release that names its quarter and year but no end date ("PG&E Corporation Reports
# Second-Quarter Results ... recorded second quarter 2023 income"): a calendar quarter, read
# only when nothing above matched and only near the start
_QUARTER_YEAR = re.compile(r"\b(first|second|third|fourth)[- ]quarter (?:of )?((?:19|20)\d\d)\b", re.I)
QUARTER_SCAN_CHARS = 2000
_QUARTER_END = {"first": "March", "second": "June", "third": "September", "fourth": "December"}


def report_period(text: str) -> str | None:
    """The period a filing reports, as a column header would name it ("Three Months Ended March
    2023"), read from the start of the document; None when it says nothing of the kind. A 10-Q's
    period is only its end ("Ended June 2023"): its prose speaks of three and six months alike."""
    head = " ".join(unicodedata.normalize("NFKC", text[:REPORT_SCAN_CHARS]).split())  # "ﬁscal" -> "fiscal"
    found = [(m.start(), f"{words} {m.group(1).capitalize()} {m.group(2)}")
             for rx, words in _REPORTS for m in rx.finditer(head)]
    if found:
        return min(found)[1]
    m = _QUARTER_YEAR.search(head[:QUARTER_SCAN_CHARS])
    if m and not re.search(r"\bfiscal\b", head[:QUARTER_SCAN_CHARS], re.I):
        return f"Three Months Ended {_QUARTER_END[m.group(1).lower()]} {m.group(2)}"
    return None


def names_period(text: str) -> bool:
    """Whether a sentence names any period at all (a year, a quarter, a length, a month)."""
    return bool(YEAR.search(text) or quarters(text) or durations(text) or names_month(text))


def on_calendar(asked: Period, question: str, calendar: dict | None) -> Period:
    """The asked fiscal period in calendar terms, for a document whose fiscal calendar is known:
    "second quarter of fiscal 2024" of Salesforce is the three months ended July 2023, and
    "fiscal 2023" of Oracle the year ended May 2023. Other questions are returned as asked, and
    so is one that names its month itself ("fiscal 2023 (three months ended October 31, 2022)")."""
    if calendar is None or not asked.fiscal or asked.year is None or asked.end_month is not None:
        return asked
    named = quarters(_without_source_period(question))
    if len(named) > 1:
        return asked
    quarter = next(iter(named)) if named else {6: 2, 9: 3}.get(asked.months or 0, 4)  # a year ends with Q4
    months = asked.months or (3 if named else None)
    last = (asked.year + calendar["lag"]) * 12 + calendar["end_month"] - 1 - 3 * (4 - quarter)
    return Period(months, last // 12, last % 12 + 1, False, asked.prior, asked.change)


_HEADER_LENGTH = {3: "Three Months Ended", 6: "Six Months Ended", 9: "Nine Months Ended", 12: "Year Ended"}


def header_words(asked: Period) -> str:
    """The asked period as a filing's column header names it: the second quarter of 2023 of a
    calendar-year filer is "Three Months Ended June 30 2023", Oracle's fiscal 2023 "Year Ended
    2023" (its month unknown here). "" when the question names no year or no length or end."""
    if asked.year is None or (asked.months is None and asked.end_month is None):
        return ""
    parts = [_HEADER_LENGTH.get(asked.months or 0, "Ended")]
    if asked.end_month:
        parts.append(f"{MONTH_NAMES[asked.end_month - 1].capitalize()} "
                     f"{monthrange(asked.year, asked.end_month)[1]}")
    return " ".join(parts + [str(asked.year)])


__all__ = ["MONTH_NAMES", "PERIOD_WORDS", "YEAR", "Period", "agreement", "fiscal_calendar", "header_period", "header_words",
           "names_month", "names_period", "on_calendar", "quarters", "question_period", "report_period"]
