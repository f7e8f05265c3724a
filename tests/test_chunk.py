"""Tests of ingest.chunk.chunk_pages and ingest.clean.clean_text with the real MiniLM token counter."""
from __future__ import annotations

import random
import re

import pytest

from ingest import chunk as chunk_mod
from ingest.chunk import MAX_WINDOW, chunk_pages
from ingest.clean import clean_text
from rag.embed import token_counter
from rag.types import Chunk, Page


@pytest.fixture(scope="module")
def count():
    return token_counter()


LONG_SENTENCES = [f"Sentence number {i} explains a detail about the widget calibration procedure in plain words."
                  for i in range(40)]

MARKDOWN = f"""# Title

Intro paragraph under the title. It sets the scene.

## Section A

Paragraph in section A. It has two sentences.

### Sub

Paragraph in the sub section. Another sentence here.

Second paragraph in the sub section, e.g. with an abbreviation.

## Long Section

{" ".join(LONG_SENTENCES)}

## Section C

Final words.
"""


@pytest.fixture(scope="module")
def md_page() -> Page:
    return Page(1, clean_text(MARKDOWN))


@pytest.fixture(scope="module")
def md_chunks(md_page, count):
    return chunk_pages("doc-md", [md_page], "markdown", count)


def heading_lines(text: str) -> list[tuple[int, str]]:
    """(offset, line) of every Markdown heading line in text."""
    out, pos = [], 0
    for line in text.split("\n"):
        if re.match(r"#{1,6}\s", line):
            out.append((pos, line))
        pos += len(line) + 1
    return out


def assert_invariants(chunks: list[Chunk], counts: list[int], pages: list[Page], count) -> None:
    by_number = {p.number: p.text for p in pages}
    assert len(chunks) == len(counts)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert len({c.id for c in chunks}) == len(chunks)
    for c, n in zip(chunks, counts):
        page_text = by_number[c.page]
        assert 0 <= c.char_start < c.char_end <= len(page_text)
        assert page_text[c.char_start:c.char_end] == c.text
        assert c.text == c.text.strip() and c.text
        assert n <= MAX_WINDOW
        assert n == count([c.index_text()])[0]  # the returned counts are of index_text()


# ------------------------------------------------------------- structure
def test_invariants_on_markdown(md_chunks, md_page, count):
    chunks, counts = md_chunks
    assert len(chunks) >= 6
    assert_invariants(chunks, counts, [md_page], count)
    assert all(c.doc_id == "doc-md" and c.page == 1 for c in chunks)
    # the whole body text is covered (headings aside)
    covered = "".join(c.text for c in chunks)
    for s in LONG_SENTENCES + ["Intro paragraph under the title.", "Paragraph in section A.",
                               "Another sentence here.", "Final words."]:
        assert s in covered


def test_heading_paths(md_chunks):
    chunks, _ = md_chunks
    by_text = {}
    for c in chunks:
        for probe in ("Intro paragraph", "Paragraph in section A", "Paragraph in the sub section",
                      "Second paragraph in the sub", "Sentence number 39", "Final words"):
            if probe in c.text:
                by_text.setdefault(probe, set()).add(c.heading)
    assert by_text["Intro paragraph"] == {"Title"}
    assert by_text["Paragraph in section A"] == {"Title > Section A"}
    assert by_text["Paragraph in the sub section"] == {"Title > Section A > Sub"}
    assert by_text["Second paragraph in the sub"] == {"Title > Section A > Sub"}
    assert by_text["Sentence number 39"] == {"Title > Long Section"}  # Sub and Section A popped
    assert by_text["Final words"] == {"Title > Section C"}


def test_chunks_never_mix_headings(md_chunks, md_page):
    chunks, _ = md_chunks
    heads = heading_lines(md_page.text)
    assert [h for _, h in heads] == ["# Title", "## Section A", "### Sub", "## Long Section", "## Section C"]
    expected = {0: "Title", 1: "Title > Section A", 2: "Title > Section A > Sub",
                3: "Title > Long Section", 4: "Title > Section C"}
    for c in chunks:
        # no heading line inside a chunk
        assert not any(c.char_start <= off < c.char_end for off, _ in heads), c
        assert not any(line.startswith("#") for line in c.text.split("\n"))
        # the chunk's heading is the one of the section it lies in
        section = max(i for i, (off, _) in enumerate(heads) if off < c.char_start)
        assert c.heading == expected[section]


