"""OCR benchmark (issue 13): accuracy, speed and memory of ingest/ocr.py on CPU. Prints figures.

    python bench/ocr_bench.py [--eval ../shared/eval] [--pdfs pdfs/real] [--pages 30]
                              [--dpi 150 200 300] [--scan-pages 20] [--scan-dpi 150]
                              [--unclip 2.4] [--cls]

1. Character error rate (CER) of OCR on born-digital pages of pdfs/real (or --pdfs, e.g.
   "financial" for table pages) rendered to images, against each page's own text layer (pypdf
   layout mode) as ground truth, per DPI. OCR text is ocr.ocr_image's layout text (boxes placed
   at their columns, like pypdf's layout mode); every measure but "tables" collapses whitespace
   runs on both sides, so column spacing costs nothing and they compare words as before:
   - raw: Levenshtein distance over the whole page, in reading order, on both texts as they
     would be indexed (ingest.clean.clean_text; whitespace runs -> one space) / truth length;
   - visible (the chosen measure): the same after removing from the truth the invisible text
     that the strategic-plan PDFs (EPA, GSA, NARA) carry: "PLACEHOLDER_25" and
     "_2d4c99d0-e54d-11ec-..." tags, in the text layer but never drawn (checked on the rendered
     pages), so no OCR can read them;
   - visible, lines sorted: both sides' lines sorted first, so reading-order differences (two
     boxes side by side, a table read by row vs. column) do not count. Shown, not chosen: it
     punishes every line that OCR splits or joins differently from the text layer, so it
     comes out higher than the reading-order measure, not lower.
   - tables: both sides as they are indexed: through ingest.pdf_layout.structure_page (the text
     layer's path in the worker, and PdfOcr.page_text's), then normalised like the others, " | "
     separators and repeated column headers included. Counts a table row that OCR's columns
     leave run-on (or cut differently) against it; on pages without tables it equals visible.
   All micro-averaged (total edits / total truth characters); page median and worst of the chosen.
2. Throughput: pages/s (render + OCR, engine loaded) per DPI on this machine, and this bench
   process's peak address space and peak RSS after each DPI (DPIs run in ascending order, so
   each peak is that DPI's). This process is not the worker: it has no memory cap, holds every
   sampled PDF and runs without the worker's MALLOC_ARENA_MAX=2; the worker's own peak, the
   figure to hold against its 2 GiB RLIMIT_AS, is printed by step 3.
3. A scan of --scan-pages pages (the sampled pages rendered at --scan-dpi, saved as an image-only
   PDF) through the real ingest path, PdfParser(ocr=True) with its memory cap: wall seconds.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest import ocr  # noqa: E402
from ingest.clean import clean_text  # noqa: E402
from ingest.load import PdfParser  # noqa: E402
from ingest.pdf_layout import structure_page  # noqa: E402

SCAN = "NCT06155240_Prot_SAP_000.pdf"  # the real scan: no ground truth
_INVISIBLE = re.compile(r"PLACEHOLDER_\d+|_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MIN_TRUTH_LETTERS = 200  # pages with less text (covers, figures) say little about CER


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insert, delete, substitute; cost 1) by Hyyrö's bit-parallel form of
    Myers' algorithm: one pass over `a` with Python ints as bit vectors over `b`."""
    if len(a) < len(b):
        a, b = b, a
    m = len(b)
    if m == 0:
        return len(a)
    peq: dict[str, int] = {}
    for i, c in enumerate(b):
        peq[c] = peq.get(c, 0) | (1 << i)
    mask, high = (1 << m) - 1, 1 << (m - 1)
    pv, mv, score = mask, 0, m
    for c in a:
        eq = peq.get(c, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & mask)
        mh = pv & xh
        if ph & high:
            score += 1
        elif mh & high:
            score -= 1
        ph = ((ph << 1) | 1) & mask
        mh = (mh << 1) & mask
        pv = mh | (~(xv | ph) & mask)
        mv = ph & xv
    return score


