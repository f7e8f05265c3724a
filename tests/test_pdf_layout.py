"""Unit tests of ingest.pdf_layout on hand-written layout-mode text modelled on real filings.

pypdf's layout mode keeps each glyph's column, so a table arrives as space-aligned text; these
strings imitate that (column headers over their cells, "$" set apart from the number, negative
numbers in parentheses). No PDF is involved: the functions are pure.
"""
from __future__ import annotations

import pytest

from ingest.pdf_layout import (CELL_SEP, Row, TableCarry, is_figure, is_figure_cell, parse_row, strip_furniture,
                               structure_page, text_grid_rows)

Q3 = "Three Months Ended June 30"
H1 = "Six Months Ended June 30"

# (a) a two-level header: periods spanning a years line, then the unit line
INCOME_STATEMENT = """\
                                              Three Months Ended June 30,        Six Months Ended June 30,
                                                 2023            2022             2023            2022
                                          (In millions, except per share amounts)
Net revenues                                $    2,540      $    2,422       $    5,091      $    4,743
Operating income (loss)                           (123)            456           (1,024)           789
Net income                                  $      300      $      250       $      600      $      500
Basic earnings per share                    $     0.48      $     0.41       $     0.95      $     0.82
"""

# (b) the period as context left of the years line; a section label before the first row
SEGMENTS = """\
Segment results
(Dollars in millions)
Six Months Ended June 30,              2023           2022        Inc/ (Dec)
Revenues
   Consumer                        $  1,200       $  1,100       $    100
   Commercial                           800            900           (100)
"""

# (c) a label-only line inside a table, with indented sub-rows under it
OPEX = """\
                                         Year Ended December 31,
                                         2023             2022
                                          (in thousands)
Revenue                              $  10,000       $   9,000
Operating expenses:
    Research and development             3,000           2,500
    Sales and marketing                  2,000           1,800
Total operating expenses                 5,000           4,300
"""


def row_lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if CELL_SEP in line]


def rows_by_label(text: str) -> dict[str, Row]:
    rows = {}
    for line in row_lines(text):
        row = parse_row(line)
        assert row is not None, line
        rows[row.label] = row
    return rows


# ------------------------------------------------------------ (a) two-level header
def test_two_level_header_every_cell_gets_its_period_and_year():
    out = structure_page(INCOME_STATEMENT)
    assert row_lines(out)[0] == (
        f"Net revenues (in millions) | {Q3} 2023: $2,540 | {Q3} 2022: $2,422 | "
        f"{H1} 2023: $5,091 | {H1} 2022: $4,743")
    rows = rows_by_label(out)
    assert list(rows) == ["Net revenues", "Operating income (loss)", "Net income", "Basic earnings per share"]
    headers = [f"{Q3} 2023", f"{Q3} 2022", f"{H1} 2023", f"{H1} 2022"]
    for row in rows.values():
        assert [h for h, _ in row.cells] == headers, row


def test_dollar_sign_joins_its_number_and_parentheses_stay_negative():
    rows = rows_by_label(structure_page(INCOME_STATEMENT))
    assert [v for _, v in rows["Net income"].cells] == ["$300", "$250", "$600", "$500"]
    assert [v for _, v in rows["Operating income (loss)"].cells] == ["(123)", "456", "(1,024)", "789"]
    out = structure_page(INCOME_STATEMENT)
    assert "$ " not in out  # no dollar sign left apart from its number
    assert "(In millions" not in out  # the unit line is folded into the rows, not left as prose


def test_unit_goes_on_amount_rows_but_not_on_per_share_rows():
    out = structure_page(INCOME_STATEMENT)
    rows = rows_by_label(out)
    assert rows["Net revenues"].unit == "in millions"
    assert rows["Operating income (loss)"].unit == "in millions"
    assert rows["Basic earnings per share"].unit is None
    eps = next(line for line in row_lines(out) if line.startswith("Basic earnings per share"))
    assert "(in millions)" not in eps
    assert eps.startswith(f"Basic earnings per share | {Q3} 2023: $0.48 |")