def test_overlap_in_long_section(md_chunks):
    chunks, counts = md_chunks
    long = [c for c in chunks if c.heading == "Title > Long Section"]
    assert len(long) >= 3
    for prev, nxt in zip(long, long[1:]):
        assert nxt.char_start < prev.char_end  # shared text
        assert nxt.char_start > prev.char_start  # but progress is made
        shared = prev.text[nxt.char_start - prev.char_start:]
        assert nxt.text.startswith(shared) and shared.strip()
    # chunk budget respected (200 tokens incl. heading by default)
    assert all(n <= 200 for c, n in zip(chunks, counts) if c.heading == "Title > Long Section")


def test_no_overlap_when_zero(md_page, count):
    chunks, counts = chunk_pages("doc-md", [md_page], "markdown", count, overlap_tokens=0)
    assert_invariants(chunks, counts, [md_page], count)
    long = [c for c in chunks if c.heading == "Title > Long Section"]
    assert len(long) >= 3
    for prev, nxt in zip(chunks, chunks[1:]):
        assert nxt.char_start >= prev.char_end
    # every long sentence still appears exactly once
    joined = "\n".join(c.text for c in long)
    for s in LONG_SENTENCES:
        assert joined.count(s) == 1


def test_multi_page_pdf(count):
    p1 = "1. Introduction\n\n" + " ".join(f"First page sentence {i} about reactor cooling loops." for i in range(30))
    p2 = " ".join(f"Second page sentence {i} about turbine blade fatigue." for i in range(30)) + \
        "\n\n2. Results\n\nThe results were good. They were also repeatable."
    pages = [Page(1, clean_text(p1)), Page(2, clean_text(p2))]
    chunks, counts = chunk_pages("doc-pdf", pages, "pdf", count)
    assert_invariants(chunks, counts, pages, count)
    assert {c.page for c in chunks} == {1, 2}
    assert [c.page for c in chunks] == sorted(c.page for c in chunks)
    for c in chunks:
        # never spans pages: the text belongs to its own page only
        if c.page == 1:
            assert "Second page" not in c.text
        else:
            assert "First page" not in c.text
    first_p2 = next(c for c in chunks if c.page == 2)
    assert first_p2.char_start == 0
    assert first_p2.heading == "1. Introduction"  # heading path carries over the page break
    assert chunks[-1].heading == "2. Results"
    assert "1. Introduction" not in "".join(c.text for c in chunks)


def test_long_unpunctuated_sentence_is_split(count):
    rng = random.Random(1234)
    vocab = ("alpha beta gamma delta widget calibration procedure mechanism tensor quantum arctic tern "
             "river mountain engine").split()
    words = [rng.choice(vocab) for _ in range(2000)]
    page = Page(1, " ".join(words))
    assert count([page.text])[0] > 3 * MAX_WINDOW
    chunks, counts = chunk_pages("doc-long", [page], "text", count)
    assert len(chunks) >= 4
    assert_invariants(chunks, counts, [page], count)
    # nothing lost: the chunks cover the whole text
    covered = [False] * len(page.text)
    for c in chunks:
        for i in range(c.char_start, c.char_end):
            covered[i] = True
    assert all(covered[i] for i, ch in enumerate(page.text) if not ch.isspace())


def test_long_url_in_sentence_fits_window(count):
    url = "https://example.org/" + "/".join(f"seg{i}" for i in range(700))
    page = Page(1, f"Fetch it from {url} and then run it.")
    chunks, counts = chunk_pages("doc-url", [page], "text", count)
    assert all(page.text[c.char_start:c.char_end] == c.text for c in chunks)
    assert max(counts) <= MAX_WINDOW


def test_heading_argument_sets_every_heading(count):
    body = " ".join(f"Record sentence {i} covers the history of lighthouse keeping." for i in range(60))
    body = "# Not A Heading Here\n\n" + body
    page = Page(1, body)
    chunks, counts = chunk_pages("rec-1", [page], "jsonl-record", count, heading="Lighthouse Records")
    assert len(chunks) >= 2
    assert_invariants(chunks, counts, [page], count)
    assert all(c.heading == "Lighthouse Records" for c in chunks)
    assert all(c.index_text().startswith("Lighthouse Records\n") for c in chunks)
    assert chunks[0].index_text() == "Lighthouse Records\n" + chunks[0].text
    # also overrides headings found in Markdown text
    md = Page(1, clean_text(MARKDOWN))
    md_chunks, _ = chunk_pages("rec-2", [md], "markdown", count, heading="Override")
    assert {c.heading for c in md_chunks} == {"Override"}