def normalise(text: str) -> str:
    """The text as it is indexed (ingest.clean.clean_text: NFKC, dot leaders and rules -> "...",
    words hyphenated across lines joined), every whitespace run one space. Without it a table of
    contents' hundreds of leader dots, which OCR reads as a few, would count as errors nobody can
    see in the index. Each line's spacing is collapsed and stripped first, as structure_page does
    to prose before the indexer's clean_text runs: on layout text (the truth, and OCR since it
    keeps columns) clean_text would otherwise leave "Process....    .47" as "Process ... .47"
    and "enforce-" over an indented "ment" unjoined, where the index has "Process ... 47" and
    "enforcement"."""
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return " ".join(clean_text("\n".join(lines)).split())


def visible(truth: str) -> str:
    """The text layer without the never-drawn generator tags (see the module docstring)."""
    return _INVISIBLE.sub("", truth)


def sorted_lines(text: str) -> str:
    """Non-empty normalised lines, sorted, one per line."""
    return "\n".join(sorted(n for n in (normalise(l) for l in text.split("\n")) if n))


def sample_pages(folder: Path, n: int) -> list[tuple[Path, int, str]]:
    """Up to n (file, page index, text layer) of born-digital pages with real text, spread evenly."""
    from pypdf import PdfReader

    candidates = []
    for f in sorted(folder.glob("*.pdf")):
        if f.name == SCAN:
            continue
        reader = PdfReader(f)
        for i, page in enumerate(reader.pages):
            text = page.extract_text(extraction_mode="layout") or ""
            if ocr.letters(text) >= MIN_TRUTH_LETTERS:
                candidates.append((f, i, text))
    step = max(1, len(candidates) / n)
    return [candidates[int(k * step)] for k in range(min(n, len(candidates)))]


