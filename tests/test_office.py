""".docx, .pptx, .xlsx and .csv files: real files built here with python-docx, python-pptx,
openpyxl and csv, loaded by ingest.load.load_file and indexed by the real pipeline; hostile
packages (zip bomb, billion laughs, encrypted, mislabelled, corrupt, macros) crafted byte by byte."""
from __future__ import annotations

import csv
import datetime as dt
import io
import random
import time
import zipfile
from pathlib import Path

import docx
import openpyxl
import pptx
import pytest
from pptx.util import Inches

from ingest import office
from ingest.chunk import chunk_pages
from ingest.load import LoadedDoc, PdfParser, detect_kind, load_file
from ingest.pdf_layout import parse_row
from rag.errors import FileRejected, MislabelledType, UnsupportedType

MAX_BYTES = 50 << 20


def load(path: Path, timeout_s: float = 60.0) -> LoadedDoc:
    with PdfParser(timeout_s) as parser:
        docs = list(load_file(path, MAX_BYTES, parser))
    assert len(docs) == 1
    return docs[0]


def rejected(path: Path) -> FileRejected:
    """The error a file is refused with; its message must name the file."""
    with pytest.raises(FileRejected) as ei:
        load(path)
    assert path.name in ei.value.message
    return ei.value


def words(texts: list[str]) -> list[int]:
    return [len(t.split()) for t in texts]


# ------------------------------------------------------------ real files
def make_docx(path: Path) -> Path:
    d = docx.Document()
    d.core_properties.title = "Quarterly Report 2023"
    d.add_heading("Quarterly Report", 0)
    d.add_heading("Results", 1)
    d.add_paragraph("Revenue grew in every region this quarter.")
    t = d.add_table(rows=3, cols=3)
    for r, row in enumerate([["Region", "Revenue", "Units"], ["Americas", "5,482", "310"], ["EMEA", "4,100", "220"]]):
        for c, v in enumerate(row):
            t.cell(r, c).text = v
    d.add_heading("Outlook", 2)
    d.add_paragraph("We expect steady growth next year.")
    d.add_page_break()
    d.add_heading("Appendix", 1)
    t = d.add_table(rows=3, cols=3)
    t.cell(0, 1).merge(t.cell(0, 2)).text = "Three Months Ended June 30"
    for r, row in [(1, ["", "2023", "2022"]), (2, ["Net revenues", "$2,540", "$2,422"])]:
        for c, v in enumerate(row):
            t.cell(r, c).text = v
    t = d.add_table(rows=2, cols=2)
    for r, row in enumerate([["Name", "Role"], ["Alice Smith", "Chief Financial Officer of the company"]]):
        for c, v in enumerate(row):
            t.cell(r, c).text = v
    d.save(path)
    return path


W_NS = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def add_notes(d, kind: str, notes: dict[int, str]) -> None:
    """Give a python-docx document a footnotes (or endnotes) part as Word writes it: the two
    separator notes, then a note per id; python-docx saves it with its relationship and type."""
    from docx.opc.constants import CONTENT_TYPE as CT, RELATIONSHIP_TYPE as RT
    from docx.opc.packuri import PackURI
    from docx.opc.part import Part

    tag = kind[:-1]  # footnote, endnote
    xml = f'<w:{kind} {W_NS}>'
    xml += "".join(f'<w:{tag} w:type="{t}" w:id="{i}"><w:p><w:r><w:{t}/></w:r></w:p></w:{tag}>'
                   for i, t in ((-1, "separator"), (0, "continuationSeparator")))
    for i, text in notes.items():
        paras = "".join(f'<w:p><w:r><w:t xml:space="preserve">{t}</w:t></w:r></w:p>' for t in text.split("\n"))
        xml += (f'<w:{tag} w:id="{i}"><w:p><w:pPr><w:pStyle w:val="{tag.capitalize()}Text"/></w:pPr>'
                f'<w:r><w:{tag}Ref/></w:r></w:p>{paras}</w:{tag}>').replace("</w:p><w:p><w:r><w:t", "<w:r><w:t", 1)
    xml += f"</w:{kind}>"
    ctype, reltype = {"footnotes": (CT.WML_FOOTNOTES, RT.FOOTNOTES), "endnotes": (CT.WML_ENDNOTES, RT.ENDNOTES)}[kind]
    d.part.relate_to(Part(PackURI(f"/word/{kind}.xml"), ctype, xml.encode(), d.part.package), reltype)


def note_ref(run, kind: str, note_id: int) -> None:
    """A footnote (or endnote) reference in a run, as Word writes it."""
    from docx.oxml import parse_xml

    run._r.append(parse_xml(f'<w:{kind}Reference {W_NS} w:id="{note_id}"/>'))


def add_field(paragraph, instr: str, result: str, simple: bool = False) -> None:
    """A field (PAGE, NUMPAGES...) with its last result, as a w:fldSimple or as w:fldChar runs."""
    from docx.oxml import parse_xml

    if simple:
        paragraph._p.append(parse_xml(f'<w:fldSimple {W_NS} w:instr=" {instr} "><w:r><w:t>{result}</w:t></w:r>'
                                      "</w:fldSimple>"))
        return
    for body in ('<w:fldChar w:fldCharType="begin"/>', f'<w:instrText xml:space="preserve"> {instr} </w:instrText>',
                 '<w:fldChar w:fldCharType="separate"/>', f"<w:t>{result}</w:t>", '<w:fldChar w:fldCharType="end"/>'):
        paragraph._p.append(parse_xml(f"<w:r {W_NS}>{body}</w:r>"))


def make_noted_docx(path: Path) -> Path:
    """A report with footnotes (one in a table cell), an endnote, a note nothing references,
    and page headers and footers: a running title, page numbers, and text found nowhere else."""
    d = docx.Document()
    d.core_properties.title = "Quarterly Report"
    d.add_heading("Results", 1)
    p = d.add_paragraph("Revenue grew 12% in the quarter.")
    note_ref(p.add_run(), "footnote", 2)  # the first referenced: footnote 1, whatever its id
    d.add_paragraph("Costs were flat.")
    t = d.add_table(rows=2, cols=2)
    for r, row in enumerate([["Region", "Revenue"], ["Americas", "5,482"]]):
        for c, v in enumerate(row):
            t.cell(r, c).text = v
    note_ref(t.cell(1, 1).paragraphs[0].add_run(), "footnote", 1)
    d.add_page_break()
    d.add_heading("Outlook", 1)
    p = d.add_paragraph("We expect steady growth.")
    note_ref(p.add_run(), "endnote", 1)
    add_notes(d, "footnotes", {1: "Unaudited figure.", 2: "Excluding the sale of the Lisbon unit.\nSee note 4.",
                               3: "Prepared by the Ottawa office."})
    add_notes(d, "endnotes", {1: "Forecast by the planning team in Porto."})
    section = d.sections[0]
    head = section.header.paragraphs[0]
    head.add_run("Quarterly Report")  # a running title: the document's title
    head.add_run().add_tab()
    head.add_run("Project Falcon")
    head.add_run().add_tab()
    add_field(head, "STYLEREF Heading1", "Results")
    foot = section.footer.paragraphs[0]
    foot.add_run("Page ")
    add_field(foot, "PAGE", "1")
    foot.add_run(" of ")
    add_field(foot, "NUMPAGES", "2", simple=True)
    section.footer.add_paragraph("Confidential: do not distribute")
    section.different_first_page_header_footer = True
    section.first_page_header.paragraphs[0].text = "ACME Corporation, 1 Main Street, Springfield"
    d.save(path)
    return path


