"""Office parsing before and after a change, in one process: ingest/office.py as it was at a git
revision and as it is in the working tree, run alternately on the same generated files, so that
the load of a shared machine falls on both alike.

    python bench/office_compare.py [--base REV (default HEAD)] [--rounds N] [NAME...]

Only ingest/office.py is swapped (the rest of the tree, pdf_layout included, is the working
tree's). Files: the 100-page report of office_bench.py (with tables), 100 pages of paragraphs each
with a footnote, and a page header (the base ignores notes: its text differs), the 60-slide deck,
a 20,000-row workbook (XlsxWriter), a 100,000-row CSV and the same with a blank line every 10
rows. Prints units per second (process CPU time, median of the rounds) and new/base ratios.

Measured on 2 shared cores, --base bbb6267 (where office-leftovers began; ratio of medians):
report.docx 1.00-1.05, noted.docx 0.64-0.70 (it reads 500 footnotes more), deck.pptx 0.98-1.00,
orders.xlsx 0.97-1.11, rows100k.csv 1.23, gaps.csv 1.15-1.19; runs of identical code differ by
up to 5-15% on a loaded machine, so only the CSV gains stand out of the noise."""
from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import office_bench as ob  # noqa: E402


def make_noted(path: Path, pages: int = 100) -> int:
    """make_report's pages without tables, each paragraph with a footnote; a header and a footer."""
    import docx

    from tests.test_office import add_field, add_notes, note_ref

    rnd, d, notes = random.Random(1), docx.Document(), {}
    for p in range(pages):
        d.add_heading(f"Section {p + 1}", 1)
        for _ in range(5):
            para = d.add_paragraph(" ".join(ob.sentence(rnd) for _ in range(4)))
            notes[len(notes) + 1] = ob.sentence(rnd, 12)
            note_ref(para.add_run(), "footnote", len(notes))
        d.add_page_break()
    add_notes(d, "footnotes", notes)
    d.sections[0].header.paragraphs[0].add_run("Project Falcon")
    add_field(d.sections[0].footer.paragraphs[0], "PAGE", "1")
    d.save(path)
    return pages * 6


def load_base(rev: str, folder: Path):
    source = subprocess.run(["git", "show", f"{rev}:ingest/office.py"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    path = folder / "office_base.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("office_base", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["office_base"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="HEAD", help="git revision of the baseline ingest/office.py")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("only", nargs="*", help="files whose names contain one of these")
    args = ap.parse_args()
    base_rev = subprocess.run(["git", "rev-parse", args.base], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    from ingest import office as new

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        base = load_base(base_rev, t)
        files = {"report.docx": ("docx", "paragraphs", ob.make_report(t / "report.docx", 100) * 6),
                 "noted.docx": ("docx", "paragraphs", make_noted(t / "noted.docx", 100)),
                 "deck.pptx": ("pptx", "slides", ob.make_deck(t / "deck.pptx", 60)),
                 "orders.xlsx": ("xlsx", "rows", ob.make_workbook_shared(t / "orders.xlsx", 20_000)),
                 "rows100k.csv": ("csv", "rows", ob.make_csv(t / "rows100k.csv", 100_000)),
                 "gaps.csv": ("csv", "rows", 100_000)}
        lines = (t / "rows100k.csv").read_text().split("\n")
        (t / "gaps.csv").write_text("\n".join(x + ("\n" if i % 10 == 9 else "") for i, x in enumerate(lines)))
        print(f"base {base_rev[:10]} vs working tree, {args.rounds} rounds")
        for name, (kind, unit, n) in files.items():
            if args.only and not any(o in name for o in args.only):
                continue
            data = (t / name).read_bytes()
            text = data.decode() if kind == "csv" else None
            times: dict[str, list[float]] = {"base": [], "new": []}
            pages = {}
            for r in range(args.rounds):
                for label, module in ([("base", base), ("new", new)] if r % 2 == 0 else [("new", new), ("base", base)]):
                    started = time.process_time()
                    pages[label] = module.extract(t / name, data, kind, 600, text).pages
                    times[label].append(time.process_time() - started)
            b, w = statistics.median(times["base"]), statistics.median(times["new"])
            same = [p.text for p in pages["base"]] == [p.text for p in pages["new"]]
            print(f"{name:14} {unit:10} base {n / b:9,.0f}/s  new {n / w:9,.0f}/s  new/base {b / w:5.3f}  "
                  f"(best of each {min(times['base']) / min(times['new']):5.3f}; same text: {same})", flush=True)


if __name__ == "__main__":
    main()