def memory() -> dict:
    """This process's peak address space and peak RSS in MB."""
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f)
    return {k: int(status[k].split()[0]) // 1024 for k in ("VmPeak", "VmHWM")}


def measure_dpi(pages: list[tuple[Path, int, str]], dpi: int, max_side_px: int) -> dict:
    """CER (raw, visible, visible with lines sorted, tables), pages/s, memory at one DPI."""
    import pypdfium2 as pdfium

    edits = {"raw": 0, "visible": 0, "lines": 0, "tables": 0}
    chars = {"raw": 0, "visible": 0, "tables": 0}
    per_page, seconds = [], 0.0
    for f, i, truth in pages:
        doc = pdfium.PdfDocument(str(f))
        t = time.perf_counter()
        text = ocr.ocr_image(ocr.render_page(doc[i], dpi, max_side_px))
        seconds += time.perf_counter() - t
        doc.close()
        seen = visible(truth)
        edits["raw"] += levenshtein(normalise(text), normalise(truth))
        edits["visible"] += (page_edits := levenshtein(normalise(text), normalise(seen)))
        edits["lines"] += levenshtein(sorted_lines(text), sorted_lines(seen))
        edits["tables"] += levenshtein(normalise(structure_page(text)), normalise(structure_page(seen)))
        chars["tables"] += len(normalise(structure_page(seen)))
        chars["raw"] += len(normalise(truth))
        chars["visible"] += len(normalise(seen))
        per_page.append(page_edits / max(1, len(normalise(seen))))
    return {"dpi": dpi, "cer_raw": edits["raw"] / chars["raw"],
            "cer_visible": edits["visible"] / chars["visible"], "cer_lines": edits["lines"] / chars["visible"],
            "cer_tables": edits["tables"] / chars["tables"],
            "median": statistics.median(per_page), "worst": max(per_page),
            "pages_per_s": len(pages) / seconds, **memory()}


def image_only_pdf(pages: list[tuple[Path, int, str]], dpi: int, out: Path) -> Path:
    """The pages rendered at dpi and saved as a PDF of images (no text layer): a scan."""
    import pypdfium2 as pdfium

    images = []
    for f, i, _truth in pages:
        doc = pdfium.PdfDocument(str(f))
        images.append(ocr.render_page(doc[i], dpi, max_side_px=10_000).convert("L"))
        doc.close()
    images[0].save(out, "PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return out


def scan_timing(pages: list[tuple[Path, int, str]], dpi: int) -> dict:
    """Wall seconds for an image-only PDF of these pages through PdfParser (worker start,
    engine load, render + OCR of every page), and the worker's peak address space."""
    with tempfile.TemporaryDirectory() as tmp:
        pdf = image_only_pdf(pages, dpi, Path(tmp) / "scan.pdf")
        t = time.perf_counter()
        with PdfParser(ocr=True) as parser:
            result = parser.parse(pdf)
            with open(f"/proc/{parser._proc.pid}/status") as f:
                peak = next(int(l.split()[1]) // 1024 for l in f if l.startswith("VmPeak"))
        seconds = time.perf_counter() - t
    return {"pages": len(pages), "seconds": seconds, "ocr_pages": len(result.get("ocr_pages", [])),
            "worker_vmpeak_mb": peak, "ok": result["ok"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eval", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "eval")
    ap.add_argument("--pdfs", default="pdfs/real", help="folder of born-digital PDFs under --eval")
    ap.add_argument("--pages", type=int, default=30, help="sampled born-digital pages")
    ap.add_argument("--dpi", type=int, nargs="+", default=[150, 200, 300])
    ap.add_argument("--scan-pages", type=int, default=20, help="pages in the image-only PDF (0 = skip)")
    ap.add_argument("--scan-dpi", type=int, default=ocr.OCR_DPI)
    ap.add_argument("--unclip", type=float, default=ocr.UNCLIP_RATIO, help="RapidOCR det unclip ratio")
    ap.add_argument("--cls", action="store_true", help="turn RapidOCR's line direction classifier on")
    args = ap.parse_args()
    folder = args.eval / args.pdfs
    if not folder.is_dir():
        sys.exit(f"no evaluation PDFs at {folder} (pass --eval)")
    pages = sample_pages(folder, args.pages)
    files = sorted({f.name for f, _i, _t in pages})
    print(f"{len(pages)} pages from {len(files)} files; {os.cpu_count()} CPU cores; "
          f"load average {os.getloadavg()[0]:.1f}")
    max_side = 14 * max(args.dpi)  # no cap: up to a 14-inch side at the highest DPI
    ocr.MAX_SIDE_PX = max_side  # read when the engine loads, so RapidOCR does not shrink either
    ocr.UNCLIP_RATIO, ocr.USE_CLS = args.unclip, args.cls or ocr.USE_CLS
    t = time.perf_counter()
    ocr.engine()
    print(f"engine load {time.perf_counter() - t:.1f} s; {memory()}")
    print(f"unclip ratio {ocr.UNCLIP_RATIO}, direction classifier {'on' if ocr.USE_CLS else 'off'}; "
          "CER: raw / visible (chosen) / visible lines sorted / tables (as indexed); visible per page: median, worst")
    print("dpi  CER raw  visible  lines  tables  median  worst  pages/s  bench VmPeak MB  bench peak RSS MB")
    for dpi in sorted(args.dpi):
        r = measure_dpi(pages, dpi, max_side)
        print(f"{dpi:>3}  {r['cer_raw']:7.2%}  {r['cer_visible']:7.2%}  {r['cer_lines']:5.1%}  {r['cer_tables']:6.2%}"
              f"  {r['median']:6.2%}  {r['worst']:5.1%}  {r['pages_per_s']:7.2f}  {r['VmPeak']:15}  {r['VmHWM']:17}",
              flush=True)
    if args.scan_pages:
        scan = scan_timing((pages * args.scan_pages)[:args.scan_pages], args.scan_dpi)
        print(f"image-only PDF, {scan['pages']} pages at {args.scan_dpi} dpi through PdfParser(ocr=True): "
              f"{scan['seconds']:.1f} s ({scan['pages'] / scan['seconds']:.2f} pages/s), "
              f"{scan['ocr_pages']} pages OCR'd, worker VmPeak {scan['worker_vmpeak_mb']} MB, "
              f"ok={scan['ok']}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