def test_unit_line_above_the_header_at_the_left_margin():
    text = """\
(In millions, except per share amounts)
                                  Three Months Ended June 30,
                                      2023          2022
Net revenues                      $  2,540     $  2,422
Diluted net income per share      $   0.48     $   0.41
"""
    assert row_lines(structure_page(text)) == [
        f"Net revenues (in millions) | {Q3} 2023: $2,540 | {Q3} 2022: $2,422",
        f"Diluted net income per share | {Q3} 2023: $0.48 | {Q3} 2022: $0.41",
    ]


# ------------------------------------------------- (b) header context at the left
def test_period_left_of_the_years_line_and_section_label_before_first_row():
    out = structure_page(SEGMENTS)
    rows = rows_by_label(out)
    assert set(rows) == {"Consumer", "Commercial"}
    assert rows["Consumer"] == Row("Consumer", "in millions", (
        (f"{H1} 2023", "$1,200"), (f"{H1} 2022", "$1,100"), (f"{H1} Inc/ (Dec)", "$100")))
    assert [v for _, v in rows["Commercial"].cells] == ["800", "900", "(100)"]
    lines = out.split("\n")
    assert "Segment results" in lines and "Revenues" in lines  # kept as text, not eaten as header
    assert lines.index("Revenues") < lines.index(row_lines(out)[0])


def test_period_left_of_a_years_only_line():
    text = """\
Year Ended December 31,              2023           2022
Revenue                        $  1,200       $  1,100
"""
    assert row_lines(structure_page(text)) == [
        "Revenue | Year Ended December 31 2023: $1,200 | Year Ended December 31 2022: $1,100"]


def test_dollar_dash_nil_cell_is_a_cell():
    text = """\
                                    2023           2022
Total revenues                 $  2,000       $     —
Other income                   $      5       $      6
"""
    lines = row_lines(structure_page(text))
    assert lines[0] == "Total revenues | 2023: $2,000 | 2022: $—"
    assert lines[1] == "Other income | 2023: $5 | 2022: $6"


# ------------------------------------------------------------ (c) section prefix
def test_indented_sub_rows_take_the_section_label():
    out = structure_page(OPEX)
    year = "Year Ended December 31"
    assert row_lines(out) == [
        f"Revenue (in thousands) | {year} 2023: $10,000 | {year} 2022: $9,000",
        f"Operating expenses: Research and development (in thousands) | {year} 2023: 3,000 | {year} 2022: 2,500",
        f"Operating expenses: Sales and marketing (in thousands) | {year} 2023: 2,000 | {year} 2022: 1,800",
        # back at the section's indent: the section has ended
        f"Total operating expenses (in thousands) | {year} 2023: 5,000 | {year} 2022: 4,300",
    ]
    assert "Operating expenses:" in out.split("\n")  # the label line itself stays as text


# ---------------------------------------------------------------- (d) prose
def test_prose_is_not_made_into_rows_and_spacing_collapses():
    text = """\
   The Company's  revenues  increased  by  5%  compared  to  the  prior  year,  driven  by
higher  volumes  in  the  consumer  segment  and  favorable  pricing  in  2023.
Net  revenues  were  $  2,540  million  and  $  2,422  million  in  2023  and  2022.
"""
    out = structure_page(text)
    assert CELL_SEP not in out
    assert out.split("\n")[:3] == [
        "The Company's revenues increased by 5% compared to the prior year, driven by",
        "higher volumes in the consumer segment and favorable pricing in 2023.",
        "Net revenues were $ 2,540 million and $ 2,422 million in 2023 and 2022.",
    ]
    assert "  " not in out


def test_prose_around_a_table_stays_prose():
    text = "We report two segments  as  follows.\n\n" + SEGMENTS + "\nThe decrease in  Commercial was due to pricing.\n"
    out = structure_page(text)
    lines = out.split("\n")
    assert lines[0] == "We report two segments as follows."
    assert "The decrease in Commercial was due to pricing." in lines
    assert len(row_lines(out)) == 2


def test_hyphen_split_across_layout_gap_is_joined():
    assert structure_page("We expect inter-  national sales to grow.") == "We expect inter-national sales to grow."


def test_empty_page():
    assert structure_page("") == ""