def test_heading_argument_is_truncated(count):
    long_heading = "H" * 500
    chunks, _ = chunk_pages("r", [Page(1, "Short body text.")], "jsonl-record", count, heading=long_heading)
    assert chunks[0].heading == "H" * chunk_mod.MAX_HEADING_CHARS


def test_no_heading_gives_plain_index_text(count):
    chunks, counts = chunk_pages("plain", [Page(1, "Just one sentence. And another.")], "text", count)
    assert len(chunks) == 1
    assert chunks[0].heading is None
    assert chunks[0].index_text() == "Just one sentence. And another."
    assert counts == [count(["Just one sentence. And another."])[0]]


def test_deterministic(md_page, count):
    a, ca = chunk_pages("doc-md", [md_page], "markdown", count)
    b, cb = chunk_pages("doc-md", [md_page], "markdown", count)
    assert [c.id for c in a] == [c.id for c in b]
    assert a == b and ca == cb
    other, _ = chunk_pages("doc-other", [md_page], "markdown", count)
    assert {c.id for c in other}.isdisjoint({c.id for c in a})  # ids depend on the document


def test_empty_pages_give_no_chunks(count):
    assert chunk_pages("e", [Page(1, "")], "pdf", count) == ([], [])


# ----------------------------------------------------------- clean_text
def test_clean_ligature():
    assert clean_text("\ufb01nancial o\ufb03ce") == "financial office"


def test_clean_hyphen_break():
    assert clean_text("infor-\nmation") == "information"
    assert clean_text("well-known") == "well-known"  # real hyphens stay
    assert clean_text("Covid-\n19") == "Covid-\n19"  # only lowercase letters are joined


def test_clean_control_chars():
    assert clean_text("a\x00b\x07c\x1fd\x7fe\u200bf\ufeffg") == "abcdefg"
    assert clean_text("tab\tseparated") == "tab separated"


def test_clean_spaces_collapsed():
    assert clean_text("many    spaces \u00a0 here") == "many spaces here"
    assert clean_text("  trailing   \n   leading") == "trailing\nleading"


def test_clean_dot_leaders():
    out = clean_text("Chapter 1 .................. 5")
    assert "...." not in out
    assert out == "Chapter 1 ... 5"
    assert clean_text("Wait...") == "Wait..."  # an ellipsis is not a leader
    assert "____" not in clean_text("Sign here: ________")


def test_clean_newlines():
    assert clean_text("a\n\n\n\n\nb") == "a\n\nb"
    assert clean_text("a\r\n\r\n\r\nb\rc") == "a\n\nb\nc"
    assert clean_text("a\n  \n \n\nb") == "a\n\nb"
    assert clean_text("a\n\nb") == "a\n\nb"


def test_a_row_of_word_cells_is_an_answer_unit_and_a_title_over_it_is_not():
    from ingest.chunk import split_sentences
    from rag.answer.support import passage_sentences
    from rag.types import Chunk, Hit

    text = ("Yoga for a Healthy Heart Protocol\n"
            "Week1 | Assessment: Mini-Cog | Yoga physical practice: Chair-based yoga | Assessment: Post-class BP\n"
            "Week2 | Assessment: Pre-Class BP | Yoga physical practice: Chair-based yoga | Assessment: Post-class BP\n"
            "The classes meet twice a week.")
    units = [text[a:b] for a, b in split_sentences(text)]
    assert units[1].startswith("Week1 |") and units[1].endswith("Post-class BP")  # one row, not run into the next
    hit = Hit(Chunk("c1", "d1", 0, text, 1, 0, len(text)), "scan.pdf")
    assert [u.text for u in passage_sentences([hit])][0].startswith("Week1 |")  # the title states nothing


TITLED_TABLE = (
    "Unearned revenue represents amounts that have been invoiced in advance of revenue recognition.\n\n"
    "Disaggregation of Revenue\n"
    "Subscription and Support Revenue by the Company's service offerings\n"
    + "".join(f"{name} (in millions) | Three Months Ended April 30 2023: ${a:,} | Three Months Ended April 30 2022: ${b:,}\n"
              for name, a, b in [("Sales", 1810, 1632), ("Service", 1964, 1761), ("Platform and Other", 1567, 1419),
                                 ("Marketing and Commerce", 1170, 1089), ("Data", 1131, 955)] * 4)
    + "(1) Other includes, for example, the impact of foreign currency translation.\n"
    "Short-term debt $ — $ 1,150\n"
    "Long-term debt (in millions) | March 31 2023: $7,716 | December 31 2022: $7,728\n"
)


