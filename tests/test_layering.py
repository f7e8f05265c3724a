"""The library never imports streamlit; pages stay thin."""
from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import ROOT


def test_library_has_no_streamlit_imports():
    offenders = []
    for folder in ("rag", "ingest"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "streamlit"]
    assert offenders == []


def test_importing_the_library_loads_neither_streamlit_nor_models():
    code = ("import sys, rag.search, rag.status, rag.service, rag.answer, rag.cli, ingest.pipeline, ingest.cli; "
            "bad = [m for m in ('streamlit', 'torch', 'sentence_transformers') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
