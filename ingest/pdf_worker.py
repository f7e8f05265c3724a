"""PDF text extraction in a separate process: `python -m ingest.pdf_worker`.

Reads one JSON request per line on stdin ({"path": ...}), answers with JSON lines on stdout:
{"progress": i, "pages": n} after each page (the parent's stall watch), then
{"ok": true, "pages": [...], "title": ..., "warnings": [...]} or
{"ok": false, "reason": <code>, "detail": <text>}.

Text comes from pypdf's layout mode, so table cells keep their columns; ingest/pdf_layout.py
turns each table row into a line carrying its column headers and drops page furniture.
Hostile files can hang or exhaust memory; the parent enforces a time limit and this
process runs under a memory limit, so neither can take the app down.
"""
from __future__ import annotations

import json
import logging
import sys
import warnings


def _page_text(page) -> str:
    """Layout-mode text with its tables as rows; plain mode where layout mode fails."""
    from ingest.pdf_layout import structure_page

    try:
        return structure_page(page.extract_text(extraction_mode="layout") or "")
    except (RecursionError, MemoryError):
        raise
    except Exception:  # noqa: BLE001 - layout mode trips on some odd pages; plain text still counts
        return page.extract_text() or ""


def _progress(i: int, n: int) -> None:
    sys.stdout.write(json.dumps({"progress": i, "pages": n}) + "\n")
    sys.stdout.flush()


def extract(path: str) -> dict:
    from ingest.pdf_layout import strip_furniture
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
    pages, page_warnings = [], []
    _progress(0, n_pages)
    for i in range(n_pages):
        try:
            pages.append(_page_text(reader.pages[i]))
        except FileNotDecryptedError:
            return {"ok": False, "reason": "password_protected", "detail": "it is encrypted with a password"}
        except Exception as e:  # noqa: BLE001 - one broken page must not lose the others
            pages.append("")
            page_warnings.append(f"page {i + 1}: text could not be extracted ({type(e).__name__}: {e})"[:200])
        _progress(i + 1, n_pages)
    pages = strip_furniture(pages)
    title = None
    try:
        meta = reader.metadata
        if meta is not None and isinstance(meta.title, str) and meta.title.strip():
            title = meta.title.strip()[:300]
    except Exception as e:  # noqa: BLE001 - a broken info dict only costs the title
        page_warnings.append(f"metadata unreadable ({type(e).__name__})")
    return {"ok": True, "pages": pages, "title": title, "warnings": page_warnings}


def main() -> None:
    logging.disable(logging.CRITICAL)  # pypdf logs every recoverable oddity; we report per file
    warnings.simplefilter("ignore")
    sys.setrecursionlimit(5000)
    for line in sys.stdin:
        req = json.loads(line)
        try:
            result = extract(req["path"])
        except RecursionError:
            result = {"ok": False, "reason": "malformed", "detail": "structure nested too deeply"}
        except MemoryError:
            result = {"ok": False, "reason": "malformed", "detail": "needs more memory than allowed"}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