# -------------------------------------------------------------- (e) parse_row
def test_parse_row_round_trips_a_structured_row():
    line = (f"Operating income (loss) (in millions) | {Q3} 2023: (123) | {Q3} 2022: 456 | "
            f"{H1} 2023: $(1,024) | {H1} 2022: 12.5%")
    assert parse_row(line) == Row("Operating income (loss)", "in millions", (
        (f"{Q3} 2023", "(123)"), (f"{Q3} 2022", "456"), (f"{H1} 2023", "$(1,024)"), (f"{H1} 2022", "12.5%")))
    # and every row structure_page writes reads back with its cells intact
    for text in (INCOME_STATEMENT, SEGMENTS, OPEX):
        for out_line in row_lines(structure_page(text)):
            row = parse_row(out_line)
            assert row is not None and row.cells, out_line
            rebuilt = CELL_SEP.join([f"{row.label} ({row.unit})" if row.unit else row.label,
                                     *(f"{h}: {v}" if h else v for h, v in row.cells)])
            assert rebuilt == out_line


def test_parse_row_without_headers_or_unit():
    assert parse_row("Total | 1,000 | (5)") == Row("Total", None, (("", "1,000"), ("", "(5)")))


@pytest.mark.parametrize("line", [
    "The Company's revenues increased by 5% compared to the prior year.",
    "Net revenues were $2,540 million in 2023: up 5%.",
    "",
    "Acme Corp | Form 10-Q",  # has the separator, but its cells are not numbers
    "Revenue | 2023: strong growth | 2022: flat",
])
def test_parse_row_rejects_prose(line):
    assert parse_row(line) is None


# --------------------------------------------------------- (f) strip_furniture
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon"]


def test_strip_furniture_drops_running_header_and_page_numbers():
    pages = [f"Table of Contents\nAcme Corp | Quarterly Report\n\nBody text unique to {w}.\n"
             f"Revenue for {w} grew 12% in 2023.\n\n{i}\n" for i, w in enumerate(WORDS, 1)]
    out = strip_furniture(pages)
    assert len(out) == len(pages)
    for i, (w, text) in enumerate(zip(WORDS, out), 1):
        lines = [line for line in text.split("\n") if line.strip()]
        assert lines == [f"Body text unique to {w}.", f"Revenue for {w} grew 12% in 2023."]


def test_strip_furniture_page_x_of_y_and_dashed_numbers():
    pages = [f"Acme body {w} starts here.\nSecond line about {w}.\n- {i} -\n" for i, w in enumerate(WORDS, 1)]
    pages[0] += f"Page 1 of {len(WORDS)}\n"
    out = strip_furniture(pages)
    assert all("- " not in text and "Page 1" not in text for text in out)
    assert all(f"Acme body {w} starts here." in text for w, text in zip(WORDS, out))


def test_strip_furniture_keeps_body_lines_and_numbers_inside_the_page():
    body = ["Introduction", "The figures below are unaudited.", "42", "Closing paragraph."]
    pages = [f"Table of Contents\n{w} heading\n{w} subtitle\n" + "\n".join(body[:2]) + "\n2023\n" + "\n".join(body[2:])
             + f"\nmore on {w}\nthe end of {w}\n{i}\n" for i, w in enumerate(WORDS, 1)]
    out = strip_furniture(pages)
    for w, text in zip(WORDS, out):
        assert "Table of Contents" not in text
        # the same body lines appear on every page but sit away from its edges: kept
        for line in body + ["2023", f"{w} heading", f"{w} subtitle", f"more on {w}", f"the end of {w}"]:
            assert line in text.split("\n"), (line, text)


def test_strip_furniture_leaves_short_documents_alone():
    pages = ["Table of Contents\nBody one.\n1", "Table of Contents\nBody two.\n2"]
    out = strip_furniture(pages)
    assert all("Table of Contents" in p for p in out)  # two pages: nothing counts as repeated
    assert strip_furniture([]) == []


def test_strip_furniture_keeps_table_rows_at_page_edges():
    pages = [f"Sales in the {w} region.\nDetail about {w}.\n"
             f"Total (in millions) | 2023: $1,{i}00 | 2022: $1,{i}50\n" for i, w in enumerate(WORDS, 1)]
    out = strip_furniture(pages)
    for i, text in enumerate(out, 1):
        assert f"Total (in millions) | 2023: $1,{i}00 | 2022: $1,{i}50" in text


def test_strip_furniture_never_empties_a_page_of_body_text():
    pages = [f"Page {i} text. Page {i} text. Page {i} text.\nPage {i} text. Page {i} text." for i in range(1, 6)]
    assert all(text.strip() for text in strip_furniture(pages))


