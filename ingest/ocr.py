"""OCR for PDF pages without a usable text layer (scans), on CPU and offline.

pypdfium2 renders the page; RapidOCR (rapidocr-onnxruntime, PP-OCRv4 detection + recognition
ONNX models shipped inside the wheel, no download) reads it. The engine loads lazily, once per
process, the first time a page needs it. Runs inside ingest.pdf_worker, under its memory limit:
see bench/ocr_bench.py for the accuracy, speed and memory figures behind the settings here.
"""
from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter
from typing import Any

from ingest.pdf_layout import is_figure, structure_page, text_grid_rows

# Render resolution, chosen in bench/ocr_bench.py: 150 dpi reads born-digital report pages at
# about 1% CER and is about 1.4x faster than 200 dpi (0.7% CER); 300 dpi is no better and
# needs more address space than the worker's 2 GiB cap allows.
OCR_DPI = 150
# Longest rendered side in pixels, also RapidOCR's own cap (max_side_len), so a page is never
# resized twice. Bounds memory on hostile page sizes: a 200-inch page is rendered at 2200 px,
# not at 30,000. 2200 px = a 14.7-inch side at 150 dpi (Letter, Legal, A4 render in full).
MAX_SIDE_PX = 2200
# A text layer with fewer letters than this on a page with an image is treated as missing (a
# scan with a stamp, a cover image with one word of real text); OCR still only replaces it when
# it reads more.
MIN_LETTERS = 16
# A text layer where this share of the visible characters is U+FFFD, private-use or unassigned
# code points is garbage (a font without a usable ToUnicode map).
MAX_BAD_SHARE = 0.3
# RapidOCR expands each detected text kernel by this ratio before reading it (its default: 1.6).
# 2.4 measured better and faster on born-digital pages (bench/ocr_bench.py, 150 dpi: CER 3.2% ->
# 1.2%, recognition time -40%): the recogniser, trained mostly on Chinese, drops fewer spaces
# between English words when the crop has more margin, and a taller crop is a narrower input.
# 2.8 and up start merging neighbouring lines.
UNCLIP_RATIO = 2.4
# RapidOCR's direction classifier (turns lines it judges upside down) is off: on English pages it
# flips correctly oriented lines into garbage (CER 6.3% with it, 0.8% without, bench/ocr_bench.py).
# Pages scanned sideways or upside down are turned whole instead (ocr_image); pages rotated by
# /Rotate are rendered upright by pdfium anyway.
USE_CLS = False
# Lines read with a lower recognition score are dropped (RapidOCR's own text_score, which it
# applies itself; the engine here keeps every line so that ocr_image can tell a sideways page
# whose lines all read below it, which scored 0.49-0.51 on a sideways test page, from a blank one).
TEXT_SCORE = 0.5
# Below this mean recognition score a page of horizontal text is also tried upside down.
MIN_UPRIGHT_SCORE = 0.8
# ONNX Runtime threads: one per core up to 4. Each thread costs address space (stack, malloc
# arena) under the worker's RLIMIT_AS, and 2-4 threads already keep the small models busy.
MAX_THREADS = 4

# Recognition: LineReader in place of RapidOCR's own batching, measured by bench/ocr_variants.py
# on the sampled pages rendered at 150 dpi grey. RapidOCR reads 6 lines a call, sorted by width,
# each padded to the widest of its batch and to at least 320 px; recognition was 280 of 332 s
# of the 20-page scan (detection 45 s). One line a call, as wide as the line plus REC_TAIL px,
# no minimum: on all 30 sampled pages CPU time 0.72x (user 350 -> 253 s) and CER 1.15% ->
# 0.97%; tail 16: 0.69x, 1.06%. With no tail the recogniser loses the last character of many
# lines (4 pages: CER 2.07% -> 2.74%; 1.67% with 16, 1.44% with 48). Batches of 6 with a 16 px
# tail and no minimum were slower than one line a call (CPU 35.9 s vs 27.9 s on 4 pages).
# Interleaved old/new/new/old: 6 pages in one process wall 0.72x, CPU 0.67x (load 2.7-3.2);
# the 20-page scan through PdfParser 250.6, 181.9, 162.1, 242.8 s (0.70x; load 2.9-5.7, the
# machine shared with other work), worker VmPeak 1451-1482 -> 1267-1322 MB.
REC_BATCH = 1
REC_MIN_WIDTH = 0
REC_TAIL = 32
# While a page is read, how often (seconds) the lines read so far are reported: a dense scanned
# page takes 3-7 s, and a one-page scan would otherwise show no progress until it is done.
LINES_REPORT_S = 0.5