def test_a_title_over_table_rows_heads_them_even_in_a_chunk_that_starts_mid_table(count):
    from rag.answer.support import passage_sentences
    from rag.types import Hit

    page = Page(10, TITLED_TABLE)
    chunks, counts = chunk_pages("doc-crm", [page], "pdf", count, max_tokens=120, overlap_tokens=0,
                                 context="SALESFORCE 2024Q1 EARNINGS")
    assert_invariants(chunks, counts, [page], count)
    title = "Subscription and Support Revenue by the Company's service offerings"
    rows = [c for c in chunks if "Service (in millions)" in c.text]
    assert len(rows) >= 2  # the table runs over several chunks
    assert all(c.heading == f"SALESFORCE 2024Q1 EARNINGS > {title}" for c in rows)
    assert title in rows[-1].index_text() and title not in rows[-1].text
    # the rows' answer units know their table even where the title is not in the passage text
    units = passage_sentences([Hit(rows[-1], "crm.pdf")])
    assert units and all(u.caption == title for u in units if "|" in u.text)
    # prose after the table is not under the title; a row left unparsed is text, not a title
    after = [c for c in chunks if "foreign currency translation" in c.text]
    assert after and after[0].heading == "SALESFORCE 2024Q1 EARNINGS"
    assert any("Short-term debt $ — $ 1,150" in c.text for c in chunks)
    assert not any(c.heading.endswith(("Disaggregation of Revenue", "$ 1,150")) for c in chunks)
    # a table that goes on overleaf keeps its title; the prose after it, on that page, does not
    overleaf = Page(11, "Data (in millions) | Three Months Ended April 30 2023: 1,131 | Three Months Ended April 30 2022: 955\n"
                        "Constant Currency Growth Rates\n"
                        "Subscription and support revenues constant currency growth rates were as follows:\n")
    chunks, _ = chunk_pages("doc-crm", [Page(10, TITLED_TABLE.split("(1) Other")[0]), overleaf], "pdf", count,
                            max_tokens=120, overlap_tokens=0, context="SALESFORCE 2024Q1 EARNINGS")
    on_11 = {c.text.split(" ")[0]: c.heading for c in chunks if c.page == 11}
    assert on_11["Data"].endswith(title) and on_11["Subscription"] == "SALESFORCE 2024Q1 EARNINGS"


def test_a_line_that_introduces_a_table_as_follows_heads_its_rows(count):
    """Salesforce's "Revenue constant currency growth rates by geographical region were as
    follows:": the rows under it ("Europe - growth | ... 17%") say what they are in any chunk."""
    rows = "".join(f"{name} - growth | Three Months Ended April 30, 2023 Compared to Three Months Ended April 30, "
                   f"2022: {g}% | Three Months Ended January 31, 2023 Compared to Three Months Ended January 31, "
                   f"2022: 20%\n" for name, g in [("Americas", 10), ("Europe", 17), ("Asia Pacific", 24)] * 3)
    page = Page(11, "Constant Currency Growth Rates\n"
                    "Revenue constant currency growth rates by geographical region were as follows:\n" + rows
                    + "The Company presents constant currency information to provide a framework.\n")
    chunks, counts = chunk_pages("doc-crm", [page], "pdf", count, max_tokens=120, overlap_tokens=0,
                                 context="SALESFORCE 2024Q1 EARNINGS")
    assert_invariants(chunks, counts, [page], count)
    europe = [c for c in chunks if "Europe - growth" in c.text]
    assert len(europe) >= 2
    title = "Revenue constant currency growth rates by geographical region"
    assert all(c.heading == f"SALESFORCE 2024Q1 EARNINGS > {title}" for c in europe)
    after = [c for c in chunks if "framework" in c.text]
    assert after and after[-1].heading == "SALESFORCE 2024Q1 EARNINGS"


def test_a_sentence_ends_before_a_curly_quote():
    """A release's dateline sentence and the CEO's quote after it are two answer units, so an
    answer quotes the sentence with the figure, not both run together."""
    from ingest.chunk import split_sentences

    text = ("CHICAGO, IL - McDonald's Corporation today announced results for the second quarter ended June 30, "
            "2023. \u201cOur results reflect comparable sales growth of 11.7%,\u201d said the CEO. Sales rose.")
    assert [text[a:b] for a, b in split_sentences(text)] == [
        "CHICAGO, IL - McDonald's Corporation today announced results for the second quarter ended June 30, 2023.",
        "\u201cOur results reflect comparable sales growth of 11.7%,\u201d said the CEO.", "Sales rose."]