TEXT_BOX_NS = ('xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
               'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
               'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
               'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
               'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
               'xmlns:v="urn:schemas-microsoft-com:vml"')


def add_text_box(paragraph, *lines: str, fallback: bool = True) -> None:
    """A text box anchored in a paragraph's run, as Word writes it: a DrawingML shape (mc:Choice)
    and, with `fallback`, the same text again in a VML shape (mc:Fallback); without, the VML
    shape alone, as older Word versions wrote it."""
    from docx.oxml import parse_xml

    content = "<w:txbxContent>" + "".join(f"<w:p><w:r><w:t>{t}</w:t></w:r></w:p>" for t in lines) + "</w:txbxContent>"
    vml = f'<w:pict><v:shape style="width:200pt;height:60pt"><v:textbox>{content}</v:textbox></v:shape></w:pict>'
    drawing = (
        '<w:drawing><wp:anchor distT="0" distB="0" distL="0" distR="0" simplePos="0" relativeHeight="2" behindDoc="0" '
        'locked="0" layoutInCell="1" allowOverlap="1"><wp:simplePos x="0" y="0"/>'
        '<wp:positionH relativeFrom="column"><wp:posOffset>0</wp:posOffset></wp:positionH>'
        '<wp:positionV relativeFrom="paragraph"><wp:posOffset>0</wp:posOffset></wp:positionV>'
        '<wp:extent cx="2540000" cy="762000"/><wp:wrapSquare wrapText="bothSides"/><wp:docPr id="7" name="Text Box 7"/>'
        '<a:graphic><a:graphicData uri="http://schemas.microsoft.com/office/word/2010/wordprocessingShape">'
        f'<wps:wsp><wps:cNvSpPr txBox="1"/><wps:spPr/><wps:txbx>{content}</wps:txbx><wps:bodyPr/></wps:wsp>'
        "</a:graphicData></a:graphic></wp:anchor></w:drawing>")
    run = (f'<mc:AlternateContent><mc:Choice Requires="wps">{drawing}</mc:Choice>'
           f"<mc:Fallback>{vml}</mc:Fallback></mc:AlternateContent>") if fallback else vml
    paragraph._p.append(parse_xml(f"<w:r {TEXT_BOX_NS}>{run}</w:r>"))


def make_boxed_docx(path: Path) -> Path:
    """A report with text boxes (Word's two copies, and a VML one alone) and comments."""
    d = docx.Document()
    d.add_heading("Results", 1)
    p = d.add_paragraph("Revenue grew 12% in the quarter.")
    add_text_box(p, "Key figure: churn fell to 3.1%.", "Source: billing system.")
    old = d.add_paragraph("Costs were flat.")
    add_text_box(old, "Sidebar from Word 2003: staff rose to 310.", fallback=False)
    d.add_paragraph("We expect steady growth.")
    first = d.paragraphs[1].runs[0]
    d.add_comment(first, "Check against the audited figure.", author="Ann Lee", initials="AL")
    d.add_comment(d.paragraphs[3].runs, "Say which regions.\nAnd which years.", author="Bo Chen")
    d.add_comment(d.paragraphs[2].runs[0], "Costs include the Lisbon move.")
    d.save(path)
    return path


def make_pptx(path: Path) -> Path:
    p = pptx.Presentation()
    s = p.slides.add_slide(p.slide_layouts[1])
    s.shapes.title.text = "Growth plan"
    s.placeholders[1].text = "Open two stores\nHire forty people"
    s.notes_slide.notes_text_frame.text = "Mention the Lisbon lease."
    group = s.shapes.add_group_shape()  # at the bottom of the slide: read after the body
    group.shapes.add_textbox(Inches(1), Inches(6.5), Inches(4), Inches(0.5)).text_frame.text = "Budget approved"
    s = p.slides.add_slide(p.slide_layouts[6])  # blank: no title
    table = s.shapes.add_table(3, 2, Inches(1), Inches(1), Inches(4), Inches(1.5)).table
    for r, row in enumerate([["Region", "Stores"], ["Americas", "12"], ["APAC", "7"]]):
        for c, v in enumerate(row):
            table.cell(r, c).text = v
    p.save(path)
    return path


def make_xlsx(path: Path, rows: int = 450) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Revenue"
    ws.append(["Revenue by region (in millions)"])
    ws.append(["Region", "Quarter", "Revenue", "Margin", "Closed"])
    ws.append(["Nordics", "Q2 2023", 7315, 0.25, dt.date(2023, 6, 30)])
    ws["C3"].number_format = "#,##0"
    ws["D3"].number_format = "0%"
    for i in range(rows - 3):
        ws.append([f"Territory {i}", "Q2 2023", 1000 + i, 0.1, None])
    notes = wb.create_sheet("Notes")
    notes.append(["Owner", "Comment"])
    notes.append(["Finance team", "Figures are unaudited"])
    wb.save(path)
    return path


