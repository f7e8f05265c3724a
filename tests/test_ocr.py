"""OCR of scanned PDF pages (issue 13): real fpdf2 pages rendered by pypdfium2 and saved as
image-only PDFs, read through the real worker (PdfParser + load_file) with the packaged RapidOCR
models. One worker per module, so the OCR engine loads once."""
from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium
import pytest
from fpdf import FPDF

from ingest.load import PdfParser, load_file
from ingest.ocr import boxes_to_text, needs_ocr, ocr_image, render_page, repair_spacing
from ingest.pdf_layout import CELL_SEP, parse_row
from rag.errors import NoTextLayer
from tests.conftest import shared_eval

MAX = 10 * 2**20
SCANNED = ["Quarterly inspection of the north bridge found corrosion on three girders.",
           "The contractor will replace the bearings before the winter closure."]
TYPED = "Alpha page one talks about quantum gravity and loop corrections."


def text_pdf(path: Path, lines: list[str]) -> Path:
    """A one-page born-digital PDF (real text layer) with these lines."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=14)
    for line in lines:
        pdf.multi_cell(0, 10, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def page_image(pdf_path: Path, dpi: int = 200):
    """Page 1 of a PDF rendered to a greyscale PIL image, as a scanner would produce."""
    doc = pdfium.PdfDocument(str(pdf_path))
    try:
        return render_page(doc[0], dpi).convert("L")
    finally:
        doc.close()


def scanned_pdf(tmp_path: Path, name: str, lines: list[str], turned: int = 0) -> Path:
    """An image-only PDF (no text layer) of a page carrying these lines, the image turned
    `turned` degrees counter-clockwise (a page fed into the scanner sideways)."""
    return scan_of(text_pdf(tmp_path / f"{name}-src.pdf", lines), tmp_path / name, turned)


def scan_of(pdf_path: Path, out: Path, turned: int = 0) -> Path:
    """An image-only PDF of page 1 of a born-digital PDF, rendered as a scanner would."""
    page_image(pdf_path).rotate(turned, expand=True).save(out, "PDF", resolution=200)
    return out


PERIOD = "Three Months Ended June 30"
# label, (dollar sign?, 2023, 2022): an income statement as filings set it, "$" at the left of
# its column and apart from the right-aligned figure, on the first and the total rows only
STATEMENT = [("Revenue", True, "1,234", "1,100"), ("Cost of revenue", False, "624", "590"),
             ("Research and development expenses", False, "275", "241"), ("Net income", True, "210", "180")]


def statement_pdf(path: Path) -> Path:
    """A born-digital page with a sentence and a small statement of income under it: a period
    header spanning two year columns, figures right-aligned under the years."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 7, "Condensed statement of operations of the bridge company. The figures below have "
                         "not been audited.", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.cell(80, 8, "")
    pdf.cell(80, 8, f"{PERIOD},", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(80, 8, "")
    pdf.cell(40, 8, "2023", align="R")
    pdf.cell(40, 8, "2022", align="R", new_x="LMARGIN", new_y="NEXT")
    for label, dollar, this_year, last_year in STATEMENT:
        pdf.cell(80, 8, label)
        for figure in (this_year, last_year):
            pdf.cell(10, 8, "$" if dollar else "")
            pdf.cell(30, 8, figure, align="R")
        pdf.ln(8)
    pdf.output(str(path))
    return path


@pytest.fixture(scope="module")
def parser():
    with PdfParser(timeout_s=60) as p:
        yield p


def words(text: str) -> set[str]:
    return {w.strip(".,").lower() for w in text.split()}


def test_scanned_page_is_ocrd(tmp_path: Path, parser: PdfParser):
    [doc] = load_file(scanned_pdf(tmp_path, "scan.pdf", SCANNED), MAX, parser)
    assert doc.meta["ocr_pages"] == [1]
    found = words(doc.pages[0].text)
    expected = words(" ".join(SCANNED))
    assert len(expected & found) >= 0.9 * len(expected), doc.pages[0].text
    assert {"corrosion", "girders", "bearings", "contractor"} <= found


def test_scanned_table_reads_as_rows_with_their_column_headers(tmp_path: Path, parser: PdfParser):
    """A scanned statement keeps its columns through OCR, so each row comes out as one line
    carrying its column headers, like the same table in a text layer (pdf_layout)."""
    scan = scan_of(statement_pdf(tmp_path / "statement-src.pdf"), tmp_path / "statement.pdf")
    [doc] = load_file(scan, MAX, parser)
    text = doc.pages[0].text
    assert doc.meta["ocr_pages"] == [1]
    rows = {row.label: row for row in map(parse_row, text.split("\n")) if row is not None}
    assert list(rows) == [label for label, *_ in STATEMENT], text
    for label, dollar, this_year, last_year in STATEMENT:
        sign = "$" if dollar else ""
        assert rows[label].cells == ((f"{PERIOD} 2023", sign + this_year), (f"{PERIOD} 2022", sign + last_year)), text
    assert f"Revenue | {PERIOD} 2023: $1,234 | {PERIOD} 2022: $1,100" in text.split("\n")
    assert "Condensed statement of operations of the bridge company." in text


def test_scanned_table_page_keeps_its_columns_in_layout_text(tmp_path: Path):
    """ocr_image's own output (what the bench measures): cells at least 3 spaces apart, figures
    of one column starting within a few characters of each other, words of a label one apart."""
    image = page_image(statement_pdf(tmp_path / "statement.pdf")).convert("RGB")
    lines = {line.strip().split("  ")[0]: line for line in ocr_image(image).split("\n")}
    assert "Research and development expenses" in lines, lines
    for label, _dollar, this_year, last_year in STATEMENT:
        line = lines[label]
        assert line.index(this_year) - line.index(label) - len(label) >= 3, line
        assert line.index(last_year) - line.index(this_year) - len(this_year) >= 3, line
    starts = [lines[label].index(this_year) + len(this_year) for label, _d, this_year, _l in STATEMENT]
    assert max(starts) - min(starts) <= 3, lines  # right-aligned column: the figures end together


def test_scanned_prose_still_reads_as_a_paragraph(tmp_path: Path, parser: PdfParser):
    [doc] = load_file(scanned_pdf(tmp_path, "prose.pdf", SCANNED), MAX, parser)
    text = doc.pages[0].text
    assert CELL_SEP not in text and "  " not in text, text
    assert "Quarterly inspection of the north bridge found corrosion on three girders." in text, text
    assert "The contractor will replace the bearings before the winter closure." in text, text


def box(left: float, right: float, text: str, top: float = 100, height: float = 30) -> list:
    """A RapidOCR result entry for an axis-aligned box."""
    return [[[left, top], [right, top], [right, top + height], [left, top + height]], text, 0.99]


def test_boxes_are_placed_at_their_columns():
    """Hand-made boxes at 15 px a character: a lone "$" set close to the figure of the column
    before still starts a cell, an "S" before a figure is that "$", and two boxes that touch
    are words of one phrase."""
    result = [box(0, 105, "Revenue"), box(300, 315, "$"), box(330, 405, "1,234"),
              box(418, 433, "S"), box(450, 525, "1,100"),
              box(0, 45, "Net", top=140), box(52, 145, "income", top=140), box(345, 405, "210", top=140),
              box(465, 525, "180", top=140),
              box(0, 45, "EPS", top=180), box(330, 405, "S0.19", top=180), box(450, 525, "S0.17", top=180),
              box(0, 105, "Core EPS ?)", top=220), box(112, 170, "$0.52", top=220), box(450, 525, "$0.55", top=220)]
    lines = boxes_to_text(result).split("\n")
    assert lines[0].split() == ["Revenue", "$", "1,234", "$", "1,100"], lines
    assert "1,234   $" in lines[0] and "Revenue" + " " * 3 in lines[0], lines
    assert lines[1].startswith("Net income   "), lines
    assert lines[0].index("1,234") <= lines[1].index("210") <= lines[0].index("1,234") + 3, lines
    assert lines[2].split() == ["EPS", "$0.19", "$0.17"], lines  # "$" read as "S" glued to its figure
    assert "?)   $0.52" in lines[3], lines  # a "$" figure right after a footnote mark is a cell


def test_sideways_scan_is_turned_upright(tmp_path: Path, parser: PdfParser):
    [doc] = load_file(scanned_pdf(tmp_path, "sideways.pdf", SCANNED, turned=270), MAX, parser)
    assert "Quarterly inspection of the north bridge" in doc.pages[0].text


def test_a_turn_that_reads_upright_ends_the_search(tmp_path: Path, monkeypatch):
    """A page turned 270 degrees reads upright at the first turn tried (90): two reads, not
    three (each read of a dense page takes seconds). Turned 90, the first turn reads it upside
    down, so the other is read too, and wins."""
    import ingest.ocr as ocr
    reads = []
    real = ocr._read
    monkeypatch.setattr(ocr, "_read", lambda image: reads.append(image.size) or real(image))
    upright = page_image(text_pdf(tmp_path / "src.pdf", SCANNED))
    for turned, expected_reads in ((270, 2), (90, 3)):
        reads.clear()
        assert "Quarterly inspection of the north bridge" in ocr_image(upright.rotate(turned, expand=True))
        assert len(reads) == expected_reads, (turned, reads)


def test_mixed_pdf_keeps_its_text_page_and_ocrs_the_other(tmp_path: Path, parser: PdfParser):
    typed_only = text_pdf(tmp_path / "typed.pdf", [TYPED])
    image_png = tmp_path / "scan.png"
    page_image(text_pdf(tmp_path / "src.pdf", SCANNED)).save(image_png)
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=14)
    pdf.multi_cell(0, 10, TYPED)
    pdf.add_page()
    pdf.image(str(image_png), x=0, y=0, w=pdf.w, h=pdf.h)
    mixed = tmp_path / "mixed.pdf"
    pdf.output(str(mixed))

    [doc] = load_file(mixed, MAX, parser)
    [typed] = load_file(typed_only, MAX, parser)
    assert doc.meta["ocr_pages"] == [2]
    assert doc.pages[0].text == typed.pages[0].text  # the text layer, exactly as without OCR
    assert "ocr_pages" not in typed.meta
    assert {"corrosion", "girders", "bearings"} <= words(doc.pages[1].text)