def test_strip_furniture_keeps_a_year_column_header_near_the_top():
    pages = [f"({i}) Footnote about {w}.\nContinued note on {w}.\n                         2023\n"
             f"Low High\nCosts for {w}   ~ $ 20   ~ $ 10\nMore on {w}.\nEnd of {w}." for i, w in enumerate(WORDS, 1)]
    assert all("2023" in text.split("\n")[2] for text in strip_furniture(pages))


def test_footnote_marker_is_not_a_negative_cell():
    text = """\
                                               Low          High
Estimated EPS on a GAAP basis               $  1.04      $  1.13
Estimated Non-Core Items:          (1)
"""
    rows = rows_by_label(structure_page(text))
    assert "Estimated Non-Core Items" not in rows  # today: 'Estimated Non-Core Items | Low: (1)'


# McDonald's 10-K: blocks of segment rows named by a colon label level with them, closed by an
# indented "Total"; the "(11 %)" and "—    %" cells are figures, not the end of the row
SEGMENT_BLOCKS = """\
Dollars in millions                                2022          2021
Company-operated sales:
U.S.                                        $     2,836   $    2,617
International Operated Markets                    5,179        6,456
  Total                                     $     8,748   $    9,788
Franchised revenues:
U.S.                                        $     6,585   $    6,094
International Operated Markets                    5,985        5,638
  Total                                     $   14,106    $   13,085
Total Company-operated sales and Franchised revenues:
International Operated Markets                   11,164       12,094
  Total                                        (11 %)       —    %
Total Other revenues                        $       329   $      350
"""


def test_colon_section_labels_name_the_rows_level_with_them():
    rows = rows_by_label(structure_page(SEGMENT_BLOCKS))
    assert rows["Company-operated sales: International Operated Markets"].cells[0] == ("2022", "5,179")
    assert rows["Franchised revenues: International Operated Markets"].cells[0] == ("2022", "5,985")
    assert rows["Franchised revenues: Total"].cells[0] == ("2022", "$14,106")
    assert rows["Total Company-operated sales and Franchised revenues: International Operated Markets"].cells[1] == (
        "2021", "12,094")
    assert rows["Total Company-operated sales and Franchised revenues: Total"].cells == (
        ("2022", "(11%)"), ("2021", "—%"))
    assert "Total Other revenues" in rows  # a "Total ..." row of its own ends the block


# PG&E: a footnote mark between label and columns; period headers set well right of their
# first column, over Earnings and Earnings-per-share pairs
PGE = """\
                                                        Three Months Ended                      Six Months Ended
                                                   Earnings             Share             Earnings            Share
(in millions)                                   2023       2022      2023      2022      2023      2022      2023      2022
Bankruptcy and legal costs        (3)             17        151      0.01      0.07        33       186      0.02      0.09
"""


def test_footnote_mark_left_of_the_columns_does_not_shift_the_cells():
    row = rows_by_label(structure_page(PGE))["Bankruptcy and legal costs"]
    assert len(row.cells) == 8
    assert row.cells[0] == ("Three Months Ended Earnings 2023", "17")
    assert row.cells[3] == ("Three Months Ended Share 2022", "0.07")  # nearer "Six Months Ended"
    assert row.cells[7] == ("Six Months Ended Share 2022", "0.09")


# eBay: no-break spaces between "$" and the figure; a first row of two rows glued together
# whose cells sit far right of the header
EBAY = ("                                  Three Months Ended\n"
        "                                  2023      2022\n"
        "GAAP operating incomeStock-based compensation and taxes$\xa0\xa0\xa0\xa0\xa0 558132  $\xa0\xa0\xa0\xa0 692117\n"
        " Restructuring                     42         7\n"
        "Non-GAAP operating income        $\xa0\xa0 744 $\xa0\xa0\xa0\xa0 805\n")


def test_no_break_spaces_and_a_misplaced_first_row_keep_the_columns():
    rows = rows_by_label(structure_page(EBAY))
    assert rows["Restructuring"].cells == (("Three Months Ended 2023", "42"), ("Three Months Ended 2022", "7"))
    assert rows["Non-GAAP operating income"].cells == (("Three Months Ended 2023", "$744"),
                                                       ("Three Months Ended 2022", "$805"))


