"""Write the bundled sample PDF from the user guide: `python -m scripts.make_samples`.

The PDF is generated (not committed) so the sample set stays our own text, in two formats.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def _plain(text: str) -> str:
    text = re.sub(r"`([^`]*)`", r"\1", text)
    return text.encode("latin-1", errors="replace").decode("latin-1")


def markdown_to_pdf(md_path: Path, pdf_path: Path) -> Path:
    """A simple, real multi-page PDF: headings in bold, paragraphs and bullets wrapped."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(_plain(md_path.stem.replace("-", " ").title()))
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_margins(22, 20, 22)
    pdf.add_page()
    for block in md_path.read_text(encoding="utf-8").split("\n\n"):
        block = block.strip()
        if not block:
            continue
        if block.startswith("#"):
            level = len(block) - len(block.lstrip("#"))
            if level == 2 and pdf.get_y() > 200:
                pdf.add_page()  # new sections start on a fresh page near the bottom
            pdf.set_font("Helvetica", "B", {1: 20, 2: 15}.get(level, 12))
            pdf.multi_cell(0, 9, _plain(block.lstrip("#").strip()), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
            continue
        pdf.set_font("Helvetica", "", 11)
        for line in block.split("\n"):
            bullet = line.startswith("- ")
            pdf.multi_cell(0, 6, _plain(("  - " + line[2:]) if bullet else line),
                           new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(pdf_path))
    return pdf_path


def main() -> int:
    out = markdown_to_pdf(SAMPLES / "user-guide.md", SAMPLES / "user-guide.pdf")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