_engine: Any = None


def letters(text: str) -> int:
    """How many letters (any script) the text has."""
    return sum(c.isalpha() for c in text)


def needs_ocr(text: str, has_image: bool = True) -> bool:
    """Whether a page's text layer is missing or garbage: no letters at all; mostly replacement
    characters / private-use / unassigned code points; or almost no letters on a page that
    carries an image (a scan with a stamped page number - while a drawn page with a short label,
    "Potato 3", keeps its text layer and costs no OCR)."""
    n_letters = letters(text)
    if n_letters == 0:
        return True
    if n_letters < MIN_LETTERS:
        return has_image
    visible = [c for c in text if not c.isspace()]
    bad = sum(c == "\ufffd" or unicodedata.category(c) in {"Co", "Cn"} for c in visible)
    return bad > MAX_BAD_SHARE * len(visible)


# ONNX Runtime session settings RapidOCR does not expose (it builds its own SessionOptions: see
# _session_options). Measured by bench/ocr_variants.py on pages of the 20-page scan, same text:
# - no spinning: ORT's pool threads otherwise spin-wait between operators, burning a core the
#   other thread (or any other process on a 2-core machine) needs;
# - the CPU memory arena stays off, as RapidOCR sets it: on, it cut page faults (840k -> 18k on 3
#   pages) and time, but it keeps the detector's full-page tensors, and the worker's address
#   space reached its 2 GiB cap (VmPeak 2047 MB, 18 of 20 scanned pages failed to read).
ALLOW_SPINNING = False
CPU_MEM_ARENA = False


def _session_options(original):
    """RapidOCR's SessionOptions factory, wrapped to apply the settings above."""

    def make(config):
        opts = original(config)
        opts.enable_cpu_mem_arena = CPU_MEM_ARENA
        spin = "1" if ALLOW_SPINNING else "0"
        opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
        opts.add_session_config_entry("session.inter_op.allow_spinning", spin)
        return opts

    return make


# Hard-swish as Paddle2ONNX writes it, 28 times in the recognition model and 24 in detection:
# Add(x, 3) -> Clip(0, 6) -> Mul(x, .) -> Div(., 6), four passes over each activation that ONNX
# Runtime does not fuse (its profile: Mul, Add, Div and Clip took 31% of recognition's kernel
# time). The models are rewritten as they load to the same function in two operators,
# HardSigmoid(x, alpha=1/6, beta=0.5) -> Mul(x, .) (their opset, 12, has no HardSwish). Same text
# on the sampled pages; OCR time 0.92x on 4 pages in one process, and 0.93x wall and CPU on 6 pages
# interleaved with the machine loaded by other work (bench/ocr_variants.py nospin,lines1_0_32
# nospin,lines1_0_32,hswish --pages 6 --rounds 2). Needs the onnx package to read the models.
FUSE_HARD_SWISH = True


