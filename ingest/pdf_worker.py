"""PDF text extraction in a separate process: `python -m ingest.pdf_worker`.

Reads one JSON request per line on stdin ({"path": ..., "ocr": true|false}), answers with JSON
lines on stdout: {"progress": i, "pages": n, "ocr": k} after each page (the parent's stall watch;
k = pages sent to OCR so far, each of which extends the file's time budget; while a page is
OCR'd, the same with "part": the share of its lines read, every half second), then
{"ok": true, "pages": [...], "title": ..., "warnings": [...], "ocr_pages": [page numbers]} or
{"ok": false, "reason": <code>, "detail": <text>}.

Text comes from pypdf's layout mode, so table cells keep their columns; ingest/pdf_layout.py
turns each table row into a line carrying its column headers and drops page furniture.
Hostile files can hang or exhaust memory; the parent enforces a time limit and this
process runs under a memory limit, so neither can take the app down.

With "ocr": true, a page whose text layer is missing or garbage (ingest.ocr.needs_ocr) is
rendered and read by OCR, in this same process and under the same limits; its number goes into
"ocr_pages". The OCR engine loads on the first such page only. OCR lines keep their boxes'
columns too (ingest.ocr.boxes_to_text), so a scanned table goes through the same structure_page
and reads as rows with their column headers (ingest.ocr.PdfOcr.page_text).
"""
from __future__ import annotations

import json
import logging
import sys
import warnings


def _page_text(page, carry=None) -> str:
    """Layout-mode text with its tables as rows; plain mode where layout mode fails. `carry`
    (ingest.pdf_layout.TableCarry) takes a table's header over to the next page."""
    from ingest.pdf_layout import structure_page

    try:
        return structure_page(page.extract_text(extraction_mode="layout") or "", carry)
    except (RecursionError, MemoryError):
        raise
    except Exception:  # noqa: BLE001 - layout mode trips on some odd pages; plain text still counts
        return page.extract_text() or ""


def _progress(i: int, n: int, ocr_tried: int = 0, part: float | None = None) -> None:
    """i pages read of n; `part`: the share of page i+1's OCR lines read so far, while it is read."""
    msg = {"progress": i, "pages": n, "ocr": ocr_tried}
    if part is not None:
        msg["part"] = round(part, 3)
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def _short_error(e: Exception) -> str:
    """One line for a warning: RapidOCR wraps ONNX Runtime errors in a whole traceback."""
    lines = str(e).strip().splitlines()
    if isinstance(e, MemoryError) or "bad_alloc" in str(e):
        return "it needs more memory than the worker's limit allows"
    return f"{type(e).__name__}: {lines[-1] if lines else ''}"


def _layer_text(reader, i: int, page_warnings: list[str], carry=None) -> str:
    """Page i's text layer; "" and a warning when it cannot be extracted (FileNotDecryptedError
    propagates: the whole file is locked)."""
    from pypdf.errors import FileNotDecryptedError

    try:
        return _page_text(reader.pages[i], carry)
    except FileNotDecryptedError:
        raise
    except Exception as e:  # noqa: BLE001 - one broken page must not lose the others
        page_warnings.append(f"page {i + 1}: text could not be extracted ({type(e).__name__}: {e})"[:200])
        return ""


def _wants_ocr(pdf_ocr, i: int, text: str) -> bool:
    """needs_ocr, asking pdfium whether the page draws an image only for a text layer with a
    few letters. A page pdfium cannot open is tried, so that its OCR failure is reported."""
    from ingest.ocr import MIN_LETTERS, letters, needs_ocr

    if not 0 < letters(text) < MIN_LETTERS:
        return needs_ocr(text)
    try:
        return needs_ocr(text, has_image=pdf_ocr.has_image(i))
    except (ImportError, RuntimeError):  # no pypdfium2, or its PdfiumError: the OCR attempt reports it
        return True


