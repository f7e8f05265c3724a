"""Office benchmark: how fast .docx, .pptx, .xlsx and .csv files are read, and what hostile
packages cost before they are refused.

    python bench/office_bench.py [--hostile] [--chunk]

Builds files of realistic size in a temporary folder (a 50-page report with headings and
tables, a 60-slide deck with notes, a 20,000-row workbook written by openpyxl and one by
XlsxWriter, a 20,000-row and a 100,000-row CSV), then reads each through
ingest.load.load_file in a fresh process, so that the peak memory is that file's: seconds,
pages or rows per second, peak RSS. --chunk adds the chunker's time (token counts from the
real tokenizer). --hostile times the crafted files of tests/test_office.py the same way and
prints the reason each was refused with.

Measured on 2 cores (read s / units per s / peak MB): report.docx 0.14 / 356 pages / 67;
deck.pptx 0.21 / 289 slides / 64; orders.xlsx 3.97 / 5,044 rows / 69; orders_xw.xlsx 2.52 /
7,927 rows / 70; rows20k.csv 0.82 / 24,406 rows / 73; rows100k.csv 3.77 / 26,518 rows / 122.
Every hostile file is refused in under 0.2 s at the baseline 61 MB; the most XML a .docx may
hold (31 MB of tiny paragraphs) is read in 7.4 s at a 760 MB peak.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = ("revenue growth margin quarter region product customer market cost operating income "
         "segment forecast pipeline contract renewal churn expansion pricing discount").split()


def sentence(rnd: random.Random, n: int = 18) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_report(path: Path, pages: int = 50) -> int:
    """A Word report: per page a heading, five paragraphs and a 6-row table, then a page break."""
    import docx

    rnd, d = random.Random(1), docx.Document()
    for p in range(pages):
        d.add_heading(f"Section {p + 1}", 1)
        for _ in range(5):
            d.add_paragraph(" ".join(sentence(rnd) for _ in range(4)))
        table = d.add_table(rows=6, cols=4)
        for c, h in enumerate(["Region", "Q1", "Q2", "Q3"]):
            table.cell(0, c).text = h
        for r in range(1, 6):
            table.cell(r, 0).text = rnd.choice(["Americas", "EMEA", "APAC", "LATAM", "Nordics"])
            for c in range(1, 4):
                table.cell(r, c).text = f"{rnd.randint(100, 99999):,}"
        d.add_page_break()
    d.save(path)
    return pages


def make_deck(path: Path, slides: int = 60) -> int:
    import pptx
    from pptx.util import Inches

    rnd, prs = random.Random(2), pptx.Presentation()
    for s in range(slides):
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = f"Slide topic {s + 1}"
        slide.placeholders[1].text = "\n".join(sentence(rnd, 8) for _ in range(5))
        slide.notes_slide.notes_text_frame.text = sentence(rnd, 30)
        if s % 3 == 0:
            table = slide.shapes.add_table(5, 3, Inches(1), Inches(5), Inches(6), Inches(1.5)).table
            for r in range(5):
                for c in range(3):
                    table.cell(r, c).text = ["Region", "Units", "Revenue"][c] if r == 0 else str(rnd.randint(1, 9999))
    prs.save(path)
    return slides


def order_rows(rows: int) -> list[list]:
    rnd = random.Random(3)
    return [["Order", "Date", "Region", "Product", "Units", "Revenue"]] + [
        [f"SO-{i:06d}", f"2023-{i % 12 + 1:02d}-{i % 28 + 1:02d}", rnd.choice(["Americas", "EMEA", "APAC"]),
         rnd.choice(WORDS), rnd.randint(1, 500), round(rnd.random() * 10000, 2)] for i in range(rows - 1)]


def make_workbook(path: Path, rows: int = 20_000) -> int:
    """Written by openpyxl (as pandas writes): strings inline, no <dimension> element, so openpyxl
    reads the sheet twice."""
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Orders")
    for row in order_rows(rows):
        ws.append(row)
    wb.save(path)
    return rows


def make_workbook_shared(path: Path, rows: int = 20_000) -> int:
    """Written by XlsxWriter, laid out as Excel writes: shared strings, <dimension> first."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("Orders")
    for i, row in enumerate(order_rows(rows)):
        ws.write_row(i, 0, row)
    wb.close()
    return rows