def make_csv(path: Path, rows: int = 450, encoding: str = "cp1252") -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=";")
    w.writerow(["Café", "City", "Seats"])
    for i in range(rows - 1):
        w.writerow([f"Café {i}", "Zürich" if i % 2 else "Genève", 20 + i])
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def repack(data: bytes, replace: dict | None = None, add: dict | None = None,
           compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A copy of a ZIP package with parts replaced (bytes, or a function of the old bytes) or added."""
    replace, add = replace or {}, add or {}
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for info in src.infolist():
            body = src.read(info.filename)
            new = replace.get(info.filename, body)
            z.writestr(info.filename, new(body) if callable(new) else new)
        for name, body in add.items():
            z.writestr(name, body)
    return out.getvalue()


def docx_bytes(*paragraphs: str) -> bytes:
    d = docx.Document()
    for p in paragraphs:
        d.add_paragraph(p)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                     for i in range(1, 10)) + b"]>")


def with_laughs(xml: bytes, marker: bytes) -> bytes:
    """An XML part with a billion-laughs DTD, and its entity used where `marker` was."""
    body = xml.split(b"?>", 1)[1] if xml.startswith(b"<?xml") else xml
    return LAUGHS + body.replace(marker, b"&lol9;", 1)


def ole_file(*stream_names: str) -> bytes:
    """An OLE compound file header and a directory naming these streams (all detection reads)."""
    directory = b"".join(n.encode("utf-16-le").ljust(64, b"\x00") + b"\x00" * 64 for n in stream_names)
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504 + directory


# ------------------------------------------------------------ extraction
def test_docx_headings_paragraphs_and_tables(tmp_path):
    doc = load(make_docx(tmp_path / "report.docx"))
    assert doc.kind == "docx" and doc.title == "Quarterly Report 2023"
    assert [p.number for p in doc.pages] == [1, 2]  # the hard page break
    first, second = doc.pages[0].text, doc.pages[1].text
    assert "# Quarterly Report\n" in first and "## Results\n" in first and "### Outlook" in first
    assert "Region: Americas | Revenue: 5,482 | Units: 310" in first.split("\n")
    row = parse_row("Region: Americas | Revenue: 5,482 | Units: 310")
    assert row.label == "Region: Americas" and row.cells == (("Revenue", "5,482"), ("Units", "310"))
    # a merged header over a row of years: each column carries both
    assert "Net revenues | Three Months Ended June 30 2023: $2,540 | Three Months Ended June 30 2022: $2,422" in second
    assert "Name: Alice Smith; Role: Chief Financial Officer of the company" in second  # no figures: one line
    chunks, _ = chunk_pages("d", doc.pages, doc.kind, words, 200, 20)
    heading_of = {c.text.split("\n")[0]: c.heading for c in chunks}
    assert heading_of["Revenue grew in every region this quarter."] == "Quarterly Report > Results"
    assert heading_of["We expect steady growth next year."] == "Quarterly Report > Results > Outlook"
    assert all(c.heading == "Quarterly Report > Appendix" for c in chunks if c.page == 2)


def test_docx_pages_follow_the_breaks_word_rendered(tmp_path):
    """Word saves where it broke pages (w:lastRenderedPageBreak): those are the page numbers."""
    xml_break = b'<w:r><w:lastRenderedPageBreak/><w:t>'
    data = repack(docx_bytes("first page", "second page", "still second"),
                  {"word/document.xml": lambda x: x.replace(b"<w:r><w:t>second", xml_break + b"second")})
    path = tmp_path / "rendered.docx"
    path.write_bytes(data)
    doc = load(path)
    assert [p.text for p in doc.pages] == ["first page", "second page\n\nstill second"]


def test_docx_footnotes_follow_their_reference_and_endnotes_end_the_document(tmp_path):
    doc = load(make_noted_docx(tmp_path / "noted.docx"))
    assert doc.pages[0].text == (
        "## Results\n\nRevenue grew 12% in the quarter.\n\n"
        "Footnote 1: Excluding the sale of the Lisbon unit. See note 4.\n\n"  # numbered as referenced
        "Costs were flat.\n\nRegion: Americas | Revenue: 5,482\n\n"  # no mark spoils the figure cell
        "Footnote 2: Unaudited figure.")  # after the table that references it
    assert doc.pages[1].text.startswith(
        "## Outlook\n\nWe expect steady growth.\n\n# Endnotes\n\nEndnote i: Forecast by the planning team in Porto."
        "\n\n# Notes\n\nFootnote 3: Prepared by the Ottawa office.\n\n")  # referenced nowhere: kept at the end
    chunks, _ = chunk_pages("d", doc.pages, doc.kind, words, 200, 20)
    lisbon = [c for c in chunks if "Lisbon" in c.text]
    assert len(lisbon) == 1 and lisbon[0].page == 1 and "Revenue grew 12%" in lisbon[0].text
    porto = [c for c in chunks if "Porto" in c.text]
    assert len(porto) == 1 and porto[0].page == 2 and porto[0].heading == "Endnotes"


def test_note_marks_follow_word_formats_and_the_documents_own_choice(tmp_path):
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    from ingest.office import note_mark

    assert [note_mark(n, "lowerRoman") for n in (1, 4, 9, 14, 40)] == ["i", "iv", "ix", "xiv", "xl"]
    assert [note_mark(n, "upperLetter") for n in (1, 26, 27)] == ["A", "Z", "AA"]
    assert note_mark(12, "decimal") == note_mark(12, "chicago") == "12"
    path = make_noted_docx(tmp_path / "noted.docx")
    d = docx.Document(str(path))
    pr, fmt = OxmlElement("w:endnotePr"), OxmlElement("w:numFmt")
    fmt.set(qn("w:val"), "decimal")
    pr.append(fmt)
    d.settings.element.append(pr)
    d.save(str(path))
    assert "Endnote 1: Forecast by the planning team in Porto." in load(path).pages[1].text


def test_docx_page_headers_and_footers_are_kept_out_unless_unique(tmp_path):
    """Running titles, page numbers and other fields stay out of the chunks; header or footer
    text that the document says nowhere else is kept once, at its end."""
    doc = load(make_noted_docx(tmp_path / "noted.docx"))
    assert doc.pages[1].text.endswith(
        "# Page headers and footers\n\nPage header: Project Falcon; ACME Corporation, 1 Main Street, Springfield"
        "\n\nPage footer: Confidential: do not distribute")
    chunks, _ = chunk_pages("d", doc.pages, doc.kind, words, 200, 20)
    assert [c.heading for c in chunks if "Project Falcon" in c.text] == ["Page headers and footers"]
    assert not any("Page 1" in c.text or "Quarterly Report" in c.text for c in chunks)

    furniture = docx.Document()  # only furniture: the text is the same as without any header
    furniture.core_properties.title = "Budget"
    furniture.add_paragraph("Budget 2024")
    furniture.add_paragraph("Travel is capped at 5% of costs.")
    head = furniture.sections[0].header.paragraphs[0]
    head.add_run("Budget 2024")  # said in the body
    head.add_run().add_tab()
    add_field(head, "DATE", "12 March 2024")
    foot = furniture.sections[0].footer.paragraphs[0]
    foot.add_run("- ")
    add_field(foot, "PAGE", "7", simple=True)
    foot.add_run(" -")
    furniture.sections[0].footer.add_paragraph("Page 7 of 9")
    furniture.save(tmp_path / "furniture.docx")
    assert [p.text for p in load(tmp_path / "furniture.docx").pages] == [
        "Budget 2024\n\nTravel is capped at 5% of costs."]


def test_docx_text_boxes_are_read_once_after_their_paragraph(tmp_path):
    """Word keeps each text box twice (DrawingML and a VML fallback): its text is read once, in
    document order, after the paragraph it is anchored in; a VML text box alone is read too."""
    doc = load(make_boxed_docx(tmp_path / "boxed.docx"))
    text = "\n\n".join(p.text for p in doc.pages)
    assert text.startswith(
        "## Results\n\nRevenue grew 12% in the quarter.\n\nKey figure: churn fell to 3.1%.\n\n"
        "Source: billing system.\n\nCosts were flat.\n\nSidebar from Word 2003: staff rose to 310.\n\n"
        "We expect steady growth.\n\n")
    for phrase in ("churn fell to 3.1%", "Source: billing system.", "staff rose to 310"):
        assert text.count(phrase) == 1, phrase
    chunks, _ = chunk_pages("d", doc.pages, doc.kind, words, 200, 20)
    assert [c.heading for c in chunks if "churn fell" in c.text] == ["Results"]


def test_docx_comments_end_the_document_with_author_and_the_text_they_are_on(tmp_path):
    doc = load(make_boxed_docx(tmp_path / "boxed.docx"))
    text = "\n\n".join(p.text for p in doc.pages)
    assert text.endswith(  # in the order of the text they are on
        "# Comments\n\n"
        'Comment by Ann Lee on "Revenue grew 12% in the quarter.": Check against the audited figure.\n\n'
        'Comment on "Costs were flat.": Costs include the Lisbon move.\n\n'
        'Comment by Bo Chen on "We expect steady growth.": Say which regions. And which years.')
    assert text.count("audited figure") == 1
    chunks, _ = chunk_pages("d", doc.pages, doc.kind, words, 200, 20)
    assert [c.heading for c in chunks if "Lisbon" in c.text] == ["Comments"]


def test_a_long_comment_range_is_quoted_by_its_start(tmp_path):
    d = docx.Document()
    first = d.add_paragraph("One two three four five six seven eight nine ten eleven twelve thirteen.")
    last = d.add_paragraph("Second paragraph.")
    d.add_comment([first.runs[0], last.runs[0]], "Too long.")
    d.save(tmp_path / "long.docx")
    assert load(tmp_path / "long.docx").pages[-1].text.endswith(
        'Comment on "One two three four five six seven eight nine ten eleven twelve ...": Too long.')


def test_hostile_comments_are_refused(tmp_path):
    src = make_boxed_docx(tmp_path / "src.docx").read_bytes()
    assert_laughs_refused(tmp_path / "laughs.docx", src, "word/comments.xml", b"audited")


def test_pptx_one_page_per_slide_with_notes(tmp_path):
    doc = load(make_pptx(tmp_path / "plan.pptx"))
    assert doc.kind == "pptx" and doc.title == "Growth plan"
    assert [p.number for p in doc.pages] == [1, 2]
    assert doc.pages[0].text == ("# Growth plan\n\nOpen two stores\n\nHire forty people\n\nBudget approved\n\n"
                                 "Notes: Mention the Lisbon lease.")
    assert doc.pages[1].text == "# Slide 2\n\nRegion: Americas | Stores: 12\nRegion: APAC | Stores: 7"
    chunks, _ = chunk_pages("d", doc.pages, doc.kind, words, 200, 20)
    assert [c.heading for c in chunks] == ["Growth plan", "Slide 2"]


def test_xlsx_rows_carry_headers_and_pages_are_row_spans(tmp_path):
    doc = load(make_xlsx(tmp_path / "sales.xlsx"))
    assert doc.kind == "xlsx" and doc.title == "sales"
    heads = [p.text.split("\n", 1)[0] for p in doc.pages]
    assert heads == ["# Revenue, rows 1-200", "# Revenue, rows 201-400", "# Revenue, rows 401-450", "# Notes"]
    lines = doc.pages[0].text.split("\n")
    assert lines[1:3] == ["Revenue by region (in millions)", ""]  # a title row stays text, a paragraph
    lines.remove("")
    assert lines[2] == "Region: Nordics; Quarter: Q2 2023; Closed: 2023-06-30 | Revenue: 7,315 | Margin: 25%"
    assert parse_row(lines[2]).cells == (("Revenue", "7,315"), ("Margin", "25%"))
    assert "Region: Territory 197; Quarter: Q2 2023 | Revenue: 1197 | Margin: 0.1" in doc.pages[1].text  # row 201
    assert doc.pages[3].text == "# Notes\nOwner: Finance team; Comment: Figures are unaudited"
    chunks, _ = chunk_pages("d", doc.pages, doc.kind, words, 200, 20)
    assert {c.heading for c in chunks if c.page == 2} == {"Revenue, rows 201-400"}


def make_tables_xlsx(path: Path) -> Path:
    """A sheet with four tables one below another, between blank rows (the second, third and
    fourth with a header of their own), and a blank row between groups of the first table."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Summary"
    rows = {1: ["Revenue by region"], 2: ["Region", "Q1", "Q2"], 3: ["Americas", 5482, 5610],
            4: ["EMEA", 4100, 4230], 6: ["APAC", 3900, 4010],  # row 5 blank: a group of the same table
            9: ["Product", "Q1", "Q2"], 10: ["Widgets", 1200, 1350], 11: ["Gadgets", 800, 950],
            13: ["Headcount by office"], 14: ["Office", "Staff", "Manager", "Opened"],
            15: ["Lisbon", 40, "Ana Costa", 2019], 16: ["Osaka", 25, "Ken Mori", 2021],
            18: ["Name", "Email"], 19: ["Ana Costa", "ana@example.com"]}
    for number, values in rows.items():
        for column, value in enumerate(values, 1):
            ws.cell(number, column, value)
    ws.cell(17, 1, "")  # a cell with an empty string still reads as a blank row
    wb.save(path)
    return path


def test_xlsx_tables_below_one_another_each_take_their_header(tmp_path):
    doc = load(make_tables_xlsx(tmp_path / "summary.xlsx"))
    assert doc.pages[0].text.split("\n") == [
        "# Summary", "Revenue by region", "",
        "Region: Americas | Q1: 5482 | Q2: 5610", "Region: EMEA | Q1: 4100 | Q2: 4230",
        "Region: APAC | Q1: 3900 | Q2: 4010",  # after a blank row, still the first table
        "Product: Widgets | Q1: 1200 | Q2: 1350", "Product: Gadgets | Q1: 800 | Q2: 950",  # text over figures
        "Headcount by office", "",  # a title, then a header of other columns
        "Office: Lisbon; Manager: Ana Costa | Staff: 40 | Opened: 2019",
        "Office: Osaka; Manager: Ken Mori | Staff: 25 | Opened: 2021",
        "Name: Ana Costa; Email: ana@example.com"]  # all text, but not the columns of the table above
    rows = [parse_row(line) for line in doc.pages[0].text.split("\n")]
    assert rows[7].label == "Product: Gadgets" and rows[7].cells == (("Q1", "800"), ("Q2", "950"))


def test_sheet_rows_after_a_gap_that_are_not_a_new_table():
    def lines(rows: dict[int, list[str]]) -> list[str]:
        out: list[str] = []
        tables = office.SheetTables(lambda number, line: out.append(line))
        for number, values in rows.items():
            tables.add(number, values)
        tables.release()
        return out

    assert lines({1: ["Company", "Founded"], 2: ["Acme", "1998"], 4: ["Beta", "2001"], 5: ["Gamma", "2003"]}) == [
        "Company: Acme | Founded: 1998", "Company: Beta | Founded: 2001", "Company: Gamma | Founded: 2003"]
    assert lines({1: ["Name", "Role"], 2: ["Alice", "CFO"], 4: ["Bob", "Support"], 5: ["Carol", "Sales"]}) == [
        "Name: Alice; Role: CFO", "Name: Bob; Role: Support", "Name: Carol; Role: Sales"]  # same columns, no title
    assert lines({1: ["Item", "Price", "Stock"], 2: ["Cog", "3", "9"], 4: ["Notes", "see below"],
                  5: ["Bolt", "1", "50"]}) == [  # a figure right of the text row's cells
        "Item: Cog | Price: 3 | Stock: 9", "Item: Notes; Price: see below", "Item: Bolt | Price: 1 | Stock: 50"]
    assert lines({1: ["Region", "Q1"], 2: ["EMEA", "5"], 4: ["Totals"], 5: ["All", "9"]}) == [
        "Region: EMEA | Q1: 5", "Region: Totals", "Region: All | Q1: 9"]  # a one-cell row over data: no header
    assert lines({1: ["Region", "Q1", "Q2"], 2: ["EMEA", "5", "6"], 4: ["", "Three Months Ended", "", "Six Months", ""],
                  5: ["", "2023", "2022", "2023", "2022"], 6: ["Net sales", "1", "2", "3", "4"]}) == [
        "Region: EMEA | Q1: 5 | Q2: 6",
        "Net sales | Three Months Ended 2023: 1 | Three Months Ended 2022: 2 | Six Months 2023: 3 | Six Months 2022: 4"]


def test_csv_dialect_encoding_and_pages(tmp_path):
    doc = load(make_csv(tmp_path / "cafes.csv"))
    assert doc.kind == "csv" and doc.title == "cafes"
    assert [p.text.split("\n", 1)[0] for p in doc.pages] == ["# Rows 2-201", "# Rows 202-401", "# Rows 402-450"]
    assert doc.pages[0].text.split("\n")[1] == "Café: Café 0; City: Genève | Seats: 20"  # cp1252, ";" sniffed
    small = load(make_csv(tmp_path / "small.csv", rows=3, encoding="utf-8"))
    assert small.pages[0].text == "Café: Café 0; City: Genève | Seats: 20\nCafé: Café 1; City: Zürich | Seats: 21"
    (tmp_path / "two.csv").write_text("City,Seats\nLisbon,20\n\n,,\nCity,Tables,Opened\nOsaka,4,2019\n")
    assert load(tmp_path / "two.csv").pages[0].text == (
        "City: Lisbon | Seats: 20\nCity: Osaka | Tables: 4 | Opened: 2019")  # a second table, its own header


def test_reading_reports_progress_by_page_slide_sheet_and_row(tmp_path):
    seen: list[tuple] = []
    with PdfParser(60, on_page=lambda path, *report: seen.append((path.name, *report))) as parser:
        for path in (make_docx(tmp_path / "report.docx"), make_pptx(tmp_path / "plan.pptx"),
                     make_xlsx(tmp_path / "sales.xlsx"), make_csv(tmp_path / "cafes.csv", rows=12_000)):
            list(load_file(path, MAX_BYTES, parser))
    assert seen == [("report.docx", 0, 2, "page"), ("report.docx", 1, 2, "page"), ("report.docx", 2, 2, "page"),
                    ("plan.pptx", 0, 2, "slide"), ("plan.pptx", 1, 2, "slide"), ("plan.pptx", 2, 2, "slide"),
                    ("sales.xlsx", 0, 2, "sheet"), ("sales.xlsx", 1, 2, "sheet"), ("sales.xlsx", 2, 2, "sheet"),
                    ("cafes.csv", 0, 12_001, "row"), ("cafes.csv", 5000, 12_001, "row"),
                    ("cafes.csv", 10_000, 12_001, "row"), ("cafes.csv", 12_000, 12_000, "row")]


def test_a_large_workbook_reports_progress_by_row(tmp_path):
    """Over ROWS_PER_REPORT rows in all, a workbook counts rows (of what its sheets declare), not sheets."""
    seen: list[tuple] = []
    with PdfParser(60, on_page=lambda path, *report: seen.append(report)) as parser:
        doc, = load_file(make_xlsx(tmp_path / "big.xlsx", rows=12_000), MAX_BYTES, parser)
    assert seen == [(0, 12_002, "row"), (5000, 12_002, "row"), (10_000, 12_002, "row"), (12_002, 12_002, "row")]
    assert "Territory 11996" in doc.pages[-2].text and "Figures are unaudited" in doc.pages[-1].text


def test_row_format_and_number_formats():
    rows = office.TableRows()
    assert rows.add(["Sales (in millions)"]) == "Sales (in millions)"  # a title before the header
    assert rows.add(["", "Three Months Ended", "", "Six Months Ended", ""]) is None
    assert rows.add(["", "2023", "2022", "2023", "2022"]) is None  # joins the spanning header
    assert rows.add(["Net sales", "10", "9", "20", "18"]) == (
        "Net sales | Three Months Ended 2023: 10 | Three Months Ended 2022: 9 | "
        "Six Months Ended 2023: 20 | Six Months Ended 2022: 18")
    plain = office.TableRows()
    assert plain.add(["Company", "Founded"]) is None
    assert plain.add(["Acme", "1998"]) == "Company: Acme | Founded: 1998"  # a year row is data here
    assert plain.add(["Pipe | Co", "text"]) == "Company: Pipe / Co; Founded: text"
    assert office.format_number(1234.5, "#,##0.00") == "1,234.50"
    assert office.format_number(-1234, '"$"#,##0') == "-$1,234"
    assert office.format_number(0.125, "0.0%") == "12.5%"
    assert office.format_number(2023.0) == "2023" and office.format_number(0.1 + 0.2) == "0.3"
    assert office.format_number(5, "[$€-407]#,##0") == "5"  # only "$" reads as money in a row


def test_pipeline_indexes_each_kind_and_answers_from_an_xlsx_row(tmp_path, embedder):
    from rag.answer import Answerer
    from rag.config import Settings
    from ingest.pipeline import ingest_paths
    from rag.search import search
    from rag.store import LocalStore

    docs = tmp_path / "docs"
    docs.mkdir()
    files = [make_docx(docs / "report.docx"), make_pptx(docs / "plan.pptx"), make_xlsx(docs / "sales.xlsx", 40),
             make_csv(docs / "cafes.csv", 30)]
    settings = Settings.load(data_dir=tmp_path / "data", llm_base_url="")
    events = []
    report = ingest_paths(files, settings, embedder=embedder, progress=events.append)
    assert [(f.status, f.pages) for f in report.files] == [("indexed", 2), ("indexed", 2), ("indexed", 2),
                                                           ("indexed", 1)]
    labels = " | ".join(e.label() for e in events if e.stage == "read")
    for says in ("Reading report.docx (file 1 of 4): page 2 of 2", "Reading plan.pptx (file 2 of 4): slide 1 of 2",
                 "Reading plan.pptx (file 2 of 4): 2 slides read", "Reading sales.xlsx (file 3 of 4): sheet 2 of 2",
                 "Reading cafes.csv (file 4 of 4): 30 rows read"):
        assert says in labels
    assert [e.fraction for e in events] == sorted(e.fraction for e in events)
    store = LocalStore(settings.data_dir)
    assert store.check() == []
    assert {d["kind"] for d in store.documents()} == {"docx", "pptx", "xlsx", "csv"}
    hits = search(store, embedder, "revenue of the Nordics region in Q2 2023", k=3)
    assert hits[0].source.endswith("sales.xlsx") and hits[0].chunk.page == 1
    assert "Region: Nordics; Quarter: Q2 2023; Closed: 2023-06-30 | Revenue: 7,315" in hits[0].chunk.text
    assert hits[0].chunk.heading == "sales > Revenue"
    answer = Answerer(settings).ask("What was the revenue of the Nordics region?")
    assert not answer.abstained
    assert answer.text.startswith("Region: Nordics; Quarter: Q2 2023; Closed: 2023-06-30, Revenue: 7,315")
    assert answer.citations[0].source.endswith("sales.xlsx") and answer.citations[0].page == 1
    stores = Answerer(settings).ask("How many stores are there in APAC?")
    assert "Stores: 7" in stores.text and stores.citations[0].source.endswith("plan.pptx")


# ------------------------------------------------------------ hostile files
def test_zip_bomb_is_refused_before_parsing(tmp_path):
    padding = b" " * (60 << 20)  # 60 MB of spaces deflate to about 60 KB
    path = tmp_path / "bomb.docx"
    pad = lambda x: x.replace(b"<w:body>", b"<w:body>" + padding)  # noqa: E731
    path.write_bytes(repack(docx_bytes("hello"), {"word/document.xml": pad}))
    started = time.perf_counter()
    err = rejected(path)
    assert err.reason == "malformed" and "zip bomb" in err.message and "word/document.xml" in err.message
    assert time.perf_counter() - started < 2


def test_too_much_xml_is_too_large(tmp_path, monkeypatch):
    monkeypatch.setattr(office, "MAX_PARSED_XML", 1 << 20)
    rnd = random.Random(1)
    path = tmp_path / "long.docx"
    path.write_bytes(docx_bytes(*(" ".join(f"{rnd.getrandbits(40):x}" for _ in range(40)) for _ in range(3000))))
    err = rejected(path)
    assert err.reason == "too_large" and "split it" in err.message


@pytest.mark.parametrize("name, part, marker", [
    ("laughs.docx", "word/document.xml", b"hello"),
    ("laughs.pptx", "ppt/slides/slide1.xml", b"Growth plan"),
    ("laughs.xlsx", "xl/worksheets/sheet1.xml", b"Nordics"),
])
def test_billion_laughs_is_refused(tmp_path, name, part, marker):
    src = tmp_path / ("src" + name[-5:])
    {"docx": lambda p: p.write_bytes(docx_bytes("hello")), "pptx": make_pptx, "xlsx": make_xlsx}[name[-4:]](src)
    assert_laughs_refused(tmp_path / name, src.read_bytes(), part, marker)


def assert_laughs_refused(path: Path, src: bytes, part: str, marker: bytes) -> None:
    """`src` with a billion-laughs DTD in `part`, written to `path`: refused as malformed, naming
    the DTD and the part, within 2 s."""
    path.write_bytes(repack(src, {part: lambda x: with_laughs(x, marker)}))
    started = time.perf_counter()
    err = rejected(path)
    assert err.reason == "malformed" and "DTD" in err.message and part in err.message
    assert time.perf_counter() - started < 2


def test_hostile_or_damaged_footnotes_are_refused(tmp_path):
    src = make_noted_docx(tmp_path / "src.docx").read_bytes()
    assert_laughs_refused(tmp_path / "laughs.docx", src, "word/footnotes.xml", b"Unaudited")
    (tmp_path / "cut.docx").write_bytes(repack(src, {"word/footnotes.xml": lambda x: x[:len(x) // 2]}))
    err = rejected(tmp_path / "cut.docx")
    assert err.reason == "malformed" and "XMLSyntaxError" in err.message


def test_a_crafted_header_of_many_texts_costs_little(tmp_path):
    """Each header text is looked for in the body: a header of 30,000 texts is cut to the first
    MAX_FURNITURE_TEXTS, so a 30,000-paragraph body is not searched 30,000 times."""
    d = docx.Document()
    d.add_paragraph("body")
    d.sections[0].header.paragraphs[0].text = "placeholder"
    d.save(tmp_path / "src.docx")
    paragraphs = lambda text: "".join(f"<w:p><w:r><w:t>{text} {i}</w:t></w:r></w:p>"  # noqa: E731
                                      for i in range(30_000)).encode()
    body = paragraphs("Body paragraph about the budget of the year")
    data = repack((tmp_path / "src.docx").read_bytes(), {
        "word/document.xml": lambda x: x.replace(b"<w:body>", b"<w:body>" + body),
        "word/header1.xml": lambda x: x.split(b"<w:p>")[0] + paragraphs("Tag") + b"</w:hdr>"})
    (tmp_path / "tags.docx").write_bytes(data)
    started = time.perf_counter()
    doc = load(tmp_path / "tags.docx")
    assert time.perf_counter() - started < 3
    header = doc.pages[-1].text.rsplit("\n", 1)[-1]
    assert header.startswith("Page header: Tag 0; Tag 1;") and header.count(";") == office.MAX_FURNITURE_TEXTS - 1


def test_a_dtd_hidden_behind_a_long_comment_is_refused(tmp_path):
    path = tmp_path / "hidden.docx"
    hide = lambda x: b"<!--" + b"x" * (100 << 10) + b"-->" + with_laughs(x, b"hello")  # noqa: E731
    path.write_bytes(repack(docx_bytes("hello"), {"word/document.xml": hide}))
    err = rejected(path)
    assert err.reason == "malformed" and "comments or declarations" in err.message


def test_parsers_refuse_entity_expansion_themselves(tmp_path):
    """Defence in depth, pinned: without our DTD check, lxml (python-docx) and defusedxml/expat
    (openpyxl) stop the expansion at once instead of building gigabytes."""
    from lxml.etree import XMLSyntaxError

    path = tmp_path / "laughs.docx"
    path.write_bytes(repack(docx_bytes("hello"), {"word/document.xml": lambda x: with_laughs(x, b"hello")}))
    started = time.perf_counter()
    with pytest.raises(XMLSyntaxError, match="amplification"):
        docx.Document(str(path))
    book = tmp_path / "laughs.xlsx"
    book.write_bytes(repack(make_xlsx(tmp_path / "b.xlsx", 5).read_bytes(),
                            {"xl/worksheets/sheet1.xml": lambda x: with_laughs(x, b"Nordics")}))
    with pytest.raises(ValueError):
        list(openpyxl.load_workbook(book, read_only=True).worksheets[0].iter_rows(values_only=True))
    assert time.perf_counter() - started < 2


def test_encrypted_and_old_binary_office_files(tmp_path):
    for name in ("locked.docx", "locked.xlsx", "locked.pptx"):
        (tmp_path / name).write_bytes(ole_file("Root Entry", "EncryptionInfo", "EncryptedPackage"))
        err = rejected(tmp_path / name)
        assert err.reason == "password_protected" and "remove the password and add it again" in err.message
    (tmp_path / "old.docx").write_bytes(ole_file("Root Entry", "WordDocument"))
    err = rejected(tmp_path / "old.docx")
    assert err.reason == "mislabelled_type" and "old binary" in err.message and "save it as .docx" in err.message
    (tmp_path / "old.xls").write_bytes(ole_file("Root Entry", "Workbook"))
    err = rejected(tmp_path / "old.xls")
    assert err.reason == "unsupported_type" and "save it as .xlsx" in err.message


def test_mislabelled_packages(tmp_path):
    cases = {
        "pdf.docx": (b"%PDF-1.4\n1 0 obj\n", "named .docx but the content is a PDF, not a Word document"),
        "text.xlsx": (b"Region,Revenue\n", "named .xlsx but the content is text, not an Excel workbook"),
        "notes.docx": (None, "a ZIP archive that is not a Word document"),
        "book.docx": (make_xlsx(tmp_path / "b.xlsx", 5).read_bytes(),
                      "named .docx but the content is an Excel workbook; rename it to .xlsx"),
        "binary.csv": (b"\x00\x01\x02binary\x00" * 10, "named .csv but the content is binary data"),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("notes.txt", "just a zip")
    for name, (data, says) in cases.items():
        (tmp_path / name).write_bytes(data if data is not None else buf.getvalue())
        err = rejected(tmp_path / name)
        assert err.reason == "mislabelled_type" and says in err.message, (name, err.message)


def test_corrupt_packages_are_malformed(tmp_path):
    good = docx_bytes(*(f"paragraph {i} " * 30 for i in range(400)))
    (tmp_path / "cut.docx").write_bytes(good[:len(good) // 2])  # truncated: no central directory
    assert rejected(tmp_path / "cut.docx").reason == "malformed"
    info = zipfile.ZipFile(io.BytesIO(good)).getinfo("word/document.xml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    broken = bytearray(good)
    broken[start + 200:start + 220] = b"\xff" * 20  # damage the compressed document
    (tmp_path / "damaged.docx").write_bytes(bytes(broken))
    assert rejected(tmp_path / "damaged.docx").reason == "malformed"
    no_body = repack(docx_bytes("x"), {"word/document.xml": b"<w:document/>"})
    (tmp_path / "nobody.docx").write_bytes(no_body)
    assert rejected(tmp_path / "nobody.docx").reason == "malformed"


def test_macros_are_ignored_and_the_text_is_read(tmp_path):
    macro = b"Attribute VB_Name = \"Module1\"\nSub AutoOpen()\n Shell \"calc.exe\"\nEnd Sub\n"
    types = ("application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
             "application/vnd.ms-word.document.macroEnabled.main+xml")
    data = repack(docx_bytes("Budget text"),
                  {"[Content_Types].xml": lambda x: x.replace(types[0].encode(), types[1].encode())},
                  add={"word/vbaProject.bin": macro})
    (tmp_path / "macro.docx").write_bytes(data)
    doc = load(tmp_path / "macro.docx")
    assert doc.pages[0].text == "Budget text"
    book = repack(make_xlsx(tmp_path / "b.xlsx", 5).read_bytes(), add={"xl/vbaProject.bin": macro})
    (tmp_path / "macro.xlsx").write_bytes(book)
    assert "Region: Nordics" in load(tmp_path / "macro.xlsx").pages[0].text


MACRO = b"Attribute VB_Name = \"Module1\"\nSub AutoOpen()\n Shell \"calc.exe\"\nEnd Sub\n"
_MAIN = {"docx": ("word/document.xml", "wordprocessingml.document.main+xml", "ms-word.document.macroEnabled.main+xml"),
         "pptx": ("ppt/presentation.xml", "presentationml.presentation.main+xml",
                  "ms-powerpoint.presentation.macroEnabled.main+xml"),
         "xlsx": ("xl/workbook.xml", "spreadsheetml.sheet.main+xml", "ms-excel.sheet.macroEnabled.main+xml")}


def macro_enabled(data: bytes, kind: str) -> bytes:
    """A package as Office saves it with macros (.docm/.pptm/.xlsm): the macro-enabled main content
    type, a VBA project part (vbaProject.bin, whose AutoOpen would start a program) and the main
    part's relationship to it."""
    main, plain, macro = _MAIN[kind]
    folder, name = main.rsplit("/", 1)
    rels = f"{folder}/_rels/{name}.rels"
    vba_rel = (b'<Relationship Id="rIdVba" Type="http://schemas.microsoft.com/office/2006/relationships/vbaProject" '
               b'Target="vbaProject.bin"/></Relationships>')
    vba_type = b'<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>'

    def types(x: bytes) -> bytes:
        x = x.replace(b"application/vnd.openxmlformats-officedocument." + plain.encode(),
                      b"application/vnd." + macro.encode())
        return x if b'Extension="bin"' in x else x.replace(b"<Default ", vba_type + b"<Default ", 1)

    return repack(data, {"[Content_Types].xml": types, rels: lambda x: x.replace(b"</Relationships>", vba_rel)},
                  add={f"{folder}/vbaProject.bin": MACRO})


def test_macro_enabled_files_are_read_as_their_plain_kind(tmp_path):
    """.docm/.pptm/.xlsm: the content is read as .docx/.pptx/.xlsx would be; the macros are not."""
    for name, make in (("report.docx", make_docx), ("plan.pptx", make_pptx), ("sales.xlsx", make_xlsx)):
        plain = load(make(tmp_path / name))
        macro = tmp_path / (name[:-1] + "m")
        macro.write_bytes(macro_enabled((tmp_path / name).read_bytes(), plain.kind))
        with zipfile.ZipFile(macro) as z:
            assert "ms-" in z.read("[Content_Types].xml").decode() and any(
                n.endswith("vbaProject.bin") for n in z.namelist())
        doc = load(macro)
        assert doc.kind == plain.kind and doc.title == plain.title
        assert [p.text for p in doc.pages] == [p.text for p in plain.pages]
        assert not any("calc.exe" in p.text or "AutoOpen" in p.text for p in doc.pages)


def test_macro_enabled_files_are_sniffed_like_the_others(tmp_path):
    book = macro_enabled(make_xlsx(tmp_path / "b.xlsx", 5).read_bytes(), "xlsx")
    cases = {"book.docm": (book, "named .docm but the content is an Excel workbook; rename it to .xlsm"),
             "pdf.xlsm": (b"%PDF-1.4\n1 0 obj\n", "named .xlsm but the content is a PDF, not an Excel workbook"),
             "deck.pptm": (docx_bytes("hello"), "named .pptm but the content is a Word document; rename it to .docx"),
             "old.docm": (ole_file("Root Entry", "WordDocument"), "named .docm but the content is an old binary")}
    for name, (data, says) in cases.items():
        (tmp_path / name).write_bytes(data)
        err = rejected(tmp_path / name)
        assert err.reason == "mislabelled_type" and says in err.message, (name, err.message)
    (tmp_path / "locked.xlsm").write_bytes(ole_file("Root Entry", "EncryptionInfo", "EncryptedPackage"))
    assert rejected(tmp_path / "locked.xlsm").reason == "password_protected"
    laughs = repack(macro_enabled(docx_bytes("hello"), "docx"),
                    {"word/document.xml": lambda x: with_laughs(x, b"hello")})
    (tmp_path / "laughs.docm").write_bytes(laughs)
    err = rejected(tmp_path / "laughs.docm")
    assert err.reason == "malformed" and "DTD" in err.message


def test_hostile_sheet_dimensions_and_row_numbers(tmp_path):
    src = make_xlsx(tmp_path / "b.xlsx", 5).read_bytes()
    padded = repack(src, {"xl/worksheets/sheet1.xml": lambda x: x.replace(b'ref="A1:E5"', b'ref="A1:XFD1048576"')})
    (tmp_path / "wide.xlsx").write_bytes(padded)
    started = time.perf_counter()
    assert "Region: Nordics" in load(tmp_path / "wide.xlsx").pages[0].text  # the dimension is not trusted
    assert time.perf_counter() - started < 5
    far = repack(src, {"xl/worksheets/sheet1.xml": lambda x: x.replace(b'<row r="5"', b'<row r="99999999999"')
                       .replace(b'r="A5"', b'r="A99999999999"')})
    (tmp_path / "far.xlsx").write_bytes(far)
    assert rejected(tmp_path / "far.xlsx").reason == "malformed"


def test_reading_stops_at_the_time_limit(tmp_path):
    path = make_csv(tmp_path / "long.csv", rows=3000)
    with pytest.raises(FileRejected) as ei:
        load(path, timeout_s=0.0)
    assert ei.value.reason == "timeout" and "long.csv" in ei.value.message and "RAG_PARSE_TIMEOUT_S" in ei.value.message


def test_detect_kind_for_office_extensions():
    assert detect_kind(Path("a.DOCX"), b"PK\x03\x04rest") == "docx"
    assert detect_kind(Path("a.csv"), b"a,b\n1,2\n") == "csv"
    assert detect_kind(Path("a.xlsx"), b"\xd0\xcf\x11\xe0rest") == "xlsx"  # encrypted ones are OLE files
    with pytest.raises(UnsupportedType, match="save it as .pptx"):
        detect_kind(Path("a.ppt"), b"\xd0\xcf\x11\xe0rest")
    with pytest.raises(MislabelledType, match="not a PowerPoint presentation"):
        detect_kind(Path("a.pptx"), b"\x89PNG\r\n")


def test_a_rejected_file_leaves_the_index_intact(tmp_path, embedder):
    from rag.config import Settings
    from ingest.pipeline import ingest_paths
    from rag.store import LocalStore

    settings = Settings.load(data_dir=tmp_path / "data")
    good = make_xlsx(tmp_path / "sales.xlsx", 10)
    assert ingest_paths([good], settings, embedder=embedder).files[0].status == "indexed"
    bomb = tmp_path / "bomb.xlsx"
    bomb.write_bytes(repack(good.read_bytes(), add={"xl/media/pad.bin": b"\x00" * (40 << 20)}))
    laughs = tmp_path / "laughs.docx"
    laughs.write_bytes(repack(docx_bytes("hello"), {"word/document.xml": lambda x: with_laughs(x, b"hello")}))
    locked = tmp_path / "locked.docx"
    locked.write_bytes(ole_file("Root Entry", "EncryptionInfo"))
    report = ingest_paths([bomb, laughs, locked], settings, embedder=embedder)
    assert [(f.status, f.reason) for f in report.files] == [("error", "malformed"), ("error", "malformed"),
                                                            ("error", "password_protected")]
    store = LocalStore(settings.data_dir)
    assert store.check() == [] and [d["source"] for d in store.documents()] == [str(good)]