def test_scanned_and_typed_pages_each_keep_their_own_text_in_page_order(tmp_path: Path):
    """Five pages: scans on 1, 2, 4 and 5, typed text on 3. Each page keeps its own text, and
    progress counts pages done, never backwards."""
    topics = ["corrosion girders", "drainage culverts", None, "lighting poles", "expansion joints"]
    pdf = FPDF()
    for n, topic in enumerate(topics, 1):
        pdf.add_page()
        if topic is None:
            pdf.set_font("Helvetica", size=14)
            pdf.multi_cell(0, 10, TYPED)
            continue
        image = tmp_path / f"p{n}.png"
        page_image(text_pdf(tmp_path / f"p{n}.pdf", [f"Page {n} reports on the {topic} of the bridge."])).save(image)
        pdf.image(str(image), x=0, y=0, w=pdf.w, h=pdf.h)
    path = tmp_path / "five.pdf"
    pdf.output(str(path))
    seen = []
    with PdfParser(timeout_s=60, on_page=lambda _p, done, total: seen.append(done)) as watched:
        [doc] = load_file(path, MAX, watched)
    assert doc.meta["ocr_pages"] == [1, 2, 4, 5]
    for n, topic in enumerate(topics, 1):
        if topic is None:
            assert "quantum" in words(doc.pages[n - 1].text)
        else:
            assert set(topic.split()) <= words(doc.pages[n - 1].text), (n, doc.pages[n - 1].text)
    assert seen == sorted(seen) and seen[-1] == 5  # progress counts pages done, never backwards