def _lines_read(i: int, n_pages: int, ocr_tried: int):
    """OCR's lines-read callback for page i: progress within the page, never backwards (a page
    read again turned starts its lines again)."""
    best = 0.0

    def report(read: int, lines: int) -> None:
        nonlocal best
        if lines and read / lines > best:
            best = read / lines
            _progress(i, n_pages, ocr_tried, best)

    return report


def _ocr_page(pdf_ocr, i: int, text: str, page_warnings: list[str], on_lines=None) -> str | None:
    """The OCR text of page i (0-based) when it reads more letters than the text layer, else
    None. A page OCR cannot read (a broken page, or one that needs more memory than the
    worker may use) costs a warning, not the document."""
    from ingest.ocr import letters

    try:
        found = pdf_ocr.page_text(i, on_lines)
    except ImportError as e:
        note = f"OCR is not installed ({e}); pages without a text layer stay empty"
        if note not in page_warnings:
            page_warnings.append(note)
        return None
    except Exception as e:  # noqa: BLE001 - one unreadable page must not lose the others
        page_warnings.append(f"page {i + 1}: OCR failed ({_short_error(e)})"[:200])
        return None
    return found if letters(found) > letters(text) else None


def extract(path: str, ocr: bool = False) -> dict:
    from ingest.clean import repair_words
    from ingest.ocr import PdfOcr
    from ingest.pdf_layout import TableCarry, strip_furniture
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except (NotImplementedError, PdfReadError) as e:
                return {"ok": False, "reason": "password_protected", "detail": f"unsupported encryption ({e})"}
            if not opened:
                return {"ok": False, "reason": "password_protected",
                        "detail": "it is encrypted with a password"}
        n_pages = len(reader.pages)
    except FileNotDecryptedError:
        return {"ok": False, "reason": "password_protected", "detail": "it is encrypted with a password"}
    except Exception as e:  # noqa: BLE001 - anything pypdf raises on a file means a broken file
        return {"ok": False, "reason": "malformed", "detail": f"{type(e).__name__}: {e}"[:300]}
    pages, page_warnings, ocr_pages, ocr_tried = [], [], [], 0
    pdfium_reading = PdfOcr(path)  # opens the file on first use: for mending words, and for OCR
    pdf_ocr = pdfium_reading if ocr else None
    carry = TableCarry()
    _progress(0, n_pages)
    try:
        for i in range(n_pages):
            text = _layer_text(reader, i, page_warnings, carry)
            if text.strip():  # ligature glyphs and letter-spaced words, mended from pdfium's reading
                text = repair_words(text, pdfium_reading.words(i))
            if pdf_ocr is not None and _wants_ocr(pdf_ocr, i, text):
                ocr_tried += 1
                found = _ocr_page(pdf_ocr, i, text, page_warnings, _lines_read(i, n_pages, ocr_tried))
                if found is not None:
                    text = found
                    ocr_pages.append(i + 1)
            pages.append(text)
            _progress(i + 1, n_pages, ocr_tried)
    except FileNotDecryptedError:
        return {"ok": False, "reason": "password_protected", "detail": "it is encrypted with a password"}
    finally:
        pdfium_reading.close()
    pages = strip_furniture(pages)
    title = None
    try:
        meta = reader.metadata
        if meta is not None and isinstance(meta.title, str) and meta.title.strip():
            title = meta.title.strip()[:300]
    except Exception as e:  # noqa: BLE001 - a broken info dict only costs the title
        page_warnings.append(f"metadata unreadable ({type(e).__name__})")
    return {"ok": True, "pages": pages, "title": title, "warnings": page_warnings, "ocr_pages": ocr_pages}


def main() -> None:
    logging.disable(logging.CRITICAL)  # pypdf logs every recoverable oddity; we report per file
    warnings.simplefilter("ignore")
    sys.setrecursionlimit(5000)
    for line in sys.stdin:
        req = json.loads(line)
        try:
            result = extract(req["path"], ocr=bool(req.get("ocr", False)))
        except RecursionError:
            result = {"ok": False, "reason": "malformed", "detail": "structure nested too deeply"}
        except MemoryError:
            result = {"ok": False, "reason": "malformed", "detail": "needs more memory than allowed"}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