# eBay's supplemental data: a title over the period line, the dates of five columns set with
# single spaces, a "$" touching its label and a first cell touching its label
SUPPLEMENTAL = """\
                                          eBay Inc.
                             Unaudited Supplemental Operating Data
                                                     Three Months Ended
                               March 31,2023 December 31,2022 September 30,2022 June 30,2022 March 31,2022
                                                (In millions, except percentages)
Active Buyers (1)                    133           134            135        138        142
Gross Merchandise Volume (3)
 U.S.                          $          9,010 $          8,894 $          8,699 $          8,982 $          9,335
 Current quarter vs prior year quarter(3) %        (9) %          (7) %     (13) %     (14) %
Total Gross Merchandise Volume$        18,410 $        18,227 $        17,715 $        18,549 $        19,409
"""


def test_a_run_of_dates_heads_one_column_each_and_a_title_stays_a_title():
    text = structure_page(SUPPLEMENTAL)
    assert text.split("\n")[:2] == ["eBay Inc.", "Unaudited Supplemental Operating Data"]
    rows = rows_by_label(text)
    us = rows["Gross Merchandise Volume (3): U.S."].cells
    assert us[0] == ("Three Months Ended March 31, 2023", "$9,010")
    assert us[4] == ("Three Months Ended March 31, 2022", "$9,335")
    change = rows["Gross Merchandise Volume (3): Current quarter vs prior year quarter"].cells
    assert [c[1] for c in change] == ["(3)%", "(9)%", "(7)%", "(13)%", "(14)%"]
    total = rows["Total Gross Merchandise Volume"].cells
    assert total[1] == ("Three Months Ended December 31, 2022", "$18,227")


# Salesforce's balance sheet: "Assets" and "(unaudited)" set a page width apart between the dates
# and the first rows
BALANCE = """\
Condensed Consolidated Balance Sheets
(in millions)
                                                          April 30, 2023          January 31, 2023
Assets                                                     (unaudited)
Current assets:
      Cash and cash equivalents                       $           9,155     $              7,016
      Marketable securities                                       4,822                    5,492
"""

# McDonald's 10-K: the unit at the left of the column names; years over Amount/Increase pairs
# and the last year over one column; Salesforce: "2023" left of its right-aligned figures
RESULTS = """\
                                                       2022                          2021            2020
Dollars in millions, except per share data   Amount   (decrease)Increase/   Amount   (decrease)Increase/   Amount
Revenues
Other revenues                                  329                   (6)      351                     2     343
"""
PERCENTS = """\
                                                    Three Months Ended April 30,
                                                2023                      2022
Revenues:
     Subscription and support                          93 %                      93 %
"""


def test_header_lines_over_a_wide_label_line_and_unit_at_the_left():
    row = rows_by_label(structure_page(BALANCE))["Current assets: Cash and cash equivalents"]
    assert row.cells == (("April 30, 2023", "$9,155"), ("January 31, 2023", "$7,016"))
    other = rows_by_label(structure_page(RESULTS))["Other revenues"]
    assert [h for h, _ in other.cells] == ["2022 Amount", "2022 (decrease)Increase/", "2021 Amount",
                                           "2021 (decrease)Increase/", "2020 Amount"]
    pct = rows_by_label(structure_page(PERCENTS))["Revenues: Subscription and support"]
    assert pct.cells == (("Three Months Ended April 30 2023", "93%"), ("Three Months Ended April 30 2022", "93%"))


# eBay's balance sheet runs over a page; its columns sit elsewhere on the second page
SHEET_P1 = """\
                         Unaudited Condensed Consolidated Balance Sheet
                                              March 31,     December 31,
                                                2023           2022
                                                      (In millions)
Current assets:
  Cash and cash equivalents                     $   2,082 $     2,154
     Total assets                               $  20,004 $    20,850
"""
SHEET_P2 = """\
           LIABILITIES AND STOCKHOLDERS' EQUITY
Current liabilities:
   Accounts payable                                                  280                  261
Operating lease liabilities                                          395                  418
"""