def test_a_one_page_scan_moves_progress_while_its_lines_are_read(tmp_path: Path):
    """A dense scanned page takes seconds to OCR: the parser reports the share of its lines read
    as it goes (a fraction of the page), never backwards, so a one-page scan does not sit at 0."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=9)
    for n in range(60):
        pdf.cell(0, 4.4, f"Line {n}: the inspection of girder {n} found corrosion at joint {n * 7} and drainage "
                         f"culvert {n + 3} blocked", new_x="LMARGIN", new_y="NEXT")
    dense = tmp_path / "dense.pdf"
    pdf.output(str(dense))
    scan = scan_of(dense, tmp_path / "dense-scan.pdf")
    seen = []
    with PdfParser(timeout_s=60, on_page=lambda _p, done, total: seen.append((done, total))) as watched:
        [doc] = load_file(scan, MAX, watched)
    assert doc.meta["ocr_pages"] == [1] and doc.pages[0].text.count("girder") >= 55
    inside = [done for done, _total in seen if 0 < done < 1]
    assert inside, seen  # progress within the page, before it is done
    assert [d for d, _t in seen] == sorted(d for d, _t in seen) and seen[-1] == (1, 1)


def test_ocr_off_refuses_a_scan(tmp_path: Path):
    scan = scanned_pdf(tmp_path, "scan-off.pdf", SCANNED)
    with PdfParser(timeout_s=30, ocr=False) as off:
        with pytest.raises(NoTextLayer) as ei:
            list(load_file(scan, MAX, off))
    assert ei.value.reason == "no_text_layer"
    assert "scan-off.pdf" in str(ei.value) and "RAG_OCR=off" in str(ei.value)


def test_blank_scan_is_still_refused(tmp_path: Path, parser: PdfParser):
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60)
    pdf.output(str(tmp_path / "blank.pdf"))
    with pytest.raises(NoTextLayer) as ei:
        list(load_file(tmp_path / "blank.pdf", MAX, parser))
    assert ei.value.reason == "no_text_layer"
    assert "OCR found no text" in str(ei.value)


def test_real_scan_is_indexed(parser: PdfParser):
    path = shared_eval("pdfs", "real", "NCT06155240_Prot_SAP_000.pdf")
    [doc] = load_file(path, MAX, parser)
    assert doc.meta["ocr_pages"] == [1]
    text = doc.pages[0].text
    # the table is printed sideways on the page: read turned upright, the title comes first
    assert text.startswith("V1 4/6/2023\nAPPENDIX D Study Protocol Class Procedures\n"), text[:600]
    for phrase in ["Yoga for a Healthy Heart Protocol", "Chair-based yoga", "Yoga Nidra", "Post-class BP"]:
        assert phrase in text, text[:600]


@pytest.mark.parametrize("text, needed", [
    ("", True),
    ("  \n 3 \n", True),                               # a page number alone
    ("\ufffd" * 40 + " abc", True),                    # replacement characters
    ("\ue000\ue001\ue002 " * 20 + "word", True),       # private-use glyph codes
    (TYPED, False),
    ("Item 16. Form 10-K Summary None.", False),
])
def test_needs_ocr(text: str, needed: bool):
    assert needs_ocr(text) is needed


def test_a_short_label_on_a_page_without_images_is_not_ocrd():
    assert needs_ocr("Potato 3", has_image=True) and not needs_ocr("Potato 3", has_image=False)
    assert needs_ocr("", has_image=False)  # no text at all: vector outlines, or blank


def test_ocr_setting_reads_like_the_other_rag_settings(monkeypatch):
    from rag.config import Settings

    monkeypatch.delenv("RAG_OCR", raising=False)
    assert Settings.load().ocr
    monkeypatch.setenv("RAG_OCR", "on")
    assert Settings.load().ocr
    for off in ("off", "0", "false"):
        monkeypatch.setenv("RAG_OCR", off)
        assert not Settings.load().ocr


def test_engine_threads_sleep_instead_of_spinning():
    """ONNX Runtime's pool threads spin-wait by default; on a 2-core machine that burns the core
    the other thread needs (bench/ocr_variants.py). Both models' sessions are built without it,
    with RapidOCR's own settings otherwise (arena off: the worker's 2 GiB cap), and RapidOCR's
    class is left as it was for any other user."""
    from rapidocr_onnxruntime.utils.infer_engine import OrtInferSession

    from ingest.ocr import engine

    eng = engine()
    for session in (eng.text_det.infer.session, eng.text_rec.session.session):
        opts = session.get_session_options()
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert opts.get_session_config_entry("session.inter_op.allow_spinning") == "0"
        assert not opts.enable_cpu_mem_arena and opts.inter_op_num_threads == 1
    assert OrtInferSession._init_sess_opts.__module__ == "rapidocr_onnxruntime.utils.infer_engine"


def _hard_swish_graph(x_shape, reuse_clip: bool = False):
    """x -> Add(3) -> Clip(0, 6) -> Mul(x, .) -> Div(6) -> y, as Paddle2ONNX writes hard-swish,
    constants as Constant nodes; with reuse_clip the Clip's result is also an output."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    def const(name, value):
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(value, np.float32), name))

    nodes = [const("three", 3.0), const("zero", 0.0), const("six", 6.0),
             helper.make_node("Add", ["x", "three"], ["a"]), helper.make_node("Clip", ["a", "zero", "six"], ["c"]),
             helper.make_node("Mul", ["x", "c"], ["m"]), helper.make_node("Div", ["m", "six"], ["y"])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, x_shape)]
    if reuse_clip:
        outputs.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, x_shape))
    graph = helper.make_graph(nodes, "hs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)], outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)], ir_version=8)


def test_hard_swish_is_fused_into_the_same_function():
    import numpy as np
    import onnxruntime as ort

    from ingest.ocr import fuse_hard_swish

    model = _hard_swish_graph([7])
    x = np.linspace(-5, 5, 7, dtype=np.float32)  # both flat parts and the slope between
    before = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    assert fuse_hard_swish(model) == 1
    assert [n.op_type for n in model.graph.node] == ["HardSigmoid", "Mul"]  # the 3, 0, 6 dropped too
    after = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(after, before, atol=1e-6)
    np.testing.assert_allclose(after, x * np.clip(x + 3, 0, 6) / 6, atol=1e-6)

    shared = _hard_swish_graph([7], reuse_clip=True)  # an inner result used elsewhere: left alone
    assert fuse_hard_swish(shared) == 0 and len(shared.graph.node) == 7


def test_the_packaged_models_fused_give_the_same_outputs():
    """All 28 hard-swishes of recognition and 24 of detection are rewritten, and the models'
    outputs on an input stay within float rounding of the originals."""
    from pathlib import Path

    import numpy as np
    import onnx
    import onnxruntime as ort
    import rapidocr_onnxruntime

    from ingest.ocr import fuse_hard_swish

    models = Path(rapidocr_onnxruntime.__file__).parent / "models"
    rng = np.random.default_rng(0)
    for name, count, shape in (("ch_PP-OCRv4_rec_infer.onnx", 28, (1, 3, 48, 320)),
                               ("ch_PP-OCRv4_det_infer.onnx", 24, (1, 3, 256, 192))):
        model = onnx.load(str(models / name))
        assert fuse_hard_swish(model) == count
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        before = ort.InferenceSession(str(models / name)).run(None, {"x": x})[0]
        after = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
        np.testing.assert_allclose(after, before, atol=1e-4)


def test_repair_spacing():
    assert repair_spacing("buildings,and software.This") == "buildings, and software. This"
    assert repair_spacing("U.S. costs 1,000 e.g.this") == "U.S. costs 1,000 e.g.this"


def test_an_answer_from_a_scanned_page_marks_its_passage_as_ocr_text(tmp_path: Path, settings, embedder):
    from ingest.pipeline import ingest_paths
    from rag.answer import Answerer

    scan = scanned_pdf(tmp_path, "inspection.pdf", SCANNED)
    typed = text_pdf(tmp_path / "typed.pdf", [TYPED])
    report = ingest_paths([scan, typed], settings, embedder=embedder)
    assert [f.status for f in report.files] == ["indexed", "indexed"]
    answerer = Answerer(settings)
    answer = answerer.ask("What did the quarterly inspection of the north bridge find?")
    passages = answer.to_json()["passages"]
    by_source = {Path(p["source"]).name: p["ocr"] for p in passages}
    assert by_source["inspection.pdf"] is True and by_source.get("typed.pdf", False) is False
    assert "corrosion" in answer.text and answer.citations[0].source.endswith("inspection.pdf")