def fuse_hard_swish(model) -> int:
    """Rewrite each Add(x, 3) -> Clip(0, 6) -> Mul(x, .) -> Div(., 6) of an onnx.ModelProto as
    HardSigmoid(x, 1/6, 0.5) -> Mul(x, .) in place; the number rewritten. A chain whose inner
    results are also used elsewhere is left as it is."""
    from onnx import helper, numpy_helper

    graph = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    consts.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                   if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"})
    producer = {out: n for n in graph.node for out in n.output}
    uses = Counter(name for n in graph.node for name in n.input)
    uses.update(out.name for out in graph.output)

    def is_const(name: str, value: float) -> bool:
        array = consts.get(name)
        return array is not None and array.size == 1 and abs(float(array.reshape(-1)[0]) - value) < 1e-6

    def made_by(name: str, op: str):
        node = producer.get(name)
        return node if node is not None and node.op_type == op and uses.get(name) == 1 else None

    replaced: dict[int, list] = {}
    for div in graph.node:
        mul = made_by(div.input[0], "Mul") if div.op_type == "Div" and is_const(div.input[1], 6) else None
        for x_at in (0, 1) if mul is not None else ():
            x = mul.input[x_at]
            clip = made_by(mul.input[1 - x_at], "Clip")
            add = made_by(clip.input[0], "Add") if clip is not None and len(clip.input) == 3 else None
            if (add is None or add.input[0] != x or not is_const(add.input[1], 3)
                    or not is_const(clip.input[1], 0) or not is_const(clip.input[2], 6)):
                continue
            gate = div.output[0] + "_hard_sigmoid"
            replaced[id(div)] = [
                helper.make_node("HardSigmoid", [x], [gate], name=gate, alpha=1 / 6, beta=0.5),
                helper.make_node("Mul", [x, gate], [div.output[0]], name=div.output[0] + "_hard_swish")]
            replaced.update({id(add): [], id(clip): [], id(mul): []})
            break
    nodes = [new for n in graph.node for new in replaced.get(id(n), [n])]
    used = {name for n in nodes for name in n.input} | {out.name for out in graph.output}
    nodes = [n for n in nodes if n.op_type != "Constant" or n.output[0] in used]  # the 3s and 6s
    del graph.node[:]
    graph.node.extend(nodes)
    return len(replaced) // 4


def fused_model(path) -> bytes:
    """The ONNX model file at `path` with its hard-swishes fused, serialised for an
    InferenceSession."""
    import onnx

    model = onnx.load(str(path))
    fuse_hard_swish(model)
    return model.SerializeToString()


def _fused_session(original):
    """RapidOCR's InferenceSession, given the model with its hard-swishes fused."""

    def make(model_path, **kwargs):
        return original(fused_model(model_path), **kwargs)

    return make


def engine():
    """The RapidOCR engine, loaded on first use and kept for the life of the process."""
    global _engine
    if _engine is None:
        from rapidocr_onnxruntime import RapidOCR
        from rapidocr_onnxruntime.utils import infer_engine

        threads = max(1, min(len(os.sched_getaffinity(0)), MAX_THREADS))  # cores this process may use
        original = infer_engine.OrtInferSession.__dict__["_init_sess_opts"]
        session = infer_engine.InferenceSession
        infer_engine.OrtInferSession._init_sess_opts = staticmethod(_session_options(original.__func__))
        if FUSE_HARD_SWISH:
            infer_engine.InferenceSession = _fused_session(session)
        try:
            eng = RapidOCR(max_side_len=MAX_SIDE_PX, det_unclip_ratio=UNCLIP_RATIO, use_cls=USE_CLS,
                           intra_op_num_threads=threads, inter_op_num_threads=1, text_score=0.0)
        finally:
            infer_engine.OrtInferSession._init_sess_opts = original
            infer_engine.InferenceSession = session
        eng.text_rec = LineReader(eng.text_rec, REC_BATCH, REC_MIN_WIDTH, REC_TAIL)
        _engine = eng
    return _engine


class LineReader:
    """RapidOCR's recogniser (TextRecognizer.__call__) with its padding made settable: lines
    sorted by width, `batch` lines a call, each batch as wide as its widest line plus `tail`
    pixels (at the model's 48 px height), and at least `min_width` pixels. RapidOCR pads every
    batch to at least 320 px and to its widest line only."""

    def __init__(self, recogniser, batch: int, min_width: int, tail: int):
        self.session, self.decode = recogniser.session, recogniser.postprocess_op
        _c, self.height, _w = recogniser.rec_image_shape
        self.batch, self.min_width, self.tail = batch, min_width, tail
        self.on_lines = None  # callback(read, total) while a caller of ocr_image wants progress

    def __call__(self, crops, return_word_box: bool = False):
        import math
        import time

        import cv2
        import numpy as np

        if isinstance(crops, np.ndarray):
            crops = [crops]
        h = self.height
        widths = [max(1, math.ceil(h * c.shape[1] / c.shape[0])) for c in crops]
        order = np.argsort(np.array(widths), kind="stable")
        out: list = [("", 0.0)] * len(crops)
        started = time.perf_counter()
        report, reported = self.on_lines, started
        for start in range(0, len(crops), self.batch):
            if report is not None and time.perf_counter() - reported >= LINES_REPORT_S:
                report(start, len(crops))
                reported = time.perf_counter()
            ids = order[start:start + self.batch]
            width = max(self.min_width, max(widths[k] for k in ids) + self.tail)
            x = np.zeros((len(ids), 3, h, width), dtype=np.float32)
            for row, k in enumerate(ids):
                line = cv2.resize(crops[k], (widths[k], h)).astype(np.float32)
                x[row, :, :, :widths[k]] = line.transpose(2, 0, 1) / 127.5 - 1.0
            for row, text in zip(ids, self.decode(self.session(x)[0])):
                out[row] = text
        return out, time.perf_counter() - started


