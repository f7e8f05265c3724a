"""Questions first when the machine is busy (issue 10): the ingest runs at a lower CPU priority,
torch's OpenMP threads sleep instead of spinning, and answer units already embedded are reused.
The latency itself is measured by bench/answer_latency.py, not here."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from ingest.load import WORKER_NICE, PdfParser
from rag.answer.support import SupportModel
from tests.conftest import ROOT


def _env(**changes: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in changes}
    env.update({k: v for k, v in changes.items() if v is not None})
    return env


def _python(code: str, **env: str | None) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(**env), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_importing_rag_makes_openmp_threads_sleep_unless_the_user_chose():
    code = "import rag, os; print(os.environ['OMP_WAIT_POLICY'])"
    assert _python(code, OMP_WAIT_POLICY=None) == "PASSIVE"
    assert _python(code, OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"


def test_command_line_ingest_runs_at_a_lower_priority(tmp_path):
    # the real `python -m ingest --list`, reporting the priority it ran at as it exits
    code = ("import atexit, os, runpy, sys; "
            "atexit.register(lambda: print(os.getpriority(os.PRIO_PROCESS, 0))); "
            f"sys.argv = ['ingest', '--list', '--data-dir', {str(tmp_path)!r}]; "
            "runpy.run_module('ingest', run_name='__main__')")
    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert int(_python(code, RAG_INGEST_NICE=None).split()[-1]) == min(19, own + 10)
    assert int(_python(code, RAG_INGEST_NICE="0").split()[-1]) == own


def test_a_bad_ingest_priority_is_named():
    out = subprocess.run([sys.executable, "-m", "ingest", "--list"], cwd=ROOT, capture_output=True, text=True,
                         env=_env(RAG_INGEST_NICE="low"), timeout=120)
    assert out.returncode == 2
    assert "RAG_INGEST_NICE='low' is not a valid int" in out.stderr


def test_pdf_parse_worker_runs_below_its_caller(sample_pdf):
    with PdfParser() as parser:
        parsed = parser.parse(sample_pdf)
        worker = parser._proc.pid
        assert os.getpriority(os.PRIO_PROCESS, worker) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICE)
    assert parsed["pages"], "the worker still parses"


class Counting:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner):
        self.inner, self.embedded = inner, []

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts):
        self.embedded.extend(texts)
        return self.inner.embed(texts)


def test_answer_units_are_embedded_once_and_the_oldest_forgotten(embedder):
    counting = Counting(embedder)
    support = SupportModel(counting, cache_size=3)
    units = ["Revenue, Q2 2023: 2,540", "Operating income rose 12%.", "Revenue, Q2 2023: 2,540"]
    first = support.vectors(units)
    assert counting.embedded == units[:2], "a unit repeated within one call is embedded once"
    np.testing.assert_allclose(first, embedder.embed(units), atol=1e-5)

    again = support.vectors(["Operating income rose 12%.", "Net income was $1.2 billion."])
    assert counting.embedded[2:] == ["Net income was $1.2 billion."]
    np.testing.assert_allclose(again[0], first[1], atol=1e-6)

    support.vectors(["Diluted EPS $0.96"])  # a fourth text: the least recently used one goes
    counting.embedded.clear()
    support.vectors(units[:1] + ["Operating income rose 12%."])
    assert counting.embedded == ["Revenue, Q2 2023: 2,540"]

    support.clear()
    support.vectors(["Diluted EPS $0.96"])
    assert counting.embedded[-1] == "Diluted EPS $0.96"
    assert support.vectors([]).shape == (0, embedder.dim)
