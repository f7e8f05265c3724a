"""Answer latency on an index, idle and with an ingest running beside it (issue 10).

    .venv/bin/python bench/answer_latency.py --data-dir /tmp/fin --set tests/data/financial_questions.jsonl \
        --load-docs ../shared/eval/pdfs/real

Runs the question set's questions through the extractive answerer four times in one process:
{baseline query path, current query path} x {idle, while `python -m ingest` indexes
--load-docs into a scratch folder}. The baseline is the query path before issue 10: every unit
of the five passages embedded. Both run with today's process settings (torch's OpenMP threads
sleeping between operations, see rag/__init__.py; the ingest at a lower CPU priority, see
ingest/__main__.py), which cannot be changed back within one process.
Prints p50/p95 of the evidence step and of the whole answer, and ratios against the baseline.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.answer import Answerer  # noqa: E402
from rag.answer import extractive  # noqa: E402
from rag.answer.evaluate import load_cases  # noqa: E402
from rag.config import Settings  # noqa: E402


def run(answerer: Answerer, questions: list[str]) -> dict:
    ev, total = [], []
    for q in questions:
        t0 = time.perf_counter()
        a = answerer.ask(q)
        total.append((time.perf_counter() - t0) * 1000)
        ev.append(a.trace["timings_ms"].get("evidence", 0.0))
    pct = lambda xs, p: round(float(np.percentile(xs, p)), 1)  # noqa: E731
    return {"evidence_p50": pct(ev, 50), "evidence_p95": pct(ev, 95), "total_p50": pct(total, 50),
            "total_p95": pct(total, 95), "n": len(questions)}


def configure(baseline: bool) -> None:
    extractive.MAX_EMBEDDED_UNITS = 10_000 if baseline else 12


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--set", type=Path, required=True)
    ap.add_argument("--load-docs", type=Path, nargs="+", required=True, help="ingested concurrently for the loaded runs")
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    questions = [c["question"] for c in load_cases(args.set) if not c.get("history")][: args.limit]
    answerer = Answerer(Settings.load(data_dir=args.data_dir, answer_cache=False))
    answerer.ask(questions[0])  # models loaded, caches warm
    results = {}
    for loaded in (False, True):
        proc = None
        if loaded:
            scratch = tempfile.mkdtemp(prefix="bench-load-")
            proc = subprocess.Popen([sys.executable, "-m", "ingest", *map(str, args.load_docs), "--data-dir", scratch],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    cwd=str(Path(__file__).resolve().parent.parent))
            time.sleep(20)  # past model loading: the ingest is parsing and embedding
        try:
            for baseline in (True, False):
                configure(baseline)
                answerer.support.clear()  # each run starts with no unit vectors kept
                name = f"{'baseline' if baseline else 'current'}_{'loaded' if loaded else 'idle'}"
                results[name] = run(answerer, questions)
                if proc is not None and proc.poll() is not None:
                    results[name]["warning"] = "the ingest finished before this run ended"
                print(name, json.dumps(results[name]), flush=True)
        finally:
            if proc is not None:
                proc.kill()
                proc.wait()
    for load in ("idle", "loaded"):
        b, c = results[f"baseline_{load}"], results[f"current_{load}"]
        print(f"{load}: evidence p50 {b['evidence_p50']} -> {c['evidence_p50']} ms "
              f"({c['evidence_p50'] / max(b['evidence_p50'], 1e-9):.2f}x), answer p50 {b['total_p50']} -> "
              f"{c['total_p50']} ms ({c['total_p50'] / max(b['total_p50'], 1e-9):.2f}x)")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