def make_csv(path: Path, rows: int) -> int:
    rnd, buf = random.Random(4), io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", "city", "category", "amount", "comment"])
    for i in range(rows - 1):
        w.writerow([i, rnd.choice(["Lisbon", "Zürich", "Osaka"]), rnd.choice(WORDS), rnd.randint(1, 99999),
                    sentence(rnd, 6)])
    path.write_text(buf.getvalue(), encoding="utf-8")
    return rows


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_one(path: Path, chunk: bool) -> dict:
    """Read one file (in this process) and report time, pages, characters and peak memory.
    The Office libraries are imported first (0.4 s), so the time is the file's."""
    import ingest.office  # noqa: F401
    from ingest.load import PdfParser, load_file
    from rag.errors import FileRejected

    started = time.perf_counter()
    out: dict = {"file": path.name, "bytes": path.stat().st_size}
    try:
        with PdfParser() as parser:
            docs = list(load_file(path, 50 << 20, parser))
        out.update(pages=sum(len(d.pages) for d in docs), chars=sum(len(p.text) for d in docs for p in d.pages))
        out["read_s"] = time.perf_counter() - started
        out["peak_rss_mb"] = peak_rss_mb()  # before the tokenizer loads
        if chunk:
            from ingest.chunk import chunk_pages
            from rag.embed import token_counter

            count = token_counter()
            t = time.perf_counter()
            out["chunks"] = sum(len(chunk_pages("b", d.pages, d.kind, count)[0]) for d in docs)
            out["chunk_s"] = time.perf_counter() - t
    except FileRejected as e:
        out.update(read_s=time.perf_counter() - started, reason=e.reason, message=e.message[len(str(path)) + 2:][:150])
    out.setdefault("peak_rss_mb", peak_rss_mb())
    return out


def in_child(path: Path, chunk: bool) -> dict:
    cmd = [sys.executable, __file__, "--one", str(path)] + (["--chunk"] if chunk else [])
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def hostile_files(folder: Path) -> list[Path]:
    """The crafted packages of tests/test_office.py, written to `folder`."""
    from tests import test_office as t

    good = t.docx_bytes("hello")
    book = t.make_xlsx(folder / "src.xlsx", 5).read_bytes()
    deck = t.make_pptx(folder / "src.pptx").read_bytes()
    rnd = random.Random(5)
    tiny = b"".join(b'<w:p w:rsidR="%08X"/>' % rnd.getrandbits(32) for _ in range(1_250_000))
    body = lambda extra: (lambda x: x.replace(b"<w:body>", b"<w:body>" + extra))  # noqa: E731
    sheet = "xl/worksheets/sheet1.xml"
    files = {
        "bomb.docx": t.repack(good, {"word/document.xml": body(b" " * (200 << 20))}),
        "laughs.docx": t.repack(good, {"word/document.xml": lambda x: t.with_laughs(x, b"hello")}),
        "laughs.pptx": t.repack(deck, {"ppt/slides/slide1.xml": lambda x: t.with_laughs(x, b"Growth plan")}),
        "laughs.xlsx": t.repack(book, {sheet: lambda x: t.with_laughs(x, b"Nordics")}),
        "locked.docx": t.ole_file("Root Entry", "EncryptionInfo", "EncryptedPackage"),
        "pdf.docx": b"%PDF-1.4\n1 0 obj\n",
        "cut.docx": good[: len(good) // 2],
        "wide.xlsx": t.repack(book, {sheet: lambda x: x.replace(b'ref="A1:E5"', b'ref="A1:XFD1048576"')}),
        "far.xlsx": t.repack(book, {sheet: lambda x: x.replace(b'<row r="5"', b'<row r="99999999999"')
                                   .replace(b'r="A5"', b'r="A99999999999"')}),
        # the most XML accepted, in the costliest shape: 31 MB of tiny paragraphs with random ids
        "max_xml.docx": t.repack(good, {"word/document.xml": body(tiny)}),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [folder / n for n in files]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hostile", action="store_true", help="also time the crafted hostile files")
    ap.add_argument("--chunk", action="store_true", help="also time chunking")
    ap.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, args.chunk)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        built = {"report.docx": ("pages", make_report(folder / "report.docx")),
                 "deck.pptx": ("slides", make_deck(folder / "deck.pptx")),
                 "orders.xlsx": ("rows", make_workbook(folder / "orders.xlsx")),
                 "orders_xw.xlsx": ("rows", make_workbook_shared(folder / "orders_xw.xlsx")),
                 "rows20k.csv": ("rows", make_csv(folder / "rows20k.csv", 20_000)),
                 "rows100k.csv": ("rows", make_csv(folder / "rows100k.csv", 100_000))}
        print(f"{'file':14} {'size':>8} {'units':>14} {'read s':>7} {'units/s':>9} {'pages':>6} {'peak MB':>8}"
              + ("  chunks chunk s" if args.chunk else ""))
        for name, (unit, n) in built.items():
            r = in_child(folder / name, args.chunk)
            line = (f"{name:14} {r['bytes'] / 1e6:7.1f}M {n:>8,} {unit:5} {r['read_s']:7.2f} {n / r['read_s']:9,.0f} "
                    f"{r.get('pages', 0):6} {r['peak_rss_mb']:8.0f}")
            if args.chunk and "chunks" in r:
                line += f"  {r['chunks']:6} {r['chunk_s']:7.2f}"
            print(line)
        if args.hostile:
            print(f"\n{'hostile file':14} {'size':>8} {'s':>6} {'peak MB':>8}  outcome")
            for path in hostile_files(folder):
                r = in_child(path, False)
                outcome = f"{r['reason']}: {r['message']}" if "reason" in r else f"read: {r['pages']} page(s)"
                print(f"{path.name:14} {r['bytes'] / 1e6:7.2f}M {r['read_s']:6.2f} {r['peak_rss_mb']:8.0f}  {outcome}")


if __name__ == "__main__":
    main()