def render_page(page, dpi: int = OCR_DPI, max_side_px: int = MAX_SIDE_PX):
    """A pypdfium2 page as an RGB PIL image at `dpi`, scaled down so no side exceeds max_side_px."""
    width_pt, height_pt = page.get_size()
    scale = dpi / 72
    longest = max(width_pt, height_pt) * scale
    if longest > max_side_px:
        scale *= max_side_px / longest
    return page.render(scale=scale).to_pil().convert("RGB")


def ocr_image(image, on_lines=None) -> str:
    """The text RapidOCR reads in an RGB PIL image as layout text: one line per row of text
    boxes, columns kept by spaces (boxes_to_text).

    A page scanned sideways or upside down is read again turned (90 and 270 degrees when most
    text boxes stand upright, else 180) and the turn with the most confidently read horizontal
    text wins; an upright page is read once, and a turn that reads upright ends the search (a
    sideways page then costs two reads, not three: a read of a dense page takes seconds).

    `on_lines(read, total)` is called every LINES_REPORT_S seconds while lines are recognised."""
    reader = engine().text_rec
    reader.on_lines = on_lines
    try:
        return _read_turned(image)
    finally:
        reader.on_lines = None


def _read_turned(image) -> str:
    """ocr_image's reads: upright, then turned while the page does not read upright."""
    result = _read(image)
    if not _turned(result):
        return boxes_to_text(_confident(result))
    turns = (90, 270) if _vertical_share(_confident(result) or result) > 0.5 else (180,)
    candidates = [result]
    for angle in turns:
        candidates.append(_read(image.rotate(angle, expand=True)))
        if _confident(candidates[-1]) and not _turned(candidates[-1]):
            break
    return boxes_to_text(max(map(_confident, candidates), key=_horizontal_weight))


def _read(image) -> list:
    """Every line the detector found, with its recognition score however low (the engine keeps
    them all: see TEXT_SCORE)."""
    result, _elapsed = engine()(image)
    return result or []


def _confident(result: list) -> list:
    """The lines read with a score of TEXT_SCORE or more: the text of the page."""
    return [line for line in result if line[2] >= TEXT_SCORE]


def _turned(result: list) -> bool:
    """Whether a read looks like a page scanned sideways or upside down: its confident lines
    are not _upright; or none reads confidently while most of the lines the detector found stand
    upright (a sideways page whose lines, turned the wrong way by the crop, all score below
    TEXT_SCORE). A page with nothing confident on it otherwise is blank, as before."""
    confident = _confident(result)
    if confident:
        return not _upright(confident)
    return _vertical_share(result) > 0.5


def _is_vertical(corners) -> bool:
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    return max(ys) - min(ys) > max(xs) - min(xs)


def _vertical_share(result: list) -> float:
    return sum(_is_vertical(corners) for corners, _t, _s in result) / max(1, len(result))


def _upright(result: list) -> bool:
    """Nothing read, or mostly horizontal boxes read with confidence (upright text reads at
    0.95+ on average, text upside down at about 0.6)."""
    if not result:
        return True
    mean_score = sum(score for _c, _t, score in result) / len(result)
    return _vertical_share(result) <= 0.5 and mean_score >= MIN_UPRIGHT_SCORE


def _horizontal_weight(result: list) -> float:
    """Confidence-weighted characters read in horizontal boxes: high only for upright text."""
    return sum(score * len(text) for corners, text, score in result if not _is_vertical(corners))