def test_a_table_continued_overleaf_keeps_its_column_headers():
    carry = TableCarry()
    structure_page(SHEET_P1, carry)
    rows = rows_by_label(structure_page(SHEET_P2, carry))
    assert rows["Accounts payable"].cells == (("March 31 2023", "280"),
                                              ("December 31 2022", "261"))
    assert rows["Operating lease liabilities"].cells[1] == ("December 31 2022", "418")
    # without the page before, nothing is invented; and prose after a table closes it
    assert rows_by_label(structure_page(SHEET_P2))["Operating lease liabilities"].cells[1] == ("", "418")
    carry = TableCarry()
    structure_page(SHEET_P1 + "\n".join(["A paragraph of prose follows the table."] * 4), carry)
    assert carry.heads == ()


# Oracle 10-K: a sentence ending in "2022 or 2021:" leads into the table; "Long-Lived" tops the
# "Assets" column's name only
GEOGRAPHY = """\
Disclosed in the table below is geographic information for each country that comprised greater than three percent of fiscal 2023,
2022 or 2021:

                                        As of and for the Year Ended May 31,
                                     2023                                  2022
                                                   Long-Lived                            Long-Lived
(in millions)                    Revenues          Assets(1)           Revenues          Assets(1)
United States               $      27,535     $      19,322     $        20,246     $      10,300
"""


def test_a_sentence_leading_into_a_table_is_not_its_header():
    row = rows_by_label(structure_page(GEOGRAPHY))["United States"]
    assert row.cells[2] == ("As of and for the Year Ended May 31 2022 Revenues", "$20,246")
    assert row.cells[3] == ("As of and for the Year Ended May 31 2022 Long-Lived Assets(1)", "$10,300")


def test_parse_row_reads_a_header_that_holds_a_colon():
    row = parse_row("United States | 2022 or 2021: Year Ended May 31 2022 Revenues: $20,246")
    assert row is not None and row.cells == (("2022 or 2021: Year Ended May 31 2022 Revenues", "$20,246"),)


# A scanned class schedule (NCT06155240): word cells, wrapped over several lines, one phrase set
# a space from the next column's ("Chair-based yoga Natural breath")
GRID = """\
Yoga for a Healthy Heart Protocol
           Assessment     Yoga physical   Yoga Breathing   Discussion with   Assessment
                          practice        Practice         class theme
Week1      Mini-Cog,      Chair-based yoga Natural breath   Joint protection;   Post-class BP
           Stress Scale                    awareness        "Do no harm"
Week2      Pre-Class BP   Chair-based yoga Natural breath   Awareness of       Post-class BP
                                           awareness        breathing
Week3      Pre-Class BP   Chair-based yoga Segmental        Energy             Post-class BP
The classes meet twice a week for eight weeks.
"""


def test_a_grid_of_word_cells_reads_as_rows_with_their_headers():
    lines = text_grid_rows(GRID).split("\n")
    assert lines[0] == "Yoga for a Healthy Heart Protocol"
    assert lines[1] == ("Week1 | Assessment: Mini-Cog, Stress Scale | Yoga physical practice: Chair-based yoga | "
                        "Yoga Breathing Practice: Natural breath awareness | Discussion with class theme: Joint "
                        'protection; "Do no harm" | Assessment: Post-class BP')
    assert lines[3].startswith("Week3 | Assessment: Pre-Class BP | Yoga physical practice: Chair-based yoga | "
                               "Yoga Breathing Practice: Segmental")
    assert lines[4] == "The classes meet twice a week for eight weeks."
    assert text_grid_rows(INCOME_STATEMENT) == INCOME_STATEMENT  # figures are structure_page's


# McDonald's reconciliation: "Net Income" and "Earnings per share - diluted" each centred over four
# columns; PG&E's "Earnings per / Common / Share" stacked over one pair of columns of four.
RECONCILIATION = """\
                                                                                                              Quarters Ended June 30,
                                                                                    Net Income                                                    Earnings per share -      diluted
                                                                                                            Inc/ (Dec)                                                             Inc/ (Dec)
                                                                                                            Excluding                                                              Excluding
                                                                                              Inc/           Currency                                               Inc/           Currency
                                                                2023             2022        (Dec)        Translation                 2023             2022        (Dec)         Translation
GAAP                                                    $ 2,310.4        $ 1,188.0            94  %                95  %       $     3.15      $     1.60            97  %               98  %
Non-GAAP                                                $ 2,324.1        $ 1,893.8            23  %                23  %       $     3.17      $     2.55            24  %               25  %
"""
STACKED = """\
                         Three Months Ended
                              June 30,
                                        Earnings per
                                           Common
                    Earnings                Share
                 2023      2022        2023      2022
GAAP earnings    $ 406     $ 356       $ 0.19    $ 0.17
"""


