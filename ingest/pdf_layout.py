"""Column-aligned PDF text (pypdf's layout mode) -> text whose tables read as rows.

Financial filings are tables whose meaning sits in the column headers: "Three Months Ended
June 30," over "2023  2022". pypdf's layout mode keeps each glyph's column, so a table
comes out with its cells aligned under their headers. This module turns each table row into
one self-contained line:

    Net revenues (in millions) | Three Months Ended June 30, 2023: $2,540 | Three Months Ended June 30, 2022: $2,422

(`parse_row` reads such a line back), collapses the layout spacing of prose lines, and drops
page furniture (running headers and footers, page numbers) repeated across pages.
Pure functions on strings: the PDF worker calls them; tests feed them text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

CELL_SEP = " | "
MAX_HEADER_LINES = 7
CARRY_TRAILING_LINES = 3  # lines of text (a page number, a caption overleaf) after a table still open at a page's end

_FRAGMENT = re.compile(r"\S+(?: \S+)*")
_AMOUNT = r"~?(?:\$ ?)?\(?-?(?:\$ ?)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?: ?%\))?\)?(?: ?%)?"
# a guidance range is one cell: "$0.79 - $0.80", "1% - 4%", "$8.51 Billion- $8.53", "$1.19 to $1.23"
# (a space by the dash: "333-230498" is a file number)
_RANGE = _AMOUNT + r"(?: (?:[Bb]illion|[Mm]illion))?(?: [-–] ?|[-–] | to )" + _AMOUNT + r"(?: (?:[Bb]illion|[Mm]illion))?"
_NUMBER = re.compile(rf"^{_AMOUNT}(?: ?pts?\.?)?$|^(?!(?:19|20)\d\d ?[-–] ?(?:19|20)\d\d$){_RANGE}$|"
                     r"^(?:\$ ?)?(?:—|–|-)(?: ?%)?$|^(?:n/m|nm|NM|N/M|N/A|n/a|\*)$")
_GLUED = re.compile(r"(?:(?<=\d)|(?<=\d\)))(?= ?\$)")
_FOOTNOTE = re.compile(r"^\(\d\)$")
_HAS_DIGIT = re.compile(r"\d")
_YEAR = re.compile(r"^(?:19|20)\d\d$")
_PERIODISH = re.compile(r"(months|weeks|year|quarter|fiscal|ended|ending|as of|period|20\d\d|19\d\d|"
                        r"january|february|march|april|may|june|july|august|september|october|november|"
                        r"december|change|inc/|dec\)|%|q[1-4]|total|actual|reported|adjusted)", re.I)
_UNIT = re.compile(r"\(?\b(?:\$|dollars|amounts?|shares)?[^()]{0,40}\bin (millions|thousands|billions)\b[^()]*\)?", re.I)
_PER_SHARE = re.compile(r"per share|per-share|\beps\b|earnings per|dividends? declared", re.I)
_PAGE_NUMBER = re.compile(r"^(?!(?:19|20)\d\d$)(?:page\s+)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?$|^[-–]\s*\d{1,4}\s*[-–]$",
                          re.I)  # a bare year is a column header, not a page number
_HYPHEN_GAP = re.compile(r"(?<=[A-Za-z]) +-(?=[a-z])|(?<=[A-Za-z])- +(?=[a-z])")
_SPACES = re.compile(r" {2,}")
# a header may hold ": " itself ("2022 or 2021: As of ..."): the value is after the last one
_ROW_CELL = re.compile(r"^(?:(?P<header>.+): )?(?P<value>\S(?:.*\S)?)$")


@dataclass
class _Frag:
    start: int
    end: int
    text: str

    @property
    def numeric(self) -> bool:
        return bool(_NUMBER.match(self.text))


def is_figure(text: str) -> bool:
    """Whether a cell's text is a figure: "1,234", "$(3.5)", "12 %", "—" (OCR places its boxes
    with the same test, ingest/ocr.py)."""
    return bool(_NUMBER.match(text))


def _fragments(line: str) -> list[_Frag]:
    """Runs of words separated by single spaces; a lone "$" joins the number after it and a
    lone "%" or ")" the number before it."""
    frags = []
    for m in _FRAGMENT.finditer(line):
        # "2,510$     2,483": a cell's "$" can touch the previous number; cut there, in place
        cuts = [m.start()] + [m.start() + g.start() for g in _GLUED.finditer(m.group())] + [m.end()]
        for a, b in zip(cuts, cuts[1:]):
            raw = line[a:b]
            piece = raw.strip()
            if piece:  # "744 $   805": the "$" belongs to the next cell
                start = a + len(raw) - len(raw.lstrip())
                frags.append(_Frag(start, start + len(piece), piece))
    out: list[_Frag] = []
    i = 0
    while i < len(frags):
        f = frags[i]
        if f.text in {"$", "€", "£"} and i + 1 < len(frags) and frags[i + 1].numeric:
            nxt = frags[i + 1]
            f = _Frag(f.start, nxt.end, f"{f.text}{nxt.text}")
            i += 1
        elif f.text in {"%", ")", "pts", "pts."} and out and out[-1].numeric:
            prev = out.pop()
            f = _Frag(prev.start, f.end, prev.text + ("" if f.text != "pts" else " ") + f.text)
        out.append(f)
        i += 1
    return out


def _split_numeric_tail(frags: list[_Frag]) -> tuple[list[_Frag], list[_Frag]]:
    """(label fragments, trailing numeric cells) of a line."""
    k = len(frags)
    while k > 0 and frags[k - 1].numeric:
        k -= 1
    return frags[:k], frags[k:]


def _is_years_line(frags: list[_Frag]) -> bool:
    return bool(frags) and all(_YEAR.match(f.text) or f.text.lower() in {"fiscal"} for f in frags)


def _is_data_row(frags: list[_Frag]) -> bool:
    label, cells = _split_numeric_tail(frags)
    if len(cells) == 1 and _FOOTNOTE.match(cells[0].text):
        return False  # "Estimated Non-Core Items:   (1)": a footnote marker, not a figure
    if not cells or not any(_HAS_DIGIT.search(c.text) for c in cells) or _is_years_line(cells):
        return False  # bare years are column headers ("(In millions)   2023   2022"), not figures
    if label:
        if len(label) > 1 and len(cells) < 2:
            return False
        gap = cells[0].start - label[-1].end
        # "Total net revenues (1)(2)(3)$   2,510 $ 2,510": a cell's "$" may touch the label
        glued_sign = gap == 0 and cells[0].text[:1] in "$€£" and len(cells) >= 2
        if (gap < 3 and not glued_sign) or len(" ".join(f.text for f in label)) > 160:
            return False
    elif len(cells) < 2:
        return False
    return True


def _clean_value(text: str) -> str:
    text = re.sub(r"([$€£]) +", r"\1", text)
    return re.sub(r"(\d\)?) +%", r"\1%", text)


_MONTH_WORDS = r"(January|February|March|April|May|June|July|August|September|October|November|December)"


def _clean_header(text: str) -> str:
    text = re.sub(r"([a-z])" + _MONTH_WORDS, r"\1 \2", text)  # "EndedJune" in some filings
    # and OCR drops the spaces of a header set tight: "Six MonthsEnded June30", "ThreeMonths"
    text = re.sub(r"(?<=[a-z])(?=(?:Months?|Weeks?|Ended|Ending|Quarters?|Year)(?:\b|[A-Z]))", " ", text)
    text = re.sub(r"\b" + _MONTH_WORDS + r"(?=\d)", r"\1 ", text)
    text = re.sub(r"(?<=\d),(?=(?:19|20)\d\d\b)", ", ", text)  # "March 31,2023"
    return _SPACES.sub(" ", text).strip().rstrip(",").strip()


def _unit_of(texts: list[str]) -> str | None:
    for t in texts:
        m = _UNIT.search(t)
        if m:
            return f"in {m.group(1).lower()}"
    return None


@dataclass
class _Header:
    context: list[str]                 # fragments left of the columns: periods, units, captions
    lines: list[list[_Frag]]           # column-header fragments, top line first
    unit: str | None
    raw: tuple[str, ...] = ()          # the header lines as read, to place them again
    first: int = 0                     # the first cell's column they were placed against
    fixed: tuple[str, ...] = ()        # each column's header, carried over from the page before


_TWO_PERIODS = re.compile(r"(?<=,) +(?=(?:Three|Six|Nine|Twelve|Thirteen|Quarters?|Years?|Fiscal|Fourth|First|Second|"
                         r"Third|Weeks?|\d+ Weeks)\b)")


# dates set with single spaces between them ("March 31,2023 December 31,2022 September 30,2022",
# eBay's supplemental data): each date heads its own column
_TWO_DATES = re.compile(r"(?<=\b(?:19|20)\d\d) +(?=" + _MONTH_WORDS + r"\b)")


def _split_periods(frags: list[_Frag]) -> list[_Frag]:
    """Two period headers set close together read as one fragment ("Three Months Ended June
    30, Six Months Ended June 30,"): cut after the comma that ends the first; a run of dates
    is cut between the dates."""
    out = []
    for f in frags:
        ends = [m.end() for m in _TWO_PERIODS.finditer(f.text)] + [m.end() for m in _TWO_DATES.finditer(f.text)]
        cuts = [0] + sorted(ends) + [len(f.text)]
        for a, b in zip(cuts, cuts[1:]):
            piece = f.text[a:b].strip()
            if piece:
                lead = len(f.text[a:b]) - len(f.text[a:b].lstrip())
                out.append(_Frag(f.start + a + lead, f.start + a + lead + len(piece), piece))
    return out


def _header_from(lines: list[str], first_cell_start: int) -> _Header:
    context, cols = [], []
    for line in lines:
        frags = _split_periods(_fragments(line))
        # fragments wholly left of the first column are context (a period or a unit for every
        # column); one that reaches into the columns heads the columns under it
        col_frags = [f for f in frags if f.end > first_cell_start - 2]
        if col_frags and _is_years_line(frags):
            col_frags = frags  # "2023   2022" over right-aligned figures: the first year may sit left of them
        context += [f.text for f in frags if f not in col_frags]
        if col_frags:
            cols.append(col_frags)
    unit = _unit_of(context + [f.text for line in cols for f in line])
    return _Header(context, cols, unit, tuple(lines), first_cell_start)


_GROUP = re.compile(r"months|weeks|year|quarter|fiscal|ended|ending|as of|period|january|february|march|april|"
                    r"\bmay\b|june|july|august|september|october|november|december", re.I)


def _only_unit(text: str) -> bool:
    return bool(_UNIT.search(text)) or text.strip("()").lower() == "unaudited"


def _distance(f: _Frag, cell: _Frag) -> int:
    """0 when the fragment and the cell overlap horizontally, else the gap between them."""
    return max(0, f.start - cell.end, cell.start - f.end)


def _column_header(header: _Header, cell: _Frag, index: int = 0, n_cells: int = 0) -> str:
    """The header text above one cell, top line first. Period lines ("Six Months Ended June
    30,") and the lowest header line span: each cell takes their nearest fragment. Other lines
    ("Inc/ (Dec)" over one column) only lend a fragment to the cells right under it."""
    if header.fixed:
        return header.fixed[index] if len(header.fixed) == n_cells else ""
    parts = [_clean_header(c) for c in header.context if _PERIODISH.search(c) and not _UNIT.search(c)]
    leaf = max((d for d, line in enumerate(header.lines) if not all(_only_unit(f.text) for f in line)), default=-1)
    leaves = header.lines[leaf] if leaf >= 0 else []
    # where the column is: its own leaf header ("2023") when every column has one, not the cell,
    # whose "$" may sit far left under the column before ("$       2.63" in McDonald's release)
    at = leaves[index] if len(leaves) == n_cells and n_cells else cell
    for depth, line in enumerate(header.lines):
        spread = depth == leaf or any(_GROUP.search(f.text) for f in line) or _is_years_line(line)
        if depth == leaf and len(line) == n_cells:
            best = line[index]  # as many headers as cells: they pair up in order, however placed
        elif depth != leaf and (spread or 2 * len(line) == n_cells and _is_years_line(leaves)) and \
                _even_group(line, leaves, n_cells):
            # a period header over its columns; or one over each pair of years ("Earnings",
            # "Share" over 2023 2022 each). A caption spread over more columns may be a stacked
            # caption's first line ("Earnings per" over "Common" over "Share"), and one over named
            # columns the top of a column's name ("Long-Lived" over "Assets"): those stay local
            best = line[index // _group_size(n_cells, len(line))]
            spread = True
        elif depth != leaf and (groups := _centred_groups(line, leaves, n_cells)):
            best = groups[index // (n_cells // len(groups))]  # "Net Income" over its four columns
            spread = True
        else:
            best = min(line, key=lambda f: (_distance(f, at), abs((f.start + f.end) - (at.start + at.end))))
        if not spread and _distance(best, at) > 2 and not _over_pair(best, leaves, index, n_cells):
            continue
        if _only_unit(best.text):
            continue
        parts.append(_clean_header(best.text))
    return " ".join(p for p in parts if p)


def _without_footnote_mark(cells: list[_Frag], header: _Header) -> list[_Frag]:
    """The cells less a footnote marker set between the label and the columns ("Bankruptcy and
    legal costs   (3)   17  151 ..."): a "(3)" well left of a header line that has exactly
    one column fewer than the row has cells would otherwise shift every value one column."""
    if len(cells) < 2 or not _FOOTNOTE.match(cells[0].text):
        return cells
    for line in header.lines:
        if len(line) == len(cells) - 1 and cells[0].end < line[0].start - 6:
            return cells[1:]
    return cells


def _group_size(n_cells: int, n_groups: int) -> int:
    """Columns under each group header; the last group may be short ("2022", "2021", "2020" over
    Amount, Increase, Amount, Increase, Amount in McDonald's 10-K)."""
    return -(-n_cells // n_groups)


def _over_pair(name: _Frag, leaves: list[_Frag], index: int, n_cells: int) -> bool:
    """Whether a name sits centred over the gap between this column and a neighbour ("Percent
    Change" over Actual and Constant in Oracle's 10-K): it heads both."""
    if len(leaves) != n_cells:
        return False
    for left, right in ((index - 1, index), (index, index + 1)):
        if left < 0 or right >= n_cells:
            continue
        a, b = leaves[left], leaves[right]
        mid, gap = (a.start + a.end + b.start + b.end) / 2, (b.start + b.end) - (a.start + a.end)
        if a.start <= name.start and name.end <= b.end and abs(name.start + name.end - mid) <= gap / 4:
            return True
    return False


def _centred_groups(line: list[_Frag], leaves: list[_Frag], n_cells: int) -> list[_Frag]:
    """Names centred over equal groups of columns ("Net Income" over 2023, 2022, Inc/(Dec) and
    Inc/(Dec) Excluding Currency Translation; "Earnings per share - diluted" over the next four,
    in McDonald's reconciliation): each name within its group, its centre within a quarter of
    the group's width of the group's centre, and over two of its columns or more. A name over
    one column ("Long-Lived" over "Assets", PG&E's "Earnings per" over "Share") stays local.
    Empty when the line is not such a row of names."""
    names: list[_Frag] = []
    for f in line:  # "Earnings per share -   diluted": one name set with a wide gap
        if names and names[-1].text.endswith(("-", "–", "—")):
            names[-1] = _Frag(names[-1].start, f.end, f"{names[-1].text} {f.text}")
        else:
            names.append(f)
    if len(leaves) != n_cells or len(names) < 2 or n_cells % len(names) or n_cells // len(names) < 2:
        return []
    per = n_cells // len(names)
    for g, name in enumerate(names):
        span = leaves[g * per:(g + 1) * per]
        width = span[-1].end - span[0].start
        centre = name.start + name.end  # doubled, like the others: no halves
        off = abs(centre - (span[0].start + span[-1].end))
        if name.start < span[0].start - 4 or name.end > span[-1].end + 4 or off > width / 2 or \
                sum(_distance(name, c) == 0 for c in span) < 2:
            return []  # not over its group, off its centre, or over one column only
    return names


def _even_group(groups: list[_Frag], leaves: list[_Frag], n_cells: int) -> bool:
    """Whether period headers split the leaf columns evenly: "Three Months Ended" and "Six Months
    Ended" over 2023 2022 2023 2022 | 2023 2022 2023 2022, each group header lying over its
    own share of the columns. Layout mode does not centre such headers (PG&E's sit well right of
    their first column), so the nearest header is not always the right one; this order is."""
    if len(leaves) != n_cells or not 1 < len(groups) < n_cells:
        return False
    per = _group_size(n_cells, len(groups))
    if (len(groups) - 1) * per >= n_cells:
        return False  # some group would have no column
    for g, frag in enumerate(groups):
        span = leaves[g * per:(g + 1) * per]
        if frag.end < span[0].start - 4 or frag.start > span[-1].end + 4:
            return False
    return True


_GLUED_PERCENT = re.compile(r"(?:(?<=[A-Za-z])|(?<=[A-Za-z] ))\(?-?\d+(?:\.\d+)?\)? ?%$")


def _glued_first_cell(label: list[_Frag], cells: list[_Frag], header: _Header) -> tuple[list[_Frag], list[_Frag]]:
    """A first cell set against its label ("Current quarter vs prior year quarter(7) %   (9) %"
    in eBay's supplemental data) reads as part of the label; when the header has one column
    more than the row has cells, cut it off."""
    m = _GLUED_PERCENT.search(label[-1].text) if label and cells else None
    if m is None or not any(len(line) == len(cells) + 1 for line in header.lines):
        return label, cells
    last = label[-1]
    head = _Frag(last.start, last.start + m.start(), last.text[:m.start()].rstrip())
    cell = _Frag(last.start + m.start(), last.end, m.group())
    return [*label[:-1], head], [cell, *cells]


def _header_like(line: str, first_cell_start: int) -> bool:
    frags = _fragments(line)
    if not frags:
        return False
    if _is_data_row(frags):
        return False
    if all(f.start >= first_cell_start - 12 or _UNIT.search(f.text) for f in frags):
        return True  # column headers, perhaps with the unit at the left ("Dollars ... in millions")
    text = " ".join(f.text for f in frags)
    if text.endswith(".") and len(text.split()) > 6:
        return False  # a sentence ("... for each quarter in the periods ended December 31, 2022.")
    return len(text) <= 90 and bool(_PERIODISH.search(text) or _UNIT.search(text))


_TOTAL_ROW = re.compile(r"^total\b", re.I)


def _ends_sentence_above(lines: list[str], j: int) -> bool:
    """Line j ends a sentence begun on the (long) line above it and leads into the table:
    Oracle's "... greater than three percent of our total revenues for any of fiscal 2023," over
    "2022 or 2021:". Its years are prose, not column headers."""
    above = lines[j - 1].strip() if j >= 1 else ""
    return lines[j].rstrip().endswith(":") and len(_SPACES.sub(" ", above)) > 90


def _colon_label(line: str) -> bool:
    """A label ending with a colon and no figures ("Total Company-operated sales and Franchised
    revenues:") names the rows under it, even when it reads like a header ("Total")."""
    return line.rstrip().endswith(":") and not _HAS_DIGIT.search(line)


def _colon_section_row(section: tuple[int, str], indent: int, label: str) -> bool:
    """Whether a row level with a section label still belongs to it: the label ends with a
    colon ("Franchised revenues:" over "U.S.", "International Operated Markets", "Total" in
    McDonald's 10-K) and the row is not a "Total ..." of its own at the label's level."""
    return indent == section[0] and section[1].rstrip().endswith(":") and not (
        _TOTAL_ROW.match(label) and len(label.split()) > 1)


def _bare_year(frags: list[_Frag]) -> bool:
    return len(frags) == 1 and bool(_YEAR.match(frags[0].text))


def _format_row(label: str, cells: list[_Frag], header: _Header, year: str | None = None) -> str:
    label = _SPACES.sub(" ", label).strip().rstrip(":").strip()
    label = re.sub(r"(?<=[A-Za-z)]) ?[$€£]$", "", label)  # "Total Gross Merchandise Volume$"
    unit = header.unit if header.unit and not _PER_SHARE.search(label) else None
    head = f"{label} ({unit})" if label and unit else label or (f"({unit})" if unit else "")
    parts = []
    for i, c in enumerate(cells):
        h = _column_header(header, c, i, len(cells))
        if year and not re.search(r"\b(?:19|20)\d\d\b", h):
            h = f"{h} {year}".strip()
        parts.append(f"{h}: {_clean_value(c.text)}" if h else _clean_value(c.text))
    return CELL_SEP.join([head or "Row", *parts])


@dataclass
class TableCarry:
    """The column headers of a table still open at the end of a page, for the next page: a
    balance sheet continued overleaf ("Current liabilities:" rows under no header of their own)."""
    heads: tuple[str, ...] = ()  # each column's header, as the table's last row had them
    unit: str | None = None


def structure_page(layout_text: str, carry: TableCarry | None = None) -> str:
    """Rewrite the tables of one page (layout-mode text) as self-contained row lines; prose
    lines get their layout spacing collapsed. With `carry` (one per document, pages in order),
    rows that open a page under no header take the header of the table the page before ended
    in, when they have as many cells as its rows had."""
    # some filings space their cells with no-break spaces, which would glue "744 $" into one fragment
    lines = layout_text.replace("\r", "").replace("\xa0", " ").split("\n")
    frags = [_fragments(l) for l in lines]
    data = [_is_data_row(f) for f in frags]
    out: list[str] = []
    i, n = 0, len(lines)
    header: _Header | None = None
    section: tuple[int, str] | None = None  # (indent, label) of a label-only line inside a table
    in_table = False
    pending: list[str] = []  # non-table lines held back until we know they are not table headers
    last_row = None  # (line, header, cells) of the last row written
    year: str | None = None  # a bare year over a block of rows ("2022" in a quarterly table)
    while i < n:
        if not data[i] and _bare_year(frags[i]) and _next_data_within(data, frags, i, 1):
            year = frags[i][0].text
            pending.append(lines[i])  # kept as text; the header search passes over it
            i += 1
            continue
        if not data[i]:
            if in_table and frags[i] and (not _header_like(lines[i], _first_cell(frags, data, i)) or _colon_label(
                    lines[i])) and len(
                    " ".join(f.text for f in frags[i])) <= 80 and _next_data_within(data, frags, i, 2):
                section = (frags[i][0].start, " ".join(f.text for f in frags[i]))  # "Operating expenses:"
                out.append(_prose(lines[i]))
                i += 1
                continue
            if in_table and frags[i] and not _next_data_within(data, frags, i, 6):
                in_table, header, section, year = False, None, None, None
            pending.append(lines[i])
            i += 1
            continue
        # a data row: its header is the run of header-like lines just above it (if any were held back)
        first = min(c.start for c in _split_numeric_tail(frags[i])[1])
        hdr_idx: list[int] = []
        k = len(pending)
        skipped = 0
        opening: tuple[int, str] | None = None  # a "Company-operated sales:" label over the first rows
        while k > 0 and len(hdr_idx) < MAX_HEADER_LINES:
            cand = pending[k - 1]
            if not cand.strip():
                k -= 1
                if hdr_idx and not (k >= 1 and pending[k - 1].strip() and _header_like(pending[k - 1], first)
                                    and not _ends_sentence_above(pending, k - 1)):
                    break
                continue
            if _bare_year(_fragments(cand)) and not hdr_idx:
                k -= 1
                continue
            if not _header_like(cand, first):
                # a section label or two ("Revenues") may sit between the header and the first row
                if not hdr_idx and skipped < 2 and len(_prose(cand)) <= 60 and not _HAS_DIGIT.search(cand):
                    if skipped == 0 and cand.rstrip().endswith(":"):
                        cf = _fragments(cand)
                        opening = (cf[0].start, " ".join(f.text for f in cf))
                    skipped += 1
                    k -= 1
                    continue
                break
            hdr_idx.insert(0, k - 1)
            k -= 1
        hdr_idx = _without_titles(pending, hdr_idx)
        hdr_lines = [pending[j] for j in hdr_idx]
        if hdr_lines and (not in_table or any(_has_column_words(l, first) for l in hdr_lines)):
            header = _header_from(hdr_lines, first)
            section = opening
            out.extend(_prose(l) for j, l in enumerate(pending) if j not in hdr_idx)
        else:
            out.extend(_prose(l) for l in pending)
        if header is None and carry is not None and carry.heads and last_row is None and \
                len(_split_numeric_tail(frags[i])[1]) == len(carry.heads):
            header = _Header([], [], carry.unit, fixed=carry.heads)
        if header is None:
            header = _Header([], [], None)
        elif header.raw and not header.lines and first < header.first - 8:
            # the header was placed against a first row whose cells sit far right (two rows
            # glued on one line, eBay's "GAAP operating incomeStock-based ... $ 558132"), so it
            # read as all context; the rows under it show where its columns are
            header = _header_from(list(header.raw), first)
        pending = []
        in_table = True
        label_frags, cells = _split_numeric_tail(frags[i])
        cells = _without_footnote_mark(cells, header)
        label_frags, cells = _glued_first_cell(label_frags, cells, header)
        label = " ".join(f.text for f in label_frags)
        indent = label_frags[0].start if label_frags else first
        if section is not None:
            if indent > section[0] or _colon_section_row(section, indent, label):
                closes = indent == section[0] or _TOTAL_ROW.match(label)
                label = f"{section[1].rstrip(':')}: {label}" if label else section[1]
                if closes and _TOTAL_ROW.match(label.split(": ", 1)[-1]):
                    section = None  # "Total" closes a block whose rows sit level with its label
            else:
                section = None
        out.append(_format_row(label, cells, header, year))
        last_row = (i, header, cells)
        i += 1
    out.extend(_prose(l) for l in pending)
    if carry is not None:
        # a table is still open when its last row is among the page's last few lines of text
        ends_open = last_row is not None and (last_row[1].lines or last_row[1].fixed) and \
            sum(1 for f in frags[last_row[0] + 1:] if f) <= CARRY_TRAILING_LINES
        if ends_open:
            _, hdr, cells = last_row
            carry.heads = tuple(_column_header(hdr, c, k, len(cells)) for k, c in enumerate(cells))
            carry.unit = hdr.unit
        else:
            carry.heads, carry.unit = (), None
    return "\n".join(_name_blocks_by_total(out))


_TOTAL = re.compile(r"^total\s+(?P<what>[^|]+)$", re.I)  # matched on a label whose unit is already cut off


def _name_blocks_by_total(lines: list[str]) -> list[str]:
    """Rows above a "Total capital expenditures" row are capital expenditures: a segment table
    repeats "U.S." and "International Operated Markets" in every block, and only the block's
    total row says which metric the block is. Each such row gets " - <metric>" in its label."""
    out = list(lines)
    block: list[int] = []
    for i, line in enumerate(lines):
        if CELL_SEP not in line:
            if line.strip():
                block = []
            continue
        head, _, rest = line.partition(CELL_SEP)
        label = head.strip()
        m = _TOTAL.match(_LABEL_UNIT.match(label).group("label").strip())
        if m is None:
            block.append(i)
            continue
        what = re.sub(r"\(\d\)", "", m.group("what")).strip(" :")
        want = set(re.findall(r"[a-z]{3,}", what.lower()))
        for j in block:
            jhead, _, jrest = out[j].partition(CELL_SEP)
            lm = _LABEL_UNIT.match(jhead.strip())
            jlabel, unit = lm.group("label"), lm.group("unit")
            if want and not want <= set(re.findall(r"[a-z]{3,}", jlabel.lower())):
                jlabel = f"{jlabel} - {what.lower()}"
                out[j] = f"{jlabel}{f' ({unit})' if unit else ''}{CELL_SEP}{jrest}"
        block = []
    return out


_CHANGE_WORDS = re.compile(r"increase|decrease|change|growth|%", re.I)


def _without_titles(pending: list[str], hdr_idx: list[int]) -> list[int]:
    """The header lines less a table's title lines over its period line ("eBay Inc." and
    "Unaudited Supplemental Operating Data" over "Three Months Ended"): one run of words each,
    naming no period. They stay in the text as the table's title, not in every column's header."""
    k = 0
    while k + 1 < len(hdr_idx):
        frags = _fragments(pending[hdr_idx[k]])
        if len(frags) != 1 or _GROUP.search(frags[0].text) or _only_unit(frags[0].text) or \
                _HAS_DIGIT.search(frags[0].text) or _CHANGE_WORDS.search(frags[0].text):
            break  # "Increase/(Decrease)" over the periods says what every column holds
        k += 1
    if k and any(_GROUP.search(f.text) for f in _fragments(pending[hdr_idx[k]])):
        return hdr_idx[k:]
    return hdr_idx


def _first_cell(frags: list[list[_Frag]], data: list[bool], i: int) -> int:
    for j in range(i + 1, min(i + 8, len(frags))):
        if data[j]:
            return min(c.start for c in _split_numeric_tail(frags[j])[1])
    return 10 ** 6


def _next_data_within(data: list[bool], frags: list[list[_Frag]], i: int, lines: int) -> bool:
    seen = 0
    for j in range(i + 1, len(data)):
        if data[j]:
            return True
        if frags[j]:
            seen += 1
            if seen >= lines:
                return False
    return False


def _has_column_words(line: str, first_cell_start: int) -> bool:
    return any(f.start >= first_cell_start - 12 and _PERIODISH.search(f.text) for f in _fragments(line))


def _prose(line: str) -> str:
    return _HYPHEN_GAP.sub("-", _SPACES.sub(" ", line.strip()))


# ------------------------------------------------------------- text grids
# A table whose cells are words, not figures (a schedule of classes, a visit plan): OCR keeps its
# columns (ingest/ocr.py) but structure_page makes rows of figures only. text_grid_rows makes each
# grid row one line of "first cell | column header: cell | ...", its wrapped lines folded in.
GRID_MIN_ROWS = 3          # lines with a first-column cell and GRID_MIN_COLUMNS cells
GRID_MIN_COLUMNS = 3
GRID_MAX_HEADER_LINES = 3  # lines of column headers over the first row
GRID_GAP_LINES = 6         # wrapped lines a row may have
ANCHOR_TOLERANCE = 3       # fragment starts this close are one column
WORD_SLACK = 2             # a cell may start this far left of its column


def _grid_anchors(frags: list[list[_Frag]]) -> list[int]:
    """Column starts: fragment starts (this close together) that two or more lines share."""
    clusters: list[list[int]] = []
    for start in sorted(f.start for line in frags for f in line):
        if clusters and start - clusters[-1][-1] <= ANCHOR_TOLERANCE:
            clusters[-1].append(start)
        else:
            clusters.append([start])
    return [c[0] for c in clusters if len(c) >= 2]


def _grid_column(anchors: list[int], start: int, slack: int = WORD_SLACK) -> int:
    return max((i for i, a in enumerate(anchors) if a <= start + slack), default=0)


def _grid_cells(line: list[_Frag], anchors: list[int], into: list[list[str]]) -> None:
    """A line's words (its fragments) added to their columns. A fragment goes to the column it starts in; a
    word of it at or past the next column's start (text set one space from its neighbour's,
    "Chair-based yoga Natural breath") goes to that column."""
    for f in line:
        col = _grid_column(anchors, f.start)
        for m in re.finditer(r"\S+", f.text):
            if m.start():
                col = max(col, _grid_column(anchors, f.start + m.start(), 0))
            into[col].append(m.group())


def _grid_row_line(frags: list[_Frag]) -> bool:
    return len(frags) >= GRID_MIN_COLUMNS and not _is_data_row(frags)


def _grid_extent(lines: list[str], frags: list[list[_Frag]], i: int) -> tuple[int, int, int] | None:
    """(header start, first row, end) of a text grid whose first row is line i, or None."""
    left = frags[i][0].start
    rows, end, j = 1, i + 1, i + 1
    while j < len(lines) and j - end < GRID_GAP_LINES:
        if not frags[j]:
            break
        if frags[j][0].start < left - ANCHOR_TOLERANCE:
            return None  # line i is a header or a wrapped line: the grid's rows start further left
        if frags[j][0].start <= left + ANCHOR_TOLERANCE:  # a line at the first column: a row, or the end
            if not _grid_row_line(frags[j]):
                break
            rows += 1
        j += 1
        end = j
    if rows < GRID_MIN_ROWS:
        return None
    head = i
    while head > 0 and i - head < GRID_MAX_HEADER_LINES and len(frags[head - 1]) >= 2 and \
            not _is_data_row(frags[head - 1]):
        head -= 1
    return head, i, end


def text_grid_rows(layout_text: str) -> str:
    """Layout text with its grids of word cells rewritten as one line per row (see above);
    everything else as it was, for structure_page."""
    lines = layout_text.split("\n")
    frags = [_fragments(l) for l in lines]
    out: list[str] = []
    i = 0
    while i < len(lines):
        extent = _grid_extent(lines, frags, i) if _grid_row_line(frags[i]) else None
        if extent is None:
            out.append(lines[i])
            i += 1
            continue
        head, first, end = extent
        del out[len(out) - (first - head):]  # the header lines, held as text so far
        anchors = _grid_anchors(frags[head:end])
        if len(anchors) < GRID_MIN_COLUMNS:
            out.extend(lines[head:end])
            i = end
            continue
        header: list[list[str]] = [[] for _ in anchors]
        for line in frags[head:first]:
            _grid_cells(line, anchors, header)
        heads = [" ".join(h) for h in header]
        row: list[list[str]] | None = None
        for k in range(first, end):
            if frags[k][0].start <= anchors[0] + ANCHOR_TOLERANCE:
                if row is not None:
                    out.append(_grid_line(row, heads))
                row = [[] for _ in anchors]
            _grid_cells(frags[k], anchors, row)
        out.append(_grid_line(row, heads))
        i = end
    return "\n".join(out)


def _grid_line(row: list[list[str]], heads: list[str]) -> str:
    cells = [_HYPHEN_GAP.sub("-", " ".join(c)) for c in row]
    parts = [f"{heads[c]}: {text}" if heads[c] else text for c in range(1, len(cells)) if (text := cells[c])]
    return CELL_SEP.join([cells[0] or "Row", *parts])


# ---------------------------------------------------------------- furniture
def _furniture_key(line: str) -> str:
    return re.sub(r"\d+", "#", line.strip().lower())


def strip_furniture(pages: list[str], edge_lines: int = 3) -> list[str]:
    """Drop lines that repeat at the top or bottom of many pages (running headers, footers,
    "Table of Contents" links) and bare page numbers there."""
    if not pages:
        return pages
    edges: list[set[str]] = []
    for text in pages:
        lines = [l for l in text.split("\n") if l.strip()]
        edges.append({_furniture_key(l) for l in lines[:edge_lines] + lines[-edge_lines:]})
    counts: dict[str, int] = {}
    for keys in edges:
        for k in keys:
            counts[k] = counts.get(k, 0) + 1
    need = max(3, int(0.3 * len(pages) + 0.5))
    repeated = {k for k, c in counts.items() if c >= need and len(pages) >= 3}
    out = []
    for text in pages:
        lines = text.split("\n")
        nonblank = [j for j, l in enumerate(lines) if l.strip()]
        edge_idx = set(nonblank[:edge_lines] + nonblank[-edge_lines:])
        drop = {j for j in edge_idx if _is_furniture(lines[j], repeated)}
        if len(drop) >= len(nonblank):  # the whole page: this is its content, not furniture
            drop = {j for j in drop if _PAGE_NUMBER.match(lines[j].strip())}
        out.append("\n".join(l for j, l in enumerate(lines) if j not in drop))
    return out


def _is_furniture(line: str, repeated: set[str]) -> bool:
    stripped = line.strip()
    if _PAGE_NUMBER.match(stripped):
        return True
    if all(_YEAR.match(w) for w in stripped.split()):
        return False  # "2023   2022": the column header of a table at the top of a page
    # running headers and footers are short; a table row ("Total | ...") is never furniture
    return len(stripped) <= 100 and parse_row(stripped) is None and _furniture_key(line) in repeated


# --------------------------------------------------------------- reading rows
@dataclass(frozen=True)
class Row:
    label: str
    unit: str | None
    cells: tuple[tuple[str, str], ...]   # (column header, value)


_LABEL_UNIT = re.compile(r"^(?P<label>.*?)(?: \((?P<unit>in (?:millions|thousands|billions))\))?$")


def is_row_line(line: str) -> bool:
    """A line that is one table row, an answer unit of its own: a row of figures (parse_row),
    or of words with three or more cells (text_grid_rows, a spreadsheet row, a Markdown table)."""
    return parse_row(line) is not None or line.count(CELL_SEP) >= 2


def is_figure_cell(cell: str) -> bool:
    """Whether parse_row reads `cell` ("Header: value", or a bare value) as a cell of figures, as
    in `parse_row("label" + CELL_SEP + cell) is not None`, without building and splitting a row
    (a spreadsheet asks this of every cell)."""
    if CELL_SEP in cell:
        return parse_row("x" + CELL_SEP + cell) is not None
    m = _ROW_CELL.match(cell.strip())
    return m is not None and _NUMBER.match(m.group("value")) is not None


def parse_row(line: str) -> Row | None:
    """A row line written by `structure_page`, read back; None for any other line."""
    if CELL_SEP not in line:
        return None
    parts = line.split(CELL_SEP)
    cells = []
    for p in parts[1:]:
        m = _ROW_CELL.match(p.strip())
        if not m or not _NUMBER.match(m.group("value")):
            return None
        cells.append((m.group("header") or "", m.group("value")))
    lm = _LABEL_UNIT.match(parts[0].strip())
    return Row(lm.group("label"), lm.group("unit"), tuple(cells))


__all__ = ["CELL_SEP", "Row", "is_figure", "is_figure_cell", "is_row_line", "parse_row", "strip_furniture",
           "structure_page", "text_grid_rows"]