def boxes_to_text(result: list) -> str:
    """RapidOCR boxes ([corners, text, score], ...) -> layout text like pypdf's layout mode:
    one line per row of boxes, each box starting at the character column of its left edge, so
    a table keeps its columns for ingest.pdf_layout.structure_page (see _place_boxes).

    Boxes whose vertical centres fall within half a box height of a line's centre join that
    line, left to right."""
    boxes = []
    for corners, text, _score in result:
        text = text.strip()
        if not text:
            continue
        xs, ys = [p[0] for p in corners], [p[1] for p in corners]
        boxes.append(((min(ys) + max(ys)) / 2, max(ys) - min(ys), min(xs), max(xs), text))
    boxes.sort()
    lines: list[list] = []  # [centre, height, [(left, right, text), ...]]
    for centre, height, left, right, text in boxes:
        if lines and abs(centre - lines[-1][0]) <= max(height, lines[-1][1]) / 2:
            lines[-1][2].append((left, right, text))
        else:
            lines.append([centre, height, [(left, right, text)]])
    char_w = _char_width([b for _c, _h, parts in lines for b in parts])
    margin = min((b[0] for _c, _h, parts in lines for b in parts), default=0.0)
    return "\n".join(_place_boxes(sorted(parts), char_w, margin) for _c, _h, parts in lines)


# Boxes further apart than this many character widths are separate cells (table columns, a
# label and its value) and get at least MIN_CELL_GAP spaces; closer boxes are words of one phrase
# and get one space. RapidOCR's boxes carry a detection margin (about a character a side), so a
# word space shows as a gap of -2 to +1.2 chars (a list number "8." boxed apart from its item),
# while label/value and column gaps measured 3 chars and up (all box gaps on 16 pages of
# ../shared/eval rendered at 150 dpi: prose, forms and planning tables in pdfs/real, statements
# of income in financial/).
CELL_GAP_CHARS = 1.5
# Spaces between two separate cells at least. Two or more end a fragment in pdf_layout, and it
# takes a row's label and first figure for a row only 3 or more apart (_is_data_row). A box's
# column comes from the page's average character width, so a long lower-case label runs past
# its true end ("Depreciation, amortization, and decommissioning" ran into its first figure and
# got 2 spaces: with 2 that row of the PG&E statement of income stayed run-on text).
MIN_CELL_GAP = 3
# Financial tables set "$" close to the figure of the column before ("2,487.0 $ 2,112.8": gaps of
# 0.5-1.4 chars measured), and two figure columns can sit closer still: a figure or a currency
# sign after a figure always starts a new cell. The same test for a figure as structure_page's.
_CURRENCY = {"$", "€", "£"}
# A table of contents' dot leader runs from an entry to its page number, and OCR reads only a few
# of its dots ("Regulatory Process....", gap, ".47"): a box ending or starting with this is one
# line of prose, as in the text layer, not a label and a figure cell ("Leasing .. | 6").
_LEADER = ".."
# The recogniser reads a "$" boxed alone as "S" (PG&E's per-share rows: "S 0.20 S 0.18"); a lone
# "S" box right before a figure box is that "$".
_MISREAD_DOLLAR = "S"


def _char_width(boxes: list[tuple[float, float, str]]) -> float:
    """Pixels per character on the page: total box width over total characters. A ratio of
    sums, not the median of each box's width/len: each box carries a fixed detection margin,
    which inflates short boxes (a "210" cell reads 24 px/char where the text runs at about 15),
    and a table page has many short boxes; long boxes dominate the sum and are closest to the
    text's own width."""
    chars = sum(len(text) for _l, _r, text in boxes)
    return sum(right - left for left, right, _t in boxes) / chars if chars else 1.0


def _starts_cell(prev_text: str, text: str, gap_chars: float) -> bool:
    """Whether a box is a new cell rather than the next word of the box before it."""
    if prev_text.endswith(_LEADER) or text.startswith(_LEADER):
        return False
    if gap_chars > CELL_GAP_CHARS:
        return True
    if text[:1] in _CURRENCY and is_figure(text):
        return True  # "$494" boxed apart after a footnote mark ("(9)" read as "?)") is a cell
    return is_figure(prev_text) and (text in _CURRENCY or is_figure(text))