def test_names_centred_over_groups_of_columns_head_every_column_of_their_group():
    row = rows_by_label(structure_page(RECONCILIATION))["Non-GAAP"]
    headers = [h for h, _ in row.cells]
    assert headers[0] == "Quarters Ended June 30 Net Income 2023" and row.cells[0][1] == "$2,324.1"
    assert all("Net Income" in h for h in headers[:4]) and not any("Net Income" in h for h in headers[4:])
    assert headers[4] == "Quarters Ended June 30 Earnings per share - diluted 2023" and row.cells[4][1] == "$3.17"
    assert all("Earnings per share - diluted" in h for h in headers[4:])
    stacked = rows_by_label(structure_page(STACKED))["GAAP earnings"]
    assert not any("Earnings per" in h for h, _ in stacked.cells[:2])  # a stacked caption stays over its pair


# Oracle's 10-K: "Percent Change" centred over the gap between Actual and Constant
PERCENT_CHANGE = """\
                                                                              Year Ended May 31,
                                                                                Percent Change
                                                             2023           Actual     Constant        2022
Infrastructure cloud services and license support       $ 18,656             6%         10%      $ 17,562
"""


def test_a_name_centred_over_two_columns_heads_both():
    row = rows_by_label(structure_page(PERCENT_CHANGE))["Infrastructure cloud services and license support"]
    assert [h for h, _ in row.cells] == ["Year Ended May 31 2023", "Year Ended May 31 Percent Change Actual",
                                         "Year Ended May 31 Percent Change Constant", "Year Ended May 31 2022"]


# Salesforce's Q1 FY24 release: guidance ranges, approximations and "N/A" under two period headers
GUIDANCE = """\
                                        Q2 FY24                 Full Year FY24
                                        Guidance                   Guidance
Revenue                           $8.51 Billion- $8.53      $34.5 Billion- $34.7
Y/Y Growth                               ~10%                       ~10%
GAAP Operating Margin                    N/A                       ~11.4%
GAAP Earnings per Share(2)           $0.79 - $0.80              $2.67 - $2.69
Commission File No.                   333-230498                 333-258270
"""


def test_guidance_ranges_are_cells_under_their_period_headers():
    rows = rows_by_label(structure_page(GUIDANCE))
    assert list(rows["GAAP Earnings per Share(2)"].cells) == [("Q2 FY24 Guidance", "$0.79 - $0.80"),
                                                              ("Full Year FY24 Guidance", "$2.67 - $2.69")]
    assert rows["Revenue"].cells[1] == ("Full Year FY24 Guidance", "$34.5 Billion- $34.7")
    assert list(rows["GAAP Operating Margin"].cells) == [("Q2 FY24 Guidance", "N/A"),
                                                         ("Full Year FY24 Guidance", "~11.4%")]
    assert rows["Y/Y Growth"].cells[0] == ("Q2 FY24 Guidance", "~10%")
    assert not is_figure("333-230498") and not is_figure("2022 - 2023")  # a file number, a span of years


def test_is_figure_cell_reads_a_cell_as_parse_row_does():
    """The shortcut the spreadsheet reader takes for every cell agrees with parse_row."""
    import random

    known = {"5,482": True, "Revenue: 5,482": True, "Q1 2023: $(3.5)": True, "Margin: 12 %": True, "—": True,
             "Region: Americas": False, "": False, "Note: see 5": False, "a: b: 7": True, "x | 5": False, "5 | 6": True,
             "5 | a": False, " 5 ": True}
    assert {c: is_figure_cell(c) for c in known} == known
    rnd = random.Random(7)
    alphabet = list("0123456789,.$()%-—–: |/*pt nmNMa\n") + ["pts", "n/m", " | ", ": ", "1,234"]
    for _ in range(30_000):
        cell = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 9)))
        assert is_figure_cell(cell) == (parse_row("x" + CELL_SEP + cell) is not None), repr(cell)