def _currency(text: str, next_text: str) -> str:
    """A box's text, spacing repaired; a lone "S" before a figure, or one glued to its figure, read
    as the "$" it is."""
    if text == _MISREAD_DOLLAR and is_figure(next_text):
        return "$"
    if text.startswith(_MISREAD_DOLLAR) and not is_figure(text) and is_figure("$" + text[1:]):
        return "$" + text[1:]  # "S406": the "$" read as "S" and boxed with its figure
    return repair_spacing(text)


def _place_boxes(parts: list[tuple[float, float, str]], char_w: float, margin: float) -> str:
    """One line of boxes: a new cell at the column its left edge falls on (pixels from the
    page's leftmost text / char_w), pushed right to MIN_CELL_GAP spaces after the box before it
    where that one runs long; the next word of a phrase one space after the box before it.
    repair_spacing works inside each box: spacing between boxes is set here."""
    line, prev_text, prev_right = "", "", 0.0
    for k, (left, right, text) in enumerate(parts):
        text = _currency(text, parts[k + 1][2] if k + 1 < len(parts) else "")
        column = round((left - margin) / char_w)
        if line and _starts_cell(prev_text, text, (left - prev_right) / char_w):
            column = max(column, len(line) + MIN_CELL_GAP)
        elif line:
            column = len(line) + 1
        line = line.ljust(column) + text
        prev_text, prev_right = text, right
    return line


# The recogniser often drops the space after punctuation: "buildings,and", "software.This".
_AFTER_COMMA = re.compile(r"(?<=[^\W\d_][,;])(?=[^\W\d_])")   # letter , letter (not "1,000")
_AFTER_STOP = re.compile(r"(?<=[a-z]\.)(?=[A-Z][a-z])")          # "software.This", not "U.S." or "e.g."


def repair_spacing(line: str) -> str:
    """Put back the space OCR drops after a comma or semicolon between words, and after a full
    stop between a lower-case word and a capitalised one."""
    return _AFTER_STOP.sub(" ", _AFTER_COMMA.sub(" ", line))


class PdfOcr:
    """OCR of one PDF's pages, the document opened by pypdfium2 on first use."""

    def __init__(self, path: str, dpi: int = OCR_DPI):
        self.path = path
        self.dpi = dpi
        self._doc = None
        self._unreadable = False

    def _document(self):
        import pypdfium2 as pdfium

        if self._doc is None:
            self._doc = pdfium.PdfDocument(self.path)
        return self._doc

    def page_text(self, index: int, on_lines=None) -> str:
        """OCR text of page `index` (0-based), its tables as rows like a text layer's: the
        column-aligned OCR lines go through the same structure_page as pypdf's layout text,
        after text_grid_rows has made rows of its grids of word cells (a scanned schedule).
        `on_lines` as for ocr_image."""
        page = self._document()[index]
        try:
            image = render_page(page, self.dpi)
        finally:
            page.close()
        return structure_page(text_grid_rows(ocr_image(image, on_lines)))

    def words(self, index: int) -> frozenset[str]:
        """The words pdfium reads on page `index` (0-based): ingest.clean.repair_words mends
        pypdf's text with them. Empty when pdfium cannot read the page (the English vocabulary
        then mends ligatures alone, as clean_text does)."""
        from ingest.clean import page_words

        if self._unreadable:
            return frozenset()
        try:
            page = self._document()[index]
        except (ImportError, RuntimeError):  # no pypdfium2, or its PdfiumError on a broken file
            self._unreadable = True  # not tried again for every page
            return frozenset()
        try:
            textpage = page.get_textpage()
            try:
                return page_words(textpage.get_text_range())
            finally:
                textpage.close()
        except RuntimeError:
            return frozenset()
        finally:
            page.close()

    def has_image(self, index: int) -> bool:
        """Whether page `index` (0-based) draws an image, also inside form XObjects."""
        import pypdfium2 as pdfium

        page = self._document()[index]
        try:
            return any(True for _ in page.get_objects(filter=[pdfium.raw.FPDF_PAGEOBJ_IMAGE], max_depth=4))
        finally:
            page.close()

    def close(self) -> None:
        if self._doc is not None:
            self._doc.close()
            self._doc = None
